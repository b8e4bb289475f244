//! Pass 2: seats (D39). A SKU's pool is what is assignable, minus what is consumed, plus what
//! users who lose every source of it release. New holders are served in the documented order;
//! the rest get `CountViolation`.

use super::candidates::Work;
use super::groups::GroupPlans;
use super::intern::{Idx, SkuIx};
use super::inventory::Inventory;
use crate::table::Table;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// Per SKU, from pass 1: users holding it in the snapshot, and the seats released by users who
/// would no longer hold it.
pub(super) struct Holders {
    pub(super) before: Vec<u64>,
    pub(super) released: Vec<u64>,
}

impl Holders {
    /// Counts over every user's candidates (per class, times its rows).
    pub(super) fn count(work: &Work, skus: usize) -> Holders {
        let mut out = Holders {
            before: vec![0; skus],
            released: vec![0; skus],
        };
        for (_, w, n) in work.counted() {
            for &s in &w.held_before {
                if let Some(h) = out.before.get_mut(s.index()) {
                    *h += n;
                }
                if w.held_after.binary_search(&s).is_err() {
                    if let Some(r) = out.released.get_mut(s.index()) {
                        *r += n;
                    }
                }
            }
        }
        out
    }

    /// Seats used in the snapshot: `consumedUnits` when exported, else the holders.
    pub(super) fn consumed(&self, inv: &Inventory, s: SkuIx) -> u64 {
        inv.consumed_units
            .get(&s)
            .copied()
            .unwrap_or_else(|| self.before.get(s.index()).copied().unwrap_or(0))
    }
}

/// Free seats per SKU for new holders: assignable − consumed + released (D39); `None` where
/// seats are not limited (no subscribedSkus, or unreadable prepaid units).
pub(super) struct SeatPool {
    free: Vec<Option<i64>>,
}

impl SeatPool {
    /// The pool at the start of pass 2.
    pub(super) fn new(inv: &Inventory, holders: &Holders) -> SeatPool {
        let free = inv
            .skus
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let consumed = holders.consumed(inv, SkuIx::at(i));
                s.assignable.map(|a| {
                    // Seat counts come from the export: i128 cannot overflow on any u64 values.
                    let free = i128::from(a) - i128::from(consumed)
                        + i128::from(holders.released.get(i).copied().unwrap_or(0));
                    saturate(free)
                })
            })
            .collect();
        SeatPool { free }
    }

    /// Takes one seat of each SKU in `needed`, all or none: `Err` names the first SKU with no
    /// seat left.
    fn take(&mut self, needed: &[SkuIx]) -> Result<(), SkuIx> {
        let short = needed.iter().copied().find(|s| {
            self.free
                .get(s.index())
                .copied()
                .flatten()
                .is_some_and(|p| p <= 0)
        });
        if let Some(s) = short {
            return Err(s);
        }
        for s in needed {
            if let Some(Some(p)) = self.free.get_mut(s.index()) {
                *p -= 1;
            }
        }
        Ok(())
    }
}

/// `v` as an `i64`, saturating.
pub(super) fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// A (user, group) pair that passed pass 1's checks and needs a new seat. Fields in the
/// documented order (D39): pairs the snapshot already shows as assigned first, then by group
/// id, then by user id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SeatRequest {
    /// `false` for a pair the snapshot shows as assigned.
    new_pair: bool,
    group_rank: u32,
    user_rank: u32,
    row: u32,
    candidate: usize,
}

/// The pairs that failed for want of a seat: (user row, candidate) → the SKU that ran out.
pub(super) type SeatFailures = BTreeMap<(u32, usize), SkuIx>;

/// The seat requests, in the documented order.
pub(super) struct SeatQueue {
    requests: Vec<SeatRequest>,
}

impl SeatQueue {
    /// The requests of every user's candidates, sorted (users ranked by id only when someone
    /// asks for a seat).
    pub(super) fn new(work: &Work, group_rank: &[u32], users: &Table) -> SeatQueue {
        let mut requests = Vec::new();
        // Only the rows of classes with a pair that asks for a seat are visited.
        let asks: Vec<bool> = work
            .classes
            .iter()
            .map(|w| {
                w.candidates
                    .iter()
                    .any(|x| x.error.is_none() && !x.new_skus.is_empty())
            })
            .collect();
        let asking = work
            .class_of
            .iter()
            .enumerate()
            .filter(|&(_, &c)| asks.get(c as usize).copied().unwrap_or(false));
        for (row, &c) in asking {
            let Some(w) = work.classes.get(c as usize) else {
                continue;
            };
            for (k, x) in w.candidates.iter().enumerate() {
                if x.error.is_none() && !x.new_skus.is_empty() {
                    requests.push(SeatRequest {
                        new_pair: !x.established,
                        group_rank: group_rank.get(x.group.index()).copied().unwrap_or(0),
                        user_rank: 0,
                        row: row as u32,
                        candidate: k,
                    });
                }
            }
        }
        if !requests.is_empty() {
            let rank = user_ranks(users, requests.iter().map(|r| r.row).collect());
            for r in &mut requests {
                r.user_rank = rank.get(&r.row).copied().unwrap_or(0);
            }
            requests.par_sort_unstable();
        }
        SeatQueue { requests }
    }

    /// Serves the queue from `pool`. Every SKU of the group the user does not hold yet takes a
    /// seat: new ones, and ones held before whose seat pass 1 counted as released (held only if
    /// this pair succeeds). Seats freed by failures in the same run are not handed out again
    /// (Entra needs a reprocess for that, licensing-groups-resolve-problems).
    pub(super) fn serve(
        &self,
        pool: &mut SeatPool,
        work: &Work,
        plans: &GroupPlans,
    ) -> SeatFailures {
        let mut failures = SeatFailures::new();
        let mut granted: HashMap<u32, Vec<SkuIx>> = HashMap::new();
        for r in &self.requests {
            let Some(w) = work.of(r.row as usize) else {
                continue;
            };
            let Some(x) = w.candidates.get(r.candidate) else {
                continue;
            };
            let got = granted.get(&r.row);
            let needed: Vec<SkuIx> = plans
                .get(x.group)
                .into_iter()
                .flat_map(|gp| gp.skus())
                .filter(|s| w.held_after.binary_search(s).is_err())
                .filter(|s| got.is_none_or(|g| !g.contains(s)))
                .collect();
            match pool.take(&needed) {
                Err(s) => {
                    failures.insert((r.row, r.candidate), s);
                }
                Ok(()) => granted.entry(r.row).or_default().extend(needed),
            }
        }
        failures
    }
}

/// The rank by id of each of `rows` among them (equal ids in row order): the order the whole
/// tenant's ranking would give them, without sorting the users who ask for no seat.
fn user_ranks(users: &Table, mut rows: Vec<u32>) -> HashMap<u32, u32> {
    let ids = users.str_column(crate::table::ColumnKey::Prop("objectId"));
    let id = |row: u32| ids.and_then(|c| c.get(row as usize));
    rows.sort_unstable();
    rows.dedup();
    // Stable: rows with equal ids stay in row order.
    rows.par_sort_by(|&a, &b| id(a).cmp(&id(b)));
    rows.into_iter()
        .enumerate()
        .map(|(r, row)| (row, r as u32))
        .collect()
}
