//! The one pipeline behind `recompute` and both sides of `whatif` ([`run`]): every group's
//! membership ([`crate::membership`]), then group-based licensing ([`crate::licensing::assign`]),
//! iterated when rules read `assignedPlans`. It never changes the [`Tenant`]; what a what-if
//! changes comes in an [`Overlay`].
//!
//! The membership step's items are re-exported here, so `dynrule::recompute::memberships` and
//! its types keep their paths.

pub use crate::membership::{
    GroupMembership, Memberships, Processing, RecomputeOptions, RowIndex, memberships,
    undecided_message,
};

use crate::bitmap::Bitmap;
use crate::catalog::PlanIx;
use crate::licensing::{self, Assignments};
use crate::schema::ObjectType;
use crate::table::{PlanColumn, PlanList, Table};
use crate::tenant::{Group, IssueKind, Tenant, TenantIssue};
use rayon::prelude::*;

/// Rounds of licences → `assignedPlans` → memberships before a computation is declared a
/// cycle.
pub const MAX_ITERATIONS: usize = 8;

/// What a computation changes about the snapshot: the groups as they would be, and which
/// memberships to hold to another computation. Empty: the snapshot as exported.
#[derive(Clone, Copy, Default)]
pub struct Overlay<'a> {
    /// The groups as they would be (same order as [`Tenant::groups`]); `None`: the tenant's.
    pub groups: Option<&'a [Group]>,
    /// Memberships held to another computation (a what-if's before side).
    pub keep: Option<&'a Keep<'a>>,
    /// An earlier computation over the same groups but the changed ones: only those, and the
    /// groups whose rules read `assignedPlans`, are evaluated again ([`Reuse`]).
    pub reuse: Option<&'a Reuse<'a>>,
}

/// What an incremental computation starts from (a what-if's after side): the memberships of
/// the before side, and which groups differ. Every other group's rule and data are the same, so
/// its membership is too; with a memberOf rule among the groups (it may read any group) the
/// computation is done in full instead.
pub struct Reuse<'a> {
    /// The before side's memberships (one per group, in the same order).
    pub base: &'a Memberships,
    /// Indices of the groups that differ.
    pub changed: &'a [usize],
}

/// Memberships held to a base computation while another is made.
pub struct Keep<'a> {
    /// The memberships to hold to (the before side).
    pub base: &'a Memberships,
    /// Only these users take new memberships (a test group); `None`: everyone.
    pub test: Option<&'a Bitmap>,
    /// Groups whose membership stays as in `base` (groups the change pauses: a paused group
    /// keeps its members, whatever the snapshot says about them).
    pub pinned: Vec<usize>,
}

impl Keep<'_> {
    fn apply(&self, m: &mut Memberships) {
        for (gi, (g, b)) in m.groups.iter_mut().zip(&self.base.groups).enumerate() {
            if self.pinned.contains(&gi) {
                g.members = b.members.clone();
                g.known = b.known;
                continue;
            }
            let Some(test) = self.test else { continue };
            if g.object != ObjectType::User || g.members.len() != test.len() {
                continue;
            }
            let words: Vec<u64> = g
                .members
                .words()
                .iter()
                .zip(b.members.words())
                .zip(test.words())
                .map(|((new, old), t)| (new & t) | (old & !t))
                .collect();
            g.members = Bitmap::from_words(words, g.members.len());
        }
    }
}

/// The result of [`run`]: memberships and licensing, settled.
#[derive(Clone, Debug)]
pub struct Recomputed {
    /// Memberships.
    pub memberships: Memberships,
    /// Licensing.
    pub assignments: Assignments,
    /// Rounds of the licences → plans → memberships loop (1 when no rule reads
    /// `assignedPlans`).
    pub iterations: usize,
    /// False when the loop did not settle within [`MAX_ITERATIONS`] rounds.
    pub converged: bool,
    /// Issues found computing it (the tenant's own are in [`Tenant::issues`]).
    pub issues: Vec<TenantIssue>,
}

/// Whether a group's rule reads `assignedPlans` (and so licences feed back into it).
pub fn reads_plans(g: &Group) -> bool {
    g.is_dynamic()
        && !g.is_paused()
        && g.membership_rule
            .as_deref()
            .is_some_and(|r| r.to_ascii_lowercase().contains("assignedplans"))
}

/// The pipeline: memberships, then licensing, iterated to a fixpoint when a rule reads
/// `assignedPlans` (Microsoft Learn, licensing-groups-resolve-problems: such rules "can
/// cascade adds and removes"). `recompute` runs it once; `whatif` runs it for each side.
/// The tenant is only read: a changed `assignedPlans` column lives in a table variant.
pub fn run(tenant: &Tenant, overlay: &Overlay<'_>, opts: &RecomputeOptions) -> Recomputed {
    let groups = overlay.groups.unwrap_or(&tenant.groups);
    // Memberships held to the keep's base (a test group, paused groups); a group so held is
    // known when the base is.
    let hold = |(mut m, mut issues): (Memberships, Vec<TenantIssue>)| {
        if let Some(k) = overlay.keep {
            k.apply(&mut m);
            issues.retain(|i| {
                i.kind != IssueKind::MembershipUnknown
                    || !groups
                        .iter()
                        .zip(&m.groups)
                        .any(|(g, gm)| gm.known && i.concerns(g))
            });
        }
        (m, issues)
    };
    let step = |users: &Table| hold(memberships(tenant, groups, users, opts));
    let member_of = groups.iter().any(|g| {
        g.membership_rule
            .as_deref()
            .is_some_and(|r| r.to_ascii_lowercase().contains("memberof"))
    });
    let reuse = overlay
        .reuse
        .filter(|r| !member_of && r.base.groups.len() == groups.len());
    let (mut m, mut issues) = match reuse {
        Some(r) => hold(evaluate_again(tenant, groups, r, opts)),
        None => step(&tenant.users),
    };
    let (mut a, more) = licensing::assign(tenant, groups, &m);
    issues.extend(more);
    let mut iterations = 1;
    let mut converged = true;
    if groups.iter().any(reads_plans) {
        (m, a, iterations, converged) = if member_of {
            // A memberOf rule may read any group: every group is evaluated each round.
            iterate_all(tenant, groups, m, a, &step)
        } else {
            iterate_readers(tenant, groups, overlay.keep, opts, m, a)
        };
    }
    Recomputed {
        memberships: m,
        assignments: a,
        iterations,
        converged,
        issues,
    }
}

/// The first round of an incremental computation: `r.base` with the changed groups and the
/// `assignedPlans` readers evaluated again over the tenant's users (as a full first round
/// evaluates them), spliced in. The issues are those of the groups evaluated.
fn evaluate_again(
    tenant: &Tenant,
    groups: &[Group],
    r: &Reuse<'_>,
    opts: &RecomputeOptions,
) -> (Memberships, Vec<TenantIssue>) {
    let mut again: Vec<usize> = r
        .changed
        .iter()
        .copied()
        .chain(readers(groups))
        .filter(|&i| i < groups.len())
        .collect();
    again.sort_unstable();
    again.dedup();
    let (fresh, issues) = memberships(tenant, &subset(groups, &again), &tenant.users, opts);
    let mut m = Memberships {
        groups: r.base.groups.clone(),
        compile_ms: fresh.compile_ms,
        evaluate_ms: fresh.evaluate_ms,
    };
    splice(&mut m, &again, fresh);
    (m, issues)
}

/// Indices of the groups whose rules read `assignedPlans`.
fn readers(groups: &[Group]) -> Vec<usize> {
    (0..groups.len())
        .filter(|&i| groups.get(i).is_some_and(reads_plans))
        .collect()
}

/// The groups at `at`, in that order (what [`memberships`] evaluates of a partial round).
fn subset(groups: &[Group], at: &[usize]) -> Vec<Group> {
    at.iter().filter_map(|&i| groups.get(i).cloned()).collect()
}

/// Puts `fresh`'s memberships (of the groups at `at`, in that order) into `m`.
fn splice(m: &mut Memberships, at: &[usize], fresh: Memberships) {
    for (&i, g) in at.iter().zip(fresh.groups) {
        if let Some(slot) = m.groups.get_mut(i) {
            *slot = g;
        }
    }
}

/// The licences → plans → memberships loop, every group evaluated each round (a tenant with
/// memberOf rules, which may read any group). Returns the settled memberships and licensing,
/// the rounds, and whether they settled.
fn iterate_all(
    tenant: &Tenant,
    groups: &[Group],
    mut m: Memberships,
    mut a: Assignments,
    step: &dyn Fn(&Table) -> (Memberships, Vec<TenantIssue>),
) -> (Memberships, Assignments, usize, bool) {
    let mut iterations = 1;
    let mut history: Vec<Memberships> = vec![m.clone()];
    while iterations < MAX_ITERATIONS {
        let Some(col) = plans_after(tenant, &a) else {
            return (m, a, iterations, true);
        };
        let users = tenant.users.with_assigned_plans(col);
        let (m2, _) = step(&users);
        iterations += 1;
        if m2.same_members(&m) {
            return (m, a, iterations, true);
        }
        // Licences only follow groups that carry some: when only other groups moved,
        // licensing (and so assignedPlans) cannot change, and this is the fixpoint.
        let same_licensed = groups
            .iter()
            .zip(m2.groups.iter().zip(&m.groups))
            .all(|(g, (x, y))| g.assigned_licenses.is_empty() || x.members == y.members);
        if same_licensed {
            return (m2, a, iterations, true);
        }
        let (a2, _) = licensing::assign(tenant, groups, &m2);
        let repeat = history.iter().any(|h| h.same_members(&m2));
        m = m2;
        a = a2;
        if repeat {
            return (m, a, iterations, false);
        }
        history.push(m.clone());
    }
    (m, a, iterations, false)
}

/// The same loop without memberOf rules: only the groups whose rules read `assignedPlans` can
/// move between rounds, so only they are evaluated again (each round spliced into `m`), and
/// the history keeps only their members. On a tenant with thousands of groups this is the
/// difference between one round's cost and a few milliseconds, and between one copy of every
/// membership per round and none.
fn iterate_readers(
    tenant: &Tenant,
    groups: &[Group],
    keep: Option<&Keep<'_>>,
    opts: &RecomputeOptions,
    mut m: Memberships,
    mut a: Assignments,
) -> (Memberships, Assignments, usize, bool) {
    let readers = readers(groups);
    let sub = subset(groups, &readers);
    let of = |m: &Memberships| -> Vec<Bitmap> {
        readers
            .iter()
            .filter_map(|&i| m.groups.get(i).map(|g| g.members.clone()))
            .collect()
    };
    let licensed = readers.iter().any(|&i| {
        groups
            .get(i)
            .is_some_and(|g| !g.assigned_licenses.is_empty())
    });
    let mut history: Vec<Vec<Bitmap>> = vec![of(&m)];
    let mut iterations = 1;
    while iterations < MAX_ITERATIONS {
        let Some(col) = plans_after(tenant, &a) else {
            return (m, a, iterations, true);
        };
        let users = tenant.users.with_assigned_plans(col);
        let (fresh, _) = memberships(tenant, &sub, &users, opts);
        let before = history.last().cloned().unwrap_or_default();
        splice(&mut m, &readers, fresh);
        if let Some(k) = keep {
            k.apply(&mut m);
        }
        iterations += 1;
        let now = of(&m);
        // Unchanged, or changed only in groups without licences (licensing, and so
        // assignedPlans, cannot change): the fixpoint.
        if now == before || !licensed {
            return (m, a, iterations, true);
        }
        a = licensing::assign(tenant, groups, &m).0;
        if history.contains(&now) {
            return (m, a, iterations, false);
        }
        history.push(now);
    }
    (m, a, iterations, false)
}

/// Users' `assignedPlans` as licensing leaves them: plans still enabled stay (a `Deleted` one
/// comes back `Enabled`), plans no longer enabled become `Deleted` (Graph keeps removed plans
/// in `assignedPlans` that way), new plans are added `Enabled` with the `service` name seen for
/// that plan elsewhere in the table. Worked out once per distinct (plan set, licence states)
/// pair, on dictionary codes.
fn plans_after(tenant: &Tenant, a: &Assignments) -> Option<PlanColumn> {
    use crate::licensing::ListIx;
    let col = tenant.users.assigned_plans()?;
    let catalog = &tenant.catalog;
    let [ids, _, statuses] = &col.sets.dicts;
    // Each row's (plan set before, licence states after) pair, numbered in order of first
    // appearance; the lists are then worked out once per pair, in parallel, from the effective
    // plans worked out once per licence list.
    let mut index: hashbrown::HashMap<(u32, ListIx), u32> = hashbrown::HashMap::new();
    let mut pairs: Vec<(u32, ListIx)> = Vec::new();
    let mut codes = Vec::with_capacity(tenant.users.len());
    for row in 0..tenant.users.len() {
        let key = (col.set_codes.get(row).copied().unwrap_or(0), a.list_of(row));
        let code = *index.entry(key).or_insert_with(|| {
            pairs.push(key);
            pairs.len() as u32 - 1
        });
        codes.push(code);
    }
    let mut used: Vec<ListIx> = pairs.iter().map(|&(_, l)| l).collect();
    used.sort_unstable();
    used.dedup();
    let plans: Vec<Vec<PlanIx>> = used
        .par_iter()
        .map(|&l| a.effective_plans(a.list(l), catalog))
        .collect();
    let effective: hashbrown::HashMap<ListIx, Vec<PlanIx>> = used.into_iter().zip(plans).collect();

    // Codes: servicePlanId code → catalog plan, and catalog plan → code; plans no row has yet
    // get codes after the dictionary's, their ids as new text.
    let mut new_text: [Vec<&str>; 3] = Default::default();
    let plan_of_code: Vec<Option<PlanIx>> = std::iter::once(None)
        .chain((0..ids.len()).map(|i| catalog.plan_by_id(ids.get(i))))
        .collect();
    let mut code_of_plan: hashbrown::HashMap<PlanIx, u32> = plan_of_code
        .iter()
        .enumerate()
        .filter_map(|(c, p)| p.map(|p| (p, c as u32)))
        .collect();
    let mut gained: Vec<PlanIx> = effective.values().flatten().copied().collect();
    gained.sort_unstable();
    gained.dedup();
    for p in gained {
        if code_of_plan.contains_key(&p) {
            continue;
        }
        if let Some(info) = catalog.plan_info(p) {
            new_text[0].push(info.service_plan_id.as_str());
            code_of_plan.insert(p, (ids.len() + new_text[0].len()) as u32);
        }
    }
    // servicePlanId code → the first `service` code seen with it.
    let mut service_of: Vec<u32> = vec![0; plan_of_code.len()];
    for (p, s) in col.sets.service_plan_id.iter().zip(&col.sets.service) {
        if let Some(slot) = service_of.get_mut(*p as usize) {
            if *slot == 0 {
                *slot = *s;
            }
        }
    }
    let mut status_code = |name: &'static str| match (0..statuses.len())
        .find(|&i| statuses.get(i).eq_ignore_ascii_case(name))
    {
        Some(i) => i as u32 + 1,
        None => {
            new_text[2].push(name);
            (statuses.len() + new_text[2].len()) as u32
        }
    };
    let enabled_code = status_code("Enabled");
    let deleted_code = status_code("Deleted");
    let active: Vec<bool> = std::iter::once(false)
        .chain((0..statuses.len()).map(|i| {
            let s = statuses.get(i);
            s.eq_ignore_ascii_case("Enabled") || s.eq_ignore_ascii_case("Warning")
        }))
        .collect();

    let lists: Vec<PlanList> = pairs
        .par_iter()
        .map(|&(before, after)| {
            let enabled = effective.get(&after).map_or(&[][..], Vec::as_slice);
            let mut seen: Vec<PlanIx> = Vec::new();
            let mut out: Vec<[u32; 3]> = Vec::new();
            for [p, svc, status] in col.sets.plans(before as usize) {
                let plan = plan_of_code.get(p as usize).copied().flatten();
                let on = plan.is_some_and(|x| enabled.binary_search(&x).is_ok());
                let status = if on && status == deleted_code {
                    enabled_code
                } else if !on && active.get(status as usize).copied().unwrap_or(false) {
                    deleted_code
                } else {
                    status
                };
                if let Some(x) = plan {
                    seen.push(x);
                }
                out.push([p, svc, status]);
            }
            seen.sort_unstable();
            for &x in enabled.iter().filter(|x| seen.binary_search(x).is_err()) {
                let id = code_of_plan.get(&x).copied().unwrap_or(0);
                let svc = service_of.get(id as usize).copied().unwrap_or(0);
                out.push([id, svc, enabled_code]);
            }
            if out.iter().copied().eq(col.sets.plans(before as usize)) {
                return PlanList::Set(before);
            }
            out.sort_unstable();
            out.dedup();
            PlanList::Plans(out)
        })
        .collect();
    col.derive(&new_text, lists, &codes).ok()
}
