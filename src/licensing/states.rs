//! Pass 3: every user's final licence states, then the distinct lists interned.

use super::candidates::{Candidate, UserCandidates, Work};
use super::groups::GroupPlans;
use super::intern::{DetailIx, Idx, Interner, ListIx, SkuIx};
use super::inventory::{Inventory, SnapState};
use super::model::{LicenseError, State, StateKind};
use super::seats::SeatFailures;
use rayon::prelude::*;
use std::collections::HashMap;

/// The detail of every failure, interned in a fixed order: seat failures (one text per SKU),
/// then pass-1 errors and blocked departures, class by class ([`Work`]).
pub(super) struct Details {
    seats: HashMap<SkuIx, DetailIx>,
    /// By (class, candidate).
    candidates: HashMap<(u32, usize), DetailIx>,
    /// By (class, departure).
    departures: HashMap<(u32, usize), DetailIx>,
}

impl Details {
    /// Interns the details into `inv`.
    pub(super) fn intern(inv: &mut Inventory, work: &Work, failures: &SeatFailures) -> Details {
        let mut seats = HashMap::new();
        for &s in failures.values() {
            if let std::collections::hash_map::Entry::Vacant(e) = seats.entry(s) {
                let text = format!("no seat left for {}", inv.label(s));
                e.insert(inv.details.intern_owned(text));
            }
        }
        let mut candidates = HashMap::new();
        let mut departures = HashMap::new();
        for (c, w) in work.classes.iter().enumerate() {
            for (k, x) in w.candidates.iter().enumerate() {
                if let Some((_, d)) = &x.error {
                    candidates.insert((c as u32, k), inv.details.intern(d.as_str()));
                }
            }
            for (k, d) in w.departures.iter().enumerate() {
                if let Some(text) = &d.blocked {
                    departures.insert((c as u32, k), inv.details.intern(text.as_str()));
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
/// seat for it. `row` is `None` for a class's shared result, which no seat failure touches.
pub(super) fn failure(
    x: &Candidate,
    row: Option<u32>,
    k: usize,
    failures: &SeatFailures,
) -> Option<LicenseError> {
    x.error.as_ref().map(|(e, _)| *e).or_else(|| {
        row.and_then(|row| failures.get(&(row, k)))
            .map(|_| LicenseError::CountViolation)
    })
}

/// The rows that had a seat refused, in order (each has states of its own).
pub(super) fn refused_rows(failures: &SeatFailures) -> Vec<u32> {
    let mut rows: Vec<u32> = failures.keys().map(|&(row, _)| row).collect();
    rows.dedup();
    rows
}

/// Pass 3's result: the final states of every class, and of every row that had a seat refused.
pub(super) struct Final {
    /// Per class ([`Work`]), for its rows without a refused seat.
    pub(super) classes: Vec<Vec<State>>,
    /// Rows that had a seat refused, in row order, with their own states.
    pub(super) refused: Vec<(u32, Vec<State>)>,
}

/// Every user's final states, sorted: kept snapshot states; per candidate, its group's
/// licences `Active`, or on failure `ActiveWithError` where the snapshot shows the user holding
/// it and `Error` where not (D40); blocked departures `ActiveWithError` with
/// `DependencyViolation`. Worked out once per class, and once per row that had a seat refused.
pub(super) fn finalise(
    work: &Work,
    plans: &GroupPlans,
    failures: &SeatFailures,
    details: &Details,
) -> Final {
    let classes = work
        .classes
        .par_iter()
        .enumerate()
        .map(|(c, w)| states_of(c as u32, None, w, plans, failures, details))
        .collect();
    let refused = refused_rows(failures)
        .into_par_iter()
        .filter_map(|row| {
            let c = *work.class_of.get(row as usize)?;
            let w = work.classes.get(c as usize)?;
            Some((row, states_of(c, Some(row), w, plans, failures, details)))
        })
        .collect();
    Final { classes, refused }
}

/// The final states of class `class` (see [`finalise`]); with `row`, that row's, seat failures
/// included.
fn states_of(
    class: u32,
    row: Option<u32>,
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
        let refused = row.and_then(|row| failures.get(&(row, k)));
        let detail = match (&x.error, refused) {
            (Some(_), _) => details.candidates.get(&(class, k)).copied(),
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
                    .get(&(class, k))
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
    /// Interns the classes' lists (each once, with its rows counted as holders) and the lists
    /// of rows that had a seat refused, and gives every user theirs.
    pub(super) fn intern(done: Final, work: &Work, skus: usize) -> Lists {
        let mut lists: Interner<ListIx, Vec<State>> = Interner::starting_with(Vec::new());
        let mut holders_after = vec![0u64; skus];
        let mut hold = |states: &[State], n: u64| {
            let mut held: Vec<SkuIx> = states
                .iter()
                .filter(|s| s.state.holds())
                .map(|s| s.sku)
                .collect();
            held.dedup();
            for s in held {
                if let Some(h) = holders_after.get_mut(s.position()) {
                    *h += n;
                }
            }
        };
        // Rows of each class with a refused seat have their own lists.
        let refused_in = work.rows_per_class(done.refused.iter().map(|(r, _)| *r as usize));
        let mut class_list = Vec::with_capacity(done.classes.len());
        for ((states, &n), &r) in done.classes.iter().zip(&work.rows).zip(&refused_in) {
            hold(states, n - r);
            class_list.push(lists.intern(states));
        }
        let mut per_user: Vec<ListIx> = work
            .class_of
            .par_iter()
            .map(|&c| class_list.get(c as usize).copied().unwrap_or_default())
            .collect();
        for (row, states) in &done.refused {
            hold(states, 1);
            if let Some(slot) = per_user.get_mut(*row as usize) {
                *slot = lists.intern(states);
            }
        }
        Lists {
            lists: lists.into_values(),
            per_user,
            holders_after,
        }
    }
}
