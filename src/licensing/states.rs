//! Pass 3: every user's final licence states, then the distinct lists interned.

use super::candidates::{Candidate, UserCandidates};
use super::groups::GroupPlans;
use super::intern::{DetailIx, Idx, Interner, ListIx, SkuIx};
use super::inventory::{Inventory, SnapState};
use super::model::{LicenseError, State, StateKind};
use super::seats::SeatFailures;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// The detail of every failure, interned in a fixed order: seat failures (one text per SKU),
/// then pass-1 errors and blocked departures, user by user.
pub(super) struct Details {
    seats: HashMap<SkuIx, DetailIx>,
    candidates: HashMap<(u32, usize), DetailIx>,
    departures: HashMap<(u32, usize), DetailIx>,
}

impl Details {
    /// Interns the details into `inv`.
    pub(super) fn intern(
        inv: &mut Inventory,
        work: &[Arc<UserCandidates>],
        failures: &SeatFailures,
    ) -> Details {
        let mut seats = HashMap::new();
        for &s in failures.values() {
            if let std::collections::hash_map::Entry::Vacant(e) = seats.entry(s) {
                let text = format!("no seat left for {}", inv.label(s));
                e.insert(inv.details.intern_owned(text));
            }
        }
        let mut candidates = HashMap::new();
        let mut departures = HashMap::new();
        for (row, w) in work.iter().enumerate() {
            for (k, x) in w.candidates.iter().enumerate() {
                if let Some((_, d)) = &x.error {
                    candidates.insert((row as u32, k), inv.details.intern(d.as_str()));
                }
            }
            for (k, d) in w.departures.iter().enumerate() {
                if let Some(text) = &d.blocked {
                    departures.insert((row as u32, k), inv.details.intern(text.as_str()));
                }
            }
        }
        Details {
            seats,
            candidates,
            departures,
        }
    }
}

/// Why a candidate failed, if it did: its pass-1 error, else `CountViolation` when pass 2 had no
/// seat for it.
pub(super) fn failure(
    x: &Candidate,
    row: u32,
    k: usize,
    failures: &SeatFailures,
) -> Option<LicenseError> {
    x.error.as_ref().map(|(e, _)| *e).or_else(|| {
        failures
            .get(&(row, k))
            .map(|_| LicenseError::CountViolation)
    })
}

/// Every user's final states, sorted: kept snapshot states; per candidate, its group's
/// licences `Active`, or on failure `ActiveWithError` where the snapshot shows the user holding
/// it and `Error` where not (D40); blocked departures `ActiveWithError` with
/// `DependencyViolation`.
///
/// Users who share a pass-1 result and had no seat refused share one list (per block of rows,
/// as pass 1 shares): a tenant's ten million users have a few thousand distinct lists.
pub(super) fn finalise(
    work: &[Arc<UserCandidates>],
    plans: &GroupPlans,
    failures: &SeatFailures,
    details: &Details,
) -> Vec<Arc<Vec<State>>> {
    const BLOCK: usize = 1 << 14;
    let blocks: Vec<Vec<Arc<Vec<State>>>> = work
        .par_chunks(BLOCK)
        .enumerate()
        .map(|(b, ws)| {
            let mut memo: HashMap<usize, Arc<Vec<State>>> = HashMap::new();
            let mut out = Vec::with_capacity(ws.len());
            for (i, w) in ws.iter().enumerate() {
                let row = (b * BLOCK + i) as u32;
                // The pass-1 result is shared by pointer; a refused seat is the row's own.
                let own = failures.range((row, 0)..(row + 1, 0)).next().is_some();
                let key = Arc::as_ptr(w) as usize;
                if !own {
                    if let Some(s) = memo.get(&key) {
                        out.push(Arc::clone(s));
                        continue;
                    }
                }
                let s = Arc::new(states_of(row, w, plans, failures, details));
                if !own {
                    memo.insert(key, Arc::clone(&s));
                }
                out.push(s);
            }
            out
        })
        .collect();
    blocks.into_iter().flatten().collect()
}

/// One user's final states (see [`finalise`]).
fn states_of(
    row: u32,
    w: &UserCandidates,
    plans: &GroupPlans,
    failures: &SeatFailures,
    details: &Details,
) -> Vec<State> {
    let mut out: Vec<State> = w.kept.iter().map(kept).collect();
    for (k, x) in w.candidates.iter().enumerate() {
        let Some(gp) = plans.get(x.group) else {
            continue;
        };
        let detail = match (&x.error, failures.get(&(row, k))) {
            (Some(_), _) => details.candidates.get(&(row, k)).copied(),
            (None, Some(s)) => details.seats.get(s).copied(),
            (None, None) => None,
        };
        let fail = failure(x, row, k, failures).map(|e| (e, detail.unwrap_or_default()));
        for &(sku, d) in &gp.licenses {
            let mut s = State {
                sku,
                source: Some(x.group),
                disabled: d,
                state: StateKind::Active,
                error: None,
                detail: DetailIx::default(),
            };
            if let Some((e, detail)) = fail {
                s.error = Some(e);
                s.detail = detail;
                match w.inherited_from(x.group, sku) {
                    Some(h) if h.state.holds() => {
                        s.disabled = h.disabled;
                        s.state = StateKind::ActiveWithError;
                    }
                    _ => s.state = StateKind::Error,
                }
            }
            out.push(s);
        }
    }
    for (k, d) in w.departures.iter().enumerate() {
        if d.blocked.is_some() {
            out.push(State {
                state: StateKind::ActiveWithError,
                error: Some(LicenseError::DependencyViolation),
                detail: details
                    .departures
                    .get(&(row, k))
                    .copied()
                    .unwrap_or_default(),
                ..kept(&d.state)
            });
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A snapshot state kept as it is.
fn kept(s: &SnapState) -> State {
    State {
        sku: s.sku,
        source: s.source,
        disabled: s.disabled,
        state: s.state,
        error: s.error,
        detail: DetailIx::default(),
    }
}

/// The distinct state lists (index 0 the empty list), each user's list, and per SKU the users
/// holding it after.
pub(super) struct Lists {
    pub(super) lists: Vec<Vec<State>>,
    pub(super) per_user: Vec<ListIx>,
    pub(super) holders_after: Vec<u64>,
}

impl Lists {
    /// Interns every user's states: a list shared by several users (one allocation, see
    /// [`finalise`]) is interned once, and its held SKUs worked out once.
    pub(super) fn intern(per_user_states: Vec<Arc<Vec<State>>>, skus: usize) -> Lists {
        let mut lists: Interner<ListIx, Vec<State>> = Interner::starting_with(Vec::new());
        let mut per_user = Vec::with_capacity(per_user_states.len());
        let mut holders_after = vec![0u64; skus];
        // Every list stays alive until the end, so an address names one list throughout.
        let mut seen: HashMap<usize, (ListIx, Vec<SkuIx>)> = HashMap::new();
        for states in &per_user_states {
            let (ix, held) = seen.entry(Arc::as_ptr(states) as usize).or_insert_with(|| {
                let mut held: Vec<SkuIx> = states
                    .iter()
                    .filter(|s| s.state.holds())
                    .map(|s| s.sku)
                    .collect();
                held.dedup();
                (lists.intern(states.as_ref()), held)
            });
            for s in held.iter() {
                if let Some(h) = holders_after.get_mut(s.position()) {
                    *h += 1;
                }
            }
            per_user.push(*ix);
        }
        Lists {
            lists: lists.into_values(),
            per_user,
            holders_after,
        }
    }
}
