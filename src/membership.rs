//! Every group's membership over a tenant snapshot ([`memberships`]).
//!
//! What each kind of group gets (Microsoft Learn, "Dynamic membership rules for groups" and
//! "Manage rules for dynamic membership groups"):
//! - a dynamic group with processing `On`: its `membershipRule`, compiled once and evaluated with
//!   every other rule of the same object type in one pass of the VM;
//! - a paused dynamic group (`membershipRuleProcessingState: Paused`): the membership of the
//!   snapshot, unchanged ("paused" groups keep their members);
//! - a static group: the `members` of the snapshot;
//! - a dynamic group whose rule dynrule cannot compile, or a device group without a devices
//!   export: the snapshot membership, and an error issue saying so (decision D38); without a
//!   snapshot membership the group is *unknown* ([`GroupMembership::known`] false), never
//!   empty, and licensing leaves its members' states as the snapshot shows them (D57);
//! - a memberOf group: its rule evaluated over the *computed* membership of its source groups
//!   (direct members), after them, so a change to a source group ripples into it (D56).
//!
//! A group's snapshot membership is its exported `members` (`$expand=members`); without them,
//! the users' own `memberOf` (`$expand=memberOf`); without either, it is unknown.

use crate::bitmap::Bitmap;
use crate::program::{CompileOptions, Program};
use crate::schema::ObjectType;
pub use crate::table::RowIndex;
use crate::table::Table;
use crate::tenant::{Group, IssueKind, MemberKind, Severity, Tenant, TenantIssue};
use rayon::prelude::*;
use std::collections::HashMap;

/// How a group's membership was obtained.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "reason")]
pub enum Processing {
    /// A dynamic rule evaluated on the snapshot.
    Evaluated,
    /// A paused dynamic group: the snapshot membership is kept.
    Paused,
    /// A static (assigned) group: the snapshot `members`.
    Static,
    /// Could not evaluate (the reason); the snapshot membership is kept.
    Kept(String),
}

/// One group's membership, over the rows of the users table (or of the devices table for a
/// device group).
#[derive(Clone, Debug)]
pub struct GroupMembership {
    /// Users or devices.
    pub object: ObjectType,
    /// How it was obtained.
    pub processing: Processing,
    /// Members now (all zeros when not [`GroupMembership::known`]).
    pub members: Bitmap,
    /// False when the membership is unknown: not evaluated (a rule dynrule cannot compile, a
    /// paused or static group) and no members exported. Reports print it as unknown, never 0.
    pub known: bool,
    /// Members in the snapshot, when known.
    pub snapshot: Option<Bitmap>,
    /// Snapshot members that are not in the users (or devices) export.
    pub outside: usize,
    /// Nested groups among the snapshot members (group-based licensing ignores them).
    pub nested: usize,
}

impl GroupMembership {
    /// Rows that are members now and were not in the snapshot (empty when the snapshot is not
    /// known).
    pub fn joined(&self) -> Bitmap {
        match &self.snapshot {
            Some(s) => self.members.and_not(s),
            None => Bitmap::zeros(self.members.len()),
        }
    }

    /// Rows that were members in the snapshot and are not now.
    pub fn left(&self) -> Bitmap {
        match &self.snapshot {
            Some(s) => s.and_not(&self.members),
            None => Bitmap::zeros(self.members.len()),
        }
    }
}

/// Every group's membership, in the order of the groups it was computed for.
#[derive(Clone, Debug, Default)]
pub struct Memberships {
    /// One per group.
    pub groups: Vec<GroupMembership>,
    /// Milliseconds: compiling rules, evaluating them.
    pub compile_ms: f64,
    /// Milliseconds evaluating.
    pub evaluate_ms: f64,
}

impl Memberships {
    /// Whether every group has the same members in both (memberships of the same groups).
    pub fn same_members(&self, other: &Memberships) -> bool {
        self.groups.len() == other.groups.len()
            && self
                .groups
                .iter()
                .zip(&other.groups)
                .all(|(x, y)| x.members == y.members)
    }
}

/// Membership snapshots from the users' own `memberOf`: group id → rows.
fn member_of_snapshot(users: &Table, groups: &[Group]) -> HashMap<usize, Bitmap> {
    let mut out: HashMap<usize, Bitmap> = HashMap::new();
    let Some(col) = users.own_member_of() else {
        return out;
    };
    let gix: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id.as_str(), i))
        .collect();
    // Per dictionary value once, then per row.
    let code_group: Vec<Option<usize>> = (0..=col.dict().len() as u32)
        .map(|c| {
            col.value(c)
                .and_then(|v| gix.get(v.trim().to_ascii_lowercase().as_str()).copied())
        })
        .collect();
    for row in 0..users.len() {
        for &code in col.codes(row) {
            if let Some(Some(g)) = code_group.get(code as usize) {
                out.entry(*g)
                    .or_insert_with(|| Bitmap::zeros(users.len()))
                    .set(row, true);
            }
        }
    }
    out
}

/// Options for [`memberships`] and [`crate::recompute::run`].
#[derive(Clone, Copy, Debug)]
pub struct RecomputeOptions {
    /// What `system.now` stands for.
    pub now: jiff::Timestamp,
}

/// Rounds of memberOf evaluation: memberOf groups over memberOf groups (which Entra forbids,
/// and which are reported) settle within this many.
const MEMBER_OF_ROUNDS: usize = 4;

/// How one group is to be computed, decided from its definition alone.
struct Plan {
    object: ObjectType,
    processing: Processing,
    /// The compiled rule, for an evaluated group.
    program: Option<Program>,
    /// Source groups (indices) of a memberOf rule.
    sources: Option<Vec<usize>>,
}

/// Decides how group `g` is computed: its object type, processing, program, memberOf sources.
/// Groups that cannot be evaluated get [`Processing::Kept`] and an issue.
fn plan_group(
    g: &Group,
    index: &HashMap<&str, usize>,
    has_devices: bool,
    copts: &CompileOptions,
    issues: &mut Vec<TenantIssue>,
) -> Plan {
    let mut plan = Plan {
        object: ObjectType::User,
        processing: Processing::Static,
        program: None,
        sources: None,
    };
    if !g.is_dynamic() {
        let kinds = || g.members.iter().flatten().map(|(_, k)| *k);
        if kinds().any(|k| k == MemberKind::Device) && !kinds().any(|k| k == MemberKind::User) {
            plan.object = ObjectType::Device;
        }
        return plan;
    }
    let Some(rule) = g.membership_rule.as_deref() else {
        // Reported when the snapshot was read (IssueKind::DynamicWithoutRule).
        plan.processing = Processing::Kept("no membershipRule in the export".into());
        return plan;
    };
    let checked = crate::check_rule(rule, false);
    if let Some(o) = checked.object {
        plan.object = o;
    }
    if g.is_paused() {
        plan.processing = Processing::Paused;
        return plan;
    }
    let kept = |kind, reason: String, issues: &mut Vec<TenantIssue>| {
        issues.push(TenantIssue::about_group(
            kind,
            Severity::Error,
            g,
            format!("{reason}; the snapshot membership is kept (unknown if none was exported)"),
        ));
        Processing::Kept(reason)
    };
    let hir = match &checked.hir {
        Some(hir) if checked.is_valid() => hir,
        _ => {
            let first = checked
                .errors()
                .next()
                .map(|d| {
                    format!(
                        "{} at column {}: {}",
                        d.code.as_str(),
                        rule.get(..d.span.start).map_or(0, |p| p.chars().count()) + 1,
                        d.message
                    )
                })
                .unwrap_or_default();
            plan.processing = kept(
                IssueKind::RuleNotCompiled,
                format!("the rule does not compile in dynrule: {first}"),
                issues,
            );
            return plan;
        }
    };
    if plan.object == ObjectType::Device && !has_devices {
        plan.processing = kept(
            IssueKind::NoDevicesExport,
            "a device rule, and the snapshot has no devices export".into(),
            issues,
        );
        return plan;
    }
    match Program::compile(hir, copts) {
        Err(e) => {
            plan.processing = kept(
                IssueKind::RuleNotCompiled,
                format!("the rule does not compile in dynrule: {e}"),
                issues,
            );
        }
        Ok(p) => {
            plan.processing = Processing::Evaluated;
            if let crate::hir::Body::MemberOf { group_ids, .. } = &hir.body {
                plan.sources = Some(
                    group_ids
                        .iter()
                        .filter_map(|id| index.get(id.as_str()).copied())
                        .collect(),
                );
            }
            plan.program = Some(p);
        }
    }
    plan
}

/// Computes every group's membership (see the module docs) over `users` (the tenant's users,
/// or a variant of them with other `assignedPlans`). `groups` are the tenant's groups or a
/// what-if's side of them (the tenant's in the same order, then groups the change creates). Rules that do not compile, device rules
/// without a devices export, and unknown memberships are reported in the returned issues.
pub fn memberships(
    tenant: &Tenant,
    groups: &[Group],
    users: &Table,
    opts: &RecomputeOptions,
) -> (Memberships, Vec<TenantIssue>) {
    // With `$expand=members` the groups carry their members; only an export without any
    // members says something through the users' own `memberOf`. The export decides, not a
    // what-if's proposed groups (a group not yet created has no members to export).
    let any_members = tenant.groups.iter().any(|g| g.members.is_some());
    let from_member_of = if any_members {
        HashMap::new()
    } else {
        member_of_snapshot(users, groups)
    };
    let index: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id.as_str(), i))
        .collect();
    let mut issues = Vec::new();
    let t0 = std::time::Instant::now();
    let copts = CompileOptions { now: opts.now };
    // Compiled in parallel; the issues in group order.
    let planned: Vec<(Plan, Vec<TenantIssue>)> = groups
        .par_iter()
        .map(|g| {
            let mut mine = Vec::new();
            let p = plan_group(g, &index, tenant.devices.is_some(), &copts, &mut mine);
            (p, mine)
        })
        .collect();
    let mut plans: Vec<Plan> = Vec::with_capacity(planned.len());
    for (p, mine) in planned {
        plans.push(p);
        issues.extend(mine);
    }
    let mut out = snapshot_memberships(
        tenant,
        groups,
        users,
        &plans,
        &from_member_of,
        any_members,
        &mut issues,
    );
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = std::time::Instant::now();
    evaluate_rules(tenant, groups, users, &plans, &mut out, &mut issues);
    // Every membership is as long as its table, whatever the rules gave.
    for m in &mut out {
        let len = match m.object {
            ObjectType::User => users.len(),
            ObjectType::Device => tenant.devices.as_ref().map_or(0, Table::len),
        };
        if m.members.len() != len {
            m.members = Bitmap::zeros(len);
        }
    }
    let evaluate_ms = t1.elapsed().as_secs_f64() * 1e3;
    issues.extend(undecided_issues(groups, &plans));
    (
        Memberships {
            groups: out,
            compile_ms,
            evaluate_ms,
        },
        issues,
    )
}

/// Every group's membership before its rule runs: the snapshot's members (from `members`, else
/// the users' own `memberOf`), kept as the membership of a group that is not evaluated;
/// members outside the export and unknown memberships are issues.
fn snapshot_memberships(
    tenant: &Tenant,
    groups: &[Group],
    users: &Table,
    plans: &[Plan],
    from_member_of: &HashMap<usize, Bitmap>,
    any_members: bool,
    issues: &mut Vec<TenantIssue>,
) -> Vec<GroupMembership> {
    // The tenant keeps one index per table; a table of other rows gets its own.
    let own;
    let user_rows = match tenant.user_rows() {
        r if r.indexes(users) => r,
        _ => {
            own = RowIndex::new(users);
            &own
        }
    };
    let device_rows = tenant.device_rows();
    let mut out: Vec<GroupMembership> = Vec::with_capacity(groups.len());
    for ((gi, g), plan) in groups.iter().enumerate().zip(plans) {
        let (rows, len) = match plan.object {
            ObjectType::User => (Some(&user_rows), users.len()),
            ObjectType::Device => (
                device_rows.as_ref(),
                tenant.devices.as_ref().map_or(0, Table::len),
            ),
        };
        let mut outside = 0;
        let mut nested = 0;
        let snapshot = match (&g.members, rows) {
            (Some(members), Some(rows)) => {
                let mut b = Bitmap::zeros(len);
                for (id, kind) in members {
                    match (kind, rows.get(id)) {
                        (MemberKind::Group, _) => nested += 1,
                        (_, Some(r)) => b.set(r, true),
                        (_, None) => outside += 1,
                    }
                }
                Some(b)
            }
            (None, _) if plan.object == ObjectType::User && !any_members => {
                from_member_of.get(&gi).cloned().or_else(|| {
                    // Users exported with `memberOf` but in no group: an empty membership.
                    (users.own_member_of().is_some_and(|c| !c.values.is_empty()))
                        .then(|| Bitmap::zeros(len))
                })
            }
            _ => None,
        };
        if outside > 0 {
            issues.push(TenantIssue::about_group(
                IssueKind::MembersNotInExport,
                Severity::Warning,
                g,
                format!(
                    "{outside} exported member(s) are not in the {} export; they are left out (a partial export, or objects of another type)",
                    plan.object.as_str().to_owned() + "s"
                ),
            ));
        }
        let evaluated = plan.processing == Processing::Evaluated;
        let known = evaluated || snapshot.is_some();
        if !known {
            issues.push(TenantIssue::about_group(
                IssueKind::MembershipUnknown,
                Severity::Warning,
                g,
                "membership unknown (not evaluated, and no members exported): export groups with $expand=members, or page /groups/{id}/members".into(),
            ));
        }
        // An evaluated group's members come from its rule: no zero bitmap is made for it here
        // (15,000 of them are 1.9 GB at 1M users, held while the rules' results are made).
        let members = match (evaluated, &snapshot) {
            (false, Some(s)) => s.clone(),
            (true, _) => Bitmap::default(),
            (false, None) => Bitmap::zeros(len),
        };
        out.push(GroupMembership {
            object: plan.object,
            processing: plan.processing.clone(),
            members,
            known,
            snapshot,
            outside,
            nested,
        });
    }
    out
}

/// Runs the rules into `out`, per object type: attribute rules first; then memberOf rules over
/// the memberships computed so far, repeated until they settle (at most `MEMBER_OF_ROUNDS`).
fn evaluate_rules(
    tenant: &Tenant,
    groups: &[Group],
    users: &Table,
    plans: &[Plan],
    out: &mut [GroupMembership],
    issues: &mut Vec<TenantIssue>,
) {
    for (object, table) in [
        (ObjectType::User, Some(users)),
        (ObjectType::Device, tenant.devices.as_ref()),
    ] {
        let Some(table) = table else { continue };
        let pick = |member_of: bool| -> Vec<(usize, Program)> {
            plans
                .iter()
                .enumerate()
                .filter(|(_, p)| p.object == object && p.sources.is_some() == member_of)
                .filter_map(|(gi, p)| p.program.clone().map(|p| (gi, p)))
                .collect()
        };
        evaluate_into(out, &pick(false), table);
        let member_of = pick(true);
        if member_of.is_empty() {
            continue;
        }
        issues.extend(member_of_issues(groups, plans, out, &member_of));
        for _ in 0..MEMBER_OF_ROUNDS {
            let view = member_of_view(table, object, groups, out);
            let before: Vec<Bitmap> = member_of
                .iter()
                .filter_map(|(gi, _)| out.get(*gi).map(|m| m.members.clone()))
                .collect();
            evaluate_into(out, &member_of, &view);
            let settled = member_of
                .iter()
                .zip(&before)
                .all(|((gi, _), b)| out.get(*gi).is_some_and(|m| m.members == *b));
            if settled {
                break;
            }
        }
    }
}

/// The issues of memberOf groups (D56): each is one, and so are source groups whose membership
/// is unknown.
fn member_of_issues(
    groups: &[Group],
    plans: &[Plan],
    out: &[GroupMembership],
    member_of: &[(usize, Program)],
) -> Vec<TenantIssue> {
    let mut issues = Vec::new();
    for (gi, _) in member_of {
        let (Some(g), Some(Some(sources))) =
            (groups.get(*gi), plans.get(*gi).map(|p| p.sources.as_ref()))
        else {
            continue;
        };
        let unknown: Vec<&str> = sources
            .iter()
            .filter(|&&s| out.get(s).is_some_and(|m| !m.known))
            .filter_map(|&s| groups.get(s).map(|g| g.display_name.as_str()))
            .collect();
        let nested: Vec<&str> = sources
            .iter()
            .filter(|&&s| plans.get(s).is_some_and(|p| p.sources.is_some()))
            .filter_map(|&s| groups.get(s).map(|g| g.display_name.as_str()))
            .collect();
        let mut message = format!(
            "a memberOf rule: evaluated over the computed direct members of its {} source group(s) in this export (D56). Maester (MT.1197) reports that memberOf groups stop updating after 2026-11-03; Microsoft's memberOf page does not say so: if it holds for this tenant, the real membership stays as exported",
            sources.len()
        );
        if !nested.is_empty() {
            message.push_str(&format!(
                "; its sources include memberOf groups ({}), which Entra does not allow",
                nested.join(", ")
            ));
        }
        issues.push(TenantIssue::about_group(
            IssueKind::MemberOfRule,
            Severity::Warning,
            g,
            message,
        ));
        if !unknown.is_empty() {
            issues.push(TenantIssue::about_group(
                IssueKind::MembershipUnknown,
                Severity::Warning,
                g,
                format!(
                    "source group(s) with unknown membership: {}; this group's computed membership is incomplete",
                    unknown.join(", ")
                ),
            ));
        }
    }
    issues
}

/// Groups whose `-match` could not decide values (D63): their membership rests on a guess.
fn undecided_issues(groups: &[Group], plans: &[Plan]) -> Vec<TenantIssue> {
    let mut issues = Vec::new();
    let compiled: Vec<(usize, &Program)> = plans
        .iter()
        .enumerate()
        .filter_map(|(gi, p)| p.program.as_ref().map(|p| (gi, p)))
        .collect();
    let programs: Vec<&Program> = compiled.iter().map(|&(_, p)| p).collect();
    for ((gi, _), n) in compiled.iter().zip(crate::vm::undecided(&programs)) {
        if let (true, Some(g)) = (n > 0, groups.get(*gi)) {
            issues.push(TenantIssue::about_group(
                IssueKind::PatternUndecided,
                Severity::Error,
                g,
                undecided_message(n),
            ));
        }
    }
    issues
}

/// What an issue or warning says about `n` values a rule's `-match` could not decide (D63).
pub fn undecided_message(n: u64) -> String {
    format!(
        "{n} value(s) could not be decided by a `-match` pattern that needs backtracking (look-around or back-references): each exhausted the backtracking limit ({} steps){}, and counts as no match; the membership may be wrong. Rewrite the pattern without look-around or back-references (then it runs in linear time), or narrow it",
        crate::pattern::BACKTRACK_LIMIT,
        if n > crate::pattern::UNDECIDED_CAP {
            format!(
                ", or came after the first {} such values, when the pattern stopped trying",
                crate::pattern::UNDECIDED_CAP
            )
        } else {
            String::new()
        }
    )
}

/// Evaluates `programs` over `table` in one pass and stores each group's members.
fn evaluate_into(out: &mut [GroupMembership], programs: &[(usize, Program)], table: &Table) {
    if programs.is_empty() {
        return;
    }
    let ps: Vec<Program> = programs.iter().map(|(_, p)| p.clone()).collect();
    for ((gi, _), bits) in programs.iter().zip(crate::vm::evaluate(&ps, table)) {
        if let Some(m) = out.get_mut(*gi) {
            m.members = bits;
        }
    }
}

/// `table` with memberOf as the memberships computed so far: for every group of this object
/// type whose membership is known, its members; for group ids not in the export, the
/// records' own `memberOf` (`$expand=memberOf`).
fn member_of_view(
    table: &Table,
    object: ObjectType,
    groups: &[Group],
    memberships: &[GroupMembership],
) -> Table {
    let ids: std::collections::HashSet<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    let own = table.own_member_of();
    let of_object: Vec<(&str, &Bitmap)> = groups
        .iter()
        .zip(memberships)
        .filter(|(_, m)| m.object == object && m.known)
        .map(|(g, m)| (g.id.as_str(), &m.members))
        .collect();
    table.with_member_of(|row, out| {
        for (id, members) in &of_object {
            if members.get(row) {
                out.push((*id).to_string());
            }
        }
        if let Some(own) = own {
            for &code in own.codes(row) {
                if let Some(v) = own.value(code) {
                    let v = v.trim().to_ascii_lowercase();
                    if !ids.contains(v.as_str()) {
                        out.push(v);
                    }
                }
            }
        }
    })
}
