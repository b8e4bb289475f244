//! A tenant snapshot: a folder of Microsoft Graph exports that [`crate::recompute`] and the
//! licensing step read.
//!
//! | file | Graph call | needed |
//! | --- | --- | --- |
//! | `users.*` (`.jsonl`, `.json`, `.csv`, or a folder `users/`) | `GET /users?$select=…,assignedLicenses,licenseAssignmentStates,usageLocation,assignedPlans,proxyAddresses&$expand=manager($select=id)` | yes |
//! | `groups.json` (or `.jsonl`, or a folder `groups/`) | `GET /groups?$select=id,displayName,groupTypes,membershipRule,membershipRuleProcessingState,securityEnabled,mailEnabled,assignedLicenses&$expand=members($select=id)` | yes |
//! | `subscribedSkus.json` | `GET /subscribedSkus` | for seats and plan lists |
//! | `organization.json` | `GET /organization?$select=countryLetterCode` | for users without `usageLocation` |
//! | `devices.*` | `GET /devices` | for device rules |
//! | `licensingRules.json` | (dynrule's own format) | optional |
//!
//! Only a missing or unreadable users or groups export is fatal ([`TenantError`]); anything
//! else that is missing or inconsistent becomes a [`TenantIssue`] and the rest goes on.

use crate::catalog::{Catalog, LicensingRules};
use crate::formats::get_ci;
use crate::formats::is_guid;
use crate::load::{self, LoadError, LoadOptions};
use crate::schema::ObjectType;
use crate::table::Table;
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a [`TenantIssue`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// Something was skipped or guessed; results may be incomplete.
    Warning,
    /// A group (or file) could not be processed; its snapshot state is kept as it was.
    Error,
}

/// What a [`TenantIssue`] is about: one variant per situation, so callers (exit codes, the
/// baseline check, tests) decide on kinds, never on message text.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum IssueKind {
    /// A user or device record could not be read and was skipped (`--skip-invalid`).
    RecordSkipped,
    /// The loader warned about an export (unused CSV columns, duplicate ids, …).
    ExportWarning,
    /// Two groups with one id; the first is used.
    DuplicateGroup,
    /// A group id that is not a GUID.
    GroupIdNotGuid,
    /// A group record that could not be read; it is left out.
    GroupUnreadable,
    /// Licensed groups exported without `securityEnabled`.
    SecurityEnabledMissing,
    /// Groups exported without `groupTypes`; dynamic ones were recognised by their rule.
    GroupTypesMissing,
    /// A dynamic group exported without its `membershipRule`.
    DynamicWithoutRule,
    /// A dynamic group's current rule does not compile in dynrule; its membership is the
    /// exported one, or unknown.
    RuleNotCompiled,
    /// A device rule and no devices export.
    NoDevicesExport,
    /// A group whose membership is unknown (not evaluated, and no members exported).
    MembershipUnknown,
    /// Exported members that are not in the users (or devices) export.
    MembersNotInExport,
    /// A group's exported `members` stop at a `members@odata.nextLink` (`$expand=members`
    /// returns at most 20): its snapshot membership is unknown.
    MembersIncomplete,
    /// The snapshot has no `subscribedSkus.json`.
    NoSubscribedSkus,
    /// A subscribed SKU record could not be read, or its seat counts could not.
    SkuUnreadable,
    /// A SKU whose service plans are unknown.
    SkuPlansUnknown,
    /// Users hold a SKU the tenant does not subscribe to.
    SkuNotSubscribed,
    /// `organization.json` could not be read.
    OrganizationUnreadable,
    /// The licensing rules (defaults or a file) had an entry that could not be used.
    LicensingRules,
    /// A group's licences could not be processed; its members keep their snapshot states.
    LicensesNotProcessed,
    /// Licensed users without `usageLocation` and no tenant country.
    NoUsageLocation,
    /// A property that rules read is in no record of the export (not selected).
    PropertyNotExported,
    /// A property that rules read is null in every record.
    PropertyAllNull,
    /// A property Graph does not return at all.
    PropertyNotInGraph,
    /// The computed membership or licensing of a group disagrees with what the snapshot
    /// records (the baseline check).
    BaselineMismatch,
    /// A memberOf group (a preview feature whose service status is uncertain).
    MemberOfRule,
    /// A warning of a proposed rule (`lint`).
    RuleWarning,
    /// A `-match` pattern left values undecided (the backtracking limit, D63).
    PatternUndecided,
    /// A subscribed SKU's seat count (`prepaidUnits.*`, `consumedUnits`) is not a whole
    /// number ≥ 0; the issue's object is the `skuId`.
    SeatsUnreadable,
    /// A proposed value is not known until apply (Terraform's `after_unknown`, an ARM
    /// expression): the group's membership after is unknown.
    UnknownUntilApply,
}

impl IssueKind {
    /// Whether an issue of this kind means that an answer about the group (or, without a
    /// group, about the tenant) cannot be trusted: `whatif` exits 4 when one concerns a group
    /// in its answer.
    pub fn undermines(self) -> bool {
        matches!(
            self,
            IssueKind::RuleNotCompiled
                | IssueKind::DynamicWithoutRule
                | IssueKind::NoDevicesExport
                | IssueKind::MembershipUnknown
                | IssueKind::PropertyNotExported
                | IssueKind::PropertyAllNull
                | IssueKind::PropertyNotInGraph
                | IssueKind::BaselineMismatch
                | IssueKind::LicensesNotProcessed
                | IssueKind::PatternUndecided
                | IssueKind::SeatsUnreadable
                | IssueKind::UnknownUntilApply
        )
    }
}

/// A problem found in a snapshot, as data: what kind, where, about which object, and the
/// message (what is wrong and what dynrule did about it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantIssue {
    /// What the issue is about.
    pub kind: IssueKind,
    /// Warning or error.
    pub severity: Severity,
    /// The file, when the problem is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in `file` (0 when not known).
    #[serde(skip_serializing_if = "is_zero")]
    pub line: usize,
    /// The object concerned: a group label (`displayName (id)`), a group or SKU id, or a
    /// property name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// What is wrong and what dynrule did about it.
    pub message: String,
}

impl TenantIssue {
    /// An issue not tied to a file or object.
    pub fn new(kind: IssueKind, severity: Severity, message: String) -> TenantIssue {
        TenantIssue {
            kind,
            severity,
            file: None,
            line: 0,
            object: None,
            message,
        }
    }

    /// An issue at a place: `file` and 1-based `line` (0: not known), about `object`.
    pub fn at(
        kind: IssueKind,
        severity: Severity,
        file: Option<&Path>,
        line: usize,
        object: Option<&str>,
        message: String,
    ) -> TenantIssue {
        TenantIssue {
            kind,
            severity,
            file: file.map(|f| f.display().to_string()),
            line,
            object: object.map(str::to_string),
            message,
        }
    }

    /// The same issue, about `object`.
    #[must_use]
    pub fn object(self, object: impl Into<String>) -> TenantIssue {
        TenantIssue {
            object: Some(object.into()),
            ..self
        }
    }

    /// An issue about group `g`, located at its place in the groups export.
    pub fn about_group(
        kind: IssueKind,
        severity: Severity,
        g: &Group,
        message: String,
    ) -> TenantIssue {
        TenantIssue {
            kind,
            severity,
            file: (!g.file.as_os_str().is_empty()).then(|| g.file.display().to_string()),
            line: g.line,
            object: Some(g.label()),
            message,
        }
    }

    /// Whether the issue concerns group `g` (its label or id is the issue's object).
    pub fn concerns(&self, g: &Group) -> bool {
        self.object
            .as_deref()
            .is_some_and(|o| (!g.id.is_empty() && o == g.id) || o == g.label())
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl fmt::Display for TenantIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{sev}: ")?;
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            if self.line > 0 {
                write!(f, ":{}", self.line)?;
            }
            write!(f, ": ")?;
        }
        if let Some(o) = &self.object {
            write!(f, "{o}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A snapshot that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The folder has no users or groups export, or has two of one.
    #[error("{dir}: {message}")]
    Layout {
        /// The snapshot folder.
        dir: PathBuf,
        /// What is missing.
        message: String,
    },
    /// An export could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// A licence as a group (or a direct assignment) carries it: `assignedLicense`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupLicense {
    /// `skuId`, lower case.
    pub sku_id: String,
    /// `disabledPlans`, lower case, sorted.
    pub disabled_plans: Vec<String>,
}

/// What kind of object a group member is (`@odata.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// `#microsoft.graph.user`, or no type given.
    User,
    /// `#microsoft.graph.group` (nested; group-based licensing ignores it).
    Group,
    /// `#microsoft.graph.device`.
    Device,
    /// Anything else (service principals, contacts).
    Other,
}

/// One group of `groups.json`.
#[derive(Clone, Debug, Default)]
pub struct Group {
    /// `id`, lower case.
    pub id: String,
    /// `displayName` (empty when missing).
    pub display_name: String,
    /// `uniqueName` (Graph beta; the key Bicep's `Microsoft.Graph/groups` resources carry), when
    /// exported.
    pub unique_name: Option<String>,
    /// `groupTypes` (`DynamicMembership`, `Unified`).
    pub group_types: Vec<String>,
    /// Whether the export had `groupTypes` at all (Graph's own "list dynamic groups" example
    /// selects only `id,membershipRule,membershipRuleProcessingState`).
    pub group_types_exported: bool,
    /// `membershipRule`.
    pub membership_rule: Option<String>,
    /// `membershipRuleProcessingState`: `On` or `Paused`.
    pub processing_state: Option<String>,
    /// `securityEnabled` (`None` when not exported).
    pub security_enabled: Option<bool>,
    /// `assignedLicenses`.
    pub assigned_licenses: Vec<GroupLicense>,
    /// Whether `assignedLicenses` is known: exported (even as `[]`), or set by a what-if. When
    /// it is not, members keep the licence states the snapshot shows from the group; when it
    /// is known and empty, those states go (Entra removes licences a group no longer assigns).
    pub assigned_licenses_known: bool,
    /// `members` from `$expand=members` (`None` when not exported): id (lower case) and kind.
    pub members: Option<Vec<(String, MemberKind)>>,
    /// Where the group is in the export.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

impl Group {
    /// `groupTypes` contains `DynamicMembership`; or, when the export has no `groupTypes`, the
    /// group has a `membershipRule` or a `membershipRuleProcessingState` (Graph returns both
    /// only for dynamic groups). With `groupTypes` exported it decides: a group converted to
    /// static keeps its old rule text.
    pub fn is_dynamic(&self) -> bool {
        if self.group_types_exported {
            self.group_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case("DynamicMembership"))
        } else {
            self.membership_rule.is_some() || self.processing_state.is_some()
        }
    }

    /// `membershipRuleProcessingState` is `Paused`: Entra keeps the last membership.
    pub fn is_paused(&self) -> bool {
        self.processing_state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Paused"))
    }

    /// Whether group-based licensing applies to the group: "can only be used with security
    /// groups, and Microsoft 365 groups that have securityEnabled=TRUE" (Microsoft Learn,
    /// concept-group-based-licensing). A group exported without `securityEnabled` is taken as
    /// eligible (and reported by [`Tenant::load`]).
    pub fn licenses_members(&self) -> bool {
        self.security_enabled != Some(false)
    }

    /// `displayName (id)`, the id alone, or `displayName (new)` for a group not yet created.
    pub fn label(&self) -> String {
        if self.display_name.is_empty() {
            self.id.clone()
        } else if self.id.is_empty() {
            // A group a what-if creates has no id yet.
            format!("{} (new)", self.display_name)
        } else {
            format!("{} ({})", self.display_name, self.id)
        }
    }
}

/// `prepaidUnits` of a subscribed SKU (Graph `licenseUnitsDetail`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepaidUnits {
    /// Units in use or assignable.
    pub enabled: u64,
    /// Units in the grace period: still assignable.
    pub warning: u64,
    /// Units that cannot be assigned.
    pub suspended: u64,
    /// Units locked out.
    pub locked_out: u64,
}

/// One SKU of `subscribedSkus.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribedSku {
    /// `skuId`, lower case.
    pub sku_id: String,
    /// `skuPartNumber`.
    pub sku_part_number: String,
    /// `appliesTo`: `User` or `Company`.
    pub applies_to: Option<String>,
    /// `capabilityStatus`.
    pub capability_status: Option<String>,
    /// `consumedUnits` (`None` when not exported).
    pub consumed_units: Option<u64>,
    /// `prepaidUnits` (a field that could not be read counts 0 here and is named in
    /// `unreadable`).
    pub prepaid: PrepaidUnits,
    /// Seat fields that were present but not a whole number ≥ 0 (`prepaidUnits.enabled`,
    /// `consumedUnits`, …), each also a [`IssueKind::SeatsUnreadable`] issue.
    pub unreadable: Vec<String>,
}

impl SubscribedSku {
    /// Units that can be held: `prepaidUnits.enabled + prepaidUnits.warning` (suspended units
    /// cannot be assigned, warning units are in grace and still usable: Graph
    /// `licenseUnitsDetail`; the formula is the one discussed in
    /// microsoftgraph/microsoft-graph-docs-contrib#2337, not confirmed by Microsoft). `None`
    /// when either field could not be read: the seats are then not counted, rather than
    /// counted as 0 (which would predict shortfalls that will not happen).
    pub fn assignable(&self) -> Option<u64> {
        let unread = |f: &str| self.unreadable.iter().any(|u| u == f);
        if unread("prepaidUnits.enabled") || unread("prepaidUnits.warning") {
            return None;
        }
        Some(self.prepaid.enabled.saturating_add(self.prepaid.warning))
    }
}

/// Objects of one export, each with its file and line ([`load::json_objects`]).
pub type Objects = Vec<(PathBuf, usize, Value)>;

/// What [`Tenant::assemble`] builds a tenant from.
#[derive(Debug)]
pub struct Parts {
    /// The snapshot folder (or a label such as `sample`).
    pub dir: PathBuf,
    /// Where the groups came from (for issues).
    pub groups_path: PathBuf,
    /// The users table.
    pub users: Table,
    /// Bytes of user exports read.
    pub user_bytes: u64,
    /// Where the raw user records are.
    pub user_records: UserRecords,
    /// The devices table, if any.
    pub devices: Option<Table>,
    /// Group objects.
    pub groups: Objects,
    /// Subscribed SKU objects, or the error reading them; `None` when there is no file.
    pub skus: Option<Result<Objects, LoadError>>,
    /// Organization objects, or the error reading them; `None` when there is no file.
    pub organization: Option<Result<Objects, LoadError>>,
    /// A licensing rules file and its text (or the error reading it).
    pub licensing_rules: Option<(PathBuf, std::io::Result<String>)>,
    /// Issues found while reading.
    pub issues: Vec<TenantIssue>,
}

/// Options for [`Tenant::load`].
#[derive(Clone, Debug, Default)]
pub struct TenantOptions {
    /// Skip unreadable user or device records (each is reported) instead of failing.
    pub skip_invalid: bool,
    /// Show a progress bar while loading users.
    pub progress: bool,
    /// A licensing rules file to use instead of the snapshot's `licensingRules.json`.
    pub licensing_rules: Option<PathBuf>,
    /// Load only the user and device columns that the groups' rules, `extra_rules` and the
    /// licensing step read (faster, less memory); other columns read as null. Off: everything.
    pub project: bool,
    /// Rules beyond the groups' own whose columns a projected load must keep (what-if rules).
    pub extra_rules: Vec<String>,
    /// Whether the users and devices loads use the load cache ([`load::CacheMode`]).
    pub cache: load::CacheMode,
}

/// The projections for a snapshot's users and devices: what `rules` read, plus ids and names,
/// and for users what licensing reads (`assignedLicenses`, `licenseAssignmentStates`,
/// `usageLocation`, `proxyAddresses`, `assignedPlans`). Rules that do not compile add nothing
/// (their groups keep their snapshot membership anyway).
fn projections<'r>(
    rules: impl Iterator<Item = &'r str>,
) -> (crate::table::Projection, crate::table::Projection) {
    use crate::table::{ColumnKey, Projection};
    let mut users = Projection::default();
    let mut devices = Projection::default();
    let opts = crate::program::CompileOptions {
        now: jiff::Timestamp::UNIX_EPOCH,
    };
    for rule in rules {
        if let Ok(p) = crate::program::Program::from_text(rule, &opts) {
            match p.object {
                ObjectType::User => p.add_reads(&mut users),
                ObjectType::Device => p.add_reads(&mut devices),
            }
        }
    }
    users.columns.extend([
        ColumnKey::Prop("objectId"),
        ColumnKey::Prop("userPrincipalName"),
        ColumnKey::Prop("displayName"),
        ColumnKey::Prop("usageLocation"),
        ColumnKey::Prop("proxyAddresses"),
        ColumnKey::Prop("assignedPlans"),
        ColumnKey::AssignedLicenses,
        ColumnKey::LicenseStates,
    ]);
    devices.columns.extend([
        ColumnKey::Prop("objectId"),
        ColumnKey::Prop("deviceId"),
        ColumnKey::Prop("displayName"),
    ]);
    (users, devices)
}

/// A loaded tenant snapshot.
#[derive(Debug)]
pub struct Tenant {
    /// The snapshot folder.
    pub dir: PathBuf,
    /// The users table (with `assignedLicenses` and `licenseAssignmentStates`).
    pub users: Table,
    /// The devices table, when the snapshot has `devices.*`.
    pub devices: Option<Table>,
    /// Groups in export order (duplicates dropped).
    pub groups: Vec<Group>,
    /// Subscribed SKUs (`None` when the snapshot has no `subscribedSkus.json`).
    pub skus: Option<Vec<SubscribedSku>>,
    /// The tenant's usage location (`organization.countryLetterCode`), upper case.
    pub country: Option<String>,
    /// SKUs and plans: Microsoft's CSV, with the tenant's `subscribedSkus` plan lists on top.
    pub catalog: Catalog,
    /// Dependencies, conflicts, prohibited locations, data plans.
    pub rules: LicensingRules,
    /// Everything found wrong or missing.
    pub issues: Vec<TenantIssue>,
    /// Bytes of user exports read.
    pub user_bytes: u64,
    /// Where the user records are, for reading raw records again (`explain`).
    pub user_records: UserRecords,
    /// What the load cache did for the users export, then the devices export (empty for a
    /// tenant assembled from parts).
    pub cache: Vec<load::CacheUse>,
    /// Milliseconds [`Tenant::load`] took (0 for a tenant assembled from parts).
    pub load_ms: f64,
    user_rows: std::sync::OnceLock<crate::table::RowIndex>,
    device_rows: std::sync::OnceLock<Option<crate::table::RowIndex>>,
}

/// Where a tenant's raw user records can be read again.
#[derive(Clone, Debug)]
pub enum UserRecords {
    /// An export file or folder.
    Path(PathBuf),
    /// Records held in memory (the built-in sample tenant).
    Values(std::sync::Arc<Vec<Value>>),
}

/// The one export named `stem` in `dir` (`stem.json`, `stem.jsonl`, `stem.ndjson`, `stem.csv`,
/// or a folder `stem/`), names compared in any case.
fn find(dir: &Path, stem: &str) -> Result<Option<PathBuf>, TenantError> {
    let entries = std::fs::read_dir(dir).map_err(|e| TenantError::Layout {
        dir: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name_ok = p
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| s.eq_ignore_ascii_case(stem));
            name_ok && (p.is_dir() || load::format_of(p).is_some())
        })
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(TenantError::Layout {
            dir: dir.to_path_buf(),
            message: format!(
                "more than one `{stem}` export ({}); keep one",
                found
                    .iter()
                    .filter_map(|p| p.file_name().and_then(|n| n.to_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

fn str_of<'v>(o: &'v serde_json::Map<String, Value>, key: &str) -> Option<&'v str> {
    get_ci(o, key).and_then(Value::as_str)
}

fn licenses_of(v: Option<&Value>) -> Result<Vec<GroupLicense>, String> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    if v.is_null() {
        return Ok(Vec::new());
    }
    let arr = v
        .as_array()
        .ok_or("`assignedLicenses` must be an array of {skuId, disabledPlans}")?;
    let mut out = Vec::new();
    for l in arr {
        let o = l
            .as_object()
            .ok_or("an `assignedLicenses` entry is not an object")?;
        let sku = str_of(o, "skuId").ok_or("an `assignedLicenses` entry has no `skuId`")?;
        let mut disabled: Vec<String> = get_ci(o, "disabledPlans")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        disabled.sort();
        disabled.dedup();
        out.push(GroupLicense {
            sku_id: sku.trim().to_ascii_lowercase(),
            disabled_plans: disabled,
        });
    }
    Ok(out)
}

fn member_of(v: &Value) -> Option<(String, MemberKind)> {
    match v {
        Value::String(s) => Some((s.trim().to_ascii_lowercase(), MemberKind::User)),
        Value::Object(o) => {
            let id = str_of(o, "id")?;
            let kind = match str_of(o, "@odata.type").map(str::to_ascii_lowercase) {
                None => MemberKind::User,
                Some(t) if t.ends_with(".user") => MemberKind::User,
                Some(t) if t.ends_with(".group") => MemberKind::Group,
                Some(t) if t.ends_with(".device") => MemberKind::Device,
                Some(_) => MemberKind::Other,
            };
            Some((id.trim().to_ascii_lowercase(), kind))
        }
        _ => None,
    }
}

fn group_of(file: &Path, line: usize, v: &Value) -> Result<Group, String> {
    let o = v.as_object().ok_or("a group must be a JSON object")?;
    let id = str_of(o, "id").ok_or("the group has no `id`")?;
    let group_types_exported = get_ci(o, "groupTypes").is_some_and(|v| !v.is_null());
    let types = get_ci(o, "groupTypes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    // `$expand=members` returns at most 20 members and a `members@odata.nextLink` for the
    // rest: such a list is not the membership.
    let truncated = get_ci(o, "members@odata.nextLink").is_some();
    let members = match get_ci(o, "members") {
        Some(Value::Array(a)) if !truncated => Some(a.iter().filter_map(member_of).collect()),
        _ => None,
    };
    Ok(Group {
        id: id.trim().to_ascii_lowercase(),
        display_name: str_of(o, "displayName").unwrap_or("").to_string(),
        unique_name: str_of(o, "uniqueName").map(str::to_string),
        group_types: types,
        group_types_exported,
        membership_rule: str_of(o, "membershipRule")
            .filter(|r| !r.trim().is_empty())
            .map(str::to_string),
        processing_state: str_of(o, "membershipRuleProcessingState").map(str::to_string),
        security_enabled: get_ci(o, "securityEnabled").and_then(Value::as_bool),
        assigned_licenses: licenses_of(get_ci(o, "assignedLicenses"))?,
        assigned_licenses_known: get_ci(o, "assignedLicenses").is_some_and(|v| !v.is_null()),
        members,
        file: file.to_path_buf(),
        line,
    })
}

/// `(servicePlanId, servicePlanName, appliesTo)` of a subscribed SKU's `servicePlans`.
type PlanRow = (String, String, String);

/// A seat count: a whole number ≥ 0, written as an integer, an integral float (`10.0`) or a
/// string of digits (PowerShell's CSV round trips); missing or null is `Ok(None)`.
///
/// Errors: what the value is instead (`-5`, `10.5`, `2^70` written out, `"many"`, an object).
fn seat_count(v: Option<&Value>) -> Result<Option<u64>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let whole = |text: &str| -> Option<u64> {
        let t = text.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Some(n);
        }
        let f: f64 = t.parse().ok()?;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked: whole, non-negative and below 2^64"
        )]
        (f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f)).then_some(f as u64)
    };
    let n = match v {
        Value::Number(n) => whole(&n.to_string()),
        Value::String(s) => whole(s),
        _ => None,
    };
    n.map(Some)
        .ok_or_else(|| format!("must be a whole number of seats ≥ 0, not {v}"))
}

/// A subscribed SKU, its plans, and the seat fields it could not read (field, why).
type SkuRead = (SubscribedSku, Vec<PlanRow>, Vec<(String, String)>);

fn sku_of(v: &Value) -> Result<SkuRead, String> {
    let o = v
        .as_object()
        .ok_or("a subscribed SKU must be a JSON object")?;
    let sku_id = str_of(o, "skuId").ok_or("the SKU has no `skuId`")?;
    let prepaid = get_ci(o, "prepaidUnits").and_then(Value::as_object);
    let mut unreadable = Vec::new();
    let mut unit = |k: &str| match seat_count(prepaid.and_then(|p| get_ci(p, k))) {
        Ok(n) => n.unwrap_or(0),
        Err(m) => {
            unreadable.push((format!("prepaidUnits.{k}"), m));
            0
        }
    };
    let prepaid_units = PrepaidUnits {
        enabled: unit("enabled"),
        warning: unit("warning"),
        suspended: unit("suspended"),
        locked_out: unit("lockedOut"),
    };
    let consumed_units = match seat_count(get_ci(o, "consumedUnits")) {
        Ok(n) => n,
        Err(m) => {
            unreadable.push(("consumedUnits".to_string(), m));
            None
        }
    };
    let plans = get_ci(o, "servicePlans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter_map(|p| {
            Some((
                str_of(p, "servicePlanId")?.to_string(),
                str_of(p, "servicePlanName").unwrap_or("").to_string(),
                str_of(p, "appliesTo").unwrap_or("").to_string(),
            ))
        })
        .collect();
    Ok((
        SubscribedSku {
            sku_id: sku_id.trim().to_ascii_lowercase(),
            sku_part_number: str_of(o, "skuPartNumber").unwrap_or("").to_string(),
            applies_to: str_of(o, "appliesTo").map(str::to_string),
            capability_status: str_of(o, "capabilityStatus").map(str::to_string),
            consumed_units,
            prepaid: prepaid_units,
            unreadable: unreadable.iter().map(|(f, _)| f.clone()).collect(),
        },
        plans,
        unreadable,
    ))
}

impl Tenant {
    /// Loads the snapshot in `dir` (see the module docs for the files).
    ///
    /// Errors: no users or groups export, two exports of one kind, an unreadable users or
    /// groups file, or (without `skip_invalid`) a malformed user. Everything else is collected
    /// in [`Tenant::issues`].
    pub fn load(dir: &Path, opts: &TenantOptions) -> Result<Tenant, TenantError> {
        if !dir.is_dir() {
            return Err(TenantError::Layout {
                dir: dir.to_path_buf(),
                message: "not a folder (a tenant snapshot is a folder of Graph exports)".into(),
            });
        }
        let started = std::time::Instant::now();
        let mut issues = Vec::new();
        let issue = TenantIssue::at;
        let users_path = find(dir, "users")?.ok_or_else(|| TenantError::Layout {
            dir: dir.to_path_buf(),
            message: "no users export (users.jsonl, users.json, users.csv or users/)".into(),
        })?;
        let groups_path = find(dir, "groups")?.ok_or_else(|| TenantError::Layout {
            dir: dir.to_path_buf(),
            message: "no groups export (groups.json, groups.jsonl or groups/)".into(),
        })?;
        // Groups first: with a projection, their rules say which user columns to keep.
        let groups = load::json_objects(&groups_path, "groups")?;
        let (user_projection, device_projection) = if opts.project {
            let rules = groups
                .iter()
                .filter_map(|(_, _, v)| v.as_object())
                .filter_map(|o| str_of(o, "membershipRule"))
                .chain(opts.extra_rules.iter().map(String::as_str));
            let (u, d) = projections(rules);
            (Some(u), Some(d))
        } else {
            (None, None)
        };
        let lopts = LoadOptions {
            skip_invalid: opts.skip_invalid,
            progress: opts.progress,
            projection: user_projection,
            cache: opts.cache,
            ..LoadOptions::default()
        };
        let loaded = load::load(&users_path, ObjectType::User, &lopts)?;
        let mut cache = vec![loaded.cache.clone()];
        for s in &loaded.skipped {
            issues.push(issue(
                IssueKind::RecordSkipped,
                Severity::Warning,
                Some(&s.file),
                s.line,
                None,
                format!("user record skipped: {}", s.message),
            ));
        }
        for w in &loaded.warnings {
            issues.push(issue(
                IssueKind::ExportWarning,
                Severity::Warning,
                Some(&users_path),
                0,
                None,
                w.clone(),
            ));
        }
        let devices = match find(dir, "devices")? {
            None => None,
            Some(p) => {
                let dopts = LoadOptions {
                    projection: device_projection,
                    ..lopts.clone()
                };
                let d = load::load(&p, ObjectType::Device, &dopts)?;
                cache.push(d.cache.clone());
                for s in &d.skipped {
                    issues.push(issue(
                        IssueKind::RecordSkipped,
                        Severity::Warning,
                        Some(&s.file),
                        s.line,
                        None,
                        format!("device record skipped: {}", s.message),
                    ));
                }
                Some(d.table)
            }
        };

        // Every file of the snapshot must be readable: licensing computed without its seats or
        // tenant country would pass for an answer (exit 2, not a warning).
        let skus = match find(dir, "subscribedSkus")? {
            None => None,
            Some(p) => Some(Ok(load::json_objects(&p, "subscribed SKUs")?)),
        };
        let organization = match find(dir, "organization")? {
            None => None,
            Some(p) => Some(Ok(load::json_objects(&p, "organization")?)),
        };
        let rules_path = match &opts.licensing_rules {
            Some(p) => Some(p.clone()),
            None => {
                let p = dir.join("licensingRules.json");
                p.is_file().then_some(p)
            }
        };
        let licensing_rules = match rules_path {
            None => None,
            Some(p) => match std::fs::read_to_string(&p) {
                Ok(text) => Some((p, Ok(text))),
                Err(e) => {
                    return Err(TenantError::Layout {
                        dir: dir.to_path_buf(),
                        message: format!("{}: {e}", p.display()),
                    });
                }
            },
        };
        let mut tenant = Tenant::assemble(Parts {
            dir: dir.to_path_buf(),
            groups_path,
            users: loaded.table,
            user_bytes: loaded.bytes,
            user_records: UserRecords::Path(users_path.clone()),
            devices,
            groups,
            skus,
            organization,
            licensing_rules,
            issues,
        });
        tenant.cache = cache;
        tenant.load_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(tenant)
    }

    /// Builds a tenant from parts already read (what [`Tenant::load`] does after reading the
    /// files; also how the built-in sample tenant is made). Never fails: every problem in the
    /// parts becomes an issue.
    pub fn assemble(parts: Parts) -> Tenant {
        let Parts {
            dir,
            groups_path,
            users,
            user_bytes,
            user_records,
            devices,
            groups,
            skus,
            organization,
            licensing_rules,
            mut issues,
        } = parts;
        let groups = read_groups(groups, &groups_path, &mut issues);
        let mut catalog = Catalog::microsoft();
        let skus = read_skus(skus, &mut catalog, &mut issues);
        let country = read_country(organization, &mut issues);
        let rules = read_rules(licensing_rules, &mut catalog, &mut issues);
        Tenant {
            dir,
            users,
            devices,
            groups,
            skus,
            country,
            catalog,
            rules,
            issues,
            user_bytes,
            user_records,
            cache: Vec::new(),
            load_ms: 0.0,
            user_rows: std::sync::OnceLock::new(),
            device_rows: std::sync::OnceLock::new(),
        }
    }

    /// The users' object id → row index, made on first use and kept (every side of a what-if
    /// and every round of the licensing loop maps exported members through it).
    pub fn user_rows(&self) -> &crate::table::RowIndex {
        self.user_rows
            .get_or_init(|| crate::table::RowIndex::new(&self.users))
    }

    /// The devices' object id → row index (`None` without a devices export), made once.
    pub fn device_rows(&self) -> Option<&crate::table::RowIndex> {
        self.device_rows
            .get_or_init(|| self.devices.as_ref().map(crate::table::RowIndex::new))
            .as_ref()
    }

    /// The table of `object`s: the users, or the devices when the snapshot has them.
    pub fn table(&self, object: ObjectType) -> Option<&Table> {
        match object {
            ObjectType::User => Some(&self.users),
            ObjectType::Device => self.devices.as_ref(),
        }
    }

    /// The group with this id or display name (any case); errors name the candidates when a
    /// display name is ambiguous.
    pub fn find_group(&self, id_or_name: &str) -> Result<usize, String> {
        let key = id_or_name.trim();
        if let Some(i) = self
            .groups
            .iter()
            .position(|g| g.id.eq_ignore_ascii_case(key))
        {
            return Ok(i);
        }
        let by_name: Vec<usize> = self
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.display_name.eq_ignore_ascii_case(key))
            .map(|(i, _)| i)
            .collect();
        match by_name.as_slice() {
            [i] => Ok(*i),
            [] => {
                // Did you mean: the closest display name (Jaro-Winkler ≥ 0.85, or a name that
                // contains what was typed), and where to list them.
                let lower = key.to_lowercase();
                let best = self
                    .groups
                    .iter()
                    .map(|g| {
                        let n = g.display_name.to_lowercase();
                        let score = if !lower.is_empty() && n.contains(&lower) {
                            1.0
                        } else {
                            strsim::jaro_winkler(&n, &lower)
                        };
                        (score, g.display_name.as_str())
                    })
                    .filter(|(score, name)| *score >= 0.85 && !name.is_empty())
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                Err(match best {
                    Some((_, name)) => format!(
                        "no group with id or displayName `{key}`; did you mean `{name}`? (`dynrule groups` lists them)"
                    ),
                    None => format!(
                        "no group with id or displayName `{key}` (`dynrule groups` lists them)"
                    ),
                })
            }
            many => Err(format!(
                "`{key}` names {} groups; use an id: {}",
                many.len(),
                many.iter()
                    .filter_map(|&i| self.groups.get(i).map(|g| g.id.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// The groups of `groups.json`: one bad group is reported and left out; the others go on.
/// Duplicate ids, non-GUID ids, truncated `members`, and dynamic groups without a rule are
/// issues; so are fields missing from the whole export (`groupTypes`, `securityEnabled`).
fn read_groups(
    group_objects: Objects,
    groups_path: &Path,
    issues: &mut Vec<TenantIssue>,
) -> Vec<Group> {
    let issue = TenantIssue::at;
    // Groups: one bad group is reported and left out; the others go on.
    let mut groups: Vec<Group> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut no_security = 0usize;
    let mut no_group_types = 0usize;
    for (file, line, v) in group_objects {
        match group_of(&file, line, &v) {
            Ok(g) => {
                if !seen.insert(g.id.clone()) {
                    issues.push(issue(
                        IssueKind::DuplicateGroup,
                        Severity::Warning,
                        Some(&file),
                        line,
                        Some(&g.id),
                        "duplicate group id; the first one is used".into(),
                    ));
                    continue;
                }
                if !is_guid(&g.id) {
                    issues.push(issue(
                        IssueKind::GroupIdNotGuid,
                        Severity::Warning,
                        Some(&file),
                        line,
                        Some(&g.id),
                        "the group id is not a GUID".into(),
                    ));
                }
                if g.security_enabled.is_none() && !g.assigned_licenses.is_empty() {
                    no_security += 1;
                }
                if v.as_object()
                    .is_some_and(|o| get_ci(o, "members@odata.nextLink").is_some())
                {
                    issues.push(issue(
                        IssueKind::MembersIncomplete,
                        Severity::Warning,
                        Some(&file),
                        line,
                        Some(&g.label()),
                        "`members` stops at members@odata.nextLink ($expand returns at most 20): page GET /groups/{id}/members?$select=id and put every member in `members`; the snapshot membership is taken as unknown".into(),
                    ));
                }
                if !g.group_types_exported && g.is_dynamic() {
                    no_group_types += 1;
                }
                if g.is_dynamic() && g.membership_rule.is_none() {
                    issues.push(issue(IssueKind::DynamicWithoutRule,
                        Severity::Error,
                        Some(&file),
                        line,
                        Some(&g.label()),
                        "dynamic group without `membershipRule` (export it with $select); its snapshot membership is kept".into(),
                    ));
                }
                groups.push(g);
            }
            Err(m) => issues.push(issue(
                IssueKind::GroupUnreadable,
                Severity::Error,
                Some(&file),
                line,
                None,
                format!("group left out: {m}"),
            )),
        }
    }
    if no_group_types > 0 {
        issues.push(issue(
            IssueKind::GroupTypesMissing,
            Severity::Warning,
            Some(groups_path),
            0,
            None,
            format!("{no_group_types} group(s) have no `groupTypes` in the export and are taken as dynamic because they have a membershipRule (add groupTypes to $select to be sure)"),
        ));
    }
    if no_security > 0 {
        issues.push(issue(IssueKind::SecurityEnabledMissing,
            Severity::Warning,
            Some(groups_path),
            0,
            None,
            format!("{no_security} licensed group(s) have no `securityEnabled`; taken as security groups (export it to be sure)"),
        ));
    }
    groups
}

/// The SKUs of `subscribedSkus.json` (`None` without the file: seats are not counted), their
/// plans recorded in `catalog`.
fn read_skus(
    sku_objects: Option<Result<Objects, LoadError>>,
    catalog: &mut Catalog,
    issues: &mut Vec<TenantIssue>,
) -> Option<Vec<SubscribedSku>> {
    let issue = TenantIssue::at;
    match sku_objects {
        None => {
            issues.push(issue(IssueKind::NoSubscribedSkus,
                Severity::Warning,
                None,
                0,
                None,
                "no subscribedSkus.json: seats are not counted (no CountViolation) and plan lists come from Microsoft's CSV".into(),
            ));
            None
        }
        Some(objs) => {
            let mut out = Vec::new();
            match objs {
                Err(e) => issues.push(issue(
                    IssueKind::SkuUnreadable,
                    Severity::Error,
                    Some(&e.file),
                    e.line,
                    None,
                    format!("{}; seats are not counted", e.message),
                )),
                Ok(objs) => {
                    for (file, line, v) in objs {
                        match sku_of(&v) {
                            Ok((s, plans, unreadable)) => {
                                for (field, why) in unreadable {
                                    issues.push(issue(
                                        IssueKind::SeatsUnreadable,
                                        Severity::Error,
                                        Some(&file),
                                        line,
                                        Some(&s.sku_id),
                                        format!(
                                            "`{field}` of {} {why}: {}",
                                            if s.sku_part_number.is_empty() { &s.sku_id } else { &s.sku_part_number },
                                            if field == "consumedUnits" {
                                                "the SKU's holders in the users export are counted instead"
                                            } else {
                                                "the SKU's seats are not counted, and an answer about them cannot be trusted"
                                            }
                                        ),
                                    ));
                                }
                                if plans.is_empty() {
                                    if catalog.sku_by_id(&s.sku_id).is_none() {
                                        issues.push(issue(IssueKind::SkuPlansUnknown,
                                            Severity::Warning,
                                            Some(&file),
                                            line,
                                            Some(&s.sku_id),
                                            "no servicePlans, and Microsoft's CSV does not know this SKU: its plans are unknown".into(),
                                        ));
                                    }
                                } else {
                                    catalog.set_subscribed(&s.sku_id, &s.sku_part_number, &plans);
                                }
                                out.push(s);
                            }
                            Err(m) => issues.push(issue(
                                IssueKind::SkuUnreadable,
                                Severity::Error,
                                Some(&file),
                                line,
                                None,
                                format!("SKU left out: {m}"),
                            )),
                        }
                    }
                }
            }
            Some(out)
        }
    }
}

/// The tenant's `countryLetterCode` from `organization.json`, upper case.
fn read_country(
    organization: Option<Result<Objects, LoadError>>,
    issues: &mut Vec<TenantIssue>,
) -> Option<String> {
    let issue = TenantIssue::at;
    match organization {
        None => None,
        Some(objs) => match objs {
            Err(e) => {
                issues.push(issue(
                    IssueKind::OrganizationUnreadable,
                    Severity::Warning,
                    Some(&e.file),
                    e.line,
                    None,
                    e.message,
                ));
                None
            }
            Ok(objs) => objs.iter().find_map(|(_, _, v)| {
                v.as_object()
                    .and_then(|o| str_of(o, "countryLetterCode"))
                    .map(|c| c.trim().to_ascii_uppercase())
                    .filter(|c| !c.is_empty())
            }),
        },
    }
}

/// The licensing rules: the built-in tables, then the snapshot's `licensing-rules.json` when
/// there is one.
fn read_rules(
    licensing_rules: Option<(PathBuf, std::io::Result<String>)>,
    catalog: &mut Catalog,
    issues: &mut Vec<TenantIssue>,
) -> LicensingRules {
    let issue = TenantIssue::at;
    let (mut rules, rule_issues) = LicensingRules::defaults(catalog);
    for r in rule_issues {
        issues.push(issue(
            IssueKind::LicensingRules,
            Severity::Warning,
            None,
            0,
            None,
            format!("{}: {}", r.file, r.message),
        ));
    }
    if let Some((p, text)) = licensing_rules {
        let name = p.display().to_string();
        match text {
            Err(e) => issues.push(issue(
                IssueKind::LicensingRules,
                Severity::Error,
                Some(&p),
                0,
                None,
                e.to_string(),
            )),
            Ok(text) => {
                let mut ri = Vec::new();
                if let Err(e) = rules.add_file(catalog, &name, &text, &mut ri) {
                    issues.push(issue(
                        IssueKind::LicensingRules,
                        Severity::Error,
                        Some(&p),
                        0,
                        None,
                        format!("{}; the built-in rules are used", e.message),
                    ));
                }
                for r in ri {
                    issues.push(issue(
                        IssueKind::LicensingRules,
                        Severity::Warning,
                        Some(&p),
                        0,
                        None,
                        r.message,
                    ));
                }
            }
        }
    }
    rules
}
