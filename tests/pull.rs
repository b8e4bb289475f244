//! `dynrule pull` against a loopback server (a few lines of `std::net`, one request per
//! connection) that behaves as Microsoft Graph does: it honours
//! `$select` (properties not asked for are absent; without `$select` only Graph's default set),
//! caps `$expand=members` at 20, pages by absolute opaque `@odata.nextLink`, answers 429 with
//! `Retry-After` and an occasional 503, refuses a request without the right bearer token (401),
//! and issues tokens by client credentials at its own `/{tenant}/oauth2/v2.0/token`. A pulled
//! snapshot must recompute exactly as the same tenant written as files, and the token must
//! appear in no output. No test reaches the network.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "tok-Graph-7f3a9c21-secret";
const CLIENT_SECRET: &str = "s3cret-Client-Value";
const FEDERATED: &str = "eyJhbGciOiJSUzI1NiJ9.federated-assertion.sig";
const TENANT: &str = "contoso.onmicrosoft.com";
const PAGE: usize = 7;
const NOW: &str = "2026-11-21T12:00:00Z";

/// Graph's default user properties (returned without `$select`).
const USER_DEFAULT: &[&str] = &[
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

/// What the fake Graph serves.
#[derive(Default)]
struct Directory {
    users: Vec<Value>,
    groups: Vec<Value>,
    skus: Vec<Value>,
    organization: Vec<Value>,
    /// The changes each delta listing (`users`, `groups`) returns in its first round.
    delta: HashMap<String, Vec<Value>>,
}

/// How the fake Graph misbehaves.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// Every n-th Graph request answers 429 with `Retry-After: 0` (0: never).
    throttle_every: usize,
    /// Every n-th Graph request answers 503 without `Retry-After` (0: never).
    unavailable_every: usize,
    /// The users listing's second page links back to itself.
    repeat_link: bool,
}

struct Server {
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(h, 16) {
                    Ok(c) => {
                        out.push(c);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(url: &str) -> (String, HashMap<String, String>) {
    let (path, q) = url.split_once('?').unwrap_or((url, ""));
    let params = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k).to_ascii_lowercase(), decode(v))
        })
        .collect();
    (decode(path), params)
}

/// An object with only the keys of `select` (any case), or Graph's `default` set without one.
fn selected(o: &Value, select: Option<&String>, default: &[&str]) -> Value {
    let keys: Vec<String> = match select {
        Some(s) => s.split(',').map(|k| k.trim().to_string()).collect(),
        None => default.iter().map(|k| k.to_string()).collect(),
    };
    let mut out = serde_json::Map::new();
    if let Value::Object(m) = o {
        for (k, v) in m {
            if keys.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// One HTTP request, as the fake Graph reads it.
struct Request {
    method: String,
    url: String,
    authorization: Option<String>,
    body: String,
}

/// Reads one request (request line, headers, a `Content-Length` body) from a connection.
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, url) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut authorization) = (0usize, None);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        if k.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse().ok()?;
        } else if k.eq_ignore_ascii_case("authorization") {
            authorization = Some(v.trim().to_string());
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        url,
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Answers with a JSON body and closes the connection (one request per connection).
fn respond(stream: &mut TcpStream, status: u16, body: &Value, headers: &[(&str, &str)]) {
    let body = body.to_string();
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        if status < 400 { "OK" } else { "Error" },
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn graph_error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "innerError": {"request-id": "00000000-0000-0000-0000-000000000000"}}})
}

/// The sign-in service's answer to a form posted to `path`: client credentials (with the
/// secret, or with the federated assertion `FEDERATED`), and device code (pending once, then
/// signed in).
fn sign_in(path: &str, form: &HashMap<String, String>, device_polls: &mut usize) -> (u16, Value) {
    let field = |k: &str| form.get(k).map(String::as_str);
    let token = json!({"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN});
    let refused = |code: &str, text: &str| (400, json!({"error": code, "error_description": text}));
    if !field("scope").is_none_or(|s| s.ends_with("/.default"))
        || field("client_id") != Some("app-1")
    {
        return refused(
            "invalid_request",
            "AADSTS90014: The request is missing a required field.",
        );
    }
    if path.ends_with("/devicecode") {
        return (
            200,
            json!({"device_code": "dc-1", "user_code": "ABCD-1234", "verification_uri": "https://microsoft.com/devicelogin", "expires_in": 900, "interval": 1, "message": "To sign in, use a web browser"}),
        );
    }
    match (
        field("grant_type"),
        field("client_secret"),
        field("client_assertion"),
    ) {
        (Some("client_credentials"), Some(CLIENT_SECRET), None) => (200, token),
        (Some("client_credentials"), None, Some(FEDERATED))
            if field("client_assertion_type")
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") =>
        {
            (200, token)
        }
        (Some("client_credentials"), None, Some(_)) => refused(
            "invalid_client",
            "AADSTS700213: No matching federated identity record found.",
        ),
        (Some("urn:ietf:params:oauth:grant-type:device_code"), _, _)
            if field("device_code") == Some("dc-1") =>
        {
            *device_polls += 1;
            if *device_polls == 1 {
                refused(
                    "authorization_pending",
                    "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.",
                )
            } else {
                (200, token)
            }
        }
        _ => (
            401,
            json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
        ),
    }
}

/// `evaluateDynamicMembership` as the fake service answers it: a rule dynrule refuses is
/// refused, and so is every `-notIn` (the planted disagreement); an accepted rule holds for the
/// member when it mentions "Sales".
fn evaluate(dir: &Directory, body: &str) -> (u16, Value) {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let (Some(member), Some(rule)) = (v["memberId"].as_str(), v["membershipRule"].as_str()) else {
        return (
            400,
            graph_error(
                "Request_BadRequest",
                "memberId and membershipRule are required.",
            ),
        );
    };
    if !dir.users.iter().any(|u| u["id"] == member) {
        return (
            404,
            graph_error("Request_ResourceNotFound", "The member does not exist."),
        );
    }
    if rule.contains("-notIn") || !dynrule::check(rule).is_valid() {
        return (
            400,
            graph_error(
                "Request_BadRequest",
                "Invalid membership rule: Query compilation error.",
            ),
        );
    }
    (
        200,
        json!({"membershipRule": rule, "membershipRuleEvaluationResult": rule.contains("Sales"), "membershipRuleEvaluationDetails": {}}),
    )
}

/// Starts the fake Graph on a loopback port.
fn serve(dir: Directory, faults: Faults) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    let base = format!("http://127.0.0.1:{port}");
    let log = Arc::new(Mutex::new(Vec::new()));
    let state_log = Arc::clone(&log);
    let root = base.clone();
    std::thread::spawn(move || {
        // Opaque page tokens: token → (collection, query, offset).
        let mut pages: HashMap<String, (String, HashMap<String, String>, usize)> = HashMap::new();
        let mut graph_requests = 0usize;
        let mut device_polls = 0usize;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(req) = read_request(&mut stream) else {
                continue;
            };
            let url = req.url.clone();
            state_log
                .lock()
                .unwrap()
                .push(format!("{} {url}", req.method));
            let (path, mut params) = query(&url);
            if req.method == "POST" && path.starts_with(&format!("/{TENANT}/oauth2/v2.0/")) {
                let (_, form) = query(&format!("?{}", req.body));
                let (status, body) = sign_in(&path, &form, &mut device_polls);
                respond(&mut stream, status, &body, &[]);
                continue;
            }
            let authorized = req.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"));
            if !authorized {
                respond(
                    &mut stream,
                    401,
                    &graph_error(
                        "InvalidAuthenticationToken",
                        "Access token validation failure.",
                    ),
                    &[],
                );
                continue;
            }
            graph_requests += 1;
            if faults.throttle_every > 0 && graph_requests % faults.throttle_every == 0 {
                respond(
                    &mut stream,
                    429,
                    &graph_error("TooManyRequests", "Too many requests."),
                    &[("Retry-After", "0")],
                );
                continue;
            }
            if faults.unavailable_every > 0 && graph_requests % faults.unavailable_every == 0 {
                respond(
                    &mut stream,
                    503,
                    &graph_error("serviceNotAvailable", "Service unavailable."),
                    &[],
                );
                continue;
            }
            if req.method == "POST" && path == "/beta/groups/evaluateDynamicMembership" {
                let (status, body) = evaluate(&dir, &req.body);
                respond(&mut stream, status, &body, &[]);
                continue;
            }
            // A next page: the token stands for the listing and where it was.
            let mut collection = path.trim_start_matches("/v1.0/").to_string();
            let mut offset = 0;
            if let Some(t) = params.get("$skiptoken").cloned() {
                let Some((c, q, o)) = pages.get(&t).cloned() else {
                    respond(
                        &mut stream,
                        400,
                        &graph_error("Request_BadRequest", "Invalid paging token."),
                        &[],
                    );
                    continue;
                };
                collection = c;
                params = q;
                offset = o;
            }
            let top = params
                .get("$top")
                .and_then(|t| t.parse::<usize>().ok())
                .unwrap_or(100)
                .min(PAGE);
            // Delta rounds: `latest` starts at round 1; round 1 gives the configured changes,
            // later rounds nothing.
            let round = params.get("$deltatoken").cloned();
            let select = params.get("$select");
            let items: Vec<Value> = match collection.as_str() {
                "users" => dir
                    .users
                    .iter()
                    .map(|u| {
                        let mut o = selected(u, select, USER_DEFAULT);
                        let expand = params
                            .get("$expand")
                            .is_some_and(|e| e.starts_with("manager"));
                        if let (true, Some(m)) =
                            (expand, u.get("manager").and_then(|m| m.get("id")))
                        {
                            o["manager"] = json!({"@odata.type": "#microsoft.graph.user", "id": m});
                        }
                        o
                    })
                    .collect(),
                "groups" => dir
                    .groups
                    .iter()
                    .map(|g| {
                        let mut o = selected(
                            g,
                            select,
                            &[
                                "id",
                                "displayName",
                                "groupTypes",
                                "mailEnabled",
                                "securityEnabled",
                            ],
                        );
                        if let Some(m) = o.as_object_mut() {
                            m.remove("members");
                        }
                        if params
                            .get("$expand")
                            .is_some_and(|e| e.starts_with("members"))
                        {
                            let members: Vec<Value> =
                                g["members"].as_array().cloned().unwrap_or_default();
                            o["members"] = json!(members.into_iter().take(20).collect::<Vec<_>>());
                        }
                        o
                    })
                    .collect(),
                c if c.ends_with("/delta") => {
                    let what = c.trim_end_matches("/delta");
                    match round.as_deref() {
                        Some(r) if r == format!("R1-{what}") => {
                            dir.delta.get(what).cloned().unwrap_or_default()
                        }
                        _ => Vec::new(),
                    }
                }
                "subscribedSkus" => dir.skus.clone(),
                "organization" => dir
                    .organization
                    .iter()
                    .map(|o| selected(o, select, &["id", "displayName"]))
                    .collect(),
                c if c.starts_with("groups/") && c.ends_with("/members") => {
                    let id = c.trim_start_matches("groups/").trim_end_matches("/members");
                    match dir.groups.iter().find(|g| g["id"] == id) {
                        Some(g) => g["members"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .iter()
                            .map(|m| {
                                selected(m, select, &["id"])
                                    .as_object()
                                    .cloned()
                                    .map(|mut o| {
                                        o.insert("@odata.type".into(), m["@odata.type"].clone());
                                        Value::Object(o)
                                    })
                                    .unwrap_or(Value::Null)
                            })
                            .collect(),
                        None => {
                            respond(
                                &mut stream,
                                404,
                                &graph_error(
                                    "Request_ResourceNotFound",
                                    "Resource does not exist.",
                                ),
                                &[],
                            );
                            continue;
                        }
                    }
                }
                _ => {
                    respond(
                        &mut stream,
                        400,
                        &graph_error("BadRequest", "Resource not found for the segment."),
                        &[],
                    );
                    continue;
                }
            };
            let end = (offset + top).min(items.len());
            let mut page = json!({
                "@odata.context": format!("{root}/v1.0/$metadata#{collection}"),
                "value": items[offset.min(items.len())..end],
            });
            if end < items.len() {
                let token = if faults.repeat_link && collection == "users" && offset > 0 {
                    // Links back to the page it is on.
                    pages
                        .iter()
                        .find(|(_, (c, _, o))| c == "users" && *o == offset)
                        .map(|(t, _)| t.clone())
                        .unwrap_or_default()
                } else {
                    let t = format!("X{:x}{}", pages.len() * 7919 + 13, "RFNwYWdlVG9rZW4");
                    pages.insert(t.clone(), (collection.clone(), params.clone(), end));
                    t
                };
                page["@odata.nextLink"] =
                    json!(format!("{root}/v1.0/{collection}?$skiptoken={token}"));
            }
            if end >= items.len() && collection.ends_with("/delta") {
                let next = match round.as_deref() {
                    Some("latest") => "R1",
                    _ => "R2",
                };
                let what = collection.trim_end_matches("/delta");
                page["@odata.deltaLink"] = json!(format!(
                    "{root}/v1.0/{collection}?$deltatoken={next}-{what}"
                ));
            }
            respond(&mut stream, 200, &page, &[]);
        }
    });
    Server { url: base, log }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// A generated tenant written as files, with every group's `members` as Graph would list them
/// (the members recompute finds, so the snapshot is consistent), and the same data for the
/// fake Graph.
fn tenant(name: &str) -> (common::TempDir, Directory) {
    let dir = common::temp_dir("pull", name);
    let files = dir.join("files");
    dynrule::synth::write_snapshot(150, 11, &files).expect("snapshot");
    let t = dynrule::tenant::Tenant::load(&files, &dynrule::tenant::TenantOptions::default())
        .expect("load");
    let now: jiff::Timestamp = NOW.parse().unwrap();
    let r = dynrule::recompute::run(
        &t,
        &dynrule::recompute::Overlay::default(),
        &dynrule::recompute::RecomputeOptions { now },
    );
    let mut groups = read_json(&files.join("groups.json"))["value"]
        .as_array()
        .cloned()
        .unwrap();
    for (g, m) in groups.iter_mut().zip(&r.memberships.groups) {
        if g.get("members").is_none() {
            let members: Vec<Value> = m
                .members
                .ones_iter()
                .map(|row| json!({"@odata.type": "#microsoft.graph.user", "id": t.users.id(row)}))
                .collect();
            g["members"] = json!(members);
        }
    }
    std::fs::write(
        files.join("groups.json"),
        json!({"value": groups}).to_string(),
    )
    .unwrap();
    let d = Directory {
        users: read_jsonl(&files.join("users.jsonl")),
        groups,
        skus: read_json(&files.join("subscribedSkus.json"))["value"]
            .as_array()
            .cloned()
            .unwrap(),
        organization: read_json(&files.join("organization.json"))["value"]
            .as_array()
            .cloned()
            .unwrap(),
        delta: HashMap::new(),
    };
    (dir, d)
}

/// Runs `dynrule ARGS` against `server` (its Graph and sign-in roots, a 1 ms backoff) with only
/// the credentials in `env`: none of the shell's.
fn graph_command(server: &Server, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dynrule"));
    c.args(args)
        .args([
            "--graph-url",
            &server.url,
            "--login-url",
            &server.url,
            "--backoff-ms",
            "1",
        ])
        .env("NO_COLOR", "1");
    for k in [
        "DYNRULE_GRAPH_TOKEN",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_CLIENT_CERTIFICATE_PATH",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run dynrule")
}

fn pull(server: &Server, out: &Path, env: &[(&str, &str)], extra: &[&str]) -> Output {
    graph_command(
        server,
        &[&["pull", "--out", out.to_str().unwrap()], extra].concat(),
        env,
    )
}

const CLIENT_CREDENTIALS: &[(&str, &str)] = &[
    ("AZURE_TENANT_ID", TENANT),
    ("AZURE_CLIENT_ID", "app-1"),
    ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
];

/// `recompute --out` of a snapshot: its exit code and output files, with timings left out and
/// the snapshot's folder named `<tenant>`.
fn recompute(tenant: &Path, out: &Path) -> (Option<i32>, Vec<(String, String)>) {
    let o = common::dynrule(&[
        "recompute",
        "--tenant",
        tenant.to_str().unwrap(),
        "--now",
        NOW,
        "--out",
        out.to_str().unwrap(),
    ]);
    let code = o.status.code();
    assert!(
        matches!(code, Some(0 | 4)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut files: Vec<(String, String)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let mut text = std::fs::read_to_string(&p).unwrap();
            if name == "summary.json" {
                let mut v: Value = serde_json::from_str(&text).unwrap();
                v.as_object_mut().unwrap().remove("timings");
                text = serde_json::to_string_pretty(&v)
                    .unwrap()
                    .replace(tenant.to_str().unwrap(), "<tenant>");
            }
            (name, text)
        })
        .collect();
    files.sort();
    (code, files)
}

fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        s.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap_or_default());
    }
    s
}

#[test]
fn a_pulled_snapshot_recomputes_as_the_files_do() {
    let (dir, data) = tenant("same");
    let users = data.users.len();
    let server = serve(
        data,
        Faults {
            throttle_every: 5,
            unavailable_every: 17,
            repeat_link: false,
        },
    );
    let pulled = dir.join("pulled");
    let o = pull(&server, &pulled, CLIENT_CREDENTIALS, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("pulled {users} users")), "{err}");
    // Throttled and faulted requests were retried; pages were followed.
    let manifest = read_json(&pulled.join("manifest.json"));
    assert_eq!(manifest["complete"], true);
    assert!(manifest["retries"].as_u64().unwrap() > 5, "{manifest}");
    assert!(
        manifest["pages"].as_u64().unwrap() > (users / PAGE) as u64,
        "{manifest}"
    );
    assert_eq!(manifest["counts"]["users"], users);
    // $select: the base, plus what the rules read (extensionAttribute1 for the licence tags).
    let select: Vec<&str> = manifest["select"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for k in [
        "licenseAssignmentStates",
        "assignedLicenses",
        "usageLocation",
        "onPremisesExtensionAttributes",
        "department",
    ] {
        assert!(select.contains(&k), "{k} not in {select:?}");
    }
    // Members came from /groups/{id}/members, not the 20-member $expand.
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l.contains("/members?")),
        "no member listing"
    );
    assert!(
        !log.iter().any(|l| l.contains("expand=members")),
        "used $expand=members"
    );
    assert_eq!(
        recompute(&pulled, &dir.join("r-pulled")),
        recompute(&dir.join("files"), &dir.join("r-files")),
        "the pulled snapshot recomputes differently"
    );
    // The token and the secret appear nowhere.
    let out = format!(
        "{}{}{}",
        String::from_utf8_lossy(&o.stdout),
        err,
        all_text(&pulled)
    );
    assert!(
        !out.contains(TOKEN) && !out.contains(CLIENT_SECRET),
        "a secret was written"
    );
}

#[test]
fn refusals_are_errors_and_the_previous_snapshot_stays() {
    let (dir, data) = tenant("refused");
    let server = serve(data, Faults::default());
    let out = dir.join("snap");
    let first = pull(&server, &out, &[("DYNRULE_GRAPH_TOKEN", TOKEN)], &[]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let before = all_text(&out);
    // A wrong secret: the sign-in service's own words, exit 2, nothing replaced.
    let wrong = [
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", "app-1"),
        ("AZURE_CLIENT_SECRET", "nope"),
    ];
    let o = pull(&server, &out, &wrong, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("AADSTS7000215"), "{err}");
    // A token Graph refuses: 401 with what to do.
    let o = pull(
        &server,
        &out,
        &[("DYNRULE_GRAPH_TOKEN", "expired-token-value")],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("HTTP 401") && err.contains("InvalidAuthenticationToken"),
        "{err}"
    );
    assert!(
        !err.contains("expired-token-value"),
        "the token was printed: {err}"
    );
    assert_eq!(all_text(&out), before, "a failed pull changed the snapshot");
    // No credentials and no terminal: say how to give them.
    let o = pull(&server, &out, &[], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("DYNRULE_GRAPH_TOKEN") && err.contains("AZURE_CLIENT_SECRET"),
        "{err}"
    );
}

#[test]
fn a_repeated_next_link_stops_the_pull() {
    let (dir, data) = tenant("loop");
    let server = serve(
        data,
        Faults {
            repeat_link: true,
            ..Faults::default()
        },
    );
    let o = pull(
        &server,
        &dir.join("snap"),
        &[("DYNRULE_GRAPH_TOKEN", TOKEN)],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("@odata.nextLink repeats a page"), "{err}");
    assert!(
        !dir.join("snap").join("users.jsonl").exists(),
        "a partial users file was left"
    );
}

#[test]
fn the_fake_graph_honours_select_and_the_member_cap() {
    let (_, mut data) = tenant("fidelity");
    let big: Vec<Value> = (0..30)
        .map(|i| json!({"@odata.type": "#microsoft.graph.user", "id": format!("u{i}")}))
        .collect();
    data.groups[0]["members"] = json!(big);
    let server = serve(data, Faults::default());
    let client = dynrule::graph::Client::new(
        dynrule::graph::Token::new(TOKEN),
        dynrule::graph::ClientOptions {
            graph_url: server.url.clone(),
            ..Default::default()
        },
    );
    let page = client.get(&client.url("/users?$top=3")).unwrap();
    let keys: Vec<&String> = page["value"][0].as_object().unwrap().keys().collect();
    assert!(
        keys.iter().all(|k| USER_DEFAULT.contains(&k.as_str())),
        "{keys:?}"
    );
    let page = client
        .get(&client.url("/users?$select=id,department&$top=3"))
        .unwrap();
    assert_eq!(page["value"][0].as_object().unwrap().len(), 2);
    let page = client.get(&client.url("/groups?$expand=members")).unwrap();
    assert_eq!(page["value"][0]["members"].as_array().unwrap().len(), 20);
}

/// One delta round: a user's department changes, one is deleted (and leaves every group), one is
/// added (and joins a group), and a group's rule changes. `--delta` must give the snapshot that
/// the same changes give written as files.
#[test]
fn a_delta_refresh_recomputes_as_the_changed_files_do() {
    let (dir, mut data) = tenant("delta");
    let id = |u: &Value| u["id"].as_str().unwrap().to_string();
    let (moved, gone) = (id(&data.users[3]), id(&data.users[5]));
    let mut added = data.users[7].clone();
    added["id"] = json!("0badc0de-0000-4000-8000-000000000001");
    added["userPrincipalName"] = json!("new.hire@contoso.com");
    let licensed = data
        .groups
        .iter()
        .position(|g| g["members"].as_array().is_some_and(|m| m.len() > 2))
        .unwrap();
    let sales = data
        .groups
        .iter()
        .position(|g| g["displayName"] == "Department Sales")
        .unwrap();
    let rule = r#"(user.department -in ["Sales", "Legal"]) -and (user.accountEnabled -eq true)"#;
    let mut user_changes = vec![
        json!({"id": moved, "department": "Legal"}),
        json!({"id": gone, "@removed": {"reason": "deleted"}}),
        added.clone(),
    ];
    user_changes.rotate_left(1);
    let mut group_changes: Vec<Value> = data
        .groups
        .iter()
        .filter(|g| g["members"].as_array().unwrap().iter().any(|m| m["id"] == gone.as_str()))
        .map(|g| json!({"id": g["id"], "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": gone, "@removed": {"reason": "deleted"}}]}))
        .collect();
    group_changes.push(json!({"id": data.groups[licensed]["id"], "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": added["id"]}]}));
    group_changes.push(json!({"id": data.groups[sales]["id"], "membershipRule": rule}));
    data.delta.insert("users".into(), user_changes);
    data.delta.insert("groups".into(), group_changes);
    // The same changes, written as files.
    let files = dir.join("files");
    let mut users = data.users.clone();
    users.retain(|u| u["id"] != gone.as_str());
    for u in &mut users {
        if u["id"] == moved.as_str() {
            u["department"] = json!("Legal");
        }
    }
    users.push(added.clone());
    let lines: Vec<String> = users.iter().map(Value::to_string).collect();
    std::fs::write(files.join("users.jsonl"), lines.join("\n") + "\n").unwrap();
    let mut groups = data.groups.clone();
    for g in &mut groups {
        g["members"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["id"] != gone.as_str());
    }
    groups[licensed]["members"]
        .as_array_mut()
        .unwrap()
        .push(json!({"@odata.type": "#microsoft.graph.user", "id": added["id"]}));
    groups[sales]["membershipRule"] = json!(rule);
    std::fs::write(
        files.join("groups.json"),
        json!({"value": groups}).to_string(),
    )
    .unwrap();

    let server = serve(
        data,
        Faults {
            throttle_every: 7,
            ..Faults::default()
        },
    );
    let snap = dir.join("snap");
    let token = [("DYNRULE_GRAPH_TOKEN", TOKEN)];
    let o = pull(&server, &snap, &token, &["--delta"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--delta without a snapshot must ask for a full pull"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("run a full `dynrule pull`"));
    let o = pull(&server, &snap, &token, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let links = read_json(&snap.join("manifest.json"))["deltaLinks"].clone();
    assert!(
        links["users"]
            .as_str()
            .is_some_and(|l| l.contains("R1-users")),
        "{links}"
    );
    let o = pull(&server, &snap, &token, &["--delta"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("users: 2 changed, 1 removed"), "{err}");
    let manifest = read_json(&snap.join("manifest.json"));
    assert!(
        manifest["deltaLinks"]["groups"]
            .as_str()
            .is_some_and(|l| l.contains("R2-groups")),
        "{manifest}"
    );
    assert_eq!(manifest["counts"]["users"], users.len());
    assert_eq!(
        recompute(&snap, &dir.join("r-snap")),
        recompute(&files, &dir.join("r-files")),
        "the refreshed snapshot recomputes differently"
    );
    // The next round has nothing new.
    let o = pull(&server, &snap, &token, &["--delta"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("users: 0 changed, 0 removed"), "{err}");
}

/// A delta round whose rule change reads a property the snapshot's users were not pulled with
/// cannot be applied: the refresh asks for a full pull and leaves the snapshot as it was.
#[test]
fn a_delta_round_that_needs_new_properties_asks_for_a_full_pull() {
    let (dir, mut data) = tenant("delta-select");
    let g = data.groups[0]["id"].clone();
    data.delta.insert(
        "groups".into(),
        vec![json!({"id": g, "membershipRule": "user.jobTitle -eq \"CEO\""})],
    );
    let server = serve(data, Faults::default());
    let snap = dir.join("snap");
    let token = [("DYNRULE_GRAPH_TOKEN", TOKEN)];
    let o = pull(&server, &snap, &token, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let before = all_text(&snap);
    let o = pull(&server, &snap, &token, &["--delta"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("jobTitle") && err.contains("run a full `dynrule pull`"),
        "{err}"
    );
    assert_eq!(all_text(&snap), before);
}

/// Device code and workload identity federation, through the library: the person is shown the
/// code, the pending answer is polled past, and the federated file is sent as the assertion.
#[test]
fn device_code_and_federated_sign_in() {
    use dynrule::graph::auth::{self, AuthError, Credential};
    let server = serve(Directory::default(), Faults::default());
    let agent = dynrule::graph::client::agent();
    let shown = Mutex::new(Vec::new());
    let show = |m: &str| shown.lock().unwrap().push(m.to_string());
    let device = Credential::DeviceCode {
        tenant: TENANT.into(),
        client_id: "app-1".into(),
    };
    let token = auth::token(&device, &agent, &server.url, &server.url, show).expect("device code");
    assert!(
        shown
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("ABCD-1234") && m.contains("devicelogin"))
    );
    let client = dynrule::graph::Client::new(
        token,
        dynrule::graph::ClientOptions {
            graph_url: server.url.clone(),
            ..Default::default()
        },
    );
    assert!(
        client.get(&client.url("/organization")).is_ok(),
        "the device-code token is refused"
    );
    let dir = common::temp_dir("pull", "federated");
    let file = dir.join("token");
    std::fs::write(&file, format!("{FEDERATED}\n")).unwrap();
    let federated = Credential::Federated {
        tenant: TENANT.into(),
        client_id: "app-1".into(),
        token_file: file.clone(),
    };
    assert!(auth::token(&federated, &agent, &server.url, &server.url, |_| ()).is_ok());
    std::fs::write(&file, "another-assertion").unwrap();
    match auth::token(&federated, &agent, &server.url, &server.url, |_| ()) {
        Err(AuthError::SignIn { message, .. }) => {
            assert!(message.contains("AADSTS700213"), "{message}")
        }
        other => panic!("a wrong assertion signed in: {other:?}"),
    }
}

/// The environment's credentials, in the documented order.
#[test]
fn credentials_come_from_the_environment_in_order() {
    use dynrule::graph::auth::{Credential, from_env};
    let env = |pairs: &[(&str, &str)]| {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    };
    let all = [
        ("DYNRULE_GRAPH_TOKEN", "tok-visible-42"),
        ("AZURE_TENANT_ID", "x"),
        ("AZURE_CLIENT_ID", "y"),
        ("AZURE_CLIENT_SECRET", "z"),
    ];
    assert!(matches!(
        from_env(env(&all), false),
        Ok(Credential::Token(_))
    ));
    assert!(matches!(
        from_env(env(&all[1..]), false),
        Ok(Credential::ClientSecret { .. })
    ));
    let fed = [
        ("AZURE_TENANT_ID", "x"),
        ("AZURE_CLIENT_ID", "y"),
        ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
    ];
    assert!(matches!(
        from_env(env(&fed), false),
        Ok(Credential::Federated { .. })
    ));
    let err = from_env(env(&[("AZURE_CLIENT_SECRET", "z")]), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("AZURE_TENANT_ID and AZURE_CLIENT_ID"), "{err}");
    let err = from_env(
        env(&[
            ("AZURE_TENANT_ID", "x"),
            ("AZURE_CLIENT_ID", "y"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pem"),
        ]),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not supported yet"), "{err}");
    assert!(matches!(
        from_env(env(&[("DYNRULE_GRAPH_TOKEN", "  ")]), true),
        Ok(Credential::DeviceCode { .. })
    ));
    assert!(from_env(env(&[]), false).is_err());
    // The token is never in a Debug print.
    let printed = format!("{:?}", from_env(env(&all), false));
    assert!(!printed.contains("tok-visible-42"), "{printed}");
}

/// `fuzz probe` records the service's answer beside dynrule's for each rule, resumes where it
/// stopped, and writes no secret.
#[test]
fn probe_records_the_service_answers_and_resumes() {
    let (dir, data) = tenant("probe");
    let member = data.users[0]["id"].as_str().unwrap().to_string();
    let department = data.users[0]["department"]
        .as_str()
        .unwrap_or("Sales")
        .to_string();
    let server = serve(
        data,
        Faults {
            throttle_every: 3,
            ..Faults::default()
        },
    );
    let rules = dir.join("rules.txt");
    let first = format!(
        "user.department -eq \"Sales\"\nuser.city -notIn [\"Oslo\"]\nuser.departmentt -eq \"x\"\nuser.department -eq \"{department}\"\n"
    );
    std::fs::write(&rules, &first).unwrap();
    let out = dir.join("probe.jsonl");
    let files = dir.join("files");
    let probe = || {
        let args = [
            "fuzz",
            "probe",
            "--member",
            &member,
            "--rules",
            rules.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--tenant",
            files.to_str().unwrap(),
            "--now",
            NOW,
            "--rate",
            "1000",
        ];
        graph_command(&server, &args, &[("DYNRULE_GRAPH_TOKEN", TOKEN)])
    };
    let o = probe();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines = read_jsonl(&out);
    assert_eq!(lines.len(), 4);
    let by = |r: &str| {
        lines
            .iter()
            .find(|l| l["rule"].as_str().unwrap().starts_with(r))
            .unwrap()
            .clone()
    };
    let sales = by("user.department -eq \"Sales\"");
    assert_eq!(
        (
            sales["expect"].as_str(),
            sales["entra"]["member"].as_bool(),
            sales["agree"].as_bool()
        ),
        (Some("valid"), Some(true), Some(true))
    );
    let not_in = by("user.city -notIn");
    assert_eq!(
        (not_in["expect"].as_str(), not_in["agree"].as_bool()),
        (Some("invalid"), Some(false))
    );
    assert!(
        not_in["entra"]["error"]
            .as_str()
            .unwrap()
            .contains("Query compilation error")
    );
    let unknown = by("user.departmentt");
    assert_eq!(
        (
            unknown["expect"].as_str(),
            unknown["dynrule"]["valid"].as_bool(),
            unknown["agree"].as_bool()
        ),
        (Some("invalid"), Some(false), Some(true))
    );
    // dynrule's own answer for the member, from the snapshot: its department holds.
    let own = lines
        .iter()
        .find(|l| l["rule"].as_str() == Some(&format!("user.department -eq \"{department}\"")))
        .unwrap();
    assert_eq!(own["dynrule"]["member"].as_bool(), Some(true), "{own}");
    // Resume: one more rule, one more question.
    std::fs::write(&rules, format!("{first}user.accountEnabled -eq true\n")).unwrap();
    let o = probe();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(read_jsonl(&out).len(), 5);
    assert!(
        err.contains("1 rule(s) asked (4 already recorded)"),
        "{err}"
    );
    assert!(!std::fs::read_to_string(&out).unwrap().contains(TOKEN));
    assert!(!err.contains(TOKEN));
    // The built-in set covers the decisions.
    let builtin = dynrule::graph::probe::builtin();
    assert!(builtin.len() > 60, "{}", builtin.len());
    assert!(builtin.iter().any(|r| r.decision.as_deref() == Some("D17")));
    assert!(builtin.iter().any(|r| r.decision.as_deref() == Some("D1")));
    for d in ["D8", "D10", "D13", "D14", "D16", "D18", "D27", "D28", "D29"] {
        assert!(
            builtin.iter().any(|r| r.decision.as_deref() == Some(d)),
            "no probe for {d}"
        );
    }
    // D14's probes are 3,072 and 3,073 characters: one inside the limit, one past it.
    let long: Vec<usize> = builtin
        .iter()
        .filter(|r| r.decision.as_deref() == Some("D14"))
        .map(|r| r.rule.chars().count())
        .collect();
    assert_eq!(long, [3072, 3073]);
}
