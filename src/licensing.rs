//! Group-based licensing: from group memberships to every user's `licenseAssignmentStates`,
//! `assignedLicenses` and effective service plans, with per-group and per-SKU summaries.
//!
//! The rules, each from Microsoft Learn (entra-docs) unless marked as dynrule's decision
//! (`grammar/DECISIONS.md`, D36–D47):
//! - **Eligible groups**: security groups and Microsoft 365 groups with `securityEnabled`
//!   ("can only be used with security groups, and Microsoft 365 groups that have
//!   securityEnabled=TRUE", concept-group-based-licensing). Only **direct** user members are
//!   licensed: "nested groups are not supported" (same page).
//! - **One seat per (user, SKU)**, whatever the number of sources; the enabled plans are the
//!   union over sources of (SKU plans − that source's `disabledPlans`) ("If a user is assigned
//!   same license from multiple sources, the license will be consumed only once";
//!   licensing-group-advanced, "multiple groups"). Direct and inherited assignments coexist
//!   and direct ones are never changed here (licensing-groups-migrate-users).
//! - **Usage location**: a user without `usageLocation` takes the tenant's
//!   (`organization.countryLetterCode`) for group licensing (licensing-groups-assign, "users
//!   who don't have a usage location specified inherit the location of the directory"). A plan
//!   prohibited there gives `ProhibitedInUsageLocationViolation` (the table is
//!   [`crate::catalog::LicensingRules::prohibited`], empty by default).
//! - **All or nothing per (user, group)**: "If Microsoft Entra ID can't assign one of the
//!   products because of business logic problems, it won't assign the other licenses in the
//!   group either" (licensing-group-advanced).
//! - **Conflicts** (`MutuallyExclusiveViolation`) and **dependencies on removal**
//!   (`DependencyViolation`) from the rules tables; **duplicate proxy addresses**
//!   (`UniquenessViolation`) when a user newly gets an Exchange mailbox plan
//!   (licensing-groups-resolve-problems).
//! - **Seats** (D39): assignable = `prepaidUnits.enabled + warning`; free for new holders =
//!   assignable − `consumedUnits` + seats released by users who lose every source of the SKU.
//!   Users who already hold the SKU keep their seat. New holders are served in a fixed order:
//!   first (user, group) pairs the snapshot already shows as assigned, then by group id, then
//!   by user id; the rest get `CountViolation`. Entra documents no order
//!   (MicrosoftDocs/azure-docs#53210); seats freed by failures in the same run are not handed
//!   out again (Entra needs a reprocess for that, licensing-groups-resolve-problems). A pair
//!   that needs a seat holds, until it is granted one, only what D40 keeps: a SKU it would
//!   re-provide after the user left its old source is released, and taking it back costs a
//!   seat like a new one — so a result applied and recomputed is a fixpoint (property-tested).
//! - **A failed (user, group) pair never takes away what the snapshot shows the user holding
//!   from that group** (D40): such states become `ActiveWithError` with the error; new SKUs
//!   become `Error`.

use crate::catalog::{Catalog, PlanIx};
use crate::recompute::Memberships;
use crate::table::{ColumnKey, LicenseEntry};
use crate::tenant::{IssueKind, Severity, Tenant, TenantIssue};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

/// Graph `licenseAssignmentState.error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum LicenseError {
    /// Not enough seats.
    CountViolation,
    /// A plan conflicts with one the user has from another product.
    MutuallyExclusiveViolation,
    /// Removing the licence would leave another plan without its prerequisite.
    DependencyViolation,
    /// A plan is not allowed in the user's usage location.
    ProhibitedInUsageLocationViolation,
    /// The user's proxy address is already taken in the tenant.
    UniquenessViolation,
    /// Anything else (a state copied from the snapshot with an unrecognised error).
    Other,
}

impl LicenseError {
    /// Graph's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseError::CountViolation => "CountViolation",
            LicenseError::MutuallyExclusiveViolation => "MutuallyExclusiveViolation",
            LicenseError::DependencyViolation => "DependencyViolation",
            LicenseError::ProhibitedInUsageLocationViolation => {
                "ProhibitedInUsageLocationViolation"
            }
            LicenseError::UniquenessViolation => "UniquenessViolation",
            LicenseError::Other => "Other",
        }
    }

    /// A snapshot's `error` text (any case; unknown values are `Other`).
    pub(crate) fn parse(s: &str) -> LicenseError {
        [
            LicenseError::CountViolation,
            LicenseError::MutuallyExclusiveViolation,
            LicenseError::DependencyViolation,
            LicenseError::ProhibitedInUsageLocationViolation,
            LicenseError::UniquenessViolation,
        ]
        .into_iter()
        .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
        .unwrap_or(LicenseError::Other)
    }
}

impl fmt::Display for LicenseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Graph `licenseAssignmentState.state`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum StateKind {
    /// Assigned.
    #[default]
    Active,
    /// Still assigned, but the last processing failed (D40).
    ActiveWithError,
    /// Not assigned because of `error`.
    Error,
    /// Turned off without an error (only copied from a snapshot).
    Disabled,
}

impl StateKind {
    /// Graph's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Active => "Active",
            StateKind::ActiveWithError => "ActiveWithError",
            StateKind::Error => "Error",
            StateKind::Disabled => "Disabled",
        }
    }

    /// True when the user holds the licence (it uses a seat and enables plans).
    pub fn holds(self) -> bool {
        matches!(self, StateKind::Active | StateKind::ActiveWithError)
    }

    /// A snapshot's `state` (any case); a missing one is `Error` when there is an error, else
    /// `Active`.
    pub(crate) fn parse(s: Option<&str>, error: bool) -> StateKind {
        match s.map(str::trim) {
            Some(s) if s.eq_ignore_ascii_case("ActiveWithError") => StateKind::ActiveWithError,
            Some(s) if s.eq_ignore_ascii_case("Error") => StateKind::Error,
            Some(s) if s.eq_ignore_ascii_case("Disabled") => StateKind::Disabled,
            Some(s) if s.eq_ignore_ascii_case("Active") => StateKind::Active,
            _ if error => StateKind::Error,
            _ => StateKind::Active,
        }
    }
}

/// One computed `licenseAssignmentState`, with indices into [`Assignments`]' tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    /// Index into [`Assignments::skus`].
    pub sku: u32,
    /// Index into [`Assignments::sources`]: `None` for a direct assignment.
    pub source: Option<u32>,
    /// Index into [`Assignments::disabled`].
    pub disabled: u32,
    /// `state`.
    pub state: StateKind,
    /// `error`.
    pub error: Option<LicenseError>,
    /// Index into [`Assignments::details`]: why, for an error (0 = none).
    pub detail: u32,
}

/// A SKU the tenant uses, with its seat accounting.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuSeats {
    /// `skuId`.
    pub sku_id: String,
    /// `skuPartNumber` (empty when unknown).
    pub sku_part_number: String,
    /// `prepaidUnits.enabled + warning`; `None` when the snapshot has no subscribedSkus (seats
    /// are then not limited).
    pub assignable: Option<u64>,
    /// `consumedUnits` of the snapshot (or, without it, users holding the SKU in the snapshot).
    pub consumed_before: u64,
    /// Seats used after recomputation.
    pub consumed_after: u64,
    /// Users (in the export) who hold the SKU in the snapshot.
    pub holders_before: u64,
    /// Users who hold it after.
    pub holders_after: u64,
    /// Users who wanted a new seat and got `CountViolation`.
    pub count_violations: u64,
    /// `assignable − consumed_after` (negative when over-assigned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_after: Option<i64>,
    /// Service plans of the SKU (indices into the catalog).
    #[serde(skip)]
    pub plans: Vec<PlanIx>,
}

/// The licensing result of one group (Entra's audit event "Finish applying group based license
/// to users": "Users successfully assigned licenses: N, Users for whom license assignment
/// failed: M").
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupLicensing {
    /// Whether the group's licences were processed; `false` with `reason` otherwise.
    pub processed: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Members who got (or kept) all of the group's licences.
    pub users_succeeded: u64,
    /// Members for whom assignment failed.
    pub users_failed: u64,
    /// Failures by error.
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Former members whose licence from the group stays because removing it would break a
    /// dependency (`DependencyViolation`).
    pub removals_blocked: u64,
}

/// The result of group-based licensing over a tenant: per user a list of states (interned:
/// users with the same states share one list), per group and per SKU a summary.
#[derive(Clone, Debug, Default)]
pub struct Assignments {
    /// SKUs referenced anywhere, with seats.
    pub skus: Vec<SkuSeats>,
    /// Group ids: the tenant's groups first (same indices), then groups that appear only in
    /// users' `assignedByGroup`.
    pub sources: Vec<String>,
    /// Distinct `disabledPlans` lists (GUIDs, sorted); 0 is the empty list.
    pub disabled: Vec<Vec<String>>,
    /// Why a state has its error; 0 is "".
    pub details: Vec<String>,
    /// Per user row, an index into `lists`.
    pub per_user: Vec<u32>,
    /// Distinct state lists; 0 is the empty list.
    pub lists: Vec<Vec<State>>,
    /// Per tenant group, in order.
    pub groups: Vec<GroupLicensing>,
    /// Users whose usage location came from the tenant.
    pub tenant_location_users: u64,
    /// Users with licensing activity and no usage location at all (no user value, no tenant).
    pub no_location_users: u64,
    /// Milliseconds spent.
    pub ms: f64,
    /// Enabled plans per (sku, disabled list) — cached.
    enabled_cache: HashMap<(u32, u32), Vec<PlanIx>>,
}

impl Assignments {
    /// The states of user `row`.
    pub fn states(&self, row: usize) -> &[State] {
        self.per_user
            .get(row)
            .and_then(|&c| self.lists.get(c as usize))
            .map_or(&[], Vec::as_slice)
    }

    /// Enabled plans of `sku` minus the `disabled` list.
    pub fn enabled(&self, sku: u32, disabled: u32) -> &[PlanIx] {
        self.enabled_cache
            .get(&(sku, disabled))
            .map_or(&[], Vec::as_slice)
    }

    /// `assignedLicenses` of a state list: per held SKU, the plans disabled in every holding
    /// source (Graph lists one entry per SKU however many sources give it). Returns
    /// `(sku, disabledPlans)` sorted by SKU index.
    pub fn held(&self, states: &[State]) -> Vec<(u32, Vec<String>)> {
        let mut out: Vec<(u32, BTreeSet<&str>)> = Vec::new();
        for s in states.iter().filter(|s| s.state.holds()) {
            let d: BTreeSet<&str> = self
                .disabled
                .get(s.disabled as usize)
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            match out.iter_mut().find(|(k, _)| *k == s.sku) {
                Some((_, acc)) => acc.retain(|p| d.contains(p)),
                None => out.push((s.sku, d)),
            }
        }
        out.sort_by_key(|(k, _)| *k);
        out.into_iter()
            .map(|(k, d)| (k, d.into_iter().map(str::to_string).collect()))
            .collect()
    }

    /// Effective service plans of a state list: the union of enabled plans over held states,
    /// company-wide plans left out. Sorted.
    pub fn effective_plans(&self, states: &[State], catalog: &Catalog) -> Vec<PlanIx> {
        let mut out: BTreeSet<PlanIx> = BTreeSet::new();
        for s in states.iter().filter(|s| s.state.holds()) {
            out.extend(self.enabled(s.sku, s.disabled).iter().copied());
        }
        out.into_iter()
            .filter(|p| catalog.plan_info(*p).is_none_or(|i| !i.company))
            .collect()
    }

    /// The group id of a state's source (`None` for direct).
    pub fn source_id(&self, s: &State) -> Option<&str> {
        s.source
            .and_then(|g| self.sources.get(g as usize))
            .map(String::as_str)
    }
}

/// Per-user inputs read from the snapshot.
#[derive(Clone, Debug, Default)]
struct SnapState {
    sku: u32,
    source: Option<u32>,
    disabled: u32,
    state: StateKind,
    error: Option<LicenseError>,
}

/// A group's licences, ready to apply.
struct GroupPlan {
    /// (sku, disabled list).
    licences: Vec<(u32, u32)>,
    /// The enabled plans that some rule names: prohibited somewhere, in a conflict, or a
    /// mailbox (the per-user checks only look at these).
    prohibited: Vec<PlanIx>,
    conflicting: Vec<PlanIx>,
    mailboxes: Vec<PlanIx>,
}

/// Interning tables built before the per-user pass.
struct Tables {
    skus: Vec<SkuSeats>,
    sku_ix: HashMap<String, u32>,
    sources: Vec<String>,
    source_ix: HashMap<String, u32>,
    disabled: Vec<Vec<String>>,
    disabled_ix: HashMap<Vec<String>, u32>,
    details: Vec<String>,
    detail_ix: HashMap<String, u32>,
}

impl Tables {
    fn sku(&mut self, id: &str, catalog: &Catalog) -> u32 {
        if let Some(&i) = self.sku_ix.get(id) {
            return i;
        }
        let i = self.skus.len() as u32;
        let info = catalog.sku_by_id(id);
        self.skus.push(SkuSeats {
            sku_id: id.to_string(),
            sku_part_number: info.map(|s| s.sku_part_number.clone()).unwrap_or_default(),
            assignable: None,
            consumed_before: 0,
            consumed_after: 0,
            holders_before: 0,
            holders_after: 0,
            count_violations: 0,
            available_after: None,
            plans: info.map(|s| s.plans.clone()).unwrap_or_default(),
        });
        self.sku_ix.insert(id.to_string(), i);
        i
    }

    fn source(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.source_ix.get(id) {
            return i;
        }
        let i = self.sources.len() as u32;
        self.sources.push(id.to_string());
        self.source_ix.insert(id.to_string(), i);
        i
    }

    fn disabled(&mut self, list: &[String]) -> u32 {
        if let Some(&i) = self.disabled_ix.get(list) {
            return i;
        }
        let i = self.disabled.len() as u32;
        self.disabled.push(list.to_vec());
        self.disabled_ix.insert(list.to_vec(), i);
        i
    }

    fn detail(&mut self, text: String) -> u32 {
        if let Some(&i) = self.detail_ix.get(&text) {
            return i;
        }
        let i = self.details.len() as u32;
        self.details.push(text.clone());
        self.detail_ix.insert(text, i);
        i
    }
}

/// What the per-user pass decided for one (user, group) pair before seats are counted.
#[derive(Clone, Debug)]
struct Txn {
    group: u32,
    /// The user held a licence from this group in the snapshot.
    established: bool,
    /// A reason not to apply the group (error, detail text).
    error: Option<(LicenseError, String)>,
    /// SKUs that need a new seat.
    new_skus: Vec<u32>,
}

#[derive(Clone, Debug, Default)]
struct UserWork {
    txns: Vec<Txn>,
    /// Snapshot states kept as they are (direct, and groups not processed).
    kept: Vec<SnapState>,
    /// Snapshot states inherited from processed groups.
    inherited: Vec<SnapState>,
    /// Snapshot inherited states that go away: (state, blocked by a dependency: detail).
    departures: Vec<(SnapState, Option<String>)>,
    /// SKUs the user holds in the snapshot.
    held_before: Vec<u32>,
    /// SKUs the user would hold with every candidate succeeding.
    held_after: Vec<u32>,
    /// Location from the tenant.
    tenant_location: bool,
    no_location: bool,
}

/// `a ∪= b`, both sorted and deduplicated (a linear merge).
fn sorted_union(a: &mut Vec<PlanIx>, b: &[PlanIx]) {
    if b.is_empty() {
        return;
    }
    if a.is_empty() {
        a.extend_from_slice(b);
        return;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => {
                out.push(x);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(y);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(x);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(a.get(i..).unwrap_or(&[]));
    out.extend_from_slice(b.get(j..).unwrap_or(&[]));
    *a = out;
}

/// Runs group-based licensing over the tenant's users with the given memberships (see the
/// module docs for the rules). Problems found on the way (unknown SKUs, groups that cannot be
/// licensed) are returned as issues; the affected group keeps its snapshot licence states.
///
/// `groups` are the tenant's groups, or a what-if's changed copy of them (same order as
/// `memberships`). A group whose membership is unknown ([`crate::recompute::GroupMembership::known`])
/// is not processed: its members keep their snapshot states (D57).
pub fn assign(
    tenant: &Tenant,
    groups: &[crate::tenant::Group],
    memberships: &Memberships,
) -> (Assignments, Vec<TenantIssue>) {
    let t0 = std::time::Instant::now();
    let catalog = &tenant.catalog;
    let users = &tenant.users;
    let n = users.len();
    let mut issues = Vec::new();
    let mut t = Tables {
        skus: Vec::new(),
        sku_ix: HashMap::new(),
        sources: Vec::new(),
        source_ix: HashMap::new(),
        disabled: Vec::new(),
        disabled_ix: HashMap::new(),
        details: vec![String::new()],
        detail_ix: HashMap::from([(String::new(), 0)]),
    };
    t.disabled(&[]);
    for g in groups {
        t.source(&g.id);
    }
    // Subscribed SKUs first, so their seats are known. `consumedUnits` by SKU index, when
    // exported (else users holding the SKU in the snapshot are counted).
    let mut consumed_units: HashMap<u32, u64> = HashMap::new();
    if let Some(skus) = &tenant.skus {
        for s in skus {
            let i = t.sku(&s.sku_id, catalog);
            if let Some(e) = t.skus.get_mut(i as usize) {
                e.assignable = s.assignable();
                if e.sku_part_number.is_empty() {
                    e.sku_part_number = s.sku_part_number.clone();
                }
                if let Some(c) = s.consumed_units {
                    consumed_units.insert(i, c);
                }
            }
        }
    }

    // Groups: which can be processed, and their plans.
    let mut group_info: Vec<GroupLicensing> = Vec::with_capacity(groups.len());
    let mut plans: Vec<Option<GroupPlan>> = Vec::with_capacity(groups.len());
    for (gi, g) in groups.iter().enumerate() {
        let m = memberships.groups.get(gi);
        let object = m.map(|m| m.object);
        let known = m.is_none_or(|m| m.known);
        let (info, plan) = plan_group(tenant, &mut t, g, object, known, &mut issues);
        group_info.push(info);
        plans.push(plan);
    }

    // Snapshot states per distinct list, converted once.
    let states_col = users.licenses(ColumnKey::LicenseStates);
    let assigned_col = users.licenses(ColumnKey::AssignedLicenses);
    let convert = |entries: &[LicenseEntry], t: &mut Tables, direct_only: bool| {
        entries
            .iter()
            .map(|e| {
                let error = e.error.as_deref().map(LicenseError::parse);
                SnapState {
                    sku: t.sku(&e.sku_id, catalog),
                    source: if direct_only {
                        None
                    } else {
                        e.assigned_by_group.as_deref().map(|g| t.source(g))
                    },
                    disabled: t.disabled(&e.disabled_plans),
                    state: StateKind::parse(e.state.as_deref(), error.is_some()),
                    error,
                }
            })
            .collect::<Vec<_>>()
    };
    let snap_states: Vec<Vec<SnapState>> = states_col
        .map(|c| c.sets.iter().map(|s| convert(s, &mut t, false)).collect())
        .unwrap_or_default();
    let snap_assigned: Vec<Vec<SnapState>> = assigned_col
        .map(|c| c.sets.iter().map(|s| convert(s, &mut t, true)).collect())
        .unwrap_or_default();
    // Enabled plans for every (sku, disabled) pair that can occur.
    let mut pairs: HashSet<(u32, u32)> = HashSet::new();
    for p in plans.iter().flatten() {
        pairs.extend(p.licences.iter().copied());
    }
    for s in snap_states.iter().chain(snap_assigned.iter()).flatten() {
        pairs.insert((s.sku, s.disabled));
    }
    // Add-on products (D44): no core workload plan (mailbox, SharePoint/OneDrive, Teams) of
    // their own. Suites are consistent by Microsoft's design, so only plans that add-ons bring
    // can be left without a prerequisite by a removal.
    let core: BTreeSet<PlanIx> = tenant
        .rules
        .data_plans
        .iter()
        .chain(&tenant.rules.mailbox_plans)
        .copied()
        .collect();
    let addon: Vec<bool> = t
        .skus
        .iter()
        .map(|k| !k.plans.is_empty() && !k.plans.iter().any(|p| core.contains(p)))
        .collect();
    let enabled_cache: HashMap<(u32, u32), Vec<PlanIx>> = pairs
        .into_iter()
        .map(|(s, d)| ((s, d), enabled_of(&t, catalog, s, d)))
        .collect();

    // Users → their licensing groups (CSR), groups in id order.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| {
        let ga = groups.get(a).map(|g| g.id.as_str());
        let gb = groups.get(b).map(|g| g.id.as_str());
        ga.cmp(&gb)
    });
    let mut group_rank = vec![0u32; groups.len()];
    for (r, &g) in order.iter().enumerate() {
        if let Some(x) = group_rank.get_mut(g) {
            *x = r as u32;
        }
    }
    let licensing: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&g| plans.get(g).is_some_and(Option::is_some))
        .collect();
    let mut counts = vec![0u32; n + 1];
    for &g in &licensing {
        if let Some(m) = memberships.groups.get(g) {
            for r in m.members.ones_iter() {
                if let Some(c) = counts.get_mut(r + 1) {
                    *c += 1;
                }
            }
        }
    }
    for i in 1..counts.len() {
        let prev = counts.get(i - 1).copied().unwrap_or(0);
        if let Some(c) = counts.get_mut(i) {
            *c += prev;
        }
    }
    let offsets = counts;
    let mut fill = offsets.clone();
    let mut member_groups = vec![0u32; offsets.last().copied().unwrap_or(0) as usize];
    for &g in &licensing {
        if let Some(m) = memberships.groups.get(g) {
            for r in m.members.ones_iter() {
                if let Some(at) = fill.get_mut(r) {
                    if let Some(slot) = member_groups.get_mut(*at as usize) {
                        *slot = g as u32;
                    }
                    *at += 1;
                }
            }
        }
    }

    // Duplicate proxy addresses (for UniquenessViolation), only when mailboxes are tracked.
    // Computed by the first user who newly gets a mailbox (often nobody).
    let duplicates: std::sync::OnceLock<Duplicates> = std::sync::OnceLock::new();
    let usage = users.str_column(ColumnKey::Prop("usageLocation"));
    let proxies = match users.column(ColumnKey::Prop("proxyAddresses")) {
        Some(crate::table::Column::List(l)) => Some(l),
        _ => None,
    };

    // Pass 1, per user in parallel: candidate (user, group) pairs and their checks.
    let pass1 = Pass1 {
        tenant,
        offsets: &offsets,
        member_groups: &member_groups,
        states_col,
        assigned_col,
        snap_states: &snap_states,
        snap_assigned: &snap_assigned,
        enabled_cache: &enabled_cache,
        addon: &addon,
        plans: &plans,
        group_rank: &group_rank,
        usage,
        proxies,
        duplicates: &duplicates,
    };
    let work: Vec<UserWork> = (0..n).into_par_iter().map(|row| pass1.user(row)).collect();

    // Seats released by users who lose every source of a SKU.
    let nskus = t.skus.len();
    let mut released = vec![0u64; nskus];
    let mut holders_before = vec![0u64; nskus];
    for w in &work {
        for &s in &w.held_before {
            if let Some(h) = holders_before.get_mut(s as usize) {
                *h += 1;
            }
            if w.held_after.binary_search(&s).is_err() {
                if let Some(r) = released.get_mut(s as usize) {
                    *r += 1;
                }
            }
        }
    }
    let mut pool: Vec<Option<i64>> = t
        .skus
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let consumed = consumed_units
                .get(&(i as u32))
                .copied()
                .unwrap_or_else(|| holders_before.get(i).copied().unwrap_or(0));
            s.assignable.map(|a| {
                // Seat counts come from the export: i128 cannot overflow on any u64 values.
                let free = i128::from(a) - i128::from(consumed)
                    + i128::from(released.get(i).copied().unwrap_or(0));
                i64::try_from(free).unwrap_or(if free < 0 { i64::MIN } else { i64::MAX })
            })
        })
        .collect();

    // Pass 2, in the documented order: hand out new seats.
    let mut user_rank: Vec<u32> = (0..n as u32).collect();
    let mut wanting: Vec<(bool, u32, u32, u32, usize)> = Vec::new(); // (!established, group rank, user rank placeholder, row, txn)
    for (row, w) in work.iter().enumerate() {
        for (k, x) in w.txns.iter().enumerate() {
            if x.error.is_none() && !x.new_skus.is_empty() {
                wanting.push((
                    !x.established,
                    group_rank.get(x.group as usize).copied().unwrap_or(0),
                    0,
                    row as u32,
                    k,
                ));
            }
        }
    }
    if !wanting.is_empty() {
        let mut by_id: Vec<u32> = (0..n as u32).collect();
        by_id.par_sort_by(|&a, &b| users.id(a as usize).cmp(&users.id(b as usize)));
        for (rank, &row) in by_id.iter().enumerate() {
            if let Some(r) = user_rank.get_mut(row as usize) {
                *r = rank as u32;
            }
        }
        for x in &mut wanting {
            x.2 = user_rank.get(x.3 as usize).copied().unwrap_or(0);
        }
        wanting.par_sort_unstable();
    }
    // (row, txn) → failed on seats: the SKU that ran out.
    let mut seat_fail: HashMap<(u32, usize), u32> = HashMap::new();
    let mut granted: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(_, _, _, row, k) in &wanting {
        let Some(x) = work.get(row as usize).and_then(|w| w.txns.get(k)) else {
            continue;
        };
        let got = granted.get(&row);
        // Every SKU of the group the user does not hold yet takes a seat: new ones, and ones
        // held before whose seat pass 1 counted as released (held only if this pair succeeds).
        let held_after = work
            .get(row as usize)
            .map_or(&[][..], |w| w.held_after.as_slice());
        let needed: Vec<u32> = plans
            .get(x.group as usize)
            .and_then(Option::as_ref)
            .map_or(&[][..], |gp| gp.licences.as_slice())
            .iter()
            .map(|&(s, _)| s)
            .filter(|s| held_after.binary_search(s).is_err())
            .filter(|s| got.is_none_or(|g| !g.contains(s)))
            .collect();
        let short = needed.iter().copied().find(|&s| {
            pool.get(s as usize)
                .copied()
                .flatten()
                .is_some_and(|p| p <= 0)
        });
        match short {
            Some(s) => {
                seat_fail.insert((row, k), s);
            }
            None => {
                for &s in &needed {
                    if let Some(Some(p)) = pool.get_mut(s as usize) {
                        *p -= 1;
                    }
                }
                granted.entry(row).or_default().extend(needed);
            }
        }
    }

    // Pass 3: final states per user, then interned.
    let mut count_fail_details: HashMap<u32, u32> = HashMap::new();
    for &s in seat_fail.values() {
        count_fail_details.entry(s).or_insert_with(|| {
            let label = t
                .skus
                .get(s as usize)
                .map(|k| {
                    if k.sku_part_number.is_empty() {
                        k.sku_id.clone()
                    } else {
                        k.sku_part_number.clone()
                    }
                })
                .unwrap_or_default();
            t.detail(format!("no seat left for {label}"))
        });
    }
    // Details of pass-1 errors, interned sequentially (only users with one).
    let mut txn_details: HashMap<(u32, usize), u32> = HashMap::new();
    let mut dep_details: HashMap<(u32, usize), u32> = HashMap::new();
    for (row, w) in work.iter().enumerate() {
        for (k, x) in w.txns.iter().enumerate() {
            if let Some((_, d)) = &x.error {
                txn_details.insert((row as u32, k), t.detail(d.clone()));
            }
        }
        for (k, (_, b)) in w.departures.iter().enumerate() {
            if let Some(d) = b {
                dep_details.insert((row as u32, k), t.detail(d.clone()));
            }
        }
    }
    let per_user_states: Vec<Vec<State>> = work
        .par_iter()
        .enumerate()
        .map(|(row, w)| {
            let mut out: Vec<State> = Vec::new();
            for s in &w.kept {
                out.push(State {
                    sku: s.sku,
                    source: s.source,
                    disabled: s.disabled,
                    state: s.state,
                    error: s.error,
                    detail: 0,
                });
            }
            for (k, x) in w.txns.iter().enumerate() {
                let Some(Some(gp)) = plans.get(x.group as usize) else {
                    continue;
                };
                let fail = match (&x.error, seat_fail.get(&(row as u32, k))) {
                    (Some((e, _)), _) => {
                        Some((*e, txn_details.get(&(row as u32, k)).copied().unwrap_or(0)))
                    }
                    (None, Some(s)) => Some((
                        LicenseError::CountViolation,
                        count_fail_details.get(s).copied().unwrap_or(0),
                    )),
                    (None, None) => None,
                };
                for &(sku, d) in &gp.licences {
                    match fail {
                        None => out.push(State {
                            sku,
                            source: Some(x.group),
                            disabled: d,
                            state: StateKind::Active,
                            error: None,
                            detail: 0,
                        }),
                        Some((e, detail)) => {
                            // The snapshot's state for this (group, sku), if the user held it.
                            let held = snap_of(w, x.group, sku);
                            match held {
                                Some(h) if h.state.holds() => out.push(State {
                                    sku,
                                    source: Some(x.group),
                                    disabled: h.disabled,
                                    state: StateKind::ActiveWithError,
                                    error: Some(e),
                                    detail,
                                }),
                                _ => out.push(State {
                                    sku,
                                    source: Some(x.group),
                                    disabled: d,
                                    state: StateKind::Error,
                                    error: Some(e),
                                    detail,
                                }),
                            }
                        }
                    }
                }
            }
            for (k, (s, blocked)) in w.departures.iter().enumerate() {
                if blocked.is_some() {
                    out.push(State {
                        sku: s.sku,
                        source: s.source,
                        disabled: s.disabled,
                        state: StateKind::ActiveWithError,
                        error: Some(LicenseError::DependencyViolation),
                        detail: dep_details.get(&(row as u32, k)).copied().unwrap_or(0),
                    });
                }
            }
            out.sort_unstable();
            out.dedup();
            out
        })
        .collect();

    let mut lists: Vec<Vec<State>> = vec![Vec::new()];
    let mut list_ix: hashbrown::HashMap<Vec<State>, u32> = hashbrown::HashMap::new();
    list_ix.insert(Vec::new(), 0);
    let mut per_user = Vec::with_capacity(n);
    let mut holders_after = vec![0u64; nskus];
    for states in per_user_states {
        let mut skus: Vec<u32> = states
            .iter()
            .filter(|s| s.state.holds())
            .map(|s| s.sku)
            .collect();
        skus.dedup();
        for s in skus {
            if let Some(h) = holders_after.get_mut(s as usize) {
                *h += 1;
            }
        }
        let code = match list_ix.get(&states) {
            Some(&c) => c,
            None => {
                let c = lists.len() as u32;
                lists.push(states.clone());
                list_ix.insert(states, c);
                c
            }
        };
        per_user.push(code);
    }

    // Per-group audit summary: a member succeeded when none of their pairs with the group
    // failed.
    for (row, w) in work.iter().enumerate() {
        for (k, x) in w.txns.iter().enumerate() {
            let Some(info) = group_info.get_mut(x.group as usize) else {
                continue;
            };
            let err = x.error.as_ref().map(|(e, _)| *e).or_else(|| {
                seat_fail
                    .get(&(row as u32, k))
                    .map(|_| LicenseError::CountViolation)
            });
            match err {
                None => info.users_succeeded += 1,
                Some(e) => {
                    info.users_failed += 1;
                    *info.errors.entry(e.as_str().to_string()).or_default() += 1;
                }
            }
        }
    }
    for w in &work {
        let mut blocked: Vec<u32> = w
            .departures
            .iter()
            .filter(|(_, b)| b.is_some())
            .filter_map(|(s, _)| s.source)
            .collect();
        blocked.sort_unstable();
        blocked.dedup();
        for g in blocked {
            if let Some(info) = group_info.get_mut(g as usize) {
                info.removals_blocked += 1;
            }
        }
    }
    let mut count_violations = vec![0u64; nskus];
    for s in seat_fail.values() {
        if let Some(c) = count_violations.get_mut(*s as usize) {
            *c += 1;
        }
    }
    for (i, s) in t.skus.iter_mut().enumerate() {
        let hb = holders_before.get(i).copied().unwrap_or(0);
        let ha = holders_after.get(i).copied().unwrap_or(0);
        s.consumed_before = consumed_units.get(&(i as u32)).copied().unwrap_or(hb);
        s.holders_before = hb;
        s.holders_after = ha;
        s.consumed_after =
            u64::try_from((i128::from(s.consumed_before) + i128::from(ha) - i128::from(hb)).max(0))
                .unwrap_or(u64::MAX);
        s.count_violations = count_violations.get(i).copied().unwrap_or(0);
        s.available_after = s.assignable.map(|a| {
            let v = i128::from(a) - i128::from(s.consumed_after);
            i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
        });
        if s.plans.is_empty() {
            if let Some(info) = catalog.sku_by_id(&s.sku_id) {
                s.plans = info.plans.clone();
            }
        }
    }
    if let Some(subscribed) = &tenant.skus {
        for s in &t.skus {
            if s.holders_after > 0 && !subscribed.iter().any(|x| x.sku_id == s.sku_id) {
                issues.push(
                    TenantIssue::new(
                        IssueKind::SkuNotSubscribed,
                        Severity::Warning,
                        format!(
                            "users hold SKU {} but it is not among subscribedSkus",
                            if s.sku_part_number.is_empty() {
                                &s.sku_id
                            } else {
                                &s.sku_part_number
                            }
                        ),
                    )
                    .object(s.sku_id.clone()),
                );
            }
        }
    }
    let no_location_users = work.iter().filter(|w| w.no_location).count() as u64;
    if no_location_users > 0 {
        issues.push(TenantIssue::new(
            IssueKind::NoUsageLocation,
            Severity::Warning,
            format!("{no_location_users} licensed user(s) have no usageLocation and the snapshot has no organization.json (countryLetterCode): usage-location rules were not checked for them"),
        ));
    }
    let out = Assignments {
        skus: t.skus,
        sources: t.sources,
        disabled: t.disabled,
        details: t.details,
        per_user,
        lists,
        groups: group_info,
        tenant_location_users: work.iter().filter(|w| w.tenant_location).count() as u64,
        no_location_users,
        ms: t0.elapsed().as_secs_f64() * 1e3,
        enabled_cache,
    };
    (out, issues)
}

/// Why a group's licences cannot be processed, if they cannot (D47).
fn not_processed(
    tenant: &Tenant,
    g: &crate::tenant::Group,
    object: Option<crate::schema::ObjectType>,
    known: bool,
) -> Option<String> {
    let catalog = &tenant.catalog;
    if !g.licenses_members() {
        return Some(
            "not a security group (securityEnabled is false): group-based licensing does not apply"
                .to_string(),
        );
    }
    if object.is_some_and(|o| o != crate::schema::ObjectType::User) {
        return Some("a device group: licences are assigned to users only".to_string());
    }
    if !known {
        return Some("its membership is unknown".to_string());
    }
    g.assigned_licenses.iter().find_map(|l| {
        let subscribed = tenant
            .skus
            .as_ref()
            .is_none_or(|s| s.iter().any(|s| s.sku_id == l.sku_id));
        let known_plans = catalog
            .sku_by_id(&l.sku_id)
            .is_some_and(|s| !s.plans.is_empty());
        if !subscribed {
            let sku = catalog.sku_label(&l.sku_id);
            Some(format!("SKU {sku} is not among the tenant's subscribedSkus"))
        } else if !known_plans {
            Some(format!(
                "the service plans of SKU {} are unknown (not in subscribedSkus.json nor in Microsoft's CSV)",
                l.sku_id
            ))
        } else {
            None
        }
    })
}

/// A group's licensing summary (to be filled in) and, when its licences can be processed, its
/// licences interned with the plans the per-user checks look at. Problems are pushed to
/// `issues`.
fn plan_group(
    tenant: &Tenant,
    t: &mut Tables,
    g: &crate::tenant::Group,
    object: Option<crate::schema::ObjectType>,
    known: bool,
    issues: &mut Vec<TenantIssue>,
) -> (GroupLicensing, Option<GroupPlan>) {
    let catalog = &tenant.catalog;
    let rules = &tenant.rules;
    let mut info = GroupLicensing::default();
    if g.assigned_licenses.is_empty() {
        info.reason = Some("no licences".into());
        return (info, None);
    }
    if let Some(reason) = not_processed(tenant, g, object, known) {
        let message = format!(
            "licences not processed: {reason}; members keep their snapshot licence states from this group"
        );
        issues.push(TenantIssue::about_group(
            IssueKind::LicencesNotProcessed,
            Severity::Error,
            g,
            message,
        ));
        info.reason = Some(reason);
        return (info, None);
    }
    let mut licences = Vec::new();
    for l in &g.assigned_licenses {
        let sku = t.sku(&l.sku_id, catalog);
        let d = t.disabled(&l.disabled_plans);
        licences.push((sku, d));
    }
    licences.sort_unstable();
    licences.dedup_by_key(|(s, _)| *s);
    let mut enabled = Vec::new();
    for &(sku, d) in &licences {
        sorted_union(&mut enabled, &enabled_of(t, catalog, sku, d));
    }
    // Dependencies inside the group: Entra refuses such an assignment, so a snapshot should not
    // have one; when it does, dynrule's tables are probably stale (D43). A dependency the SKUs'
    // own full plan lists do not meet says the table is incomplete for them (the community
    // database misses SHAREPOINTSTANDARD for SHAREPOINTWAC), so only prerequisites this group
    // disabled are reported.
    let set: BTreeSet<PlanIx> = enabled.iter().copied().collect();
    let full: BTreeSet<PlanIx> = licences
        .iter()
        .flat_map(|&(s, _)| {
            t.skus
                .get(s as usize)
                .map(|k| k.plans.clone())
                .unwrap_or_default()
        })
        .collect();
    for &p in &enabled {
        if rules.unmet(p, &full).is_some() {
            continue;
        }
        if let Some(dep) = rules.unmet(p, &set) {
            let requires = dep
                .requires
                .iter()
                .map(|alt| {
                    alt.iter()
                        .map(|q| catalog.plan_label(*q))
                        .collect::<Vec<_>>()
                        .join(" + ")
                })
                .collect::<Vec<_>>()
                .join(" or ");
            let message = format!(
                "enables {} but disables its prerequisite ({requires}); Entra refuses such a group assignment, so the dependency table ({}) may be out of date",
                catalog.plan_label(p),
                dep.source
            );
            issues.push(TenantIssue::about_group(
                IssueKind::LicensingRules,
                Severity::Warning,
                g,
                message,
            ));
        }
    }
    info.processed = true;
    let only =
        |keep: &dyn Fn(&PlanIx) -> bool| enabled.iter().copied().filter(|p| keep(p)).collect();
    let plan = GroupPlan {
        prohibited: only(&|p| rules.prohibited.contains_key(p)),
        conflicting: only(&|p| rules.conflicts.iter().any(|c| c.plans.contains(p))),
        mailboxes: only(&|p| rules.mailbox_plans.contains(p)),
        licences,
    };
    (info, Some(plan))
}

/// Row `row`'s snapshot entries of a licence column, converted (`None` when the row has no
/// value for it).
fn snapshot_list<'a>(
    col: Option<&crate::table::LicenseColumn>,
    converted: &'a [Vec<SnapState>],
    row: usize,
) -> Option<&'a [SnapState]> {
    let code = col?.set_codes.get(row).copied().unwrap_or(0);
    (code != 0).then(|| converted.get(code as usize).map_or(&[][..], Vec::as_slice))
}

/// What pass 1 reads for every user (shared, read-only).
struct Pass1<'a> {
    tenant: &'a Tenant,
    /// CSR: the licensing groups of user `row` are `member_groups[offsets[row]..offsets[row + 1]]`.
    offsets: &'a [u32],
    member_groups: &'a [u32],
    states_col: Option<&'a crate::table::LicenseColumn>,
    assigned_col: Option<&'a crate::table::LicenseColumn>,
    /// Snapshot states per distinct `licenseAssignmentStates` / `assignedLicenses` list.
    snap_states: &'a [Vec<SnapState>],
    snap_assigned: &'a [Vec<SnapState>],
    enabled_cache: &'a HashMap<(u32, u32), Vec<PlanIx>>,
    /// Per SKU index: an add-on product (D44).
    addon: &'a [bool],
    /// Per group: its licences when processed.
    plans: &'a [Option<GroupPlan>],
    group_rank: &'a [u32],
    usage: Option<&'a crate::table::StrColumn>,
    proxies: Option<&'a crate::table::ListColumn>,
    duplicates: &'a std::sync::OnceLock<Duplicates>,
}

impl Pass1<'_> {
    /// Plans of `sku` minus disabled list `d`.
    fn enabled(&self, s: u32, d: u32) -> &[PlanIx] {
        self.enabled_cache.get(&(s, d)).map_or(&[], Vec::as_slice)
    }

    /// Group `g`'s licences are processed here.
    fn processed(&self, g: u32) -> bool {
        self.plans.get(g as usize).is_some_and(Option::is_some)
    }

    /// One user's candidate (user, group) pairs with the checks that do not depend on seats
    /// (usage location, conflicts, duplicate proxy addresses), the snapshot states kept as they
    /// are, and the departures (with a dependency that blocks them).
    fn user(&self, row: usize) -> UserWork {
        let mut w = UserWork::default();
        let a = self.offsets.get(row).copied().unwrap_or(0) as usize;
        let b = self.offsets.get(row + 1).copied().unwrap_or(0) as usize;
        let groups = self.member_groups.get(a..b).unwrap_or(&[]);
        let from_states = snapshot_list(self.states_col, self.snap_states, row);
        let from_assigned = snapshot_list(self.assigned_col, self.snap_assigned, row);
        // No licenseAssignmentStates: assignedLicenses are taken as direct (D41).
        let snap: &[SnapState] = from_states.or(from_assigned).unwrap_or(&[]);
        if groups.is_empty() && snap.is_empty() {
            return w;
        }
        // Held before: a SKU in assignedLicenses or in a holding state. The two agree in a
        // consistent snapshot; where they do not (a state the export shows without its
        // assignedLicenses entry), the seat is taken already, and counting the user as a new
        // holder would push the SKU over its seats (fuzz finding; D67).
        w.held_before = from_assigned
            .unwrap_or(&[])
            .iter()
            .map(|s| s.sku)
            .chain(snap.iter().filter(|s| s.state.holds()).map(|s| s.sku))
            .collect();
        w.held_before.sort_unstable();
        w.held_before.dedup();
        let mut plans_before: Vec<PlanIx> = Vec::new();
        for s in snap.iter().filter(|s| s.state.holds()) {
            sorted_union(&mut plans_before, self.enabled(s.sku, s.disabled));
        }
        let user_loc = self
            .usage
            .and_then(|c| c.get(row))
            .map(str::trim)
            .filter(|l| !l.is_empty());
        let loc: Option<String> = match user_loc {
            Some(l) => Some(l.to_ascii_uppercase()),
            None => {
                w.tenant_location = self.tenant.country.is_some();
                w.no_location = self.tenant.country.is_none() && !groups.is_empty();
                self.tenant.country.clone()
            }
        };
        // Kept states: direct ones, and those of groups not processed here.
        let mut plans_now: Vec<PlanIx> = Vec::new();
        // The part of `plans_now` that add-on products provide (D44).
        let mut addon_now: Vec<PlanIx> = Vec::new();
        let gain = |plans_now: &mut Vec<PlanIx>, addon_now: &mut Vec<PlanIx>, sku: u32, d: u32| {
            sorted_union(plans_now, self.enabled(sku, d));
            if self.addon.get(sku as usize).copied().unwrap_or(false) {
                sorted_union(addon_now, self.enabled(sku, d));
            }
        };
        let mut held: Vec<u32> = Vec::new();
        let mut inherited: Vec<&SnapState> = Vec::new();
        for s in snap {
            match s.source {
                Some(g) if self.processed(g) => inherited.push(s),
                _ => {
                    if s.state.holds() {
                        gain(&mut plans_now, &mut addon_now, s.sku, s.disabled);
                        held.push(s.sku);
                    }
                    w.kept.push(s.clone());
                }
            }
        }
        w.inherited = inherited.iter().map(|s| (*s).clone()).collect();
        // The user's groups: those the snapshot shows as assigned first, then by id.
        let mut mine: Vec<(bool, u32, u32)> = groups
            .iter()
            .map(|&g| {
                let est = inherited
                    .iter()
                    .any(|s| s.source == Some(g) && s.state.holds());
                (
                    !est,
                    self.group_rank.get(g as usize).copied().unwrap_or(0),
                    g,
                )
            })
            .collect();
        mine.sort_unstable();
        let dup_address = || {
            self.proxies.is_some_and(|p| {
                has_duplicate(
                    p,
                    row,
                    self.duplicates
                        .get_or_init(|| duplicate_addresses(self.tenant)),
                )
            })
        };
        // SKUs other sources already give (never a new seat); SKUs that two of the user's
        // groups both want are shared in pass 2, where the first to succeed takes the seat.
        let kept_skus = held.clone();
        for (not_est, _, g) in mine {
            let Some(Some(gp)) = self.plans.get(g as usize) else {
                continue;
            };
            let mut error: Option<(LicenseError, String)> = None;
            if let Some(l) = &loc {
                if let Some(p) = gp.prohibited.iter().find(|p| {
                    self.tenant
                        .rules
                        .prohibited
                        .get(p)
                        .is_some_and(|x| x.usage_locations.contains(l))
                }) {
                    error = Some((
                        LicenseError::ProhibitedInUsageLocationViolation,
                        format!(
                            "{} is not allowed in usage location {l}",
                            self.tenant.catalog.plan_label(*p)
                        ),
                    ));
                }
            }
            if error.is_none() {
                for &p in &gp.conflicting {
                    if let Some((q, c)) = self.tenant.rules.conflict_with(p, &plans_now) {
                        // Plans of one SKU never conflict among themselves.
                        if gp
                            .licences
                            .iter()
                            .any(|&(s, d)| self.enabled(s, d).contains(&q))
                        {
                            continue;
                        }
                        error = Some((
                            LicenseError::MutuallyExclusiveViolation,
                            format!(
                                "{} conflicts with {} the user already has ({})",
                                self.tenant.catalog.plan_label(p),
                                self.tenant.catalog.plan_label(q),
                                c.source
                            ),
                        ));
                        break;
                    }
                }
            }
            if error.is_none() {
                if let Some(p) = gp
                    .mailboxes
                    .iter()
                    .find(|p| plans_before.binary_search(p).is_err())
                    .filter(|_| dup_address())
                {
                    error = Some((
                        LicenseError::UniquenessViolation,
                        format!(
                            "a proxy address of this user is also on another user, and {} provisions a mailbox",
                            self.tenant.catalog.plan_label(*p)
                        ),
                    ));
                }
            }
            let established = !not_est;
            let new_skus: Vec<u32> = gp
                .licences
                .iter()
                .map(|&(s, _)| s)
                .filter(|s| w.held_before.binary_search(s).is_err() && !kept_skus.contains(s))
                .collect();
            // D40: what a failed pair leaves the user holding from the group — the SKUs the
            // group still assigns (one it no longer assigns departs below, as pass 3 has it).
            let kept_by_d40 = |s: &&&SnapState| {
                s.source == Some(g)
                    && s.state.holds()
                    && gp.licences.iter().any(|&(k, _)| k == s.sku)
            };
            if error.is_none() {
                for &(s, d) in &gp.licences {
                    gain(&mut plans_now, &mut addon_now, s, d);
                }
                if new_skus.is_empty() {
                    held.extend(gp.licences.iter().map(|&(s, _)| s));
                } else {
                    // The pair may still fail on seats (pass 2): until it is granted, the user
                    // holds only what D40 keeps, so a seat it gives up counts as released.
                    held.extend(inherited.iter().filter(kept_by_d40).map(|s| s.sku));
                }
            } else if established {
                for s in inherited.iter().filter(kept_by_d40) {
                    gain(&mut plans_now, &mut addon_now, s.sku, s.disabled);
                    held.push(s.sku);
                }
            }
            w.txns.push(Txn {
                group: g,
                established,
                error,
                new_skus,
            });
        }
        // Departures: inherited states whose (group, SKU) is no longer a candidate.
        for s in inherited {
            let still = w.txns.iter().any(|x| {
                Some(x.group) == s.source
                    && self
                        .plans
                        .get(x.group as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|gp| gp.licences.iter().any(|&(k, _)| k == s.sku))
            });
            if still {
                continue;
            }
            let mut blocked = None;
            if s.state.holds() {
                let lost: Vec<PlanIx> = self
                    .enabled(s.sku, s.disabled)
                    .iter()
                    .copied()
                    .filter(|p| plans_now.binary_search(p).is_err())
                    .collect();
                if !lost.is_empty() {
                    let now: BTreeSet<PlanIx> = plans_now.iter().copied().collect();
                    let with: BTreeSet<PlanIx> = now.iter().chain(lost.iter()).copied().collect();
                    for &p in &addon_now {
                        if self.tenant.rules.unmet(p, &now).is_some()
                            && self.tenant.rules.unmet(p, &with).is_none()
                        {
                            let need = lost
                                .iter()
                                .filter(|q| !now.contains(q))
                                .map(|q| self.tenant.catalog.plan_label(*q))
                                .collect::<Vec<_>>();
                            blocked = Some(format!(
                                "{} needs {}, which only this licence provides",
                                self.tenant.catalog.plan_label(p),
                                need.join(", ")
                            ));
                            break;
                        }
                    }
                }
                if blocked.is_some() {
                    gain(&mut plans_now, &mut addon_now, s.sku, s.disabled);
                    held.push(s.sku);
                }
            }
            w.departures.push((s.clone(), blocked));
        }
        held.sort_unstable();
        held.dedup();
        w.held_after = held;
        w
    }
}

/// The snapshot state of (group, sku) the user had, if any.
fn snap_of(w: &UserWork, group: u32, sku: u32) -> Option<&SnapState> {
    w.inherited
        .iter()
        .find(|s| s.source == Some(group) && s.sku == sku)
}

/// Plans of `sku` minus the disabled list `d` (by GUID).
fn enabled_of(t: &Tables, catalog: &Catalog, sku: u32, d: u32) -> Vec<PlanIx> {
    let plans = t
        .skus
        .get(sku as usize)
        .map(|s| s.plans.as_slice())
        .unwrap_or(&[]);
    let disabled: HashSet<PlanIx> = t
        .disabled
        .get(d as usize)
        .into_iter()
        .flatten()
        .filter_map(|id| catalog.plan_by_id(id))
        .collect();
    plans
        .iter()
        .copied()
        .filter(|p| !disabled.contains(p))
        .collect()
}

/// SMTP addresses (`smtp:` prefix dropped, compared in lower case) that appear on more than one
/// user: their hashes, and the exact addresses behind those hashes.
#[derive(Default)]
struct Duplicates {
    hashes: HashSet<u64>,
    exact: HashSet<String>,
}

fn address_hash(addr: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for c in addr.trim().chars().flat_map(char::to_lowercase) {
        c.hash(&mut h);
    }
    h.finish()
}

fn smtp_part(v: &str) -> Option<&str> {
    let (prefix, addr) = v.split_once(':')?;
    prefix.eq_ignore_ascii_case("smtp").then_some(addr)
}

/// Two passes: hashes of every address without allocating, then the exact (lower-cased) text
/// only of addresses whose hash repeats, so a hash collision never reports a duplicate.
fn duplicate_addresses(tenant: &Tenant) -> Duplicates {
    if tenant.rules.mailbox_plans.is_empty() {
        return Duplicates::default();
    }
    let Some(crate::table::Column::List(col)) =
        tenant.users.column(ColumnKey::Prop("proxyAddresses"))
    else {
        return Duplicates::default();
    };
    let mut all: Vec<(u64, u32)> = (0..tenant.users.len())
        .into_par_iter()
        .flat_map_iter(|row| {
            col.codes(row)
                .iter()
                .filter_map(move |&c| {
                    col.value(c)
                        .and_then(smtp_part)
                        .map(|a| (address_hash(a), row as u32))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    all.par_sort_unstable();
    all.dedup();
    let hashes: HashSet<u64> = all
        .windows(2)
        .filter_map(|w| match w {
            [(a, _), (b, _)] if a == b => Some(*a),
            _ => None,
        })
        .collect();
    let mut rows_of: HashMap<String, BTreeSet<u32>> = HashMap::new();
    for &(h, row) in &all {
        if !hashes.contains(&h) {
            continue;
        }
        for &c in col.codes(row as usize) {
            if let Some(a) = col.value(c).and_then(smtp_part) {
                if address_hash(a) == h {
                    rows_of
                        .entry(a.trim().to_lowercase())
                        .or_default()
                        .insert(row);
                }
            }
        }
    }
    let exact = rows_of
        .into_iter()
        .filter(|(_, rows)| rows.len() > 1)
        .map(|(a, _)| a)
        .collect();
    Duplicates { hashes, exact }
}

fn has_duplicate(col: &crate::table::ListColumn, row: usize, dups: &Duplicates) -> bool {
    if dups.exact.is_empty() {
        return false;
    }
    col.codes(row).iter().any(|&c| {
        col.value(c).and_then(smtp_part).is_some_and(|a| {
            dups.hashes.contains(&address_hash(a)) && dups.exact.contains(&a.trim().to_lowercase())
        })
    })
}
