//! Group plans: which groups' licences are processed (D47), their licences by index with the
//! plans the per-user checks look at, the documented order of groups, and each user's
//! licensing groups.

use super::intern::{DisabledIx, Idx, SkuIx, SourceIx};
use super::inventory::{Inventory, sorted_union};
use super::model::GroupLicensing;
use crate::catalog::PlanIx;
use crate::membership::Memberships;
use crate::schema::ObjectType;
use crate::tenant::{Group, IssueKind, Severity, Tenant, TenantIssue};
use std::collections::BTreeSet;

/// A processed group's licences, ready to apply.
pub(super) struct GroupPlan {
    /// (SKU, `disabledPlans`), one per SKU, sorted.
    pub(super) licenses: Vec<(SkuIx, DisabledIx)>,
    /// The enabled plans some rule names (the per-user checks only look at these): prohibited
    /// somewhere, in a conflict, or a mailbox.
    pub(super) prohibited: Vec<PlanIx>,
    pub(super) conflicting: Vec<PlanIx>,
    pub(super) mailboxes: Vec<PlanIx>,
}

impl GroupPlan {
    /// The group assigns SKU `s`.
    pub(super) fn assigns(&self, s: SkuIx) -> bool {
        self.licenses.iter().any(|&(k, _)| k == s)
    }

    /// The SKUs it assigns.
    pub(super) fn skus(&self) -> impl Iterator<Item = SkuIx> + '_ {
        self.licenses.iter().map(|&(s, _)| s)
    }
}

/// Every group's plan (`None` when its licences are not processed) and its summary to fill in.
pub(super) struct GroupPlans {
    pub(super) plans: Vec<Option<GroupPlan>>,
    pub(super) summaries: Vec<GroupLicensing>,
    /// Per group, [`GroupPlans::releases`].
    releases: Vec<bool>,
}

impl GroupPlans {
    /// Plans every group, in order; problems go to `issues`.
    pub(super) fn build(
        tenant: &Tenant,
        groups: &[Group],
        memberships: &Memberships,
        inv: &mut Inventory,
        issues: &mut Vec<TenantIssue>,
    ) -> GroupPlans {
        let mut out = GroupPlans {
            plans: Vec::with_capacity(groups.len()),
            summaries: Vec::with_capacity(groups.len()),
            releases: Vec::with_capacity(groups.len()),
        };
        for (gi, g) in groups.iter().enumerate() {
            let m = memberships.groups.get(gi);
            let object = m.map(|m| m.object);
            let known = m.is_none_or(|m| m.known);
            out.releases.push(
                g.assigned_licenses.is_empty()
                    && g.assigned_licenses_known
                    && not_processed(tenant, g, object, known).is_none(),
            );
            let (info, plan) = plan_group(tenant, inv, g, object, known, issues);
            out.summaries.push(info);
            out.plans.push(plan);
        }
        out
    }

    /// Whether group `g` assigns no licences, known (exported as `[]`, or set so by a what-if),
    /// and is processed: the snapshot's licence states from it go (D78).
    pub(super) fn releases(&self, g: SourceIx) -> bool {
        self.releases.get(g.index()).copied().unwrap_or(false)
    }

    /// Group `g`'s plan, when its licences are processed.
    pub(super) fn get(&self, g: SourceIx) -> Option<&GroupPlan> {
        self.plans.get(g.index()).and_then(Option::as_ref)
    }

    /// Every (SKU, `disabledPlans`) pair the plans assign.
    pub(super) fn licenses(&self) -> impl Iterator<Item = &(SkuIx, DisabledIx)> {
        self.plans.iter().flatten().flat_map(|p| &p.licenses)
    }
}

/// Why a group's licences cannot be processed, if they cannot (D47): not a security group
/// (concept-group-based-licensing), a device group, an unknown membership (D57), or a SKU that
/// is not subscribed or whose plans are unknown.
fn not_processed(
    tenant: &Tenant,
    g: &Group,
    object: Option<ObjectType>,
    known: bool,
) -> Option<String> {
    let catalog = &tenant.catalog;
    if !g.licenses_members() {
        return Some(
            "not a security group (securityEnabled is false): group-based licensing does not apply"
                .to_string(),
        );
    }
    if object.is_some_and(|o| o != ObjectType::User) {
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
    inv: &mut Inventory,
    g: &Group,
    object: Option<ObjectType>,
    known: bool,
    issues: &mut Vec<TenantIssue>,
) -> (GroupLicensing, Option<GroupPlan>) {
    let rules = &tenant.rules;
    let mut info = GroupLicensing::default();
    if g.assigned_licenses.is_empty() {
        // No plan: the group is not in anyone's candidates (15,000 groups without licences
        // must cost nothing here). Whether its members' snapshot states from it go is
        // [`releases`]' question.
        info.reason = Some("no licences".into());
        return (info, None);
    }
    if let Some(reason) = not_processed(tenant, g, object, known) {
        let message = format!(
            "licences not processed: {reason}; members keep their snapshot licence states from this group"
        );
        issues.push(TenantIssue::about_group(
            IssueKind::LicensesNotProcessed,
            Severity::Error,
            g,
            message,
        ));
        info.reason = Some(reason);
        return (info, None);
    }
    let mut licenses: Vec<(SkuIx, DisabledIx)> = g
        .assigned_licenses
        .iter()
        .map(|l| {
            let sku = inv.sku(&l.sku_id, &tenant.catalog);
            (sku, inv.disabled.intern(l.disabled_plans.as_slice()))
        })
        .collect();
    licenses.sort_unstable();
    licenses.dedup_by_key(|(s, _)| *s);
    let mut enabled = Vec::new();
    for &(sku, d) in &licenses {
        sorted_union(&mut enabled, &inv.enabled_of(&tenant.catalog, sku, d));
    }
    issues.extend(disabled_prerequisites(tenant, inv, g, &licenses, &enabled));
    info.processed = true;
    let only =
        |keep: &dyn Fn(&PlanIx) -> bool| enabled.iter().copied().filter(|p| keep(p)).collect();
    let plan = GroupPlan {
        prohibited: only(&|p| rules.prohibited.contains_key(p)),
        conflicting: only(&|p| rules.conflicts.iter().any(|c| c.plans.contains(p))),
        mailboxes: only(&|p| rules.mailbox_plans.contains(p)),
        licenses,
    };
    (info, Some(plan))
}

/// Dependencies inside a group (D43): Entra refuses such an assignment, so a snapshot should not
/// have one; when it does, dynrule's tables are probably stale. A dependency the SKUs' own full
/// plan lists do not meet says the table is incomplete for them (the community database misses
/// SHAREPOINTSTANDARD for SHAREPOINTWAC), so only prerequisites this group disabled are
/// reported, one warning each.
fn disabled_prerequisites(
    tenant: &Tenant,
    inv: &Inventory,
    g: &Group,
    licenses: &[(SkuIx, DisabledIx)],
    enabled: &[PlanIx],
) -> Vec<TenantIssue> {
    let (rules, catalog) = (&tenant.rules, &tenant.catalog);
    let set: BTreeSet<PlanIx> = enabled.iter().copied().collect();
    let full: BTreeSet<PlanIx> = licenses
        .iter()
        .flat_map(|&(s, _)| inv.plans_of(s).iter().copied())
        .collect();
    let mut out = Vec::new();
    for &p in enabled {
        if rules.unmet(p, &full).is_some() {
            continue;
        }
        let Some(dep) = rules.unmet(p, &set) else {
            continue;
        };
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
        out.push(TenantIssue::about_group(
            IssueKind::LicensingRules,
            Severity::Warning,
            g,
            message,
        ));
    }
    out
}

/// Each group's rank in the documented order (D39): by group id.
pub(super) fn group_ranks(groups: &[Group]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| {
        let ga = groups.get(a).map(|g| g.id.as_str());
        let gb = groups.get(b).map(|g| g.id.as_str());
        ga.cmp(&gb)
    });
    let mut rank = vec![0u32; groups.len()];
    for (r, &g) in order.iter().enumerate() {
        if let Some(x) = rank.get_mut(g) {
            *x = r as u32;
        }
    }
    rank
}

/// Each user's processed licensing groups, in group-rank order (a CSR index: user `row`'s groups
/// are `groups[offsets[row]..offsets[row + 1]]`). Only direct user members count:
/// "nested groups are not supported" (concept-group-based-licensing).
pub(super) struct UserGroups {
    offsets: Vec<u32>,
    groups: Vec<SourceIx>,
}

impl UserGroups {
    /// The index of `users` rows over the processed groups' members.
    pub(super) fn build(
        users: usize,
        plans: &GroupPlans,
        memberships: &Memberships,
        rank: &[u32],
    ) -> UserGroups {
        let mut licensing: Vec<usize> = (0..plans.plans.len())
            .filter(|&g| plans.plans.get(g).is_some_and(Option::is_some))
            .collect();
        licensing.sort_by_key(|&g| rank.get(g).copied().unwrap_or(0));
        let members = |g: usize| {
            memberships
                .groups
                .get(g)
                .into_iter()
                .flat_map(|m| m.members.ones_iter())
        };
        let mut offsets = vec![0u32; users + 1];
        for &g in &licensing {
            for r in members(g) {
                if let Some(c) = offsets.get_mut(r + 1) {
                    *c += 1;
                }
            }
        }
        for i in 1..offsets.len() {
            let prev = offsets.get(i - 1).copied().unwrap_or(0);
            if let Some(c) = offsets.get_mut(i) {
                *c += prev;
            }
        }
        let mut fill = offsets.clone();
        let mut groups = vec![SourceIx::default(); offsets.last().copied().unwrap_or(0) as usize];
        for &g in &licensing {
            for r in members(g) {
                if let Some(at) = fill.get_mut(r) {
                    if let Some(slot) = groups.get_mut(*at as usize) {
                        *slot = SourceIx::at(g);
                    }
                    *at += 1;
                }
            }
        }
        UserGroups { offsets, groups }
    }

    /// User `row`'s licensing groups.
    pub(super) fn of(&self, row: usize) -> &[SourceIx] {
        let a = self.offsets.get(row).copied().unwrap_or(0) as usize;
        let b = self.offsets.get(row + 1).copied().unwrap_or(0) as usize;
        self.groups.get(a..b).unwrap_or(&[])
    }
}
