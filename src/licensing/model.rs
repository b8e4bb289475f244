//! What licensing produces: Graph's licence states, per-SKU seats, per-group summaries, and
//! [`Assignments`], which holds them by typed index.

use super::intern::{DetailIx, DisabledIx, ListIx, SkuIx, SourceIx};
use crate::catalog::{Catalog, PlanIx};
use crate::table::LicenseEntry;
use std::collections::{BTreeSet, HashMap};
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

/// One computed `licenseAssignmentState`, by index into [`Assignments`]' tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    /// The SKU ([`Assignments::sku`]).
    pub sku: SkuIx,
    /// The group it comes from ([`Assignments::source_id`]): `None` for a direct assignment.
    pub source: Option<SourceIx>,
    /// `disabledPlans` ([`Assignments::disabled_plans`]).
    pub disabled: DisabledIx,
    /// `state`.
    pub state: StateKind,
    /// `error`.
    pub error: Option<LicenseError>,
    /// Why, for an error ([`Assignments::detail`]; index 0 is none).
    pub detail: DetailIx,
}

/// A licence state as Graph exports it (`licenseAssignmentState`, without
/// `lastUpdatedDateTime`): ids instead of indices, so the states of two runs, or of a run and
/// the snapshot, compare. Serialises in Graph's shape, `error` `"None"` when there is none.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateRecord {
    /// `assignedByGroup` (`None` for a direct assignment).
    pub assigned_by_group: Option<String>,
    /// `disabledPlans` (`servicePlanId`s).
    pub disabled_plans: Vec<String>,
    /// `error`.
    #[serde(serialize_with = "error_or_none")]
    pub error: Option<LicenseError>,
    /// `skuId`.
    pub sku_id: String,
    /// `state`.
    pub state: StateKind,
}

fn error_or_none<S: serde::Serializer>(e: &Option<LicenseError>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.map_or("None", LicenseError::as_str))
}

impl StateRecord {
    /// A snapshot entry read as the licensing step reads it (`state` and `error` parsed as
    /// licensing reads them: a missing `state` is `Error` with an error, else `Active`; an
    /// unknown `error` is `Other`).
    pub fn of_entry(e: &LicenseEntry) -> StateRecord {
        let error = e.error.as_deref().map(LicenseError::parse);
        StateRecord {
            assigned_by_group: e.assigned_by_group.clone(),
            disabled_plans: e.disabled_plans.clone(),
            error,
            sku_id: e.sku_id.clone(),
            state: StateKind::parse(e.state.as_deref(), error.is_some()),
        }
    }
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

/// Enabled plans per (SKU, `disabledPlans` list): the SKU's plans minus the disabled ones,
/// sorted. Built once per run for every pair that can occur.
#[derive(Clone, Debug, Default)]
pub(crate) struct EnabledPlans(HashMap<(SkuIx, DisabledIx), Vec<PlanIx>>);

impl EnabledPlans {
    /// From the pairs and their plans.
    pub(crate) fn new(pairs: HashMap<(SkuIx, DisabledIx), Vec<PlanIx>>) -> EnabledPlans {
        EnabledPlans(pairs)
    }

    /// The enabled plans of `sku` with `disabled` (empty for a pair never built).
    pub(crate) fn get(&self, sku: SkuIx, disabled: DisabledIx) -> &[PlanIx] {
        self.0.get(&(sku, disabled)).map_or(&[], Vec::as_slice)
    }
}

/// The result of group-based licensing over a tenant: per user a list of states (interned:
/// users with the same states share one list), per group and per SKU a summary.
#[derive(Clone, Debug, Default)]
pub struct Assignments {
    /// SKUs referenced anywhere, with seats; a [`SkuIx`] is a position here.
    pub skus: Vec<SkuSeats>,
    /// Per tenant group, in order.
    pub groups: Vec<GroupLicensing>,
    /// Users whose usage location came from the tenant.
    pub tenant_location_users: u64,
    /// Users with licensing activity and no usage location at all (no user value, no tenant).
    pub no_location_users: u64,
    /// Milliseconds spent.
    pub ms: f64,
    pub(super) sources: Vec<String>,
    pub(super) disabled: Vec<Vec<String>>,
    pub(super) details: Vec<String>,
    pub(super) per_user: Vec<ListIx>,
    pub(super) lists: Vec<Vec<State>>,
    pub(super) enabled: EnabledPlans,
}

impl Assignments {
    /// The seats of SKU `s`.
    pub fn sku(&self, s: SkuIx) -> Option<&SkuSeats> {
        self.skus.get(s.index())
    }

    /// The `skuId` of SKU `s` (empty for an index of another run).
    pub fn sku_id(&self, s: SkuIx) -> &str {
        self.sku(s).map_or("", |k| k.sku_id.as_str())
    }

    /// A `disabledPlans` list (`servicePlanId`s, sorted as the source gave them).
    pub fn disabled_plans(&self, d: DisabledIx) -> &[String] {
        self.disabled.get(d.index()).map_or(&[], Vec::as_slice)
    }

    /// Why a state has its error (empty for none).
    pub fn detail(&self, d: DetailIx) -> &str {
        self.details.get(d.index()).map_or("", String::as_str)
    }

    /// The group id of a state's source (`None` for direct).
    pub fn source_id(&self, s: &State) -> Option<&str> {
        s.source
            .and_then(|g| self.sources.get(g.index()))
            .map(String::as_str)
    }

    /// The state list of user `row` (users with the same states share one).
    pub fn list_of(&self, row: usize) -> ListIx {
        self.per_user.get(row).copied().unwrap_or_default()
    }

    /// A state list, sorted.
    pub fn list(&self, l: ListIx) -> &[State] {
        self.lists.get(l.index()).map_or(&[], Vec::as_slice)
    }

    /// The distinct state lists, by [`ListIx`] (index 0 is the empty list).
    pub fn lists(&self) -> impl ExactSizeIterator<Item = (ListIx, &[State])> {
        self.lists
            .iter()
            .enumerate()
            .map(|(i, l)| (<ListIx as super::intern::Idx>::at(i), l.as_slice()))
    }

    /// The states of user `row`.
    pub fn states(&self, row: usize) -> &[State] {
        self.list(self.list_of(row))
    }

    /// Enabled plans of `sku` minus the `disabled` list.
    pub fn enabled(&self, sku: SkuIx, disabled: DisabledIx) -> &[PlanIx] {
        self.enabled.get(sku, disabled)
    }

    /// A state list as Graph exports it, in the list's order (see [`StateRecord`]).
    pub fn records(&self, states: &[State]) -> Vec<StateRecord> {
        states
            .iter()
            .map(|s| StateRecord {
                assigned_by_group: self.source_id(s).map(str::to_string),
                disabled_plans: self.disabled_plans(s.disabled).to_vec(),
                error: s.error,
                sku_id: self.sku_id(s.sku).to_string(),
                state: s.state,
            })
            .collect()
    }

    /// `assignedLicenses` of a state list: per held SKU, the plans disabled in every holding
    /// source (Graph lists one entry per SKU however many sources give it). Returns
    /// `(sku, disabledPlans)` sorted by SKU index.
    pub fn held(&self, states: &[State]) -> Vec<(SkuIx, Vec<String>)> {
        let mut out: Vec<(SkuIx, BTreeSet<&str>)> = Vec::new();
        for s in states.iter().filter(|s| s.state.holds()) {
            let d: BTreeSet<&str> = self
                .disabled_plans(s.disabled)
                .iter()
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
}
