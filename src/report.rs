//! What `dynrule recompute` writes: a [`RecomputeReport`] (the summary, as JSON or a text
//! table), `memberships.jsonl` (one group a line) and `licenses.jsonl` (one user a line, in
//! Graph's shapes). The schemas are in the README ("Output of recompute").

use crate::catalog::Catalog;
use crate::licensing::{
    Assignments, GroupLicensing, ListIx, SkuSeats, State, StateKind, StateRecord,
};
use crate::recompute::{Memberships, Processing};
use crate::table::Table;
use crate::tenant::{Tenant, TenantIssue};
use serde::Serialize;
use serde_json::json;
use std::fmt::{self, Write as _};
use std::io::{self, Write};

/// Milliseconds per phase.
#[derive(Clone, Copy, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Loading the snapshot.
    pub load_ms: f64,
    /// Compiling the groups' rules.
    pub compile_ms: f64,
    /// Evaluating them.
    pub evaluate_ms: f64,
    /// Group-based licensing.
    pub licensing_ms: f64,
    /// Writing the output files.
    pub write_ms: f64,
}

/// One group in the summary.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    /// `id`.
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// Dynamic or static.
    pub dynamic: bool,
    /// `membershipRule`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership_rule: Option<String>,
    /// How the membership was obtained.
    pub processing: Processing,
    /// Members now (`null` when unknown: not evaluated and no members exported).
    pub members: Option<usize>,
    /// Members in the snapshot (`null` when unknown).
    pub snapshot_members: Option<usize>,
    /// Joined since the snapshot.
    pub joined: usize,
    /// Left since the snapshot.
    pub left: usize,
    /// `skuPartNumber` (or `skuId`) of each licence the group assigns.
    pub licenses: Vec<String>,
    /// Licensing result.
    pub licensing: GroupLicensing,
    /// Entra's audit wording, for groups whose licences were processed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_summary: Option<String>,
}

/// The summary of a recomputation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecomputeReport {
    /// The snapshot folder.
    pub tenant: String,
    /// Users in the export.
    pub users: usize,
    /// Devices in the export (`null` without one).
    pub devices: Option<usize>,
    /// The tenant's usage location.
    pub country_letter_code: Option<String>,
    /// Per group, in export order.
    pub groups: Vec<GroupSummary>,
    /// Per SKU.
    pub skus: Vec<SkuSeats>,
    /// Licensed users whose usage location came from the tenant.
    pub users_with_tenant_usage_location: u64,
    /// How the computed licence states compare with the exported `licenseAssignmentStates`
    /// (`null` when the export has none).
    pub snapshot_agreement: Option<Agreement>,
    /// Everything found wrong, in order.
    pub issues: Vec<TenantIssue>,
    /// Where the time went.
    pub timings: Timings,
}

/// Computed licence states against the snapshot's: a check of dynrule's model on the tenant's
/// own ground truth. States compare by (skuId, assignedByGroup, disabledPlans, holds or not,
/// error).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Agreement {
    /// Users whose export has `licenseAssignmentStates`.
    pub users_compared: usize,
    /// Users whose computed states equal the exported ones.
    pub users_matching: usize,
    /// Up to 20 users that differ: `userPrincipalName` (or id).
    pub examples: Vec<String>,
}

fn agreement(tenant: &Tenant, a: &Assignments) -> Option<Agreement> {
    compare(tenant, a).map(|(ag, _)| ag)
}

/// The agreement, and every row whose computed states differ from the exported ones.
fn compare(tenant: &Tenant, a: &Assignments) -> Option<(Agreement, Vec<usize>)> {
    let col = tenant
        .users
        .licenses(crate::table::ColumnKey::LicenseStates)?;
    let mut out = Agreement::default();
    let mut rows = Vec::new();
    let mut cache: std::collections::HashMap<(usize, ListIx), bool> =
        std::collections::HashMap::new();
    for row in 0..tenant.users.len() {
        let Some(sc) = col.list_code(row) else {
            continue;
        };
        out.users_compared += 1;
        let ac = a.list_of(row);
        let same = *cache.entry((sc, ac)).or_insert_with(|| {
            // The snapshot read as the licensing step reads it; states compared by whether
            // they hold the licence.
            let key = |r: StateRecord| {
                (
                    r.state.holds(),
                    StateRecord {
                        state: StateKind::Active,
                        ..r
                    },
                )
            };
            let mut s: Vec<_> = col
                .lists()
                .get(sc)
                .into_iter()
                .flatten()
                .map(|e| key(StateRecord::of_entry(e)))
                .collect();
            let mut c: Vec<_> = a.records(a.list(ac)).into_iter().map(key).collect();
            s.sort();
            c.sort();
            s == c
        });
        if same {
            out.users_matching += 1;
            continue;
        }
        rows.push(row);
        if out.examples.len() < 20 {
            out.examples.push(
                tenant
                    .users
                    .name(row)
                    .or_else(|| tenant.users.id(row))
                    .unwrap_or("?")
                    .to_string(),
            );
        }
    }
    (out.users_compared > 0).then_some((out, rows))
}

/// Writes `differences.jsonl`: one line per user whose computed licence states differ from the
/// exported `licenseAssignmentStates`, `{"id", "userPrincipalName", "exported": [states],
/// "computed": [states]}` (Graph's shape; `lastUpdatedDateTime` is not kept). Nothing when the
/// export has no states. Returns the number of lines.
///
/// Errors: the writer's.
pub fn write_differences(
    out: &mut impl Write,
    tenant: &Tenant,
    a: &Assignments,
) -> io::Result<usize> {
    let Some((_, rows)) = compare(tenant, a) else {
        return Ok(0);
    };
    let col = tenant
        .users
        .licenses(crate::table::ColumnKey::LicenseStates);
    for &row in &rows {
        let exported: Vec<serde_json::Value> = col
            .and_then(|c| c.get(row))
            .unwrap_or(&[])
            .iter()
            .map(|e| {
                json!({
                    "assignedByGroup": e.assigned_by_group,
                    "disabledPlans": e.disabled_plans,
                    "error": e.error.as_deref().unwrap_or("None"),
                    "skuId": e.sku_id,
                    "state": e.state,
                })
            })
            .collect();
        let line = json!({
            "id": tenant.users.id(row),
            "userPrincipalName": tenant.users.name(row),
            "exported": exported,
            "computed": a.records(a.states(row)),
        });
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(rows.len())
}

impl RecomputeReport {
    /// Builds the summary.
    pub fn new(
        tenant: &Tenant,
        memberships: &Memberships,
        assignments: &Assignments,
        issues: Vec<TenantIssue>,
        timings: Timings,
    ) -> RecomputeReport {
        let groups = tenant
            .groups
            .iter()
            .zip(&memberships.groups)
            .zip(&assignments.groups)
            .map(|((g, m), l)| GroupSummary {
                id: g.id.clone(),
                display_name: g.display_name.clone(),
                dynamic: g.is_dynamic(),
                membership_rule: g.membership_rule.clone(),
                processing: m.processing.clone(),
                members: m.known.then(|| m.members.count_ones()),
                snapshot_members: m.snapshot.as_ref().map(crate::bitmap::Bitmap::count_ones),
                joined: m.joined().count_ones(),
                left: m.left().count_ones(),
                licenses: g
                    .assigned_licenses
                    .iter()
                    .map(|l| tenant.catalog.sku_label(&l.sku_id).to_string())
                    .collect(),
                licensing: l.clone(),
                audit_summary: l.processed.then(|| {
                    format!(
                        "Users successfully assigned licenses: {}, Users for whom license assignment failed: {}.",
                        l.users_succeeded, l.users_failed
                    )
                }),
            })
            .collect();
        RecomputeReport {
            tenant: tenant.dir.display().to_string(),
            users: tenant.users.len(),
            devices: tenant.devices.as_ref().map(Table::len),
            country_letter_code: tenant.country.clone(),
            groups,
            skus: assignments.skus.clone(),
            users_with_tenant_usage_location: assignments.tenant_location_users,
            snapshot_agreement: agreement(tenant, assignments),
            issues,
            timings,
        }
    }

    /// A readable report: groups, seats, issues, timings.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Tenant {}: {}{}, {}, {}",
            self.tenant,
            plural(self.users, "user"),
            self.devices
                .map(|d| format!(", {}", plural(d, "device")))
                .unwrap_or_default(),
            plural(self.groups.len(), "group"),
            plural(self.skus.len(), "SKU")
        );
        let _ = writeln!(o);
        let mut rows = vec![vec![
            "GROUP".to_string(),
            "MEMBERSHIP".into(),
            "MEMBERS".into(),
            "SNAPSHOT".into(),
            "JOINED".into(),
            "LEFT".into(),
            "LICENCES".into(),
            "LICENSED".into(),
            "FAILED".into(),
        ]];
        rows.extend(self.groups.iter().map(group_row));
        table(
            &mut o,
            &rows,
            &[false, false, true, true, true, true, false, true, false],
        );
        let _ = writeln!(o);
        let mut rows = vec![vec![
            "SKU".to_string(),
            "ASSIGNABLE".into(),
            "USED BEFORE".into(),
            "USED AFTER".into(),
            "AVAILABLE".into(),
            "NOT ENOUGH LICENCES".into(),
        ]];
        for s in &self.skus {
            rows.push(vec![
                if s.sku_part_number.is_empty() {
                    s.sku_id.clone()
                } else {
                    s.sku_part_number.clone()
                },
                s.assignable.map_or("unlimited".into(), |a| a.to_string()),
                s.consumed_before.to_string(),
                s.consumed_after.to_string(),
                s.available_after.map_or("-".into(), |a| a.to_string()),
                s.count_violations.to_string(),
            ]);
        }
        table(&mut o, &rows, &[false, true, true, true, true, true]);
        if let Some(a) = &self.snapshot_agreement {
            let _ = writeln!(
                o,
                "\nLicence states: {} of {} match the exported licenseAssignmentStates{}",
                a.users_matching,
                plural(a.users_compared, "user"),
                if a.users_matching == a.users_compared {
                    String::new()
                } else {
                    format!(
                        "; {} differ (pending processing, or a rule dynrule models differently), e.g. {}",
                        a.users_compared - a.users_matching,
                        some(a.examples.get(..a.examples.len().min(3)).unwrap_or(&[]), 3)
                    )
                }
            );
        }
        if self.users_with_tenant_usage_location > 0 {
            let _ = writeln!(
                o,
                "\n{} licensed user(s) have no usageLocation and use the tenant's ({}).",
                self.users_with_tenant_usage_location,
                self.country_letter_code.as_deref().unwrap_or("?")
            );
        }
        if !self.issues.is_empty() {
            let _ = writeln!(o, "\nIssues ({}):", self.issues.len());
            for i in &self.issues {
                let _ = writeln!(o, "  {i}");
            }
        }
        o
    }
}

/// One group's row of the recompute report's table.
fn group_row(g: &GroupSummary) -> Vec<String> {
    let name = if g.display_name.is_empty() {
        g.id.clone()
    } else {
        g.display_name.clone()
    };
    let processing = match &g.processing {
        Processing::Evaluated => "rule",
        Processing::Paused => "paused",
        Processing::Static => "static",
        Processing::Kept(_) => "kept (error)",
    };
    let lic = g.licensing.processed;
    vec![
        name,
        processing.into(),
        g.members.map_or("?".into(), |n| n.to_string()),
        g.snapshot_members.map_or("?".into(), |n| n.to_string()),
        if g.snapshot_members.is_some() {
            g.joined.to_string()
        } else {
            "-".into()
        },
        if g.snapshot_members.is_some() {
            g.left.to_string()
        } else {
            "-".into()
        },
        if g.licenses.is_empty() {
            "-".into()
        } else {
            g.licenses.join(", ")
        },
        if lic {
            g.licensing.users_succeeded.to_string()
        } else {
            "-".into()
        },
        if lic {
            let mut f = g.licensing.users_failed.to_string();
            if !g.licensing.errors.is_empty() {
                let _ = write!(
                    f,
                    " ({})",
                    g.licensing
                        .errors
                        .iter()
                        .map(|(e, n)| format!("{e} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if g.licensing.removals_blocked > 0 {
                let _ = write!(
                    f,
                    "; {} removal(s) blocked (DependencyViolation)",
                    g.licensing.removals_blocked
                );
            }
            f
        } else {
            "-".into()
        },
    ]
}

/// `1 user`, `2 users`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn table(o: &mut String, rows: &[Vec<String>], right: &[bool]) {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::from(" ");
        for (c, cell) in r.iter().enumerate() {
            let w = widths.get(c).copied().unwrap_or(0);
            let pad = w.saturating_sub(cell.chars().count());
            line.push(' ');
            if right.get(c).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push(' ');
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
}

/// Writes `memberships.jsonl`: one line per group, `{"id", "displayName", "object",
/// "processing", "count", "snapshotCount", "joined": [ids], "left": [ids]}` (ids of users, or
/// devices for a device group): sized by what changed against the snapshot, not by who is a
/// member ([`write_members`] writes every member, on request).
pub fn write_memberships(
    out: &mut impl Write,
    tenant: &Tenant,
    memberships: &Memberships,
) -> io::Result<()> {
    for (g, m) in tenant.groups.iter().zip(&memberships.groups) {
        let id_column = object_ids(tenant, m.object);
        let ids = |b: &crate::bitmap::Bitmap| -> Vec<&str> {
            id_column.map_or_else(Vec::new, |c| {
                b.ones_iter().filter_map(|r| c.get(r)).collect()
            })
        };
        let line = json!({
            "id": g.id,
            "displayName": g.display_name,
            "object": m.object,
            "processing": m.processing,
            "count": m.known.then(|| m.members.count_ones()),
            "snapshotCount": m.snapshot.as_ref().map(crate::bitmap::Bitmap::count_ones),
            "joined": ids(&m.joined()),
            "left": ids(&m.left()),
        });
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The object id column of the users or devices table, looked up once per group rather than
/// once per member written.
fn object_ids(
    tenant: &Tenant,
    object: crate::schema::ObjectType,
) -> Option<&crate::table::StrColumn> {
    tenant
        .table(object)
        .and_then(|t| t.str_column(crate::table::ColumnKey::Prop("objectId")))
}

/// Writes `members.jsonl` (`recompute --out DIR --members`): one line per group, `{"id",
/// "members": [object ids]}` (`null` when the membership is unknown), written without building
/// a JSON value per group.
///
/// Errors: I/O.
pub fn write_members(
    out: &mut impl Write,
    tenant: &Tenant,
    memberships: &Memberships,
) -> io::Result<()> {
    for (g, m) in tenant.groups.iter().zip(&memberships.groups) {
        out.write_all(b"{\"id\":")?;
        serde_json::to_writer(&mut *out, &g.id)?;
        out.write_all(b",\"members\":")?;
        match object_ids(tenant, m.object).filter(|_| m.known) {
            None => out.write_all(b"null")?,
            Some(c) => {
                out.write_all(b"[")?;
                for (i, r) in m.members.ones_iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut *out, c.get(r).unwrap_or(""))?;
                }
                out.write_all(b"]")?;
            }
        }
        out.write_all(b"}\n")?;
    }
    Ok(())
}

/// The Graph-shaped licence fields of one state list, rendered once per distinct list:
/// `"assignedLicenses":[…],"licenseAssignmentStates":[…],"servicePlans":[…],"errors":[…]`.
fn fragment(a: &Assignments, catalog: &Catalog, states: &[State]) -> String {
    let sku_id = |s| a.sku_id(s);
    let assigned: Vec<serde_json::Value> = a
        .held(states)
        .into_iter()
        .map(|(k, d)| json!({"disabledPlans": d, "skuId": sku_id(k)}))
        .collect();
    let lstates = a.records(states).iter().map(|r| json!(r)).collect();
    // Names keep the file small (a user has up to ~90 plans); `servicePlanId`s are in the
    // catalog and in Microsoft's CSV.
    let plans: Vec<serde_json::Value> = a
        .effective_plans(states, catalog)
        .into_iter()
        .map(|p| json!(catalog.plan_label(p)))
        .collect();
    let errors: Vec<serde_json::Value> = states
        .iter()
        .filter(|s| s.error.is_some())
        .map(|s| {
            json!({
                "skuId": sku_id(s.sku),
                "skuPartNumber": catalog.sku_label(sku_id(s.sku)),
                "assignedByGroup": a.source_id(s),
                "error": s.error.map(|e| e.as_str()),
                "detail": a.detail(s.detail),
            })
        })
        .collect();
    let mut out = String::new();
    for (k, v) in [
        ("assignedLicenses", assigned),
        ("licenseAssignmentStates", lstates),
        ("servicePlans", plans),
        ("errors", errors),
    ] {
        let _ = write!(out, ",\"{k}\":{}", serde_json::Value::Array(v));
    }
    out
}

/// Writes `licenses.jsonl`: one line per user who has or had any licence state, `{"id",
/// "userPrincipalName", "usageLocation" (effective), "usageLocationSource" ("user" | "tenant"
/// | null), "assignedLicenses", "licenseAssignmentStates", "servicePlans" (effective plans by
/// `servicePlanName`), "errors"}`. Each
/// distinct state list is rendered once.
///
/// `progress` is called after each batch of rows with the number of rows done (for a progress
/// bar).
pub fn write_licenses(
    out: &mut impl Write,
    tenant: &Tenant,
    assignments: &Assignments,
    mut progress: impl FnMut(usize),
) -> io::Result<()> {
    use rayon::prelude::*;
    let users = &tenant.users;
    let usage = users.str_column(crate::table::ColumnKey::Prop("usageLocation"));
    let states = users.licenses(crate::table::ColumnKey::LicenseStates);
    let assigned = users.licenses(crate::table::ColumnKey::AssignedLicenses);
    // Each distinct state list rendered once, in parallel; then rows in parallel batches,
    // written in order.
    let fragments: Vec<String> = assignments
        .lists()
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(_, states)| fragment(assignments, &tenant.catalog, states))
        .collect();
    let line = |row: usize, buf: &mut Vec<u8>| {
        let code = assignments.list_of(row);
        let had = states.is_some_and(|c| c.get(row).is_some_and(|s| !s.is_empty()))
            || assigned.is_some_and(|c| c.get(row).is_some_and(|s| !s.is_empty()));
        if code == ListIx::default() && !had {
            return;
        }
        let own = usage
            .and_then(|c| c.get(row))
            .filter(|l| !l.trim().is_empty());
        let (loc, src) = match own {
            Some(l) => (Some(l.to_string()), Some("user")),
            None => (
                tenant.country.clone(),
                tenant.country.as_ref().map(|_| "tenant"),
            ),
        };
        let head = json!({
            "id": users.id(row),
            "userPrincipalName": users.name(row),
            "usageLocation": loc,
            "usageLocationSource": src,
        })
        .to_string();
        buf.extend_from_slice(
            head.get(..head.len().saturating_sub(1))
                .unwrap_or("{")
                .as_bytes(),
        );
        buf.extend_from_slice(
            fragments
                .get(code.index())
                .map_or("", String::as_str)
                .as_bytes(),
        );
        buf.extend_from_slice(b"}\n");
    };
    const BATCH: usize = 1 << 16;
    const CHUNK: usize = 4096;
    let mut start = 0;
    while start < users.len() {
        let end = (start + BATCH).min(users.len());
        let bufs: Vec<Vec<u8>> = (start..end)
            .step_by(CHUNK)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|a| {
                let mut buf = Vec::new();
                for row in a..(a + CHUNK).min(end) {
                    line(row, &mut buf);
                }
                buf
            })
            .collect();
        for b in bufs {
            out.write_all(&b)?;
        }
        start = end;
        progress(end);
    }
    Ok(())
}

/// Up to `n` items joined by ", ", with "+N more" when cut.
pub(crate) fn some(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        let _ = write!(s, ", +{} more", items.len() - n);
    }
    s
}

/// Counts of each item, most frequent first: `EMS (42), E3 (3)`.
fn tally<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut m: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for i in items {
        *m.entry(i.as_str()).or_default() += 1;
    }
    let mut v: Vec<(&str, usize)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(k, n)| format!("{k} ({n})")).collect()
}

/// The what-if report an admin reads before clicking Save: the changes, memberships, licences
/// per user, seats, risks (data plans, users losing every licence, new errors, `assignedPlans`
/// feedback, static → dynamic, thresholds), explanations (test group), issues. Lists are cut
/// to the first `limit` entries (all of them are in the JSON and CSV formats).
pub fn whatif_text(w: &crate::whatif::WhatIf, limit: usize) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail.
    let _ = write_whatif(&mut o, w, limit);
    o
}

/// [`whatif_text`], section by section.
fn write_whatif(o: &mut String, w: &crate::whatif::WhatIf, limit: usize) -> fmt::Result {
    whatif_head(o, w)?;
    whatif_changes(o, w)?;
    whatif_memberships(o, w, limit)?;
    whatif_licenses(o, w, limit)?;
    whatif_seats(o, w)?;
    whatif_trust(o, w)?;
    whatif_risks(o, w)?;
    whatif_explanations(o, w)?;
    whatif_issues(o, w)?;
    Ok(())
}

/// The title line, and the test group when there is one.
fn whatif_head(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    writeln!(
        o,
        "What-if on {} ({}, {})",
        w.tenant,
        plural(w.user_count, "user"),
        plural(w.group_count, "group")
    )?;
    if let (Some(g), Some(n)) = (&w.test_group, w.test_group_members) {
        writeln!(
            o,
            "Test group: {g} ({}): the changes apply to its members only.",
            plural(n, "member")
        )?;
    }
    Ok(())
}

/// A group's SKUs as a list, or `(none)`.
pub(crate) fn skus_or_none(skus: &[String]) -> String {
    if skus.is_empty() {
        "(none)".to_string()
    } else {
        skus.join(", ")
    }
}

/// How a group's name is marked in a report for what the change does to it.
pub(crate) fn action_note(a: crate::whatif::Action) -> &'static str {
    use crate::whatif::Action;
    match a {
        Action::Update => "",
        Action::Create => " (new)",
        Action::Delete => " (deleted)",
        Action::Replace => " (replaced)",
    }
}

/// The group diff of a change (by id and displayName: a group not yet created has no id).
pub(crate) fn change_group<'a>(
    w: &'a crate::whatif::WhatIf,
    c: &crate::whatif::ChangeSummary,
) -> Option<&'a crate::whatif::GroupDiff> {
    w.groups
        .iter()
        .find(|g| g.id == c.group && g.display_name == c.display_name)
}

/// What a rule was before a change, as the reports say it.
pub(crate) fn rule_before(
    c: &crate::whatif::ChangeSummary,
    g: Option<&crate::whatif::GroupDiff>,
) -> String {
    match (c.change.action, g.and_then(|g| g.rule_before.as_deref())) {
        (crate::whatif::Action::Create, _) => "(a new group)".to_string(),
        (_, Some(r)) => r.to_string(),
        (_, None) => "(static group)".to_string(),
    }
}

/// A group's row title in the membership tables: its displayName (else id), marked for what
/// the change does to it, and `(via assignedPlans)` when it moves only through licences.
pub(crate) fn group_title(g: &crate::whatif::GroupDiff) -> String {
    let mut name = if g.display_name.is_empty() {
        g.id.clone()
    } else {
        g.display_name.clone()
    };
    name.push_str(action_note(g.action));
    if !g.changed {
        name.push_str(" (via assignedPlans)");
    }
    name
}

/// Each change: the rule before and after, licences, processing state.
fn whatif_changes(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    for (i, c) in w.changes.iter().enumerate() {
        let id = if c.group.is_empty() {
            "not yet created"
        } else {
            &c.group
        };
        writeln!(
            o,
            "\nChange {}: {} ({id}){}{}",
            i + 1,
            c.display_name,
            action_note(c.change.action),
            c.change
                .address
                .as_deref()
                .map(|a| format!(" from {a}"))
                .unwrap_or_default()
        )?;
        let g = change_group(w, c);
        if let Some(r) = &c.change.membership_rule {
            writeln!(o, "  membershipRule")?;
            writeln!(o, "    before: {}", rule_before(c, g))?;
            writeln!(o, "    after:  {r}")?;
        }
        for u in &c.change.unknown_until_apply {
            writeln!(o, "  {u}: not known until apply")?;
        }
        if let Some(g) = g {
            if let (Some(b), Some(a)) = (&g.licenses_before, &g.licenses_after) {
                writeln!(
                    o,
                    "  assignedLicenses: {} → {}",
                    skus_or_none(b),
                    skus_or_none(a)
                )?;
            }
        }
        if let Some(s) = &c.change.membership_rule_processing_state {
            writeln!(o, "  membershipRuleProcessingState → {s}")?;
        }
    }
    Ok(())
}

/// Per group: members before and after, joined, left, unchanged; then who joins and leaves.
fn whatif_memberships(o: &mut String, w: &crate::whatif::WhatIf, limit: usize) -> fmt::Result {
    writeln!(o, "\nMemberships")?;
    let mut rows = vec![vec![
        "GROUP".to_string(),
        "BEFORE".into(),
        "AFTER".into(),
        "JOINED".into(),
        "LEFT".into(),
        "UNCHANGED".into(),
    ]];
    for g in &w.groups {
        let count = |n: Option<usize>| n.map_or("?".to_string(), |n| n.to_string());
        rows.push(vec![
            group_title(g),
            count(g.before),
            count(g.after),
            g.joined.len().to_string(),
            g.left.len().to_string(),
            g.unchanged.to_string(),
        ]);
    }
    table(o, &rows, &[false, true, true, true, true, true]);
    for g in &w.groups {
        if !g.joined.is_empty() {
            writeln!(o, "  {} joins: {}", g.display_name, some(&g.joined, limit))?;
        }
        if !g.left.is_empty() {
            writeln!(o, "  {} leaves: {}", g.display_name, some(&g.left, limit))?;
        }
    }
    Ok(())
}

/// Users whose licences change: SKU and plan tallies, then a table of up to `limit` users.
fn whatif_licenses(o: &mut String, w: &crate::whatif::WhatIf, limit: usize) -> fmt::Result {
    let lic = licence_changes(w);
    writeln!(
        o,
        "\nLicences: {} whose licences change",
        plural(lic.len(), "user")
    )?;
    let lost: Vec<String> = lic
        .iter()
        .flat_map(|u| u.skus_lost.iter().cloned())
        .collect();
    let gained: Vec<String> = lic
        .iter()
        .flat_map(|u| u.skus_gained.iter().cloned())
        .collect();
    let plans_lost: Vec<String> = lic
        .iter()
        .flat_map(|u| u.plans_lost.iter().cloned())
        .collect();
    let plans_gained: Vec<String> = lic
        .iter()
        .flat_map(|u| u.plans_gained.iter().cloned())
        .collect();
    if !lost.is_empty() {
        writeln!(o, "  SKUs lost: {}", tally(lost.iter()).join(", "))?;
    }
    if !gained.is_empty() {
        writeln!(o, "  SKUs gained: {}", tally(gained.iter()).join(", "))?;
    }
    if !plans_lost.is_empty() {
        writeln!(
            o,
            "  service plans lost: {}",
            some(&tally(plans_lost.iter()), 8)
        )?;
    }
    if !plans_gained.is_empty() {
        writeln!(
            o,
            "  service plans gained: {}",
            some(&tally(plans_gained.iter()), 8)
        )?;
    }
    if !lic.is_empty() {
        let mut rows = vec![vec![
            "USER".to_string(),
            "SKUS +".into(),
            "SKUS −".into(),
            "PLANS −".into(),
            "NEW ERRORS".into(),
        ]];
        rows.extend(lic.iter().take(limit).map(|u| user_row(u).to_vec()));
        table(o, &rows, &[false; 5]);
        if lic.len() > limit {
            writeln!(
                o,
                "  … and {} more (--format csv lists every user)",
                lic.len() - limit
            )?;
        }
    }
    Ok(())
}

/// Per SKU whose seats move: assignable, used before and after, needed, shortfall.
fn whatif_seats(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    if !w.skus.is_empty() {
        writeln!(o, "\nSeats")?;
        let mut rows = vec![vec![
            "SKU".to_string(),
            "ASSIGNABLE".into(),
            "USED BEFORE".into(),
            "USED AFTER".into(),
            "NEEDED AFTER".into(),
            "SHORTFALL".into(),
        ]];
        // A shortage that exists before the change is shown as such, not as the change's.
        let short_before = w.skus.iter().any(|s| s.shortfall_before > 0);
        if short_before {
            if let Some(h) = rows.first_mut() {
                h.push("SHORT BEFORE".into());
            }
        }
        for s in &w.skus {
            let mut row = vec![
                s.sku_part_number.clone(),
                s.assignable.map_or("unlimited".into(), |a| a.to_string()),
                s.used_before.to_string(),
                s.used_after.to_string(),
                s.needed_after.to_string(),
                s.shortfall.to_string(),
            ];
            if short_before {
                row.push(s.shortfall_before.to_string());
            }
            rows.push(row);
        }
        let right = [false, true, true, true, true, true, true];
        let cols = rows.first().map_or(6, Vec::len);
        table(o, &rows, right.get(..cols).unwrap_or(&right));
    }
    Ok(())
}

/// When the answer cannot be trusted: why (exit 4).
fn whatif_trust(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    if !w.trust.trusted {
        writeln!(
            o,
            "\nTrust\n  ✗ the answer cannot be trusted (exit 4): {} for the groups it rests on",
            plural(w.trust.undermined_by.len(), "issue")
        )?;
        for i in &w.trust.undermined_by {
            writeln!(o, "  {i}")?;
        }
    }
    Ok(())
}

/// Data loss, users losing every licence, new errors, static-to-dynamic groups, assignedPlans feedback, thresholds.
fn whatif_risks(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    // Under an untrusted answer an all-clear is not one: `?` instead of `✓`.
    let clear = if w.trust.trusted { "✓" } else { "?" };
    let r = &w.risks;
    writeln!(o, "\nRisks")?;
    if r.data_loss_users > 0 {
        writeln!(
            o,
            "  ! {} lose plans that hold data: {} (Microsoft 365 keeps such data for about 30 days after the licence goes, then deletes it)",
            plural(r.data_loss_users, "user"),
            data_plans_lost(r)
        )?;
    } else {
        writeln!(
            o,
            "  {clear} nobody loses a plan that holds data (Exchange, SharePoint/OneDrive, Teams)"
        )?;
    }
    if r.users_losing_every_license > 0 {
        writeln!(
            o,
            "  ! {} lose every licence",
            plural(r.users_losing_every_license, "user")
        )?;
    }
    if r.users_with_new_errors > 0 {
        writeln!(
            o,
            "  ! {} get new licence errors: {}",
            plural(r.users_with_new_errors, "user"),
            new_errors(r)
        )?;
    }
    for g in &r.static_to_dynamic {
        writeln!(
            o,
            "  ! {g} turns from static to dynamic: Entra removes every member first, then processes the rule; members lose access (and licences) until it finishes"
        )?;
    }
    for g in &r.replaced_groups {
        writeln!(
            o,
            "  ! {g} is replaced (deleted and created again): every member leaves, and its licences go until the new group is processed"
        )?;
    }
    if !r.feedback_groups.is_empty() {
        writeln!(
            o,
            "  i rules that read assignedPlans ({}): licences and memberships were iterated: {} before, {} after{}",
            r.feedback_groups.join(", "),
            plural(r.iterations_before, "round"),
            plural(r.iterations_after, "round"),
            if r.converged {
                ""
            } else {
                " — NOT settled: licences and memberships keep changing each other (a cycle)"
            }
        )?;
    }
    if r.breaches.is_empty() {
        writeln!(o, "  {clear} no threshold crossed")?;
    } else {
        for b in &r.breaches {
            writeln!(o, "  ✗ {}: {} (over {})", b.what, b.value, b.limit)?;
        }
    }
    Ok(())
}

/// The clause-by-clause explanations of a `--test-group` run.
fn whatif_explanations(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    for e in &w.explanations {
        writeln!(
            o,
            "\n{} {} {} (was {}a member)",
            e.user_principal_name,
            if e.member_after { "joins" } else { "leaves" },
            e.group,
            if e.member_before { "" } else { "not " }
        )?;
        if let Some(b) = &e.before {
            writeln!(o, "  before:")?;
            let mut t = String::new();
            crate::oracle::render_tree(&b.membership_rule_evaluation_details, 2, &mut t);
            o.push_str(&t);
        }
        if let Some(a) = &e.after {
            writeln!(o, "  after:")?;
            let mut t = String::new();
            crate::oracle::render_tree(&a.membership_rule_evaluation_details, 2, &mut t);
            o.push_str(&t);
        }
    }
    Ok(())
}

/// The issues of both sides.
fn whatif_issues(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    if !w.issues.is_empty() {
        writeln!(o, "\nIssues ({}):", w.issues.len())?;
        for i in &w.issues {
            writeln!(o, "  {i}")?;
        }
    }
    Ok(())
}

/// A CSV cell made safe to open in a spreadsheet: a value that begins with `=`, `+`, `-`, `@`, a
/// tab or a carriage return (which Excel and LibreOffice would run as a formula: "CSV
/// injection") gets a leading `'`, as OWASP's CSV injection guidance advises. Every CSV dynrule
/// writes goes through it; the README says so.
pub fn csv_cell(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// CSV of affected users: `id,userPrincipalName,groupsJoined,groupsLeft,skusGained,skusLost,
/// plansGained,plansLost,dataPlansLost,losesEveryLicense,errorsNew,errorsCleared` (lists joined
/// with `;`, an error as `error:sku:group`).
///
/// Errors: the writer's.
pub fn whatif_csv(w: &crate::whatif::WhatIf, out: impl Write) -> io::Result<()> {
    let mut c = csv::Writer::from_writer(out);
    c.write_record([
        "id",
        "userPrincipalName",
        "groupsJoined",
        "groupsLeft",
        "skusGained",
        "skusLost",
        "plansGained",
        "plansLost",
        "dataPlansLost",
        "losesEveryLicense",
        "errorsNew",
        "errorsCleared",
    ])?;
    let errs = |v: &[crate::whatif::ErrorKey]| {
        v.iter()
            .map(|(s, g, e)| format!("{e}:{s}:{g}"))
            .collect::<Vec<_>>()
            .join(";")
    };
    for u in &w.users {
        let cells = [
            u.id.as_str(),
            u.user_principal_name.as_str(),
            &u.groups_joined.join(";"),
            &u.groups_left.join(";"),
            &u.skus_gained.join(";"),
            &u.skus_lost.join(";"),
            &u.plans_gained.join(";"),
            &u.plans_lost.join(";"),
            &u.data_plans_lost.join(";"),
            if u.loses_every_license {
                "true"
            } else {
                "false"
            },
            &errs(&u.errors_new),
            &errs(&u.errors_cleared),
        ];
        c.write_record(cells.iter().map(|s| csv_cell(s).into_owned()))?;
    }
    c.flush()
}

/// The users of a what-if whose licences change: SKUs or service plans gained or lost, licence
/// errors new or cleared. The text and Markdown reports list the same users.
fn licence_changes(w: &crate::whatif::WhatIf) -> Vec<&crate::whatif::UserDiff> {
    w.users
        .iter()
        .filter(|u| {
            !(u.skus_gained.is_empty()
                && u.skus_lost.is_empty()
                && u.plans_gained.is_empty()
                && u.plans_lost.is_empty()
                && u.errors_new.is_empty()
                && u.errors_cleared.is_empty())
        })
        .collect()
}

/// One user's row of the what-if reports' user table: name (UPN, else id), SKUs gained, SKUs
/// lost, plans lost (the first three), new errors.
pub(crate) fn user_row(u: &crate::whatif::UserDiff) -> [String; 5] {
    let name = if u.user_principal_name.is_empty() {
        &u.id
    } else {
        &u.user_principal_name
    };
    [
        name.clone(),
        u.skus_gained.join(", "),
        u.skus_lost.join(", "),
        some(&u.plans_lost, 3),
        u.errors_new
            .iter()
            .map(|(s, g, e)| format!("{e} ({s} from {g})"))
            .collect::<Vec<_>>()
            .join(", "),
    ]
}

/// The data plans users lose, `plan (users)`, and the new licence errors, `error n`, as the
/// what-if reports list them.
fn data_plans_lost(r: &crate::whatif::Risks) -> String {
    r.data_plans_lost
        .iter()
        .map(|(p, n)| format!("{p} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// See [`data_plans_lost`].
fn new_errors(r: &crate::whatif::Risks) -> String {
    r.new_errors
        .iter()
        .map(|(e, n)| format!("{e} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// The what-if report as Markdown, for a pull-request comment or `$GITHUB_STEP_SUMMARY`.

/// The what-if report as GitHub-flavoured Markdown, for a pull-request comment or
/// `$GITHUB_STEP_SUMMARY`: the verdict in its first line (⚠️ untrusted, ❌ thresholds crossed,
/// ❗ users losing data plans, every licence or gaining licence errors, ✅ clear), the changes, per-group and per-SKU tables, the risks, then the users whose licences
/// change and the issues inside `<details>` (the first `limit` users; all are in JSON and CSV).
pub fn whatif_markdown(w: &crate::whatif::WhatIf, limit: usize) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail.
    let _ = write_markdown(&mut o, w, limit);
    o
}

fn write_markdown(o: &mut String, w: &crate::whatif::WhatIf, limit: usize) -> fmt::Result {
    markdown_verdict(o, w)?;
    markdown_changes(o, w)?;
    markdown_groups(o, w)?;
    markdown_seats(o, w)?;
    markdown_risks(o, w)?;
    markdown_users(o, w, limit)?;
    if !w.issues.is_empty() {
        writeln!(
            o,
            "\n<details><summary>Issues ({})</summary>\n",
            w.issues.len()
        )?;
        for i in &w.issues {
            writeln!(o, "- {}", md_text(&i.to_string()))?;
        }
        writeln!(o, "\n</details>")?;
    }
    Ok(())
}

/// Text for a Markdown table cell or list item: `|` escaped, `<` as an entity, one line.
fn md_text(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace(['\n', '\r'], " ")
}

/// A code span that holds any text (a rule may contain backticks).
fn md_code(s: &str) -> String {
    let s = md_text(s);
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// How a what-if reads at a glance: the verdict line of the Markdown and HTML reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictLevel {
    /// The answer cannot be trusted (exit 4).
    Untrusted,
    /// A threshold is crossed (exit 3).
    Breach,
    /// No threshold crossed, but users lose data plans or every licence, get new errors, or a
    /// group is replaced.
    Attention,
    /// Nothing of the above.
    Clear,
}

impl VerdictLevel {
    /// The emoji the Markdown report opens with.
    pub fn emoji(self) -> &'static str {
        match self {
            VerdictLevel::Untrusted => "⚠️",
            VerdictLevel::Breach => "❌",
            VerdictLevel::Attention => "❗",
            VerdictLevel::Clear => "✅",
        }
    }

    /// A CSS class name for it.
    pub fn class(self) -> &'static str {
        match self {
            VerdictLevel::Untrusted => "untrusted",
            VerdictLevel::Breach => "breach",
            VerdictLevel::Attention => "attention",
            VerdictLevel::Clear => "clear",
        }
    }
}

/// A what-if's verdict: its level and headline (`dynrule what-if: 2 thresholds crossed`).
pub fn whatif_verdict(w: &crate::whatif::WhatIf) -> (VerdictLevel, String) {
    let r = &w.risks;
    if !w.trust.trusted {
        (
            VerdictLevel::Untrusted,
            format!(
                "dynrule what-if: the answer cannot be trusted (exit 4): {}",
                plural(w.trust.undermined_by.len(), "issue")
            ),
        )
    } else if !r.breaches.is_empty() {
        (
            VerdictLevel::Breach,
            format!(
                "dynrule what-if: {} crossed",
                plural(r.breaches.len(), "threshold")
            ),
        )
    } else if r.data_loss_users > 0
        || r.users_losing_every_license > 0
        || r.users_with_new_errors > 0
        || !r.replaced_groups.is_empty()
    {
        // No threshold was set or crossed, but a change board should not read this as clear.
        (
            VerdictLevel::Attention,
            format!(
                "dynrule what-if: no threshold crossed, but {} lose a plan that holds data, {} lose every licence, {} get new licence errors{}",
                plural(r.data_loss_users, "user"),
                plural(r.users_losing_every_license, "user"),
                plural(r.users_with_new_errors, "user"),
                if r.replaced_groups.is_empty() {
                    String::new()
                } else {
                    format!(", {} replaced", plural(r.replaced_groups.len(), "group"))
                }
            ),
        )
    } else {
        (
            VerdictLevel::Clear,
            "dynrule what-if: no threshold crossed, no data plan or licence lost".to_string(),
        )
    }
}

/// The sentence under a what-if's verdict: who leaves and joins, who loses what, the tenant
/// (`tenant`: its folder as the report shows it).
pub fn whatif_summary(w: &crate::whatif::WhatIf, tenant: &str) -> String {
    let r = &w.risks;
    let left: usize = w.groups.iter().map(|g| g.left.len()).sum();
    let joined: usize = w.groups.iter().map(|g| g.joined.len()).sum();
    format!(
        "{} leave, {} join; {} lose a plan that holds data, {} lose every licence. Tenant {}: {}, {}.",
        plural(left, "member"),
        plural(joined, "member"),
        plural(r.data_loss_users, "user"),
        plural(r.users_losing_every_license, "user"),
        tenant,
        plural(w.user_count, "user"),
        plural(w.group_count, "group")
    )
}

fn markdown_verdict(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    let (level, headline) = whatif_verdict(w);
    writeln!(o, "### {} {headline}", level.emoji())?;
    let tenant = format!("`{}`", md_text(&w.tenant));
    writeln!(o, "\n{}", whatif_summary(w, &tenant))
}

fn markdown_changes(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    writeln!(o, "\n#### Changes\n")?;
    if let (Some(g), Some(n)) = (&w.test_group, w.test_group_members) {
        writeln!(
            o,
            "Test group **{}** ({}): the changes apply to its members only.\n",
            md_text(g),
            plural(n, "member")
        )?;
    }
    for c in &w.changes {
        let g = change_group(w, c);
        writeln!(
            o,
            "- **{}**{}{}",
            md_text(&c.display_name),
            action_note(c.change.action),
            c.change
                .address
                .as_deref()
                .map(|a| format!(" (`{}`)", md_text(a)))
                .unwrap_or_default()
        )?;
        if let Some(rule) = &c.change.membership_rule {
            let before = match (c.change.action, g.and_then(|g| g.rule_before.as_deref())) {
                (crate::whatif::Action::Create, _) | (_, None) => md_text(&rule_before(c, g)),
                (_, Some(r)) => md_code(r),
            };
            writeln!(o, "  - `membershipRule` before: {before}")?;
            writeln!(o, "  - `membershipRule` after: {}", md_code(rule))?;
        }
        for u in &c.change.unknown_until_apply {
            writeln!(o, "  - `{}`: **not known until apply**", md_text(u))?;
        }
        if let Some((b, a)) =
            g.and_then(|g| g.licenses_before.as_ref().zip(g.licenses_after.as_ref()))
        {
            writeln!(
                o,
                "  - `assignedLicenses`: {} → {}",
                md_text(&skus_or_none(b)),
                md_text(&skus_or_none(a))
            )?;
        }
        if let Some(s) = &c.change.membership_rule_processing_state {
            writeln!(o, "  - `membershipRuleProcessingState` → {}", md_text(s))?;
        }
    }
    Ok(())
}

fn markdown_groups(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    if w.groups.is_empty() {
        return Ok(());
    }
    writeln!(o, "\n#### Memberships\n")?;
    writeln!(o, "| Group | Before | After | Joined | Left | Unchanged |")?;
    writeln!(o, "|---|---:|---:|---:|---:|---:|")?;
    let count = |n: Option<usize>| n.map_or("?".to_string(), |n| n.to_string());
    for g in &w.groups {
        writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            md_text(&group_title(g)),
            count(g.before),
            count(g.after),
            g.joined.len(),
            g.left.len(),
            g.unchanged
        )?;
    }
    Ok(())
}

fn markdown_seats(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    if w.skus.is_empty() {
        return Ok(());
    }
    writeln!(o, "\n#### Seats\n")?;
    writeln!(
        o,
        "| SKU | Assignable | Used before | Used after | Needed after | Shortfall | Short before |"
    )?;
    writeln!(o, "|---|---:|---:|---:|---:|---:|---:|")?;
    for s in &w.skus {
        writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} |",
            md_text(&s.sku_part_number),
            s.assignable
                .map_or("unlimited".to_string(), |a| a.to_string()),
            s.used_before,
            s.used_after,
            s.needed_after,
            s.shortfall,
            s.shortfall_before
        )?;
    }
    Ok(())
}

/// A what-if's risks as list items: the level (a breach, an untrusted answer, something to look
/// at, or all clear) and the text.
pub fn whatif_risk_items(w: &crate::whatif::WhatIf) -> Vec<(VerdictLevel, String)> {
    let r = &w.risks;
    let mut out = Vec::new();
    for b in &r.breaches {
        out.push((
            VerdictLevel::Breach,
            format!("{}: {} (over {})", b.what, b.value, b.limit),
        ));
    }
    if !w.trust.trusted {
        for i in &w.trust.undermined_by {
            out.push((VerdictLevel::Untrusted, i.to_string()));
        }
    }
    if r.data_loss_users > 0 {
        out.push((
            VerdictLevel::Attention,
            format!(
                "{} lose plans that hold data: {}",
                plural(r.data_loss_users, "user"),
                data_plans_lost(r)
            ),
        ));
    }
    if r.users_losing_every_license > 0 {
        out.push((
            VerdictLevel::Attention,
            format!(
                "{} lose every licence",
                plural(r.users_losing_every_license, "user")
            ),
        ));
    }
    if r.users_with_new_errors > 0 {
        out.push((
            VerdictLevel::Attention,
            format!(
                "{} get new licence errors: {}",
                plural(r.users_with_new_errors, "user"),
                new_errors(r)
            ),
        ));
    }
    for g in &r.static_to_dynamic {
        out.push((
            VerdictLevel::Attention,
            format!("{g} turns from static to dynamic: Entra removes every member first, then processes the rule"),
        ));
    }
    for g in &r.replaced_groups {
        out.push((
            VerdictLevel::Attention,
            format!("{g} is replaced (deleted and created again): every member leaves, and its licences go until the new group is processed"),
        ));
    }
    if r.breaches.is_empty()
        && r.data_loss_users == 0
        && r.users_losing_every_license == 0
        && r.users_with_new_errors == 0
    {
        out.push((
            VerdictLevel::Clear,
            "no data plan lost, nobody loses every licence, no new licence error".to_string(),
        ));
    }
    out
}

fn markdown_risks(o: &mut String, w: &crate::whatif::WhatIf) -> fmt::Result {
    writeln!(o, "\n#### Risks\n")?;
    for (level, text) in whatif_risk_items(w) {
        writeln!(o, "- {} {}", level.emoji(), md_text(&text))?;
    }
    Ok(())
}

fn markdown_users(o: &mut String, w: &crate::whatif::WhatIf, limit: usize) -> fmt::Result {
    let lic = licence_changes(w);
    if lic.is_empty() {
        return Ok(());
    }
    writeln!(
        o,
        "\n<details><summary>Users whose licences change ({})</summary>\n",
        lic.len()
    )?;
    writeln!(o, "| User | SKUs + | SKUs − | Plans − | New errors |")?;
    writeln!(o, "|---|---|---|---|---|")?;
    for u in lic.iter().take(limit) {
        let cells = user_row(u).map(|c| md_text(&c));
        writeln!(o, "| {} |", cells.join(" | "))?;
    }
    if lic.len() > limit {
        writeln!(
            o,
            "\n… and {} more (`--format csv` lists every user).",
            lic.len() - limit
        )?;
    }
    writeln!(o, "\n</details>")
}
