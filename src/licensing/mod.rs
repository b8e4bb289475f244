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
//!
//! [`assign`] runs these as named passes over typed indices ([`intern`]):
//!
//! ```text
//! inventory → group plans → snapshot states → users' groups
//!   → candidates (pass 1) → seats (pass 2) → final states (pass 3) → audit
//! ```

mod audit;
mod candidates;
mod groups;
pub mod intern;
mod inventory;
mod model;
mod seats;
mod states;
mod uniqueness;

pub use intern::{DetailIx, DisabledIx, ListIx, SkuIx, SourceIx};
pub use model::{
    Assignments, GroupLicensing, LicenseError, SkuSeats, State, StateKind, StateRecord,
};

use crate::membership::Memberships;
use crate::table::{Column, ColumnKey};
use crate::tenant::{Group, Tenant, TenantIssue};
use candidates::Candidates;
use groups::{GroupPlans, UserGroups};
use inventory::{Inventory, Snapshot};
use seats::{Holders, SeatPool, SeatQueue};
use states::{Details, Lists};

/// Runs group-based licensing over the tenant's users with the given memberships (see the
/// module docs for the rules). Problems found on the way (unknown SKUs, groups that cannot be
/// licensed) are returned as issues; the affected group keeps its snapshot licence states.
///
/// `groups` are the tenant's groups, or a what-if's changed copy of them (same order as
/// `memberships`). A group whose membership is unknown ([`crate::recompute::GroupMembership::known`])
/// is not processed: its members keep their snapshot states (D57).
pub fn assign(
    tenant: &Tenant,
    groups: &[Group],
    memberships: &Memberships,
) -> (Assignments, Vec<TenantIssue>) {
    let t0 = std::time::Instant::now();
    let (catalog, users) = (&tenant.catalog, &tenant.users);
    let mut issues = Vec::new();
    // Interning order fixes the SKUs' order in the output: subscribed, groups', snapshot's.
    let mut inv = Inventory::new(tenant, groups);
    let plans = GroupPlans::build(tenant, groups, memberships, &mut inv, &mut issues);
    let snapshot = Snapshot::read(users, &mut inv, catalog);
    let enabled = inventory::enabled_plans(&inv, catalog, plans.licenses(), &snapshot);
    let group_rank = groups::group_ranks(groups);
    let user_groups = UserGroups::build(users.len(), &plans, memberships, &group_rank);
    let duplicates = std::sync::OnceLock::new();
    let work = Candidates {
        tenant,
        groups: &user_groups,
        snapshot: &snapshot,
        enabled: &enabled,
        addon: &inv.addons(tenant),
        plans: &plans,
        group_rank: &group_rank,
        usage: users.str_column(ColumnKey::Prop("usageLocation")),
        proxies: match users.column(ColumnKey::Prop("proxyAddresses")) {
            Some(Column::List(l)) => Some(l),
            _ => None,
        },
        duplicates: &duplicates,
    }
    .all(users.len());
    let holders = Holders::count(&work, inv.skus.len());
    let mut pool = SeatPool::new(&inv, &holders);
    let failures = SeatQueue::new(&work, &group_rank, users).serve(&mut pool, &work, &plans);
    let details = Details::intern(&mut inv, &work, &failures);
    let lists = Lists::intern(
        states::finalise(&work, &plans, &failures, &details),
        &work,
        inv.skus.len(),
    );
    let mut summaries = plans.summaries;
    audit::summarise_groups(&mut summaries, &work, &failures);
    audit::account_seats(&mut inv, catalog, &holders, &lists.holders_after, &failures);
    let no_location_users = work.count(|w| w.no_location);
    issues.extend(audit::tenant_warnings(tenant, &inv.skus, no_location_users));
    let out = Assignments {
        skus: inv.skus,
        groups: summaries,
        tenant_location_users: work.count(|w| w.tenant_location),
        no_location_users,
        ms: t0.elapsed().as_secs_f64() * 1e3,
        sources: inv.sources.into_values(),
        disabled: inv.disabled.into_values(),
        details: inv.details.into_values(),
        per_user: lists.per_user,
        lists: lists.lists,
        enabled,
    };
    (out, issues)
}
