//! `dynrule pull`: a tenant snapshot straight from Microsoft Graph, with exactly what the
//! tenant's rules and the licensing step read.
//!
//! Order (each step's `$select` is in the manifest):
//! 1. groups (`id, displayName, groupTypes, securityEnabled, mailEnabled, membershipRule,
//!    membershipRuleProcessingState, assignedLicenses`), and their rules compiled;
//! 2. users, `$select` = what licensing reads ([`USER_BASE`]) ∪ what the rules read (directory
//!    extensions by name) ∪ `--property`, `$expand=manager($select=id)` when a rule reads the
//!    manager, `$top=999`, written as JSON Lines while the pages arrive;
//! 3. every group's members, `/groups/{id}/members?$select=id` paged (never the 20-member
//!    `$expand`), a few groups at a time;
//! 4. `subscribedSkus`, `organization` (`countryLetterCode`), and devices when a rule reads
//!    them or `--devices` asks;
//! 5. `manifest.json`: when, from where, the selects, counts, and that the snapshot is complete.
//!
//! Files are written as [`crate::output::OutputDir`] writes them: nothing replaces the previous
//! snapshot until every file is complete, so an interrupted or failed pull leaves it whole.

use super::client::{Client, GraphError};
use crate::program::{CompileOptions, Program};
use crate::schema::{GraphKey, ObjectType};
use crate::table::{ColumnKey, Projection};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Group properties pulled.
pub const GROUP_SELECT: &[&str] = &[
    "id",
    "displayName",
    "groupTypes",
    "securityEnabled",
    "mailEnabled",
    "membershipRule",
    "membershipRuleProcessingState",
    "assignedLicenses",
];

/// User properties pulled whatever the rules read: the ids and names reports show, and what
/// group-based licensing reads (`usageLocation`, `proxyAddresses` for duplicate addresses,
/// the licence states and plans; `licenseAssignmentStates` and `assignedLicenses` come only
/// when selected).
pub const USER_BASE: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "userType",
    "accountEnabled",
    "usageLocation",
    "proxyAddresses",
    "assignedLicenses",
    "licenseAssignmentStates",
    "assignedPlans",
];

/// Device properties pulled whatever the rules read.
pub const DEVICE_BASE: &[&str] = &["id", "deviceId", "displayName"];

/// What to pull, and where.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// The snapshot folder (created if needed).
    pub out: PathBuf,
    /// Pull devices even when no rule reads them.
    pub devices: bool,
    /// More user properties to select (`--property`).
    pub properties: Vec<String>,
    /// Member listings in flight at once.
    pub concurrency: usize,
}

/// The snapshot's `manifest.json`.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The dynrule version that pulled.
    pub dynrule: String,
    /// When the pull finished (RFC 3339).
    pub pulled_at: String,
    /// The Graph service root.
    pub graph_url: String,
    /// The tenant (`organization.id`).
    pub tenant_id: Option<String>,
    /// The tenant's name (`organization.displayName`).
    pub tenant_name: Option<String>,
    /// `$select` per object type.
    pub select: BTreeMap<String, Vec<String>>,
    /// `$expand` per object type.
    pub expand: BTreeMap<String, String>,
    /// Objects written per file: users, groups, members, subscribedSkus, devices.
    pub counts: BTreeMap<String, u64>,
    /// Pages read.
    pub pages: u64,
    /// Requests sent (retries included).
    pub requests: u64,
    /// Requests retried after throttling or faults.
    pub retries: u64,
    /// Every listing was read to its last page.
    pub complete: bool,
    /// Groups whose rule does not compile: what they read is not known, so it may be missing
    /// from the users' `$select` (add it with `--property`).
    pub rules_not_compiled: Vec<String>,
}

/// Why a pull stopped. The previous snapshot (if any) is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// A Graph request failed (after retries).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The folder or file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Progress of a pull, for a progress bar: `(what, objects so far)`.
pub type Progress<'a> = &'a (dyn Fn(&str, u64) + Sync);

/// Pulls a snapshot into `opts.out` (see the module docs).
///
/// Errors: a Graph request that fails after retries, or a file that cannot be written
/// ([`PullError`]); nothing of the previous snapshot is replaced then.
pub fn pull(
    client: &Client,
    opts: &PullOptions,
    progress: Progress<'_>,
) -> Result<Manifest, PullError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| PullError::Io {
            path: path.clone(),
            source,
        }
    };
    let mut folder = crate::output::OutputDir::open(&opts.out, None).map_err(io(&opts.out))?;
    let mut counts = BTreeMap::new();
    let mut groups = list(
        client,
        &format!("/groups?$select={}&$top=999", GROUP_SELECT.join(",")),
        "groups",
        progress,
    )?;
    let reads = Reads::of_rules(&groups);
    let users = reads.user_select(&opts.properties);
    let user_expand = reads.users.columns.contains(&ColumnKey::Manager);
    let mut url = format!("/users?$select={}&$top=999", users.join(","));
    if user_expand {
        url.push_str("&$expand=manager($select=id)");
    }
    let n = stream(
        client,
        &mut folder,
        "users.jsonl",
        &client.url(&url),
        "users",
        progress,
    )?;
    counts.insert("users".to_string(), n);
    let members = members(client, &mut groups, opts.concurrency.max(1), progress)?;
    counts.insert("groups".to_string(), groups.len() as u64);
    counts.insert("members".to_string(), members);
    stage_json(&mut folder, "groups.json", &json!({ "value": groups }))?;
    let skus = list(client, "/subscribedSkus", "subscribedSkus", progress)?;
    counts.insert("subscribedSkus".to_string(), skus.len() as u64);
    stage_json(
        &mut folder,
        "subscribedSkus.json",
        &json!({ "value": skus }),
    )?;
    let org = list(
        client,
        "/organization?$select=id,displayName,countryLetterCode",
        "organization",
        progress,
    )?;
    stage_json(&mut folder, "organization.json", &json!({ "value": org }))?;
    let mut select = BTreeMap::from([
        (
            "groups".to_string(),
            GROUP_SELECT.iter().map(|s| s.to_string()).collect(),
        ),
        ("users".to_string(), users),
    ]);
    if opts.devices || reads.device_rules > 0 {
        let devices = reads.device_select();
        let url = client.url(&format!("/devices?$select={}&$top=999", devices.join(",")));
        let n = stream(
            client,
            &mut folder,
            "devices.jsonl",
            &url,
            "devices",
            progress,
        )?;
        counts.insert("devices".to_string(), n);
        select.insert("devices".to_string(), devices);
    }
    let first_org = org.first();
    let text = |k: &str| {
        first_org
            .and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let stats = &client.stats;
    let manifest = Manifest {
        dynrule: env!("CARGO_PKG_VERSION").to_string(),
        pulled_at: jiff::Timestamp::now().to_string(),
        graph_url: client.root().to_string(),
        tenant_id: text("id"),
        tenant_name: text("displayName"),
        select,
        expand: if user_expand {
            BTreeMap::from([("users".to_string(), "manager($select=id)".to_string())])
        } else {
            BTreeMap::new()
        },
        counts,
        pages: stats.pages.load(Ordering::Relaxed),
        requests: stats.requests.load(Ordering::Relaxed),
        retries: stats.retries.load(Ordering::Relaxed),
        complete: true,
        rules_not_compiled: reads.not_compiled,
    };
    stage_json(
        &mut folder,
        "manifest.json",
        &serde_json::to_value(&manifest).unwrap_or(Value::Null),
    )?;
    folder.commit().map_err(io(&opts.out))?;
    Ok(manifest)
}

/// What the tenant's rules read, per object type.
#[derive(Default)]
struct Reads {
    users: Projection,
    devices: Projection,
    device_rules: usize,
    not_compiled: Vec<String>,
}

impl Reads {
    /// Compiles every group's `membershipRule` and collects what it reads.
    fn of_rules(groups: &[Value]) -> Reads {
        let mut out = Reads::default();
        let opts = CompileOptions {
            now: jiff::Timestamp::now(),
        };
        for g in groups {
            let Some(rule) = g.get("membershipRule").and_then(Value::as_str) else {
                continue;
            };
            if rule.trim().is_empty() {
                continue;
            }
            let checked = crate::check(rule);
            let program = checked
                .hir
                .as_ref()
                .filter(|_| checked.is_valid())
                .and_then(|h| Program::compile(h, &opts).ok());
            match program {
                Some(p) if p.object == ObjectType::Device => {
                    out.device_rules += 1;
                    p.add_reads(&mut out.devices);
                }
                Some(p) => p.add_reads(&mut out.users),
                None => {
                    let name = g.get("displayName").and_then(Value::as_str);
                    let id = g.get("id").and_then(Value::as_str);
                    out.not_compiled
                        .push(name.or(id).unwrap_or("?").to_string());
                }
            }
        }
        out
    }

    /// The users' `$select`: [`USER_BASE`], the rules' reads, `extra`; sorted after the base.
    fn user_select(&self, extra: &[String]) -> Vec<String> {
        select(ObjectType::User, USER_BASE, &self.users, extra)
    }

    /// The devices' `$select`: [`DEVICE_BASE`] and the rules' reads.
    fn device_select(&self) -> Vec<String> {
        select(ObjectType::Device, DEVICE_BASE, &self.devices, &[])
    }
}

/// `base`, then the Graph keys of the properties `reads` holds (a nested key by its parent,
/// `onPremisesExtensionAttributes`), directory extensions by name, and `extra`; each once.
fn select(object: ObjectType, base: &[&str], reads: &Projection, extra: &[String]) -> Vec<String> {
    let mut more: BTreeSet<String> = BTreeSet::new();
    for key in &reads.columns {
        let ColumnKey::Prop(name) = key else {
            continue;
        };
        match crate::schema::lookup(object, name).map(|p| p.graph) {
            Some(GraphKey::Field(k) | GraphKey::First(k) | GraphKey::Nested(k, _)) => {
                more.insert(k.to_string());
            }
            Some(GraphKey::Derived) | None => {}
        }
    }
    more.extend(reads.extensions.iter().cloned());
    more.extend(
        extra
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
    );
    let mut out: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    for k in more {
        if !out.iter().any(|b| b.eq_ignore_ascii_case(&k)) {
            out.push(k);
        }
    }
    out
}

/// Every object of a listing (`path` under the versioned root), in memory.
fn list(
    client: &Client,
    path: &str,
    what: &str,
    progress: Progress<'_>,
) -> Result<Vec<Value>, PullError> {
    let mut out = Vec::new();
    client.pages(
        &client.url(path),
        |items: Vec<Value>| -> Result<(), PullError> {
            out.extend(items);
            progress(what, out.len() as u64);
            Ok(())
        },
    )?;
    Ok(out)
}

/// A listing written to `name` as JSON Lines while its pages arrive. Returns how many objects.
fn stream(
    client: &Client,
    folder: &mut crate::output::OutputDir,
    name: &str,
    url: &str,
    what: &str,
    progress: Progress<'_>,
) -> Result<u64, PullError> {
    let mut n = 0u64;
    let mut failed: Option<PullError> = None;
    let staged = folder.stage(name, |out| {
        let res = client.pages(url, |items: Vec<Value>| -> Result<(), PullError> {
            for v in items {
                serde_json::to_writer(&mut *out, &v).map_err(|e| PullError::Io {
                    path: name.to_string(),
                    source: e.into(),
                })?;
                out.write_all(b"\n").map_err(|e| PullError::Io {
                    path: name.to_string(),
                    source: e,
                })?;
                n += 1;
            }
            progress(what, n);
            Ok(())
        });
        res.map(|_| ()).map_err(|e| {
            failed = Some(e);
            std::io::Error::other("pull failed")
        })
    });
    match (failed, staged) {
        (Some(e), _) => Err(e),
        (None, Err(source)) => Err(PullError::Io {
            path: name.to_string(),
            source,
        }),
        (None, Ok(())) => Ok(n),
    }
}

/// Every group's members (`/groups/{id}/members?$select=id`, paged), set as the group's
/// `members`, `concurrency` groups at a time. Returns how many memberships.
fn members(
    client: &Client,
    groups: &mut [Value],
    concurrency: usize,
    progress: Progress<'_>,
) -> Result<u64, PullError> {
    let ids: Vec<Option<String>> = groups
        .iter()
        .map(|g| g.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Vec<Value>)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<PullError>> = Mutex::new(None);
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..concurrency.min(ids.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(i) else { break };
                    if failure.lock().map_or(true, |f| f.is_some()) {
                        break;
                    }
                    let Some(id) = id else { continue };
                    let url = client.url(&format!("/groups/{id}/members?$select=id&$top=999"));
                    let mut got = Vec::new();
                    let res = client.pages(&url, |items: Vec<Value>| -> Result<(), PullError> {
                        got.extend(items.into_iter().map(member));
                        Ok(())
                    });
                    match res {
                        Ok(_) => {
                            if let Ok(mut r) = results.lock() {
                                r.push((i, got));
                            }
                            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                            progress("group members", d as u64);
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut total = 0u64;
    for (i, list) in results.into_inner().unwrap_or_default() {
        total += list.len() as u64;
        if let Some(Value::Object(g)) = groups.get_mut(i) {
            g.insert("members".to_string(), Value::Array(list));
        }
    }
    Ok(total)
}

/// A member as the snapshot keeps it: its `@odata.type` and `id`.
fn member(v: Value) -> Value {
    let get = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    json!({ "@odata.type": get("@odata.type"), "id": get("id") })
}

/// Stages a JSON file.
fn stage_json(
    folder: &mut crate::output::OutputDir,
    name: &str,
    v: &Value,
) -> Result<(), PullError> {
    folder
        .stage(name, |f| {
            serde_json::to_writer(f, v).map_err(std::io::Error::from)
        })
        .map_err(|source| PullError::Io {
            path: name.to_string(),
            source,
        })
}
