//! `dynrule pull` against a loopback server that behaves as Microsoft Graph does: it honours
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
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "tok-Graph-7f3a9c21-secret";
const CLIENT_SECRET: &str = "s3cret-Client-Value";
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

fn respond(req: tiny_http::Request, status: u16, body: &Value, headers: &[(&str, &str)]) {
    let mut r = tiny_http::Response::from_string(body.to_string()).with_status_code(status);
    r.add_header(
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap(),
    );
    for (k, v) in headers {
        r.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
    }
    let _ = req.respond(r);
}

fn graph_error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "innerError": {"request-id": "00000000-0000-0000-0000-000000000000"}}})
}

/// Starts the fake Graph on a loopback port.
fn serve(dir: Directory, faults: Faults) -> Server {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind loopback");
    let port = server.server_addr().to_ip().expect("ip").port();
    let base = format!("http://127.0.0.1:{port}");
    let log = Arc::new(Mutex::new(Vec::new()));
    let state_log = Arc::clone(&log);
    let root = base.clone();
    std::thread::spawn(move || {
        // Opaque page tokens: token → (collection, query, offset).
        let mut pages: HashMap<String, (String, HashMap<String, String>, usize)> = HashMap::new();
        let mut graph_requests = 0usize;
        for mut req in server.incoming_requests() {
            let url = req.url().to_string();
            state_log
                .lock()
                .unwrap()
                .push(format!("{} {url}", req.method()));
            let (path, mut params) = query(&url);
            if req.method() == &tiny_http::Method::Post && path.ends_with("/oauth2/v2.0/token") {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let (_, form) = query(&format!("?{body}"));
                let ok = path == format!("/{TENANT}/oauth2/v2.0/token")
                    && form.get("grant_type").map(String::as_str) == Some("client_credentials")
                    && form.get("client_id").map(String::as_str) == Some("app-1")
                    && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
                    && form.get("scope").is_some_and(|s| s.ends_with("/.default"));
                if ok {
                    respond(
                        req,
                        200,
                        &json!({"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN}),
                        &[],
                    );
                } else {
                    respond(
                        req,
                        401,
                        &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
                        &[],
                    );
                }
                continue;
            }
            let authorized = req.headers().iter().any(|h| {
                h.field.equiv("Authorization") && h.value.as_str() == format!("Bearer {TOKEN}")
            });
            if !authorized {
                respond(
                    req,
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
                    req,
                    429,
                    &graph_error("TooManyRequests", "Too many requests."),
                    &[("Retry-After", "0")],
                );
                continue;
            }
            if faults.unavailable_every > 0 && graph_requests % faults.unavailable_every == 0 {
                respond(
                    req,
                    503,
                    &graph_error("serviceNotAvailable", "Service unavailable."),
                    &[],
                );
                continue;
            }
            // A next page: the token stands for the listing and where it was.
            let mut collection = path.trim_start_matches("/v1.0/").to_string();
            let mut offset = 0;
            if let Some(t) = params.get("$skiptoken").cloned() {
                let Some((c, q, o)) = pages.get(&t).cloned() else {
                    respond(
                        req,
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
                                req,
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
                        req,
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
            respond(req, 200, &page, &[]);
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
fn tenant(name: &str) -> (PathBuf, Directory) {
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
    };
    (dir, d)
}

fn pull(server: &Server, out: &Path, env: &[(&str, &str)], extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dynrule"));
    c.args([
        "pull",
        "--out",
        out.to_str().unwrap(),
        "--graph-url",
        &server.url,
        "--login-url",
        &server.url,
        "--backoff-ms",
        "1",
    ])
    .args(extra)
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
    c.output().expect("run dynrule pull")
}

const CLIENT_CREDENTIALS: &[(&str, &str)] = &[
    ("AZURE_TENANT_ID", TENANT),
    ("AZURE_CLIENT_ID", "app-1"),
    ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
];

/// `recompute --out` of a snapshot: its output files, timings and the folder's name left out.
fn recompute(tenant: &Path, out: &Path) -> Vec<(String, String)> {
    let o = common::dynrule(&[
        "recompute",
        "--tenant",
        tenant.to_str().unwrap(),
        "--now",
        NOW,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
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
                v.as_object_mut().unwrap().remove("tenant");
                text = serde_json::to_string_pretty(&v).unwrap();
            }
            (name, text)
        })
        .collect();
    files.sort();
    files
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
