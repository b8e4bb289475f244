//! `dynrule pull`: a tenant snapshot straight from Microsoft Graph, with exactly what the
//! tenant's rules and the licensing step read (`grammar/DECISIONS.md` D73; failures D74; delta
//! refreshes D75).
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
use crate::program::CompileOptions;
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
    /// Refresh the snapshot in `out` with the delta links of its manifest instead of pulling
    /// everything ([`pull_delta`]).
    pub delta: bool,
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
    /// The `@odata.deltaLink` per listing (`users`, `groups`, `devices`) from which `--delta`
    /// refreshes the snapshot; empty when the service gave none.
    pub delta_links: BTreeMap<String, String>,
    /// For a `--delta` refresh: objects changed (added or updated) and removed per listing.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, Changes>,
}

/// What a delta round changed in one listing.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Changes {
    /// Objects added or updated.
    pub changed: u64,
    /// Objects removed (deleted, or out of the listing).
    pub removed: u64,
    /// Memberships added (groups only).
    #[serde(default)]
    pub members_added: u64,
    /// Memberships removed (groups only).
    #[serde(default)]
    pub members_removed: u64,
}

/// Why a pull stopped. The previous snapshot (if any) is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// A Graph request failed (after retries).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// `--delta` cannot refresh this snapshot (no manifest or delta links, or the rules now read
    /// properties the snapshot's users were not pulled with): a full pull is needed.
    #[error("{0}: run a full `dynrule pull` (without --delta)")]
    NeedsFullPull(String),
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

/// Pulls a snapshot into `opts.out` (see the module docs), or with `opts.delta` refreshes the
/// one there ([`pull_delta`]).
///
/// Errors: a Graph request that fails after retries, a file that cannot be written, or a delta
/// refresh that needs a full pull ([`PullError`]); nothing of the previous snapshot is replaced
/// then.
pub fn pull(
    client: &Client,
    opts: &PullOptions,
    progress: Progress<'_>,
) -> Result<Manifest, PullError> {
    if opts.delta {
        return pull_delta(client, opts, progress);
    }
    let mut folder = open(&opts.out)?;
    let mut m = Manifest::start(client);
    // Delta links first: changes made while the listings run are replayed by the next --delta.
    let group_delta = format!("/groups/delta?$select={},members", GROUP_SELECT.join(","));
    latest(client, &group_delta, "groups", &mut m);
    let mut groups = list(
        client,
        &format!("/groups?$select={}&$top=999", GROUP_SELECT.join(",")),
        "groups",
        progress,
    )?;
    let reads = Reads::of_rules(&groups);
    let users = reads.user_select(&opts.properties);
    let expand = reads.users.columns.contains(&ColumnKey::Manager);
    let mut query = format!("$select={}", users.join(","));
    if expand {
        query.push_str("&$expand=manager($select=id)");
        m.expand
            .insert("users".into(), "manager($select=id)".into());
    }
    latest(client, &format!("/users/delta?{query}"), "users", &mut m);
    let n = stream(
        client,
        &mut folder,
        "users.jsonl",
        &client.url(&format!("/users?{query}&$top=999")),
        "users",
        progress,
    )?;
    m.counts.insert("users".into(), n);
    m.select.insert("users".into(), users);
    let members = members(client, &mut groups, opts.concurrency.max(1), progress)?;
    m.counts.insert("members".into(), members);
    if opts.devices || reads.device_rules > 0 {
        let devices = reads.device_select();
        let query = format!("$select={}", devices.join(","));
        latest(
            client,
            &format!("/devices/delta?{query}"),
            "devices",
            &mut m,
        );
        let n = stream(
            client,
            &mut folder,
            "devices.jsonl",
            &client.url(&format!("/devices?{query}&$top=999")),
            "devices",
            progress,
        )?;
        m.counts.insert("devices".into(), n);
        m.select.insert("devices".into(), devices);
    }
    m.rules_not_compiled = reads.not_compiled;
    finish(client, folder, m, &groups, progress)
}

/// Refreshes the snapshot in `opts.out` from the delta links of its `manifest.json`
/// (`users/delta`, `groups/delta` with `members@delta`, `devices/delta`; learn.microsoft.com
/// "Use delta query to track changes"): changed objects are updated with the properties the
/// round gives, added ones appended, removed ones (`@removed`) dropped, and group members
/// added and removed; `subscribedSkus` and `organization` are read again whole. The new delta
/// links go in the new manifest.
///
/// Errors: as [`pull`]; [`PullError::NeedsFullPull`] without a manifest or delta links, or when
/// the groups' rules now read a user property the snapshot was not pulled with.
pub fn pull_delta(
    client: &Client,
    opts: &PullOptions,
    progress: Progress<'_>,
) -> Result<Manifest, PullError> {
    let old = previous_manifest(&opts.out)?;
    let link = |k: &str| {
        old.delta_links.get(k).cloned().ok_or_else(|| {
            PullError::NeedsFullPull(format!(
                "{}: the manifest has no delta link for {k}",
                opts.out.display()
            ))
        })
    };
    link("users")?;
    let groups_link = link("groups")?;
    let mut m = Manifest::start(client);
    m.select = old.select.clone();
    m.expand = old.expand.clone();
    let mut groups = read_groups(&opts.out)?;
    let (next, changes) = apply_delta(client, &groups_link, &mut groups, "groups", progress)?;
    m.delta_links.insert("groups".into(), next);
    m.changes.insert("groups".into(), changes);
    let reads = Reads::of_rules(&groups);
    let pulled = old.select.get("users").cloned().unwrap_or_default();
    let missing: Vec<String> = reads
        .user_select(&[])
        .into_iter()
        .filter(|k| !pulled.iter().any(|p| p.eq_ignore_ascii_case(k)))
        .collect();
    if !missing.is_empty() {
        return Err(PullError::NeedsFullPull(format!(
            "the rules now read user properties the snapshot was not pulled with ({})",
            missing.join(", ")
        )));
    }
    let mut folder = open(&opts.out)?;
    for (what, file) in [("users", "users.jsonl"), ("devices", "devices.jsonl")] {
        let Some(link) = old.delta_links.get(what) else {
            continue;
        };
        let mut objects = read_jsonl(&opts.out.join(file))?;
        let (next, changes) = apply_delta(client, link, &mut objects, what, progress)?;
        m.delta_links.insert(what.into(), next);
        m.changes.insert(what.into(), changes);
        m.counts.insert(what.into(), objects.len() as u64);
        stage_lines(&mut folder, file, &objects)?;
    }
    if !old.delta_links.contains_key("devices") {
        if let Some(n) = old.counts.get("devices") {
            m.counts.insert("devices".into(), *n);
        }
    }
    m.counts.insert(
        "members".into(),
        groups
            .iter()
            .map(|g| {
                g.get("members")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len) as u64
            })
            .sum(),
    );
    m.rules_not_compiled = reads.not_compiled;
    finish(client, folder, m, &groups, progress)
}

/// The end of either pull: groups, `subscribedSkus` and `organization` staged, the manifest
/// last, then everything renamed into place.
fn finish(
    client: &Client,
    mut folder: crate::output::OutputDir,
    mut m: Manifest,
    groups: &[Value],
    progress: Progress<'_>,
) -> Result<Manifest, PullError> {
    m.counts.insert("groups".into(), groups.len() as u64);
    m.select.insert(
        "groups".into(),
        GROUP_SELECT.iter().map(|s| s.to_string()).collect(),
    );
    stage_json(&mut folder, "groups.json", &json!({ "value": groups }))?;
    let skus = list(client, "/subscribedSkus", "subscribedSkus", progress)?;
    m.counts.insert("subscribedSkus".into(), skus.len() as u64);
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
    let text = |k: &str| {
        org.first()
            .and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    m.tenant_id = text("id");
    m.tenant_name = text("displayName");
    let stats = &client.stats;
    m.pages = stats.pages.load(Ordering::Relaxed);
    m.requests = stats.requests.load(Ordering::Relaxed);
    m.retries = stats.retries.load(Ordering::Relaxed);
    m.complete = true;
    m.pulled_at = jiff::Timestamp::now().to_string();
    stage_json(
        &mut folder,
        "manifest.json",
        &serde_json::to_value(&m).unwrap_or(Value::Null),
    )?;
    folder.commit().map_err(|source| PullError::Io {
        path: m.graph_url.clone(),
        source,
    })?;
    Ok(m)
}

impl Manifest {
    /// An empty manifest for a pull from `client`'s service.
    fn start(client: &Client) -> Manifest {
        Manifest {
            dynrule: env!("CARGO_PKG_VERSION").to_string(),
            pulled_at: String::new(),
            graph_url: client.root().to_string(),
            tenant_id: None,
            tenant_name: None,
            select: BTreeMap::new(),
            expand: BTreeMap::new(),
            counts: BTreeMap::new(),
            pages: 0,
            requests: 0,
            retries: 0,
            complete: false,
            rules_not_compiled: Vec::new(),
            delta_links: BTreeMap::new(),
            changes: BTreeMap::new(),
        }
    }
}

/// The manifest of the snapshot a delta refresh starts from.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Previous {
    #[serde(default)]
    select: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    expand: BTreeMap<String, String>,
    #[serde(default)]
    counts: BTreeMap<String, u64>,
    #[serde(default)]
    complete: bool,
    #[serde(default)]
    delta_links: BTreeMap<String, String>,
}

fn previous_manifest(dir: &Path) -> Result<Previous, PullError> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| PullError::NeedsFullPull(format!("{}: {e}", path.display())))?;
    let p: Previous = serde_json::from_str(&text)
        .map_err(|e| PullError::NeedsFullPull(format!("{}: {e}", path.display())))?;
    if !p.complete {
        return Err(PullError::NeedsFullPull(format!(
            "{}: the snapshot is not complete",
            path.display()
        )));
    }
    Ok(p)
}

/// The snapshot's `groups.json` (as `pull` writes it).
fn read_groups(dir: &Path) -> Result<Vec<Value>, PullError> {
    let path = dir.join("groups.json");
    let text = std::fs::read_to_string(&path).map_err(|source| PullError::Io {
        path: path.display().to_string(),
        source,
    })?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut o)) => match o.remove("value") {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(PullError::NeedsFullPull(format!(
                "{}: no `value` array",
                path.display()
            ))),
        },
        _ => Err(PullError::NeedsFullPull(format!(
            "{}: not the groups.json pull writes",
            path.display()
        ))),
    }
}

/// A JSON Lines file's objects.
fn read_jsonl(path: &Path) -> Result<Vec<Value>, PullError> {
    let text = std::fs::read_to_string(path).map_err(|source| PullError::Io {
        path: path.display().to_string(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| PullError::NeedsFullPull(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Asks a delta listing for a link to "changes from now on" (`$deltatoken=latest`) and keeps it
/// in the manifest. A service that gives none leaves the listing without delta (a later
/// `--delta` then asks for a full pull).
fn latest(client: &Client, path: &str, what: &str, m: &mut Manifest) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let url = client.url(&format!("{path}{sep}$deltatoken=latest"));
    if let Ok(page) = client.get(&url) {
        if let Some(link) = page.get("@odata.deltaLink").and_then(Value::as_str) {
            m.delta_links.insert(what.to_string(), link.to_string());
        }
    }
}

/// Follows a delta link to the end of its round, applying each change to `objects` (by `id`);
/// returns the round's new delta link and what changed.
fn apply_delta(
    client: &Client,
    link: &str,
    objects: &mut Vec<Value>,
    what: &str,
    progress: Progress<'_>,
) -> Result<(String, Changes), PullError> {
    let mut index: std::collections::HashMap<String, usize> = objects
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            o.get("id")
                .and_then(Value::as_str)
                .map(|id| (id.to_string(), i))
        })
        .collect();
    let mut removed: BTreeSet<usize> = BTreeSet::new();
    let mut changes = Changes::default();
    let next = client.pages(link, |items: Vec<Value>| -> Result<(), PullError> {
        for change in items {
            let Some(id) = change.get("id").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            if change.get("@removed").is_some() {
                if let Some(&i) = index.get(&id) {
                    removed.insert(i);
                    changes.removed += 1;
                }
                continue;
            }
            let at = match index.get(&id) {
                Some(&i) => {
                    removed.remove(&i);
                    i
                }
                None => {
                    objects.push(json!({ "id": id }));
                    index.insert(id.clone(), objects.len() - 1);
                    objects.len() - 1
                }
            };
            changes.changed += 1;
            if let Some(Value::Object(o)) = objects.get_mut(at) {
                patch(o, change, &mut changes);
            }
        }
        progress(what, changes.changed + changes.removed);
        Ok(())
    })?;
    let Some(next) = next else {
        return Err(PullError::NeedsFullPull(format!(
            "the {what} delta round ended without an @odata.deltaLink"
        )));
    };
    let mut i = 0;
    objects.retain(|_| {
        let keep = !removed.contains(&i);
        i += 1;
        keep
    });
    Ok((next, changes))
}

/// Writes a delta change's properties over the object's; `members@delta` adds and removes
/// members (`@removed`).
fn patch(o: &mut serde_json::Map<String, Value>, change: Value, changes: &mut Changes) {
    let Value::Object(change) = change else {
        return;
    };
    for (k, v) in change {
        if k == "members@delta" {
            let members = o.entry("members").or_insert_with(|| json!([]));
            let Value::Array(list) = members else {
                continue;
            };
            for entry in v.as_array().into_iter().flatten() {
                let id = entry.get("id");
                if entry.get("@removed").is_some() {
                    let before = list.len();
                    list.retain(|x| x.get("id") != id);
                    changes.members_removed += (before - list.len()) as u64;
                } else if !list.iter().any(|x| x.get("id") == id) {
                    list.push(member(entry.clone()));
                    changes.members_added += 1;
                }
            }
        } else if !k.starts_with("@odata.") && !k.starts_with('@') {
            o.insert(k, v);
        }
    }
}

/// Creates the folder and opens it for writing.
fn open(dir: &Path) -> Result<crate::output::OutputDir, PullError> {
    crate::output::OutputDir::open(dir, None).map_err(|source| PullError::Io {
        path: dir.display().to_string(),
        source,
    })
}

/// Stages a JSON Lines file of `objects`.
fn stage_lines(
    folder: &mut crate::output::OutputDir,
    name: &str,
    objects: &[Value],
) -> Result<(), PullError> {
    folder
        .stage(name, |f| {
            objects.iter().try_for_each(|o| write_line(&mut *f, o))
        })
        .map_err(|source| PullError::Io {
            path: name.to_string(),
            source,
        })
}

/// One object as a JSON Lines line.
fn write_line(out: &mut dyn std::io::Write, v: &Value) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")
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
            match crate::check(rule).program(&opts) {
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
                write_line(&mut *out, &v).map_err(|source| PullError::Io {
                    path: name.to_string(),
                    source,
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
