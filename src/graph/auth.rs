//! Signing in to Microsoft Graph, in this order (the first that applies):
//!
//! 1. `DYNRULE_GRAPH_TOKEN`: a bearer token as it is (for example
//!    `az account get-access-token --resource-type ms-graph --query accessToken -o tsv`);
//! 2. client credentials: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`;
//! 3. workload identity federation: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
//!    `AZURE_FEDERATED_TOKEN_FILE` (the file's token is the client assertion, as GitHub Actions'
//!    OIDC and Kubernetes workload identity provide it);
//! 4. device code, for a person at a terminal (`AZURE_TENANT_ID`, default `organizations`;
//!    `AZURE_CLIENT_ID`, default Microsoft Graph Command Line Tools' public client).
//!
//! The variable names are the Azure SDKs' (`EnvironmentCredential`, `WorkloadIdentityCredential`).
//! Tokens go through [`Token`], which is never printed. The OAuth flows are the `oauth2` crate's,
//! over the same HTTP agent as Graph (no second HTTP stack).

use super::client::Token;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, DeviceAuthorizationUrl, HttpRequest, HttpResponse, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};

/// Microsoft Graph Command Line Tools, the public client Microsoft's Graph PowerShell signs in
/// with; used for device code when `AZURE_CLIENT_ID` is not set.
pub const GRAPH_CLI_CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// How to get a token.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A token given as it is.
    Token(Token),
    /// An app registration's secret.
    ClientSecret {
        /// `AZURE_TENANT_ID`.
        tenant: String,
        /// `AZURE_CLIENT_ID`.
        client_id: String,
        /// `AZURE_CLIENT_SECRET` (never printed).
        secret: Token,
    },
    /// A federated token (a file of the CI's or cluster's OIDC token) as the client assertion.
    Federated {
        /// `AZURE_TENANT_ID`.
        tenant: String,
        /// `AZURE_CLIENT_ID`.
        client_id: String,
        /// `AZURE_FEDERATED_TOKEN_FILE`.
        token_file: std::path::PathBuf,
    },
    /// Device code: a person signs in on another device.
    DeviceCode {
        /// `AZURE_TENANT_ID`, or `organizations`.
        tenant: String,
        /// `AZURE_CLIENT_ID`, or [`GRAPH_CLI_CLIENT_ID`].
        client_id: String,
    },
}

impl Credential {
    /// What this credential is, for messages (never the secret).
    pub fn describe(&self) -> String {
        match self {
            Credential::Token(_) => "the token in DYNRULE_GRAPH_TOKEN".into(),
            Credential::ClientSecret { client_id, .. } => {
                format!("client credentials of app {client_id} (AZURE_CLIENT_SECRET)")
            }
            Credential::Federated { client_id, .. } => {
                format!("a federated token for app {client_id} (AZURE_FEDERATED_TOKEN_FILE)")
            }
            Credential::DeviceCode { client_id, .. } => {
                format!("device code sign-in (app {client_id})")
            }
        }
    }
}

/// Why signing in failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No variable says how, and no terminal to sign in at.
    #[error(
        "no credentials: set DYNRULE_GRAPH_TOKEN (az account get-access-token --resource-type ms-graph --query accessToken -o tsv), or AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE), or run at a terminal to sign in with a device code"
    )]
    NoCredentials,
    /// Some of a flow's variables are set, not all.
    #[error("{0}")]
    Incomplete(String),
    /// The federated token file cannot be read.
    #[error("cannot read AZURE_FEDERATED_TOKEN_FILE {path}: {message}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The sign-in service refused or failed (its error text).
    #[error("sign-in at {url} failed: {message}")]
    SignIn {
        /// The token or device-code endpoint.
        url: String,
        /// What it said.
        message: String,
    },
}

/// The credential the environment describes (`var` reads a variable; empty counts as unset).
/// `interactive`: a person is at a terminal, so device code may be used.
///
/// Errors: partial settings (which variable is missing), or none and not interactive.
pub fn from_env(
    var: impl Fn(&str) -> Option<String>,
    interactive: bool,
) -> Result<Credential, AuthError> {
    let get = |k: &str| {
        var(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(t) = get("DYNRULE_GRAPH_TOKEN") {
        return Ok(Credential::Token(Token::new(t)));
    }
    let (tenant, client_id) = (get("AZURE_TENANT_ID"), get("AZURE_CLIENT_ID"));
    let secret = get("AZURE_CLIENT_SECRET");
    let file = get("AZURE_FEDERATED_TOKEN_FILE");
    if secret.is_some() || file.is_some() || get("AZURE_CLIENT_CERTIFICATE_PATH").is_some() {
        let (Some(tenant), Some(client_id)) = (tenant.clone(), client_id.clone()) else {
            return Err(AuthError::Incomplete(
                "AZURE_TENANT_ID and AZURE_CLIENT_ID are needed with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE".into(),
            ));
        };
        if let Some(secret) = secret {
            return Ok(Credential::ClientSecret {
                tenant,
                client_id,
                secret: Token::new(secret),
            });
        }
        if let Some(f) = file {
            return Ok(Credential::Federated {
                tenant,
                client_id,
                token_file: f.into(),
            });
        }
        return Err(AuthError::Incomplete(
            "AZURE_CLIENT_CERTIFICATE_PATH is not supported yet: use AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE or DYNRULE_GRAPH_TOKEN".into(),
        ));
    }
    if interactive {
        return Ok(Credential::DeviceCode {
            tenant: tenant.unwrap_or_else(|| "organizations".into()),
            client_id: client_id.unwrap_or_else(|| GRAPH_CLI_CLIENT_ID.into()),
        });
    }
    Err(AuthError::NoCredentials)
}

/// Gets a token for Graph at `graph_root` (scope `{graph_root}/.default`) from `login_root`
/// (`https://login.microsoftonline.com`, or a national cloud's). `show` gets the device-code
/// message for the person to act on.
///
/// Errors: the sign-in service's refusal or failure ([`AuthError`]).
pub fn token(
    cred: &Credential,
    agent: &ureq::Agent,
    login_root: &str,
    graph_root: &str,
    show: impl Fn(&str),
) -> Result<Token, AuthError> {
    let login = login_root.trim_end_matches('/');
    let scope = Scope::new(format!("{}/.default", graph_root.trim_end_matches('/')));
    let http = |req: HttpRequest| send(agent, req);
    let token_url = |tenant: &str| format!("{login}/{tenant}/oauth2/v2.0/token");
    let failed = |url: &str, e: &dyn std::fmt::Display| AuthError::SignIn {
        url: url.to_string(),
        message: e.to_string(),
    };
    fn url_err(url: &str) -> impl FnOnce(oauth2::url::ParseError) -> AuthError + '_ {
        move |e| AuthError::SignIn {
            url: url.to_string(),
            message: e.to_string(),
        }
    }
    match cred {
        Credential::Token(t) => Ok(t.clone()),
        Credential::ClientSecret {
            tenant,
            client_id,
            secret,
        } => {
            let url = token_url(tenant);
            let client = BasicClient::new(ClientId::new(client_id.clone()))
                .set_client_secret(ClientSecret::new(secret.secret().to_string()))
                .set_auth_type(AuthType::RequestBody)
                .set_token_uri(TokenUrl::new(url.clone()).map_err(url_err(&url))?);
            let t = client
                .exchange_client_credentials()
                .add_scope(scope)
                .request(&http)
                .map_err(|e| failed(&url, &oauth_message(&e)))?;
            Ok(Token::new(t.access_token().secret().clone()))
        }
        Credential::Federated {
            tenant,
            client_id,
            token_file,
        } => {
            let assertion =
                std::fs::read_to_string(token_file).map_err(|e| AuthError::TokenFile {
                    path: token_file.display().to_string(),
                    message: e.to_string(),
                })?;
            let url = token_url(tenant);
            let client = BasicClient::new(ClientId::new(client_id.clone()))
                .set_auth_type(AuthType::RequestBody)
                .set_token_uri(TokenUrl::new(url.clone()).map_err(url_err(&url))?);
            let t = client
                .exchange_client_credentials()
                .add_scope(scope)
                .add_extra_param(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .add_extra_param("client_assertion", assertion.trim())
                .request(&http)
                .map_err(|e| failed(&url, &oauth_message(&e)))?;
            Ok(Token::new(t.access_token().secret().clone()))
        }
        Credential::DeviceCode { tenant, client_id } => {
            let url = token_url(tenant);
            let device_url = format!("{login}/{tenant}/oauth2/v2.0/devicecode");
            let client = BasicClient::new(ClientId::new(client_id.clone()))
                .set_auth_type(AuthType::RequestBody)
                .set_token_uri(TokenUrl::new(url.clone()).map_err(url_err(&url))?)
                .set_device_authorization_url(
                    DeviceAuthorizationUrl::new(device_url.clone())
                        .map_err(url_err(&device_url))?,
                );
            let details: StandardDeviceAuthorizationResponse = client
                .exchange_device_code()
                .add_scope(scope)
                .request(&http)
                .map_err(|e| failed(&device_url, &oauth_message(&e)))?;
            show(&format!(
                "To sign in, open {} and enter the code {}",
                details.verification_uri().as_str(),
                details.user_code().secret()
            ));
            let t = client
                .exchange_device_access_token(&details)
                .request(&http, std::thread::sleep, None)
                .map_err(|e| failed(&url, &oauth_message(&e)))?;
            Ok(Token::new(t.access_token().secret().clone()))
        }
    }
}

/// An OAuth error as a person reads it: the service's `error` and `error_description`.
fn oauth_message<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static>(
    e: &oauth2::RequestTokenError<RE, T>,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => r.to_string(),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

/// Why an OAuth request got no answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpFailure(String);

/// One OAuth request over `agent` (oauth2's synchronous HTTP client).
fn send(agent: &ureq::Agent, req: HttpRequest) -> Result<HttpResponse, HttpFailure> {
    let mut resp = agent.run(req).map_err(|e| HttpFailure(e.to_string()))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .body_mut()
        .read_to_vec()
        .map_err(|e| HttpFailure(e.to_string()))?;
    let mut out = HttpResponse::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}
