//! Whether a computed answer can be trusted: property coverage and the baseline check.
//!
//! A what-if is only as good as its *before*. Two checks turn the ways a snapshot silently
//! spoils it into issues whose kinds ([`IssueKind::undermines`]) make `whatif` exit 4 and
//! `recompute` exit 4 (decision D58):
//!
//! - **Property coverage** ([`property_issues`]): a property that a group's rule (or, for a
//!   licensed group, the licensing step) reads and that no record holds. Graph returns only a
//!   default set of properties unless `$select` names them (`GET /users` has no `department`,
//!   `accountEnabled`, `licenseAssignmentStates`); `Get-MgUser` without `-Property` likewise.
//!   Every rule on such a property reads null and selects nobody, before and after.
//! - **The baseline** ([`baseline_issues`]): for an evaluated group, the computed membership
//!   against what the snapshot records: its exported `members`, else (a licensed group) the
//!   users whose `licenseAssignmentStates` name it (`assignedByGroup`). More differences than
//!   the tolerance means the computed *before* is not the tenant's.

use crate::bitmap::Bitmap;
use crate::recompute::{Processing, Recomputed};
use crate::schema::{GraphKey, ObjectType};
use crate::table::{ColumnKey, Projection, Table};
use crate::tenant::{Group, IssueKind, Severity, Tenant, TenantIssue, UserRecords};
use std::collections::{BTreeSet, HashMap};

/// What a group reads from its members' records, as a person would name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Read {
    /// A schema property, by canonical name.
    Prop(ObjectType, &'static str),
    /// A directory extension (lower case).
    Extension(ObjectType, String),
    /// The manager (`$expand=manager`).
    Manager,
}

impl Read {
    /// The property as rules write it.
    fn name(&self) -> String {
        match self {
            Read::Prop(_, p) => (*p).to_string(),
            Read::Extension(_, e) => e.clone(),
            Read::Manager => "manager".to_string(),
        }
    }

    /// The Graph key to select (`$select`), or the `$expand` for the manager.
    fn graph_key(&self) -> String {
        match self {
            Read::Prop(o, p) => match crate::schema::lookup(*o, p).map(|p| p.graph) {
                Some(GraphKey::Field(k) | GraphKey::First(k) | GraphKey::Nested(k, _)) => {
                    k.to_string()
                }
                _ => (*p).to_string(),
            },
            Read::Extension(_, e) => e.clone(),
            Read::Manager => "manager".to_string(),
        }
    }

    /// The fix for an export without it.
    fn fix(&self) -> String {
        match self {
            Read::Manager => {
                "export with `$expand=manager($select=id)` (`Get-MgUser -ExpandProperty manager`)"
                    .to_string()
            }
            Read::Prop(ObjectType::Device, _) | Read::Extension(ObjectType::Device, _) => {
                format!("add `{}` to `$select` of GET /devices", self.graph_key())
            }
            _ => format!(
                "add `{0}` to `$select` of GET /users (`Get-MgUser -All -Property {0},…`)",
                self.graph_key()
            ),
        }
    }

    /// Rows of `table` with a value.
    fn rows_with_value(&self, table: &Table) -> usize {
        match self {
            Read::Prop(_, p) => table.rows_with_value(ColumnKey::Prop(p)),
            Read::Extension(_, e) => table.rows_with_extension(e),
            Read::Manager => table.rows_with_value(ColumnKey::Manager),
        }
    }
}

/// Properties Microsoft documents for rules that Graph does not return at all (the old
/// AzureAD module's `Get-AzureADUser` did).
const NOT_IN_GRAPH: &[&str] = &["sipProxyAddress"];

/// What a rule reads (a rule that does not compile reads nothing here).
fn reads_of(rule: &str) -> Vec<Read> {
    let opts = crate::program::CompileOptions {
        now: jiff::Timestamp::UNIX_EPOCH,
    };
    match crate::program::Program::from_text(rule, &opts) {
        Ok(p) => program_reads(&p),
        Err(_) => Vec::new(),
    }
}

/// For `eval`: one message per property that `programs` read and no row of `table` holds,
/// with the fix (the `$select` to add, or that Graph does not return it).
pub fn missing_properties(table: &Table, programs: &[crate::program::Program]) -> Vec<String> {
    if table.is_empty() {
        return Vec::new();
    }
    let reads: BTreeSet<Read> = programs.iter().flat_map(program_reads).collect();
    reads
        .into_iter()
        .filter(|r| r.rows_with_value(table) == 0)
        .map(|r| {
            let name = r.name();
            if NOT_IN_GRAPH.iter().any(|p| p.eq_ignore_ascii_case(&name)) {
                format!("no record has `{name}`: Microsoft Graph does not return it (only the retired AzureAD module did); rules on it read null")
            } else {
                format!("no record has a value for `{name}`: rules on it read null; if the export did not select it, {}", r.fix())
            }
        })
        .collect()
}

/// What a compiled program reads.
fn program_reads(p: &crate::program::Program) -> Vec<Read> {
    let mut proj = Projection::default();
    p.add_reads(&mut proj);
    let mut out: Vec<Read> = proj
        .columns
        .iter()
        .filter_map(|k| match k {
            ColumnKey::Prop(name) => Some(Read::Prop(p.object, name)),
            ColumnKey::Manager => Some(Read::Manager),
            _ => None,
        })
        .chain(
            proj.extensions
                .iter()
                .map(|e| Read::Extension(p.object, e.clone())),
        )
        .collect();
    out.sort();
    out
}

/// Whether the first MiB of the export mentions `key` as a JSON key (`"key":`) or a CSV
/// header, in any case: tells "not selected" from "null in every record". `None` when the
/// records are in memory or the file cannot be read.
fn export_mentions(records: &UserRecords, key: &str) -> Option<bool> {
    let UserRecords::Path(path) = records else {
        return None;
    };
    let file = crate::load::files_of(path).ok()?.into_iter().next()?;
    let mut head = Vec::with_capacity(1 << 20);
    use std::io::Read as _;
    std::fs::File::open(&file)
        .ok()?
        .take(1 << 20)
        .read_to_end(&mut head)
        .ok()?;
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let key = key.to_ascii_lowercase();
    if crate::load::format_of(&file) == Some(crate::load::Format::Csv) {
        let header = text.lines().next().unwrap_or("");
        return Some(header.contains(&key));
    }
    Some(text.contains(&format!("\"{key}\"")))
}

/// Coverage issues for the groups at `scope` (indices into `groups`; every group when
/// `None`): one [`IssueKind::PropertyNotExported`], [`IssueKind::PropertyAllNull`] or
/// [`IssueKind::PropertyNotInGraph`] per group that reads a property no record holds. A
/// licensed group reads `usageLocation` and `licenseAssignmentStates` too.
pub fn property_issues(
    tenant: &Tenant,
    groups: &[Group],
    scope: Option<&[usize]>,
) -> Vec<TenantIssue> {
    let mut counts: HashMap<Read, usize> = HashMap::new();
    let mut out = Vec::new();
    let all: Vec<usize> = (0..groups.len()).collect();
    let no_licence_states = tenant.users.rows_with_value(ColumnKey::LicenseStates) == 0;
    for &gi in scope.unwrap_or(&all) {
        let Some(g) = groups.get(gi) else { continue };
        let mut reads = if g.is_dynamic() && !g.is_paused() {
            g.membership_rule
                .as_deref()
                .map(reads_of)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let licensed = !g.assigned_licenses.is_empty() && g.licenses_members();
        let mut licence_states = false;
        if licensed {
            reads.push(Read::Prop(ObjectType::User, "usageLocation"));
            licence_states = true;
        }
        let mut missing: Vec<(IssueKind, String)> = Vec::new();
        for r in reads {
            let table = match &r {
                Read::Prop(ObjectType::Device, _) | Read::Extension(ObjectType::Device, _) => {
                    match &tenant.devices {
                        Some(d) => d,
                        None => continue,
                    }
                }
                _ => &tenant.users,
            };
            if table.is_empty() {
                continue;
            }
            let n = *counts
                .entry(r.clone())
                .or_insert_with(|| r.rows_with_value(table));
            if n > 0 {
                continue;
            }
            let name = r.name();
            if NOT_IN_GRAPH.iter().any(|p| p.eq_ignore_ascii_case(&name)) {
                missing.push((
                    IssueKind::PropertyNotInGraph,
                    format!("`{name}`: Microsoft Graph does not return it (only the retired AzureAD module's Get-AzureADUser did), so no Graph export holds it"),
                ));
                continue;
            }
            let mentioned = export_mentions(&tenant.user_records, &r.graph_key());
            if mentioned == Some(true) {
                missing.push((
                    IssueKind::PropertyAllNull,
                    format!("`{name}` is null in every record; if the tenant really sets it, the export did not carry it ({})", r.fix()),
                ));
            } else {
                missing.push((
                    IssueKind::PropertyNotExported,
                    format!("`{name}` is in no record of the export: {}", r.fix()),
                ));
            }
        }
        if licence_states && no_licence_states {
            missing.push((
                IssueKind::PropertyNotExported,
                "`licenseAssignmentStates` is in no record: Graph returns it only when selected; add `licenseAssignmentStates,assignedLicenses` to `$select` (the baseline check and the snapshot's licence states need it)".to_string(),
            ));
        }
        for (kind, what) in missing {
            out.push(TenantIssue::about_group(
                kind,
                Severity::Error,
                g,
                format!("the rule or licensing of this group reads {what}; its computed membership and licences cannot be trusted"),
            ));
        }
    }
    out
}

/// A limit given as a count or as a percentage of a group (`--max-removals 5%`,
/// `--baseline-tolerance 2%`): one type, one parser, for thresholds and tolerances.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum Limit {
    /// At most this many.
    Count(u64),
    /// At most this percentage of the group it applies to.
    Percent(f64),
}

impl std::str::FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{s}` is not a percentage"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("`{s}`: a percentage is between 0 and 100"));
            }
            return Ok(Limit::Percent(v));
        }
        s.parse()
            .map(Limit::Count)
            .map_err(|_| format!("`{s}` is neither a count nor a percentage like 5%"))
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Count(n) => write!(f, "{n}"),
            Limit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// How many differences between a computed and a recorded membership are tolerated: a count,
/// or a percentage of the larger of the two memberships.
pub type Tolerance = Limit;

impl Default for Limit {
    /// The baseline tolerance, 2%: changes Entra has not processed yet and documented
    /// differences (D55) stay below it on a fresh export; a missing property or a rule dynrule
    /// reads differently does not.
    fn default() -> Self {
        Limit::Percent(2.0)
    }
}

impl Tolerance {
    /// Whether `differences` between memberships of sizes `a` and `b` are within it.
    fn allows(self, differences: usize, a: usize, b: usize) -> bool {
        match self {
            Tolerance::Count(n) => differences as u64 <= n,
            Tolerance::Percent(p) => (differences as f64) * 100.0 <= p * (a.max(b) as f64),
        }
    }
}

/// Rows whose exported `licenseAssignmentStates` name group `id` (`assignedByGroup`), or
/// `None` when no user has any licence state (not exported).
fn licensed_by(users: &Table, id: &str) -> Option<Bitmap> {
    let col = users.licenses(ColumnKey::LicenseStates)?;
    if users.rows_with_value(ColumnKey::LicenseStates) == 0 {
        return None;
    }
    let names: Vec<bool> = col
        .lists()
        .iter()
        .map(|s| {
            s.iter().any(|e| {
                e.assigned_by_group
                    .as_deref()
                    .is_some_and(|g| g.trim().eq_ignore_ascii_case(id))
            })
        })
        .collect();
    let mut b = Bitmap::zeros(users.len());
    for row in 0..users.len() {
        if col
            .list_code(row)
            .is_some_and(|c| names.get(c).copied().unwrap_or(false))
        {
            b.set(row, true);
        }
    }
    Some(b)
}

/// The baseline check for the evaluated groups at `scope` (every group when `None`): an
/// [`IssueKind::BaselineMismatch`] per group whose computed membership differs from the
/// recorded one by more than `tolerance`, naming both counts, sample users and the likely
/// cause. `groups` are the groups `recomputed` was computed for (the tenant's, for a what-if's
/// before side).
pub fn baseline_issues(
    tenant: &Tenant,
    groups: &[Group],
    recomputed: &Recomputed,
    scope: Option<&[usize]>,
    tolerance: Tolerance,
) -> Vec<TenantIssue> {
    let users = &tenant.users;
    let mut out = Vec::new();
    let all: Vec<usize> = (0..groups.len()).collect();
    let label = |row: usize| {
        users
            .name(row)
            .or_else(|| users.id(row))
            .unwrap_or("?")
            .to_string()
    };
    for &gi in scope.unwrap_or(&all) {
        let (Some(g), Some(m)) = (groups.get(gi), recomputed.memberships.groups.get(gi)) else {
            continue;
        };
        if m.processing != Processing::Evaluated || m.object != ObjectType::User {
            continue;
        }
        let (recorded, source) = match &m.snapshot {
            Some(s) => (s.clone(), "its exported `members`"),
            // A group no licence state names has never had its licences processed (a new
            // group or licence): no evidence either way.
            None if !g.assigned_licenses.is_empty() => match licensed_by(users, &g.id) {
                Some(b) if b.count_ones() > 0 => (
                    b,
                    "the users whose exported licenseAssignmentStates name it",
                ),
                _ => continue,
            },
            None => continue,
        };
        let missing = recorded.and_not(&m.members);
        let extra = m.members.and_not(&recorded);
        let (nm, ne) = (missing.count_ones(), extra.count_ones());
        let (computed, recorded_n) = (m.members.count_ones(), recorded.count_ones());
        if tolerance.allows(nm + ne, computed, recorded_n) {
            continue;
        }
        let sample = |b: &Bitmap| -> String {
            let v: Vec<String> = b.ones_iter().take(3).map(label).collect();
            if v.is_empty() {
                String::new()
            } else {
                format!(" (e.g. {})", v.join(", "))
            }
        };
        let reads: BTreeSet<String> = g
            .membership_rule
            .as_deref()
            .map(reads_of)
            .unwrap_or_default()
            .iter()
            .filter(|r| r.rows_with_value(users) == 0)
            .map(Read::name)
            .collect();
        let cause = if !reads.is_empty() {
            format!(
                "the export holds no value for {}",
                reads.into_iter().collect::<Vec<_>>().join(", ")
            )
        } else if computed == 0 {
            "the rule selects nobody in this export: a property it reads is missing or formatted differently, or dynrule reads the rule differently from Entra (grammar/DECISIONS.md)".to_string()
        } else {
            "changes Entra has not processed yet (re-export), or a place where dynrule's model differs from Entra's (grammar/DECISIONS.md)".to_string()
        };
        out.push(TenantIssue::about_group(
            IssueKind::BaselineMismatch,
            Severity::Error,
            g,
            format!(
                "the computed membership ({computed}) is not what the snapshot records ({recorded_n}, from {source}): {nm} recorded member(s) not computed{}, {ne} computed but not recorded{}; over the baseline tolerance {tolerance}. Likely cause: {cause}",
                sample(&missing),
                sample(&extra),
            ),
        ));
    }
    out
}
