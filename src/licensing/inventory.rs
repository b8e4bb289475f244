//! The inventory: every SKU, source group, `disabledPlans` list and error detail a run refers
//! to, interned once, with the seats of the subscribed SKUs; and the snapshot's licence states
//! read into it.

use super::intern::{DetailIx, DisabledIx, Interner, SkuIx, SourceIx};
use super::model::{EnabledPlans, LicenseError, SkuSeats, StateKind};
use crate::catalog::{Catalog, PlanIx};
use crate::table::{ColumnKey, LicenseColumn, LicenseEntry, Table};
use crate::tenant::{Group, Tenant};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What a run refers to, by typed index.
pub(super) struct Inventory {
    /// Per SKU, its seats (filled in by the audit).
    pub(super) skus: Vec<SkuSeats>,
    sku_ids: Interner<SkuIx, String>,
    pub(super) sources: Interner<SourceIx, String>,
    pub(super) disabled: Interner<DisabledIx, Vec<String>>,
    pub(super) details: Interner<DetailIx, String>,
    /// `consumedUnits` per subscribed SKU, when exported (else the audit counts holders).
    pub(super) consumed_units: HashMap<SkuIx, u64>,
}

impl Inventory {
    /// The subscribed SKUs first, with their seats (`prepaidUnits`, `consumedUnits`); the
    /// groups as sources in order (source *i* is group *i*); the empty `disabledPlans` list and
    /// the empty detail at index 0.
    pub(super) fn new(tenant: &Tenant, groups: &[Group]) -> Inventory {
        let mut inv = Inventory {
            skus: Vec::new(),
            sku_ids: Interner::new(),
            sources: Interner::new(),
            disabled: Interner::starting_with(Vec::new()),
            details: Interner::starting_with(String::new()),
            consumed_units: HashMap::new(),
        };
        for g in groups {
            inv.sources.intern(g.id.as_str());
        }
        for s in tenant.skus.iter().flatten() {
            let i = inv.sku(&s.sku_id, &tenant.catalog);
            if let Some(e) = inv.skus.get_mut(i.index()) {
                e.assignable = s.assignable();
                if e.sku_part_number.is_empty() {
                    e.sku_part_number = s.sku_part_number.clone();
                }
                if let Some(c) = s.consumed_units {
                    inv.consumed_units.insert(i, c);
                }
            }
        }
        inv
    }

    /// SKU `id`'s index, added (with its part number and plans from the catalog) when new.
    pub(super) fn sku(&mut self, id: &str, catalog: &Catalog) -> SkuIx {
        if let Some(i) = self.sku_ids.find(id) {
            return i;
        }
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
        self.sku_ids.intern(id)
    }

    /// The plans of SKU `s` (empty when unknown).
    pub(super) fn plans_of(&self, s: SkuIx) -> &[PlanIx] {
        self.skus.get(s.index()).map_or(&[], |k| k.plans.as_slice())
    }

    /// SKU `s` as people name it: its part number, else its id.
    pub(super) fn label(&self, s: SkuIx) -> &str {
        self.skus.get(s.index()).map_or("", |k| {
            if k.sku_part_number.is_empty() {
                &k.sku_id
            } else {
                &k.sku_part_number
            }
        })
    }

    /// Plans of `sku` minus the `disabledPlans` list `d` (matched by `servicePlanId`).
    pub(super) fn enabled_of(&self, catalog: &Catalog, sku: SkuIx, d: DisabledIx) -> Vec<PlanIx> {
        let disabled: HashSet<PlanIx> = self
            .disabled
            .get(d)
            .into_iter()
            .flatten()
            .filter_map(|id| catalog.plan_by_id(id))
            .collect();
        self.plans_of(sku)
            .iter()
            .copied()
            .filter(|p| !disabled.contains(p))
            .collect()
    }

    /// Per SKU: an add-on product (D44), one with plans but no core workload plan (mailbox,
    /// SharePoint/OneDrive, Teams) of its own. Suites are consistent by Microsoft's design, so
    /// only plans that add-ons bring can be left without a prerequisite by a removal.
    pub(super) fn addons(&self, tenant: &Tenant) -> Vec<bool> {
        let core: BTreeSet<PlanIx> = tenant
            .rules
            .data_plans
            .iter()
            .chain(&tenant.rules.mailbox_plans)
            .copied()
            .collect();
        self.skus
            .iter()
            .map(|k| !k.plans.is_empty() && !k.plans.iter().any(|p| core.contains(p)))
            .collect()
    }
}

/// One licence state of the snapshot, by index.
#[derive(Clone, Debug)]
pub(super) struct SnapState {
    pub(super) sku: SkuIx,
    pub(super) source: Option<SourceIx>,
    pub(super) disabled: DisabledIx,
    pub(super) state: StateKind,
    pub(super) error: Option<LicenseError>,
}

/// The snapshot's `licenseAssignmentStates` and `assignedLicenses`, each distinct list
/// converted once.
pub(super) struct Snapshot<'a> {
    states_col: Option<&'a LicenseColumn>,
    assigned_col: Option<&'a LicenseColumn>,
    states: Vec<Vec<SnapState>>,
    assigned: Vec<Vec<SnapState>>,
}

impl<'a> Snapshot<'a> {
    /// Reads both columns of `users`, interning what they refer to.
    pub(super) fn read(users: &'a Table, inv: &mut Inventory, catalog: &Catalog) -> Snapshot<'a> {
        let states_col = users.licenses(ColumnKey::LicenseStates);
        let assigned_col = users.licenses(ColumnKey::AssignedLicenses);
        let mut convert = |col: Option<&LicenseColumn>, direct: bool| -> Vec<Vec<SnapState>> {
            col.map(|c| {
                c.lists()
                    .iter()
                    .map(|l| {
                        l.iter()
                            .map(|e| snap_state(e, direct, inv, catalog))
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let states = convert(states_col, false);
        let assigned = convert(assigned_col, true);
        Snapshot {
            states_col,
            assigned_col,
            states,
            assigned,
        }
    }

    /// Row `row`'s `licenseAssignmentStates` (`None` when the export has no value for it).
    pub(super) fn states(&self, row: usize) -> Option<&[SnapState]> {
        list_of(self.states_col, &self.states, row)
    }

    /// Row `row`'s `assignedLicenses`, read as direct states (`None` when no value).
    pub(super) fn assigned(&self, row: usize) -> Option<&[SnapState]> {
        list_of(self.assigned_col, &self.assigned, row)
    }

    /// Which of the distinct lists row `row`'s states and `assignedLicenses` are (`None` for
    /// no value): rows with equal codes have equal lists.
    pub(super) fn list_codes(&self, row: usize) -> (Option<usize>, Option<usize>) {
        (
            self.states_col.and_then(|c| c.list_code(row)),
            self.assigned_col.and_then(|c| c.list_code(row)),
        )
    }

    /// Every converted state of both columns.
    pub(super) fn all(&self) -> impl Iterator<Item = &SnapState> {
        self.states.iter().chain(&self.assigned).flatten()
    }
}

fn list_of<'s>(
    col: Option<&LicenseColumn>,
    converted: &'s [Vec<SnapState>],
    row: usize,
) -> Option<&'s [SnapState]> {
    let code = col?.list_code(row)?;
    Some(converted.get(code).map_or(&[][..], Vec::as_slice))
}

fn snap_state(e: &LicenseEntry, direct: bool, inv: &mut Inventory, catalog: &Catalog) -> SnapState {
    let error = e.error.as_deref().map(LicenseError::parse);
    SnapState {
        sku: inv.sku(&e.sku_id, catalog),
        source: if direct {
            None
        } else {
            e.assigned_by_group
                .as_deref()
                .map(|g| inv.sources.intern(g))
        },
        disabled: inv.disabled.intern(e.disabled_plans.as_slice()),
        state: StateKind::parse(e.state.as_deref(), error.is_some()),
        error,
    }
}

/// The enabled plans of every (SKU, `disabledPlans`) pair the groups and the snapshot use.
pub(super) fn enabled_plans<'p>(
    inv: &Inventory,
    catalog: &Catalog,
    group_licenses: impl Iterator<Item = &'p (SkuIx, DisabledIx)>,
    snapshot: &Snapshot<'_>,
) -> EnabledPlans {
    let mut pairs: HashSet<(SkuIx, DisabledIx)> = group_licenses.copied().collect();
    pairs.extend(snapshot.all().map(|s| (s.sku, s.disabled)));
    EnabledPlans::new(
        pairs
            .into_iter()
            .map(|(s, d)| ((s, d), inv.enabled_of(catalog, s, d)))
            .collect(),
    )
}

/// `a ∪= b`, both sorted and deduplicated (a linear merge).
pub(super) fn sorted_union(a: &mut Vec<PlanIx>, b: &[PlanIx]) {
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
