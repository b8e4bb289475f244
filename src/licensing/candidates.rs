//! Pass 1, once per class of users with the same inputs ([`Work`]), in parallel: the candidate
//! (user, group) pairs with the checks that do not depend on seats, one function per documented
//! check; the snapshot states kept as they are; and the departures, with a dependency that
//! blocks them.

use super::groups::{GroupPlan, GroupPlans, UserGroups};
use super::intern::{DisabledIx, SkuIx, SourceIx};
use super::inventory::{SnapState, Snapshot, sorted_union};
use super::model::{EnabledPlans, LicenseError};
use super::uniqueness::Duplicates;
use crate::catalog::PlanIx;
use crate::table::{ListColumn, StrColumn};
use crate::tenant::Tenant;
use rayon::prelude::*;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// A reason not to apply a group to a user: the error and the detail text.
pub(super) type Violation = (LicenseError, String);

/// What pass 1 decided for one (user, group) pair before seats are counted.
#[derive(Clone, Debug)]
pub(super) struct Candidate {
    pub(super) group: SourceIx,
    /// The user held a licence from this group in the snapshot.
    pub(super) established: bool,
    /// A check that failed.
    pub(super) error: Option<Violation>,
    /// SKUs that need a new seat.
    pub(super) new_skus: Vec<SkuIx>,
}

/// A snapshot state inherited from a processed group that is no longer a candidate.
#[derive(Clone, Debug)]
pub(super) struct Departure {
    pub(super) state: SnapState,
    /// Why removing it would break a dependency (D43/D44): it stays, `ActiveWithError`.
    pub(super) blocked: Option<String>,
}

/// One user's pass-1 result.
#[derive(Clone, Debug, Default)]
pub(super) struct UserCandidates {
    pub(super) candidates: Vec<Candidate>,
    /// Snapshot states kept as they are (direct, and groups not processed).
    pub(super) kept: Vec<SnapState>,
    /// Snapshot states inherited from processed groups.
    pub(super) inherited: Vec<SnapState>,
    pub(super) departures: Vec<Departure>,
    /// SKUs the user holds in the snapshot, sorted.
    pub(super) held_before: Vec<SkuIx>,
    /// SKUs the user would hold with every candidate succeeding, sorted.
    pub(super) held_after: Vec<SkuIx>,
    /// The usage location came from the tenant.
    pub(super) tenant_location: bool,
    /// Licensing groups and no usage location at all.
    pub(super) no_location: bool,
}

impl UserCandidates {
    /// The snapshot state of (group, SKU) the user had, if any.
    pub(super) fn inherited_from(&self, group: SourceIx, sku: SkuIx) -> Option<&SnapState> {
        self.inherited
            .iter()
            .find(|s| s.source == Some(group) && s.sku == sku)
    }
}

/// The plans a user holds while pass 1 walks their groups, and the part of them add-on
/// products provide (D44).
#[derive(Default)]
struct Holding {
    plans: Vec<PlanIx>,
    addon: Vec<PlanIx>,
}

/// What pass 1 reads for every user (shared, read-only).
pub(super) struct Candidates<'a> {
    pub(super) tenant: &'a Tenant,
    pub(super) groups: &'a UserGroups,
    pub(super) snapshot: &'a Snapshot<'a>,
    pub(super) enabled: &'a EnabledPlans,
    /// Per SKU: an add-on product (D44).
    pub(super) addon: &'a [bool],
    pub(super) plans: &'a GroupPlans,
    pub(super) group_rank: &'a [u32],
    pub(super) usage: Option<&'a StrColumn>,
    pub(super) proxies: Option<&'a ListColumn>,
    /// Computed by the first user who newly gets a mailbox (often nobody).
    pub(super) duplicates: &'a OnceLock<Duplicates>,
}

/// Pass 1's result for every user. Users with equal inputs ([`Key`]) form a *class* and share
/// one result: a tenant's million users have a few thousand distinct combinations of groups,
/// licences and location, so pass 1 runs a few thousand times, and the passes after it count
/// per class with its number of rows. A user whose result read their own proxy addresses (the
/// uniqueness check) is a class of their own.
#[derive(Debug, Default)]
pub(super) struct Work {
    /// Per row, its class (an index into `classes`).
    pub(super) class_of: Vec<u32>,
    /// Per class, the shared result.
    pub(super) classes: Vec<UserCandidates>,
    /// Per class, how many rows it has.
    pub(super) rows: Vec<u64>,
}

impl Work {
    /// Row `row`'s result.
    pub(super) fn of(&self, row: usize) -> Option<&UserCandidates> {
        self.class_of
            .get(row)
            .and_then(|&c| self.classes.get(c as usize))
    }

    /// Every class: its index, its result and its number of rows.
    pub(super) fn counted(&self) -> impl Iterator<Item = (usize, &UserCandidates, u64)> {
        self.classes
            .iter()
            .zip(&self.rows)
            .enumerate()
            .map(|(c, (w, &n))| (c, w, n))
    }

    /// Per class, how many of `rows` it has (for example the rows that had a seat refused).
    pub(super) fn rows_per_class(&self, rows: impl IntoIterator<Item = usize>) -> Vec<u64> {
        per_class(&self.class_of, self.classes.len(), rows)
    }

    /// The number of rows whose class's result satisfies `f`.
    pub(super) fn count(&self, f: impl Fn(&UserCandidates) -> bool) -> u64 {
        self.counted()
            .filter(|(_, w, _)| f(w))
            .map(|(_, _, n)| n)
            .sum()
    }
}

/// Per class (of `classes`), how many of `rows` it has, by `class_of`.
fn per_class(class_of: &[u32], classes: usize, rows: impl IntoIterator<Item = usize>) -> Vec<u64> {
    let mut out = vec![0u64; classes];
    for row in rows {
        if let Some(n) = class_of.get(row).and_then(|&c| out.get_mut(c as usize)) {
            *n += 1;
        }
    }
    out
}

/// What pass 1 reads of a user, beside the tenant-wide inputs: their licensing groups, which
/// snapshot state list and `assignedLicenses` list they have, and their own usage location.
/// Users with equal keys get equal results, unless the uniqueness check read their proxy
/// addresses (then the result is the row's own).
type Key<'k> = (
    &'k [SourceIx],
    (Option<usize>, Option<usize>),
    Option<&'k str>,
);

impl<'a> Candidates<'a> {
    /// Every user's candidates, rows `0..users`, by class (see [`Work`]). Classes are numbered
    /// in the order of their first row, then rows that are a class of their own in row order,
    /// so the result does not depend on the thread count.
    pub(super) fn all(&self, users: usize) -> Work {
        const BLOCK: usize = 1 << 14;
        // Per block of rows, in parallel: each row's key, numbered in order of first sight.
        type Local<'k> = (Vec<u32>, Vec<(Key<'k>, usize)>);
        let blocks: Vec<Local<'a>> = (0..users.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let mut local: hashbrown::HashMap<Key<'a>, u32> = hashbrown::HashMap::new();
                let mut firsts: Vec<(Key<'a>, usize)> = Vec::new();
                let ids = (b * BLOCK..((b + 1) * BLOCK).min(users))
                    .map(|row| {
                        let key = self.key(row);
                        *local.entry(key).or_insert_with(|| {
                            firsts.push((key, row));
                            firsts.len() as u32 - 1
                        })
                    })
                    .collect();
                (ids, firsts)
            })
            .collect();
        // Classes across blocks, in block order: each with its first row.
        let mut global: hashbrown::HashMap<Key<'a>, u32> = hashbrown::HashMap::new();
        let mut first_rows: Vec<usize> = Vec::new();
        let maps: Vec<Vec<u32>> = blocks
            .iter()
            .map(|(_, firsts)| {
                firsts
                    .iter()
                    .map(|&(key, row)| {
                        *global.entry(key).or_insert_with(|| {
                            first_rows.push(row);
                            first_rows.len() as u32 - 1
                        })
                    })
                    .collect()
            })
            .collect();
        let mut class_of = vec![0u32; users];
        class_of
            .par_chunks_mut(BLOCK)
            .zip(blocks.par_iter().zip(&maps))
            .for_each(|(out, ((ids, _), map))| {
                for (o, &i) in out.iter_mut().zip(ids) {
                    *o = map.get(i as usize).copied().unwrap_or(0);
                }
            });
        let run = |&row: &usize| {
            let own = Cell::new(false);
            let w = self.for_user(row, &own);
            (w, own.get())
        };
        let (mut classes, own): (Vec<UserCandidates>, Vec<bool>) =
            first_rows.par_iter().map(run).unzip();
        // A class whose result read its first row's proxy addresses is that row's alone; its
        // other rows become classes of their own.
        if own.contains(&true) {
            let alone: Vec<usize> = (0..users)
                .filter(|&row| {
                    let c = class_of.get(row).copied().unwrap_or(0) as usize;
                    own.get(c).copied().unwrap_or(false) && first_rows.get(c) != Some(&row)
                })
                .collect();
            for (k, &row) in alone.iter().enumerate() {
                if let Some(c) = class_of.get_mut(row) {
                    *c = (classes.len() + k) as u32;
                }
            }
            classes.par_extend(alone.par_iter().map(|r| run(r).0));
        }
        let rows = per_class(&class_of, classes.len(), 0..users);
        Work {
            class_of,
            classes,
            rows,
        }
    }

    fn key(&self, row: usize) -> Key<'a> {
        (
            self.groups.of(row),
            self.snapshot.list_codes(row),
            self.usage.and_then(|c| c.get(row)),
        )
    }

    fn gain(&self, h: &mut Holding, sku: SkuIx, d: DisabledIx) {
        sorted_union(&mut h.plans, self.enabled.get(sku, d));
        if self.addon.get(sku.index()).copied().unwrap_or(false) {
            sorted_union(&mut h.addon, self.enabled.get(sku, d));
        }
    }

    /// One user's candidate pairs, kept states and departures; sets `own` when the result read
    /// something of the row beyond its [`Key`] (its proxy addresses).
    fn for_user(&self, row: usize, own: &Cell<bool>) -> UserCandidates {
        let mut w = UserCandidates::default();
        let groups = self.groups.of(row);
        let from_assigned = self.snapshot.assigned(row);
        // No licenseAssignmentStates: assignedLicenses are taken as direct (D41).
        let snap: &[SnapState] = self.snapshot.states(row).or(from_assigned).unwrap_or(&[]);
        if groups.is_empty() && snap.is_empty() {
            return w;
        }
        w.held_before = held_before(from_assigned.unwrap_or(&[]), snap);
        let mut plans_before: Vec<PlanIx> = Vec::new();
        for s in snap.iter().filter(|s| s.state.holds()) {
            sorted_union(&mut plans_before, self.enabled.get(s.sku, s.disabled));
        }
        let location = self.usage_location(row, groups, &mut w);
        let mut h = Holding::default();
        let mut held: Vec<SkuIx> = Vec::new();
        for s in snap {
            match s.source {
                // A group that assigns nothing any more releases what it gave (D78): the state
                // is inherited, has no candidate, and so departs below.
                Some(g) if self.plans.get(g).is_some() || self.plans.releases(g) => {
                    w.inherited.push(s.clone());
                }
                _ => {
                    if s.state.holds() {
                        self.gain(&mut h, s.sku, s.disabled);
                        held.push(s.sku);
                    }
                    w.kept.push(s.clone());
                }
            }
        }
        // SKUs other sources already give (never a new seat); SKUs that two of the user's
        // groups both want are shared in pass 2, where the first to succeed takes the seat.
        let kept_skus = held.clone();
        for (established, g) in self.in_order(groups, &w.inherited) {
            let Some(gp) = self.plans.get(g) else {
                continue;
            };
            let error = self
                .usage_location_violation(gp, location.as_deref())
                .or_else(|| self.conflict_violation(gp, &h.plans))
                .or_else(|| self.uniqueness_violation(gp, &plans_before, row, own));
            let new_skus: Vec<SkuIx> = gp
                .skus()
                .filter(|s| w.held_before.binary_search(s).is_err() && !kept_skus.contains(s))
                .collect();
            // D40: what a failed pair leaves the user holding from the group — the SKUs the
            // group still assigns (one it no longer assigns departs below, as pass 3 has it).
            let kept_by_d40 =
                |s: &&SnapState| s.source == Some(g) && s.state.holds() && gp.assigns(s.sku);
            if error.is_none() {
                for &(s, d) in &gp.licenses {
                    self.gain(&mut h, s, d);
                }
                if new_skus.is_empty() {
                    held.extend(gp.skus());
                } else {
                    // The pair may still fail on seats (pass 2): until it is granted, the user
                    // holds only what D40 keeps, so a seat it gives up counts as released.
                    held.extend(w.inherited.iter().filter(kept_by_d40).map(|s| s.sku));
                }
            } else if established {
                for s in w.inherited.iter().filter(kept_by_d40) {
                    self.gain(&mut h, s.sku, s.disabled);
                    held.push(s.sku);
                }
            }
            w.candidates.push(Candidate {
                group: g,
                established,
                error,
                new_skus,
            });
        }
        // Departures: inherited states whose (group, SKU) is no longer a candidate.
        for s in &w.inherited {
            let still = w.candidates.iter().any(|x| {
                Some(x.group) == s.source
                    && self.plans.get(x.group).is_some_and(|gp| gp.assigns(s.sku))
            });
            if still {
                continue;
            }
            let blocked = s
                .state
                .holds()
                .then(|| self.dependency_blocks_departure(s, &h))
                .flatten();
            if blocked.is_some() {
                self.gain(&mut h, s.sku, s.disabled);
                held.push(s.sku);
            }
            w.departures.push(Departure {
                state: s.clone(),
                blocked,
            });
        }
        held.sort_unstable();
        held.dedup();
        w.held_after = held;
        w
    }

    /// The user's effective usage location, upper case: their own `usageLocation`, else the
    /// tenant's `countryLetterCode` ("users who don't have a usage location specified inherit
    /// the location of the directory", licensing-groups-assign). Records where it came from.
    fn usage_location(
        &self,
        row: usize,
        groups: &[SourceIx],
        w: &mut UserCandidates,
    ) -> Option<String> {
        let own = self
            .usage
            .and_then(|c| c.get(row))
            .map(str::trim)
            .filter(|l| !l.is_empty());
        match own {
            Some(l) => Some(l.to_ascii_uppercase()),
            None => {
                w.tenant_location = self.tenant.country.is_some();
                w.no_location = self.tenant.country.is_none() && !groups.is_empty();
                self.tenant.country.clone()
            }
        }
    }

    /// The user's groups in the documented order (D39): those the snapshot shows as assigned
    /// first, then by group id. Each with whether it is established.
    fn in_order(&self, groups: &[SourceIx], inherited: &[SnapState]) -> Vec<(bool, SourceIx)> {
        let mut mine: Vec<(bool, u32, SourceIx)> = groups
            .iter()
            .map(|&g| {
                let established = inherited
                    .iter()
                    .any(|s| s.source == Some(g) && s.state.holds());
                let rank = self.group_rank.get(g.index()).copied().unwrap_or(0);
                (!established, rank, g)
            })
            .collect();
        mine.sort_unstable();
        mine.into_iter().map(|(fresh, _, g)| (!fresh, g)).collect()
    }

    /// `ProhibitedInUsageLocationViolation`: the group enables a plan that is not allowed in the
    /// user's usage location (licensing-groups-resolve-problems; the table is
    /// [`crate::catalog::LicensingRules::prohibited`]).
    fn usage_location_violation(
        &self,
        gp: &GroupPlan,
        location: Option<&str>,
    ) -> Option<Violation> {
        let l = location?;
        let p = gp.prohibited.iter().find(|p| {
            self.tenant
                .rules
                .prohibited
                .get(p)
                .is_some_and(|x| x.usage_locations.contains(l))
        })?;
        Some((
            LicenseError::ProhibitedInUsageLocationViolation,
            format!(
                "{} is not allowed in usage location {l}",
                self.tenant.catalog.plan_label(*p)
            ),
        ))
    }

    /// `MutuallyExclusiveViolation`: the group enables a plan that conflicts with one the user
    /// already holds from another product (licensing-groups-resolve-problems, "conflicting
    /// service plans"). Plans of one SKU never conflict among themselves.
    fn conflict_violation(&self, gp: &GroupPlan, held: &[PlanIx]) -> Option<Violation> {
        gp.conflicting.iter().find_map(|&p| {
            let (q, c) = self.tenant.rules.conflict_with(p, held)?;
            if gp
                .licenses
                .iter()
                .any(|&(s, d)| self.enabled.get(s, d).contains(&q))
            {
                return None;
            }
            Some((
                LicenseError::MutuallyExclusiveViolation,
                format!(
                    "{} conflicts with {} the user already has ({})",
                    self.tenant.catalog.plan_label(p),
                    self.tenant.catalog.plan_label(q),
                    c.source
                ),
            ))
        })
    }

    /// `UniquenessViolation`: the group newly gives the user an Exchange mailbox plan while one
    /// of their proxy addresses is on another user too (licensing-groups-resolve-problems,
    /// "duplicate proxy addresses").
    fn uniqueness_violation(
        &self,
        gp: &GroupPlan,
        plans_before: &[PlanIx],
        row: usize,
        own: &Cell<bool>,
    ) -> Option<Violation> {
        let p = gp
            .mailboxes
            .iter()
            .find(|p| plans_before.binary_search(p).is_err())?;
        let proxies = self.proxies?;
        own.set(true);
        let duplicates = self
            .duplicates
            .get_or_init(|| super::uniqueness::duplicate_addresses(self.tenant));
        duplicates.has_duplicate(proxies, row).then(|| {
            (
                LicenseError::UniquenessViolation,
                format!(
                    "a proxy address of this user is also on another user, and {} provisions a mailbox",
                    self.tenant.catalog.plan_label(*p)
                ),
            )
        })
    }

    /// `DependencyViolation` on removal (D43/D44): the departing licence provides a plan that an
    /// add-on plan the user keeps needs, and nothing else the user holds provides it. Returns
    /// the detail text.
    fn dependency_blocks_departure(&self, s: &SnapState, h: &Holding) -> Option<String> {
        let lost: Vec<PlanIx> = self
            .enabled
            .get(s.sku, s.disabled)
            .iter()
            .copied()
            .filter(|p| h.plans.binary_search(p).is_err())
            .collect();
        if lost.is_empty() {
            return None;
        }
        let rules = &self.tenant.rules;
        let catalog = &self.tenant.catalog;
        let now: BTreeSet<PlanIx> = h.plans.iter().copied().collect();
        let with: BTreeSet<PlanIx> = now.iter().chain(lost.iter()).copied().collect();
        let p = h
            .addon
            .iter()
            .find(|&&p| rules.unmet(p, &now).is_some() && rules.unmet(p, &with).is_none())?;
        let need = lost
            .iter()
            .filter(|q| !now.contains(q))
            .map(|q| catalog.plan_label(*q))
            .collect::<Vec<_>>();
        Some(format!(
            "{} needs {}, which only this licence provides",
            catalog.plan_label(*p),
            need.join(", ")
        ))
    }
}

/// SKUs held before: those in `assignedLicenses` or in a holding state. The two agree in a
/// consistent snapshot; where they do not (a state the export shows without its
/// `assignedLicenses` entry), the seat is taken already, and counting the user as a new holder
/// would push the SKU over its seats (fuzz finding; D67). Sorted.
fn held_before(assigned: &[SnapState], states: &[SnapState]) -> Vec<SkuIx> {
    let mut out: Vec<SkuIx> = assigned
        .iter()
        .map(|s| s.sku)
        .chain(states.iter().filter(|s| s.state.holds()).map(|s| s.sku))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}
