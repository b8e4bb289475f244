//! A synchronous Microsoft Graph client: one bearer token, JSON GETs, `@odata.nextLink` paging,
//! and throttling handled as Microsoft's guidance asks ("Microsoft Graph throttling guidance":
//! on 429 wait the `Retry-After` seconds, else back off exponentially; 503 and 504 likewise).

use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A bearer token. It is never printed: `Debug` shows `Token([redacted])`, and no error of this
/// module carries it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A token (for example from `az account get-access-token --resource-type ms-graph`).
    pub fn new(secret: impl Into<String>) -> Token {
        Token(secret.into().trim().to_string())
    }

    /// The token itself, for the one place that sends it.
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }

    fn header(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// Where and how to call Graph.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The service root without the version (`https://graph.microsoft.com`; the national clouds
    /// have their own, e.g. `https://graph.microsoft.us`). `/v1.0/…` is appended.
    pub graph_url: String,
    /// Retries of one request after 429, 503, 504 or a broken connection, before giving up.
    pub max_retries: u32,
    /// The first wait when the service gives no `Retry-After` (doubled each retry, with
    /// jitter, at most a minute).
    pub backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one gives up on the request.
    pub max_wait: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            graph_url: "https://graph.microsoft.com".to_string(),
            max_retries: 8,
            backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(300),
        }
    }
}

/// Why a Graph request failed. The request is named by its URL (which carries no secret).
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The service answered with an error status (after retries, for the retried ones).
    #[error("{url}: HTTP {status}{}: {message}{}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(), hint(*status))]
    Status {
        /// The request.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Graph's `error.code`.
        code: Option<String>,
        /// Graph's `error.message`, or the body's start.
        message: String,
    },
    /// No answer: the connection failed (after retries).
    #[error("{url}: {message}")]
    Transport {
        /// The request.
        url: String,
        /// What failed.
        message: String,
    },
    /// The answer is not the JSON object Graph sends.
    #[error("{url}: the response is not a JSON object: {message}")]
    Body {
        /// The request.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// `@odata.nextLink` pointed at a page already read: following it would loop.
    #[error(
        "{url}: @odata.nextLink repeats a page already read ({next}); the listing is cut there"
    )]
    RepeatedLink {
        /// The page that gave the link.
        url: String,
        /// The link.
        next: String,
    },
}

/// What to do about an error status.
fn hint(status: u16) -> &'static str {
    match status {
        401 => {
            " (the token is missing, expired or for another resource: get one for Microsoft Graph)"
        }
        403 => {
            " (the token lacks a permission: User.Read.All, Group.Read.All, GroupMember.Read.All, Organization.Read.All, Device.Read.All)"
        }
        _ => "",
    }
}

/// Counts of what the client did, for the manifest and the summary line.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent (retries included).
    pub requests: AtomicU64,
    /// Requests retried after throttling or a fault.
    pub retries: AtomicU64,
    /// Pages read.
    pub pages: AtomicU64,
}

/// A Graph client (cheap to share across threads: the connection pool is shared).
pub struct Client {
    agent: ureq::Agent,
    token: Token,
    opts: ClientOptions,
    /// What it did so far.
    pub stats: Stats,
}

impl Client {
    /// A client calling `opts.graph_url` with `token`.
    pub fn new(token: Token, opts: ClientOptions) -> Client {
        Client {
            agent: agent(),
            token,
            opts,
            stats: Stats::default(),
        }
    }

    /// The absolute URL of `path` (`/users?…`) under the versioned root (`…/v1.0/users?…`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1.0{path}", self.opts.graph_url.trim_end_matches('/'))
    }

    /// The absolute URL of `path` under the beta root (`…/beta/groups/…`).
    pub fn beta_url(&self, path: &str) -> String {
        format!("{}/beta{path}", self.opts.graph_url.trim_end_matches('/'))
    }

    /// The service root, without the version.
    pub fn root(&self) -> &str {
        self.opts.graph_url.trim_end_matches('/')
    }

    /// `GET url` as JSON, retried after 429, 503, 504 and connection faults: after the
    /// `Retry-After` seconds when given, else with exponential backoff and jitter.
    ///
    /// Errors: another error status, or the retries exhausted ([`GraphError`]).
    pub fn get(&self, url: &str) -> Result<Value, GraphError> {
        self.request(url, None)
    }

    /// `POST url` with a JSON body, as JSON; retried as [`Client::get`] is.
    ///
    /// Errors: as [`Client::get`].
    pub fn post(&self, url: &str, body: &Value) -> Result<Value, GraphError> {
        self.request(url, Some(body))
    }

    fn request(&self, url: &str, body: Option<&Value>) -> Result<Value, GraphError> {
        let mut attempt = 0u32;
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = match body {
                None => self
                    .agent
                    .get(url)
                    .header("Authorization", self.token.header())
                    .header("Accept", "application/json")
                    .call(),
                Some(b) => self
                    .agent
                    .post(url)
                    .header("Authorization", self.token.header())
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json")
                    .send(b.to_string()),
            };
            let wait = match sent {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("Retry-After")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = resp
                        .body_mut()
                        .with_config()
                        .limit(1 << 30)
                        .read_to_vec()
                        .map_err(|e| GraphError::Transport {
                            url: url.to_string(),
                            message: e.to_string(),
                        });
                    if (200..300).contains(&status) {
                        let body = body?;
                        return match serde_json::from_slice::<Value>(&body) {
                            Ok(v @ Value::Object(_)) => Ok(v),
                            Ok(_) => Err(GraphError::Body {
                                url: url.to_string(),
                                message: "not an object".into(),
                            }),
                            Err(e) => Err(GraphError::Body {
                                url: url.to_string(),
                                message: e.to_string(),
                            }),
                        };
                    }
                    let error = status_error(url, status, &body.unwrap_or_default());
                    if !matches!(status, 429 | 503 | 504) || attempt >= self.opts.max_retries {
                        return Err(error);
                    }
                    match retry_after {
                        Some(w) if w > self.opts.max_wait => return Err(error),
                        Some(w) => w,
                        None => self.backoff(attempt),
                    }
                }
                Err(e) => {
                    if attempt >= self.opts.max_retries {
                        return Err(GraphError::Transport {
                            url: url.to_string(),
                            message: e.to_string(),
                        });
                    }
                    self.backoff(attempt)
                }
            };
            attempt += 1;
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(wait);
        }
    }

    /// The wait before retry `attempt` (0-based) without `Retry-After`: `backoff × 2^attempt`,
    /// at most a minute, plus up to half of it at random (so clients throttled together do not
    /// come back together).
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .opts
            .backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(Duration::from_secs(60));
        let jitter: f64 = rand::random::<f64>() * 0.5;
        base + base.mul_f64(jitter)
    }

    /// Every page of a listing from `first` on, following `@odata.nextLink` as an opaque URL;
    /// `each` gets each page's `value`. Returns the `@odata.deltaLink` of a delta query's last
    /// page, when there is one.
    ///
    /// Errors: a request's ([`Client::get`]), a page without a `value` array, a link that
    /// repeats a page already read, or `each`'s.
    pub fn pages<E: From<GraphError>>(
        &self,
        first: &str,
        mut each: impl FnMut(Vec<Value>) -> Result<(), E>,
    ) -> Result<Option<String>, E> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut url = first.to_string();
        loop {
            seen.insert(url.clone());
            let mut page = self.get(&url)?;
            self.stats.pages.fetch_add(1, Ordering::Relaxed);
            let Some(Value::Array(items)) = page.get_mut("value").map(Value::take) else {
                return Err(GraphError::Body {
                    url,
                    message: "no `value` array: not a Graph collection".into(),
                }
                .into());
            };
            each(items)?;
            let link = |k: &str| page.get(k).and_then(Value::as_str).map(str::to_string);
            match link("@odata.nextLink") {
                Some(next) if seen.contains(&next) => {
                    return Err(GraphError::RepeatedLink { url, next }.into());
                }
                Some(next) => url = next,
                None => return Ok(link("@odata.deltaLink")),
            }
        }
    }
}

/// The HTTP agent Graph and sign-in requests go through: statuses are answers, not errors (the
/// client reads 429's `Retry-After` and Graph's error body); 30 s to connect, 120 s for an
/// answer to begin (a stalled request is retried), 300 s for a whole request.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .timeout_connect(Some(Duration::from_secs(30)))
        // A connection that takes the request and never answers is a fault to retry.
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .user_agent(concat!("dynrule/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The error of a non-success answer: Graph's `error.code` and `error.message` when the body
/// has them.
fn status_error(url: &str, status: u16, body: &[u8]) -> GraphError {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let error = v.as_ref().and_then(|v| v.get("error"));
    let text = |k: &str| {
        error
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    GraphError::Status {
        url: url.to_string(),
        status,
        code: text("code"),
        message: text("message").unwrap_or_else(|| {
            String::from_utf8_lossy(body.get(..200).unwrap_or(body))
                .trim()
                .to_string()
        }),
    }
}
