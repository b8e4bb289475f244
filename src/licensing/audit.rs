//! The audit: per group Entra's "Finish applying group based license to users" counts, per SKU
//! the seat accounting, and the tenant-wide warnings.

use super::candidates::{UserCandidates, Work};
use super::intern::{Idx, SkuIx};
use super::inventory::Inventory;
use super::model::{GroupLicensing, SkuSeats};
use super::seats::{Holders, SeatFailures, saturate};
use super::states::{failure, refused_rows};
use crate::catalog::Catalog;
use crate::tenant::{IssueKind, Severity, Tenant, TenantIssue};

/// Fills in each group's summary: a member succeeded when none of their pairs with the group
/// failed; former members whose licence stays for a dependency count as blocked removals.
/// Counted per class ([`Work`]) times its rows, and per row that had a seat refused.
pub(super) fn summarise_groups(
    summaries: &mut [GroupLicensing],
    work: &Work,
    failures: &SeatFailures,
) {
    let refused = refused_rows(failures);
    let refused_in = work.rows_per_class(refused.iter().map(|&r| r as usize));
    let pairs = |summaries: &mut [GroupLicensing], w: &UserCandidates, row, n: u64| {
        for (k, x) in w.candidates.iter().enumerate() {
            let Some(info) = summaries.get_mut(x.group.index()) else {
                continue;
            };
            match failure(x, row, k, failures) {
                None => info.users_succeeded += n,
                Some(e) => {
                    info.users_failed += n;
                    *info.errors.entry(e.as_str().to_string()).or_default() += n;
                }
            }
        }
    };
    for (c, w, n) in work.counted() {
        pairs(
            summaries,
            w,
            None,
            n - refused_in.get(c).copied().unwrap_or(0),
        );
        let mut blocked: Vec<_> = w
            .departures
            .iter()
            .filter(|d| d.blocked.is_some())
            .filter_map(|d| d.state.source)
            .collect();
        blocked.sort_unstable();
        blocked.dedup();
        for g in blocked {
            if let Some(info) = summaries.get_mut(g.index()) {
                info.removals_blocked += n;
            }
        }
    }
    for row in refused {
        if let Some(w) = work.of(row as usize) {
            pairs(summaries, w, Some(row), 1);
        }
    }
}

/// Fills in each SKU's seats: consumed before (`consumedUnits`, else holders), holders before
/// and after, consumed after (consumed before + the change in holders), `CountViolation`s and
/// what stays available.
pub(super) fn account_seats(
    inv: &mut Inventory,
    catalog: &Catalog,
    holders: &Holders,
    holders_after: &[u64],
    failures: &SeatFailures,
) {
    let mut count_violations = vec![0u64; inv.skus.len()];
    for s in failures.values() {
        if let Some(c) = count_violations.get_mut(s.index()) {
            *c += 1;
        }
    }
    let consumed: Vec<u64> = (0..inv.skus.len())
        .map(|i| holders.consumed(inv, SkuIx::at(i)))
        .collect();
    for (i, s) in inv.skus.iter_mut().enumerate() {
        let hb = holders.before.get(i).copied().unwrap_or(0);
        let ha = holders_after.get(i).copied().unwrap_or(0);
        s.consumed_before = consumed.get(i).copied().unwrap_or(hb);
        s.holders_before = hb;
        s.holders_after = ha;
        s.consumed_after =
            u64::try_from((i128::from(s.consumed_before) + i128::from(ha) - i128::from(hb)).max(0))
                .unwrap_or(u64::MAX);
        s.count_violations = count_violations.get(i).copied().unwrap_or(0);
        s.available_after = s
            .assignable
            .map(|a| saturate(i128::from(a) - i128::from(s.consumed_after)));
        if s.plans.is_empty() {
            if let Some(info) = catalog.sku_by_id(&s.sku_id) {
                s.plans = info.plans.clone();
            }
        }
    }
}

/// Warnings about the whole run: SKUs users hold that are not subscribed, and licensed users
/// with no usage location at all.
pub(super) fn tenant_warnings(
    tenant: &Tenant,
    skus: &[SkuSeats],
    no_location_users: u64,
) -> Vec<TenantIssue> {
    let mut out = Vec::new();
    if let Some(subscribed) = &tenant.skus {
        for s in skus {
            if s.holders_after > 0 && !subscribed.iter().any(|x| x.sku_id == s.sku_id) {
                let name = if s.sku_part_number.is_empty() {
                    &s.sku_id
                } else {
                    &s.sku_part_number
                };
                out.push(
                    TenantIssue::new(
                        IssueKind::SkuNotSubscribed,
                        Severity::Warning,
                        format!("users hold SKU {name} but it is not among subscribedSkus"),
                    )
                    .object(s.sku_id.clone()),
                );
            }
        }
    }
    if no_location_users > 0 {
        out.push(TenantIssue::new(
            IssueKind::NoUsageLocation,
            Severity::Warning,
            format!("{no_location_users} licensed user(s) have no usageLocation and the snapshot has no organization.json (countryLetterCode): usage-location rules were not checked for them"),
        ));
    }
    out
}
