//! Bulk recomputation of a tenant snapshot: every group's membership ([`memberships`]), then
//! the licensing step ([`crate::licensing::assign`]).
//!
//! What each kind of group gets (Microsoft Learn, "Dynamic membership rules for groups" and
//! "Manage rules for dynamic membership groups"):
//! - a dynamic group with processing `On`: its `membershipRule`, compiled once and evaluated with
//!   every other rule of the same object type in one pass of the VM;
//! - a paused dynamic group (`membershipRuleProcessingState: Paused`): the membership of the
//!   snapshot, unchanged ("paused" groups keep their members);
//! - a static group: the `members` of the snapshot;
//! - a dynamic group whose rule dynrule cannot compile, or a device group without a devices
//!   export: the snapshot membership, and an error issue saying so (decision D38).
//!
//! A group's snapshot membership is its exported `members` (`$expand=members`); without them,
//! the users' own `memberOf` (`$expand=memberOf`); without either, it is unknown.

use crate::bitmap::Bitmap;
use crate::program::{CompileOptions, Program};
use crate::schema::ObjectType;
use crate::table::Table;
use crate::tenant::{Group, MemberKind, Severity, Tenant, TenantIssue};
use std::collections::HashMap;

/// How a group's membership was obtained.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "reason")]
pub enum Processing {
    /// A dynamic rule evaluated on the snapshot.
    Evaluated,
    /// A paused dynamic group: the snapshot membership is kept.
    Paused,
    /// A static (assigned) group: the snapshot `members`.
    Static,
    /// Could not evaluate (the reason); the snapshot membership is kept.
    Kept(String),
}

/// One group's membership, over the rows of the users table (or of the devices table for a
/// device group).
#[derive(Clone, Debug)]
pub struct GroupMembership {
    /// Users or devices.
    pub object: ObjectType,
    /// How it was obtained.
    pub processing: Processing,
    /// Members now.
    pub members: Bitmap,
    /// Members in the snapshot, when known.
    pub snapshot: Option<Bitmap>,
    /// Snapshot members that are not in the users (or devices) export.
    pub outside: usize,
    /// Nested groups among the snapshot members (group-based licensing ignores them).
    pub nested: usize,
}

impl GroupMembership {
    /// Rows that are members now and were not in the snapshot (empty when the snapshot is not
    /// known).
    pub fn joined(&self) -> Bitmap {
        match &self.snapshot {
            Some(s) => and_not(&self.members, s),
            None => Bitmap::zeros(self.members.len()),
        }
    }

    /// Rows that were members in the snapshot and are not now.
    pub fn left(&self) -> Bitmap {
        match &self.snapshot {
            Some(s) => and_not(s, &self.members),
            None => Bitmap::zeros(self.members.len()),
        }
    }
}

/// `a AND NOT b`, bit for bit (same length).
pub fn and_not(a: &Bitmap, b: &Bitmap) -> Bitmap {
    let words = a
        .words()
        .iter()
        .zip(b.words().iter().chain(std::iter::repeat(&0)))
        .map(|(x, y)| x & !y)
        .collect();
    Bitmap::from_words(words, a.len())
}

/// Every group's membership, in the order of [`Tenant::groups`].
#[derive(Clone, Debug, Default)]
pub struct Memberships {
    /// One per group.
    pub groups: Vec<GroupMembership>,
    /// Milliseconds: compiling rules, evaluating them.
    pub compile_ms: f64,
    /// Milliseconds evaluating.
    pub evaluate_ms: f64,
}

/// Object id (lower case) → row, for one table.
pub struct RowIndex {
    map: HashMap<String, u32>,
}

impl RowIndex {
    /// Indexes `table`'s object ids (first row wins for a duplicate id).
    pub fn new(table: &Table) -> RowIndex {
        let mut map = HashMap::with_capacity(table.len());
        for row in 0..table.len() {
            if let Some(id) = table.id(row) {
                map.entry(id.trim().to_ascii_lowercase())
                    .or_insert(row as u32);
            }
        }
        RowIndex { map }
    }

    /// The row of `id` (any case).
    pub fn get(&self, id: &str) -> Option<usize> {
        match self.map.get(id) {
            Some(&r) => Some(r as usize),
            None => self
                .map
                .get(&id.trim().to_ascii_lowercase())
                .map(|&r| r as usize),
        }
    }
}

/// Membership snapshots from the users' own `memberOf`: group id → rows.
fn member_of_snapshot(users: &Table, groups: &[Group]) -> HashMap<usize, Bitmap> {
    let mut out: HashMap<usize, Bitmap> = HashMap::new();
    let Some(col) = users.member_of() else {
        return out;
    };
    let gix: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id.as_str(), i))
        .collect();
    // Per dictionary value once, then per row.
    let code_group: Vec<Option<usize>> = (0..=col.dict.len() as u32)
        .map(|c| {
            col.value(c)
                .and_then(|v| gix.get(v.trim().to_ascii_lowercase().as_str()).copied())
        })
        .collect();
    for row in 0..users.len() {
        for &code in col.codes(row) {
            if let Some(Some(g)) = code_group.get(code as usize) {
                out.entry(*g)
                    .or_insert_with(|| Bitmap::zeros(users.len()))
                    .set(row, true);
            }
        }
    }
    out
}

/// Options for [`memberships`].
#[derive(Clone, Copy, Debug)]
pub struct RecomputeOptions {
    /// What `system.now` stands for.
    pub now: jiff::Timestamp,
}

/// Computes every group's membership (see the module docs). Rules that do not compile, and
/// device rules without a devices export, are reported in the returned issues and keep their
/// snapshot membership.
pub fn memberships(tenant: &Tenant, opts: &RecomputeOptions) -> (Memberships, Vec<TenantIssue>) {
    let users = &tenant.users;
    let user_rows = RowIndex::new(users);
    let device_rows = tenant.devices.as_ref().map(RowIndex::new);
    // With `$expand=members` every group carries its members, and the users' memberOf was
    // rebuilt from them; only an export without any members says something through the
    // users' own `memberOf`.
    let any_members = tenant.groups.iter().any(|g| g.members.is_some());
    let from_member_of = if !any_members {
        member_of_snapshot(users, &tenant.groups)
    } else {
        HashMap::new()
    };
    let mut issues = Vec::new();
    let mut out: Vec<GroupMembership> = Vec::with_capacity(tenant.groups.len());
    let t0 = std::time::Instant::now();
    let copts = CompileOptions { now: opts.now };
    // (group, program) per object type.
    let mut user_programs: Vec<(usize, Program)> = Vec::new();
    let mut device_programs: Vec<(usize, Program)> = Vec::new();
    for (gi, g) in tenant.groups.iter().enumerate() {
        let mut object = ObjectType::User;
        let mut processing = if g.is_dynamic() {
            if g.is_paused() {
                Processing::Paused
            } else {
                Processing::Evaluated
            }
        } else {
            Processing::Static
        };
        if g.is_dynamic() {
            match g.membership_rule.as_deref() {
                None => processing = Processing::Kept("no membershipRule in the export".into()),
                Some(rule) => {
                    let checked = crate::check(rule);
                    if let Some(o) = checked.object {
                        object = o;
                    }
                    if processing == Processing::Evaluated {
                        match &checked.hir {
                            None => {
                                let first = checked
                                    .errors()
                                    .next()
                                    .map(|d| {
                                        format!(
                                            "{} at column {}: {}",
                                            d.code.as_str(),
                                            rule.get(..d.span.start)
                                                .map_or(0, |p| p.chars().count())
                                                + 1,
                                            d.message
                                        )
                                    })
                                    .unwrap_or_default();
                                processing =
                                    Processing::Kept(format!("the rule does not compile: {first}"));
                            }
                            Some(hir) => match Program::compile(hir, &copts) {
                                Err(e) => {
                                    processing =
                                        Processing::Kept(format!("the rule does not compile: {e}"));
                                }
                                Ok(p) => match object {
                                    ObjectType::User => user_programs.push((gi, p)),
                                    ObjectType::Device if tenant.devices.is_some() => {
                                        device_programs.push((gi, p));
                                    }
                                    ObjectType::Device => {
                                        processing = Processing::Kept(
                                            "a device rule, and the snapshot has no devices export"
                                                .into(),
                                        );
                                    }
                                },
                            },
                        }
                    }
                }
            }
        } else if g
            .members
            .iter()
            .flatten()
            .any(|(_, k)| *k == MemberKind::Device)
            && !g
                .members
                .iter()
                .flatten()
                .any(|(_, k)| *k == MemberKind::User)
        {
            object = ObjectType::Device;
        }
        if let Processing::Kept(reason) = &processing {
            issues.push(TenantIssue::about_group(
                Severity::Error,
                g,
                format!("{reason}; the snapshot membership is kept"),
            ));
        }
        let (rows, len) = match object {
            ObjectType::User => (Some(&user_rows), users.len()),
            ObjectType::Device => (
                device_rows.as_ref(),
                tenant.devices.as_ref().map_or(0, Table::len),
            ),
        };
        let mut outside = 0;
        let mut nested = 0;
        let snapshot = match (&g.members, rows) {
            (Some(members), Some(rows)) => {
                let mut b = Bitmap::zeros(len);
                for (id, kind) in members {
                    match (kind, rows.get(id)) {
                        (MemberKind::Group, _) => nested += 1,
                        (_, Some(r)) => b.set(r, true),
                        (_, None) => outside += 1,
                    }
                }
                Some(b)
            }
            (None, _) if object == ObjectType::User && !any_members => {
                from_member_of.get(&gi).cloned().or_else(|| {
                    // Users exported with `memberOf` but in no group: an empty membership.
                    (users.member_of().is_some_and(|c| !c.values.is_empty()))
                        .then(|| Bitmap::zeros(len))
                })
            }
            _ => None,
        };
        let members = match (&processing, &snapshot) {
            (Processing::Evaluated, _) => Bitmap::zeros(len),
            (_, Some(s)) => s.clone(),
            (_, None) => Bitmap::zeros(len),
        };
        if processing != Processing::Evaluated && snapshot.is_none() {
            issues.push(TenantIssue::about_group(Severity::Warning, g, "membership unknown: export groups with $expand=members (or users with $expand=memberOf)".into()));
        }
        out.push(GroupMembership {
            object,
            processing,
            members,
            snapshot,
            outside,
            nested,
        });
    }
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = std::time::Instant::now();
    for (programs, table) in [
        (&user_programs, Some(users)),
        (&device_programs, tenant.devices.as_ref()),
    ] {
        let Some(table) = table else { continue };
        if programs.is_empty() {
            continue;
        }
        let ps: Vec<Program> = programs.iter().map(|(_, p)| p.clone()).collect();
        for ((gi, _), bits) in programs.iter().zip(crate::vm::evaluate(&ps, table)) {
            if let Some(m) = out.get_mut(*gi) {
                m.members = bits;
            }
        }
    }
    let evaluate_ms = t1.elapsed().as_secs_f64() * 1e3;
    (
        Memberships {
            groups: out,
            compile_ms,
            evaluate_ms,
        },
        issues,
    )
}
