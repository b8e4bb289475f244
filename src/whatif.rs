//! What-if: the effect of proposed group changes (a new `membershipRule`, new group
//! `assignedLicenses`, processing paused or on) on memberships and group-based licensing, before
//! anything is saved.
//!
//! Both sides are recomputed from the same snapshot ([`recompute::run`]): *before* with the
//! groups as exported, *after* with the changes applied, so the report shows what the change
//! does and not what is merely pending in the tenant. Rules that read `assignedPlans` make
//! licences feed back into memberships (Microsoft Learn, licensing-groups-resolve-problems: such
//! rules "can cascade adds and removes"); each side is iterated to a fixpoint (at most
//! [`MAX_ITERATIONS`] rounds) and a side that does not settle is reported as a cycle.
//!
//! With a test group ([`WhatIfOptions::test_group`]) the new rules apply only to that group's
//! members (everyone else keeps their before-membership), as Microsoft advises: "validate major
//! rule changes on a small test group first".

use crate::bitmap::Bitmap;
use crate::catalog::PlanIx;
use crate::licensing::{Assignments, ListIx, SkuIx, State, StateRecord};
use crate::recompute::{self, Keep, Overlay, RecomputeOptions, Recomputed, reads_plans};
use crate::tenant::{Group, GroupLicense, Tenant, TenantIssue};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use crate::recompute::MAX_ITERATIONS;

/// What a change does to its group: Terraform's `actions` (`["update"]`, `["create"]`,
/// `["delete"]`, and a replace as `["delete","create"]` or `["create","delete"]`), or a changes
/// file's `action`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// New properties for a group that exists.
    #[default]
    Update,
    /// A group that does not exist yet: nobody is a member before, everyone its rule matches
    /// joins after.
    Create,
    /// The group goes: every member leaves and its licences go with it.
    Delete,
    /// Deleted and created again with a new object id: every member leaves, and the new group's
    /// members join when Entra processes it (issue hashicorp/terraform-provider-azuread#1848). The
    /// report counts every member as leaving and every new member as joining.
    Replace,
}

impl Action {
    /// `Update`, the default (left out of JSON).
    pub fn is_update(&self) -> bool {
        *self == Action::Update
    }

    /// The action for Terraform's `change.actions` list; `None` for `no-op`, `read` and
    /// `forget`, which change nothing.
    pub fn from_terraform(actions: &[&str]) -> Option<Action> {
        match actions {
            ["update"] => Some(Action::Update),
            ["create"] => Some(Action::Create),
            ["delete"] => Some(Action::Delete),
            ["delete", "create"] | ["create", "delete"] => Some(Action::Replace),
            _ => None,
        }
    }
}

/// One proposed change to one group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Index into the what-if's groups: [`Tenant::groups`], then the groups that changes with
    /// [`Action::Create`] make, in the order of the changes.
    #[serde(skip)]
    pub group: usize,
    /// What happens to the group.
    #[serde(skip_serializing_if = "Action::is_update")]
    pub action: Action,
    /// The `displayName` of a group the change creates (the tenant's groups have their own).
    #[serde(skip)]
    pub display_name: Option<String>,
    /// A new `membershipRule` (makes a static group dynamic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership_rule: Option<String>,
    /// New `assignedLicenses` (replacing the group's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_licenses: Option<Vec<GroupLicense>>,
    /// New `membershipRuleProcessingState`: `On` or `Paused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership_rule_processing_state: Option<String>,
    /// Where the change comes from: a Terraform resource address (`azuread_group.sales`), or a
    /// Bicep/ARM resource's symbolic name; `None` for a changes file or `--group`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Properties whose new value is not known until apply (Terraform's `after_unknown`, an
    /// ARM expression), by Graph name (`membershipRule`). The group's membership after is
    /// reported unknown and the answer untrusted: dynrule does not guess them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_until_apply: Vec<String>,
}

impl Change {
    /// Whether the change sets nothing (an update without a new value, known or not).
    pub fn is_empty(&self) -> bool {
        self.action == Action::Update
            && self.membership_rule.is_none()
            && self.assigned_licenses.is_none()
            && self.membership_rule_processing_state.is_none()
            && self.unknown_until_apply.is_empty()
    }
}

/// One entry of a changes file, its keys lower-cased first (see [`lower_keys`]).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeFile {
    group: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default, rename = "membershiprule")]
    membership_rule: Option<String>,
    #[serde(default, rename = "assignedlicenses")]
    assigned_licenses: Option<Vec<LicenceFile>>,
    #[serde(default, rename = "membershipruleprocessingstate")]
    membership_rule_processing_state: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LicenceFile {
    #[serde(rename = "skuid")]
    sku_id: String,
    #[serde(default, rename = "disabledplans")]
    disabled_plans: Vec<String>,
}

/// `v` with the keys of every object lower-cased (ASCII), so a changes file's keys match in any
/// case, as exports do (`Group`, `MembershipRule` from PowerShell's `ConvertTo-Json`).
///
/// Errors: an object with two keys that differ only in case.
fn lower_keys(v: serde_json::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match v {
        Value::Object(o) => {
            let mut out = serde_json::Map::new();
            for (k, v) in o {
                let lower = k.to_ascii_lowercase();
                if out.contains_key(&lower) {
                    return Err(format!(
                        "the key `{k}` appears twice (keys match ignoring case)"
                    ));
                }
                out.insert(lower, lower_keys(v)?);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(lower_keys).collect::<Result<_, _>>()?),
        other => other,
    })
}

/// Reads a changes file: a JSON array of `{"group": id or displayName, "action"?: "update" |
/// "create" | "delete" | "replace", "membershipRule"?, "assignedLicenses"?: [{"skuId",
/// "disabledPlans"}], "membershipRuleProcessingState"?: "On" | "Paused"}`. A `skuId` may also be
/// a `skuPartNumber` (`ENTERPRISEPACK`) and a disabled plan a `servicePlanName`. With `"action":
/// "create"`, `group` is the new group's displayName and `membershipRule` is required.
///
/// Errors: invalid JSON (with line and column), an unknown or ambiguous group, an unknown SKU
/// or plan name, a processing state other than On/Paused, an unknown action, an entry that
/// changes nothing, two entries for one group.
pub fn parse_changes(text: &str, tenant: &Tenant) -> Result<Vec<Change>, String> {
    let v: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?;
    // PowerShell's ConvertTo-Json writes a one-item array as the item itself.
    let items = match v {
        serde_json::Value::Array(a) => a,
        one @ serde_json::Value::Object(_) => vec![one],
        _ => return Err("expected a JSON array of changes (or one change object)".into()),
    };
    let mut out = Vec::new();
    let mut created = 0;
    for (i, item) in items.into_iter().enumerate() {
        let at = |m: String| format!("change {}: {m}", i + 1);
        let e: ChangeFile = lower_keys(item)
            .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
            .map_err(at)?;
        let action = match e.action.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("update") => Action::Update,
            Some("create") => Action::Create,
            Some("delete") => Action::Delete,
            Some("replace") => Action::Replace,
            Some(other) => {
                return Err(at(format!(
                    "action must be update, create, delete or replace, not {other:?}"
                )));
            }
        };
        let group = if action == Action::Create {
            created += 1;
            tenant.groups.len() + created - 1
        } else {
            tenant.find_group(&e.group).map_err(at)?
        };
        let licences = match e.assigned_licenses {
            None => None,
            Some(ls) => Some(
                ls.into_iter()
                    .map(|l| license(tenant, &l.sku_id, &l.disabled_plans))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(at)?,
            ),
        };
        if let Some(s) = &e.membership_rule_processing_state {
            processing_state(s).map_err(at)?;
        }
        let c = Change {
            group,
            action,
            display_name: (action == Action::Create).then(|| e.group.clone()),
            membership_rule: e.membership_rule,
            assigned_licenses: licences,
            membership_rule_processing_state: e.membership_rule_processing_state,
            ..Change::default()
        };
        if c.is_empty() {
            return Err(at("changes nothing (give membershipRule, assignedLicenses or membershipRuleProcessingState)".into()));
        }
        if action == Action::Create && c.membership_rule.is_none() {
            return Err(at(format!(
                "a created group needs a membershipRule (dynrule cannot know who a new static group {:?} will hold)",
                e.group
            )));
        }
        if let Some(first) = out.iter().position(|o: &Change| o.group == c.group) {
            return Err(at(format!(
                "group {:?} is already changed by change {}: give each group one entry (with every field that changes)",
                e.group,
                first + 1
            )));
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err("the changes file lists no change".into());
    }
    Ok(out)
}

/// Checks a `membershipRuleProcessingState`: `On` or `Paused` (any case).
///
/// Errors: any other value.
pub fn processing_state(s: &str) -> Result<(), String> {
    if s.eq_ignore_ascii_case("On") || s.eq_ignore_ascii_case("Paused") {
        Ok(())
    } else {
        Err(format!(
            "membershipRuleProcessingState must be On or Paused, not {s:?}"
        ))
    }
}

/// A group licence from a SKU id or part number and plan ids or names.
pub fn license(tenant: &Tenant, sku: &str, disabled: &[String]) -> Result<GroupLicense, String> {
    let info = if crate::formats::is_guid(sku.trim()) {
        tenant.catalog.sku_by_id(sku)
    } else {
        tenant.catalog.sku_by_part_number(sku)
    };
    let sku_id = match info {
        Some(i) => i.sku_id.clone(),
        None if crate::formats::is_guid(sku.trim()) => sku.trim().to_ascii_lowercase(),
        None => {
            // Did you mean: the closest of the tenant's SKUs by skuPartNumber.
            let want = sku.trim().to_ascii_uppercase();
            let best = tenant
                .skus
                .iter()
                .flatten()
                .map(|s| s.sku_part_number.as_str())
                .filter(|n| !n.is_empty())
                .map(|n| (strsim::jaro_winkler(&n.to_ascii_uppercase(), &want), n))
                .filter(|(score, _)| *score >= 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            return Err(match best {
                Some((_, n)) => format!(
                    "unknown SKU `{sku}`; did you mean `{n}`? (use a skuId or a skuPartNumber)"
                ),
                None => format!("unknown SKU `{sku}` (use a skuId or a skuPartNumber)"),
            });
        }
    };
    // A licence the tenant has no subscription to would not be processed at all (Entra refuses
    // the assignment): an error naming what the tenant has, not an issue under a clean report.
    if let Some(skus) = &tenant.skus {
        if !skus.iter().any(|s| s.sku_id == sku_id) {
            let mut have: Vec<String> = skus
                .iter()
                .map(|s| tenant.catalog.sku_label(&s.sku_id).to_string())
                .collect();
            have.sort();
            return Err(format!(
                "the tenant has no subscription to `{sku}` (subscribedSkus: {})",
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            ));
        }
    }
    let mut plans = Vec::new();
    for d in disabled {
        let p = tenant
            .catalog
            .resolve_plan(d)
            .and_then(|p| tenant.catalog.plan_info(p))
            .map(|i| i.service_plan_id.clone())
            .or_else(|| crate::formats::is_guid(d.trim()).then(|| d.trim().to_ascii_lowercase()))
            .ok_or_else(|| format!("unknown service plan `{d}`"))?;
        plans.push(p);
    }
    plans.sort();
    plans.dedup();
    Ok(GroupLicense {
        sku_id,
        disabled_plans: plans,
    })
}

/// The groups of both sides of a what-if, index for index: the tenant's, then the groups the
/// changes create.
#[derive(Clone, Debug)]
pub struct Proposed {
    /// Before: the tenant's groups, then each created group as an empty static group (nobody is
    /// a member of a group that does not exist).
    pub before: Vec<Group>,
    /// After: the changes applied; a deleted group is an empty static group without licences.
    pub after: Vec<Group>,
    /// Per group, the action of the change to it ([`Action::Update`] when unchanged).
    pub actions: Vec<Action>,
}

impl Proposed {
    /// The action of the change to group `gi` ([`Action::Update`] for a group not changed).
    pub fn action(&self, gi: usize) -> Action {
        self.actions.get(gi).copied().unwrap_or_default()
    }

    /// Applies `changes` to copies of `groups` (see [`Proposed`]). A change whose group index
    /// is past the groups and does not create one is left out.
    pub fn new(groups: &[Group], changes: &[Change]) -> Proposed {
        let mut before = groups.to_vec();
        let mut after = groups.to_vec();
        for c in changes.iter().filter(|c| c.action == Action::Create) {
            let g = Group {
                id: String::new(),
                display_name: c.display_name.clone().unwrap_or_default(),
                group_types: Vec::new(),
                group_types_exported: true,
                assigned_licenses_known: true,
                members: Some(Vec::new()),
                ..Group::default()
            };
            before.push(g.clone());
            after.push(g);
        }
        let mut actions = vec![Action::Update; after.len()];
        for c in changes {
            let Some(g) = after.get_mut(c.group) else {
                continue;
            };
            if let Some(a) = actions.get_mut(c.group) {
                *a = c.action;
            }
            if c.action == Action::Delete {
                *g = Group {
                    membership_rule: None,
                    group_types: Vec::new(),
                    processing_state: None,
                    assigned_licenses: Vec::new(),
                    assigned_licenses_known: true,
                    members: Some(Vec::new()),
                    ..g.clone()
                };
                continue;
            }
            if let Some(r) = &c.membership_rule {
                g.membership_rule = Some(r.clone());
                if !g.is_dynamic() {
                    g.group_types.push("DynamicMembership".into());
                    g.group_types_exported = true;
                    g.processing_state.get_or_insert_with(|| "On".into());
                }
            }
            if let Some(l) = &c.assigned_licenses {
                g.assigned_licenses = l.clone();
                g.assigned_licenses_known = true;
            }
            if let Some(s) = &c.membership_rule_processing_state {
                g.processing_state = Some(s.clone());
            }
        }
        // A created group's before side is empty whatever its rule reads: a static group with
        // no members, of the object type its rule reads (so users are compared with users).
        for (b, a) in before.iter_mut().zip(&after).skip(groups.len()) {
            b.membership_rule = a.membership_rule.clone();
            b.group_types = a.group_types.clone();
            b.processing_state = a.is_dynamic().then(|| "Paused".to_string());
        }
        Proposed {
            before,
            after,
            actions,
        }
    }
}

/// A licence error as a comparable key: (skuPartNumber or id, group label or "direct", error).
pub type ErrorKey = (String, String, String);

/// How one user's licences change.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDiff {
    /// Object id.
    pub id: String,
    /// `userPrincipalName`.
    pub user_principal_name: String,
    /// Groups joined / left (display names).
    pub groups_joined: Vec<String>,
    /// Groups left.
    pub groups_left: Vec<String>,
    /// SKUs held after and not before (skuPartNumber, or skuId).
    pub skus_gained: Vec<String>,
    /// SKUs held before and not after.
    pub skus_lost: Vec<String>,
    /// Effective service plans gained (servicePlanName).
    pub plans_gained: Vec<String>,
    /// Effective service plans lost.
    pub plans_lost: Vec<String>,
    /// Plans lost that hold user data (mailbox, SharePoint/OneDrive, Teams).
    pub data_plans_lost: Vec<String>,
    /// Held at least one licence before and none after.
    pub loses_every_license: bool,
    /// Errors that appear: (SKU, group, error).
    pub errors_new: Vec<ErrorKey>,
    /// Errors that clear.
    pub errors_cleared: Vec<ErrorKey>,
}

/// How one group's membership changes.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDiff {
    /// `id`.
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// What the change does to the group (`update` is left out).
    #[serde(skip_serializing_if = "Action::is_update")]
    pub action: Action,
    /// Changed by the request (not only affected through `assignedPlans`).
    pub changed: bool,
    /// Rule before and after, when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_before: Option<String>,
    /// Rule after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_after: Option<String>,
    /// Members before (`null` when unknown).
    pub before: Option<usize>,
    /// Members after (`null` when unknown).
    pub after: Option<usize>,
    /// Members in both.
    pub unchanged: usize,
    /// `userPrincipalName`s (or ids) that join.
    pub joined: Vec<String>,
    /// `userPrincipalName`s (or ids) that leave.
    pub left: Vec<String>,
    /// Static group becoming dynamic: Entra removes every member first, then processes the
    /// rule (licensing-groups-resolve-problems), so access is lost for a while.
    pub static_to_dynamic: bool,
    /// Licences before and after (skuPartNumber), when they change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licenses_before: Option<Vec<String>>,
    /// Licences after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licenses_after: Option<Vec<String>>,
}

/// Seats of one SKU, before and after.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuDiff {
    /// `skuId`.
    pub sku_id: String,
    /// `skuPartNumber`.
    pub sku_part_number: String,
    /// `prepaidUnits.enabled + warning` (`null`: not limited).
    pub assignable: Option<u64>,
    /// Seats used before.
    pub used_before: u64,
    /// Seats used after.
    pub used_after: u64,
    /// Seats wanted after: used plus `CountViolation`s.
    pub needed_after: u64,
    /// `needed_after − assignable` when positive.
    pub shortfall: u64,
    /// The same before the change (over-consumption that exists already, such as suspended
    /// units): not the change's doing.
    pub shortfall_before: u64,
    /// `CountViolation`s before.
    pub count_violations_before: u64,
    /// `CountViolation`s after.
    pub count_violations_after: u64,
}

/// A threshold from `--max-removals`: a count or a percentage of a group's members before.
pub type Threshold = crate::trust::Limit;

/// Options for [`run`].
#[derive(Clone, Debug)]
pub struct WhatIfOptions {
    /// What `system.now` stands for.
    pub now: jiff::Timestamp,
    /// Apply the changes only to this group's members.
    pub test_group: Option<usize>,
    /// Most removals allowed per group.
    pub max_removals: Option<Threshold>,
    /// Most users allowed to lose a data plan.
    pub max_data_loss: Option<u64>,
    /// Most seats a change may leave short, summed over the SKUs it affects (shortage that
    /// exists before the change does not count).
    pub max_shortfall: Option<u64>,
    /// Most licence errors allowed to appear.
    pub max_new_errors: Option<u64>,
    /// Differences between the computed before and the snapshot tolerated per group
    /// ([`crate::trust::baseline_issues`]).
    pub baseline_tolerance: crate::trust::Tolerance,
    /// Compute the after side in full instead of from the before side (by default only the
    /// changed groups and the `assignedPlans` readers are evaluated again, see
    /// [`recompute::Reuse`]; both give the same answer, which the tests hold them to).
    pub full: bool,
}

impl WhatIfOptions {
    /// Options with no thresholds and the default baseline tolerance.
    pub fn new(now: jiff::Timestamp) -> WhatIfOptions {
        WhatIfOptions {
            now,
            test_group: None,
            max_removals: None,
            max_data_loss: None,
            max_shortfall: None,
            max_new_errors: None,
            baseline_tolerance: crate::trust::Tolerance::default(),
            full: false,
        }
    }
}

/// Whether the answer can be trusted, and why not (decision D58).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trust {
    /// True when no issue undermines a group in [`Trust::scope`]: `whatif` exits 4 otherwise.
    pub trusted: bool,
    /// The groups the answer rests on (display names): the changed groups, the groups whose
    /// membership moves, the groups sharing their SKUs, memberOf groups over them, and rules
    /// that read `assignedPlans` when licences change.
    pub scope: Vec<String>,
    /// The issues that undermine it (also in [`WhatIf::issues`]).
    pub undermined_by: Vec<TenantIssue>,
    /// The baseline tolerance used.
    pub baseline_tolerance: crate::trust::Tolerance,
}

/// A threshold that was crossed (makes `whatif` exit 3).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Breach {
    /// What was measured.
    pub what: String,
    /// The value.
    pub value: u64,
    /// The limit it crossed.
    pub limit: String,
}

/// Risks worth reading before saving.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Risks {
    /// Users who lose a plan that holds data, with the plans.
    pub data_loss_users: usize,
    /// Data plan → users losing it.
    pub data_plans_lost: BTreeMap<String, usize>,
    /// Users who lose every licence.
    pub users_losing_every_license: usize,
    /// Users with a licence error they did not have.
    pub users_with_new_errors: usize,
    /// New errors by kind.
    pub new_errors: BTreeMap<String, usize>,
    /// Changed groups whose rule reads `assignedPlans`, or groups affected through it.
    pub feedback_groups: Vec<String>,
    /// Iterations before/after, and whether both settled.
    pub iterations_before: usize,
    /// Iterations after.
    pub iterations_after: usize,
    /// False when licences and memberships keep changing each other (a cycle).
    pub converged: bool,
    /// Static groups turned dynamic (every member is removed first).
    pub static_to_dynamic: Vec<String>,
    /// Groups deleted and created again ([`Action::Replace`]): every member leaves, and
    /// licences go until the new group is processed.
    pub replaced_groups: Vec<String>,
    /// Thresholds crossed.
    pub breaches: Vec<Breach>,
}

/// The what-if result.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIf {
    /// The snapshot.
    pub tenant: String,
    /// Users in it.
    pub user_count: usize,
    /// Groups in it.
    pub group_count: usize,
    /// The changes, with the group they apply to.
    pub changes: Vec<ChangeSummary>,
    /// The test group, when the changes were applied only to its members.
    pub test_group: Option<String>,
    /// Members of the test group.
    pub test_group_members: Option<usize>,
    /// Groups whose membership or licences change (changed groups always listed).
    pub groups: Vec<GroupDiff>,
    /// Users whose memberships or licences change.
    pub users: Vec<UserDiff>,
    /// SKUs whose seats change, and any short of seats after.
    pub skus: Vec<SkuDiff>,
    /// Risks.
    pub risks: Risks,
    /// With a test group: every member whose membership of a changed group changes, explained
    /// clause by clause under the old and the new rule.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explanations: Vec<Explained>,
    /// Whether the answer can be trusted (exit 4 when not).
    pub trust: Trust,
    /// Issues of the snapshot and of both computations, the coverage and baseline checks, and
    /// the new rules' warnings.
    pub issues: Vec<TenantIssue>,
    /// Milliseconds: before, after, diff.
    pub timings: BTreeMap<String, f64>,
}

/// A test-group member whose result changes, explained (Graph's
/// `evaluateDynamicMembershipResult` for the old rule, when there was one, and the new).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explained {
    /// Object id.
    pub id: String,
    /// `userPrincipalName`.
    pub user_principal_name: String,
    /// The group's displayName.
    pub group: String,
    /// Member before / after.
    pub member_before: bool,
    /// Member after.
    pub member_after: bool,
    /// The old rule's evaluation (`null` for a static group).
    pub before: Option<crate::oracle::EvaluationResult>,
    /// The new rule's evaluation.
    pub after: Option<crate::oracle::EvaluationResult>,
}

/// Explains, for each test-group member whose membership of a group with a changed rule
/// changes, the old and the new rule on the member's raw record (the reference evaluator, as
/// `dynrule explain` does).
///
/// Errors: the users export cannot be read again.
fn explain_changes(
    tenant: &Tenant,
    proposed: &Proposed,
    before: &Recomputed,
    after: &Recomputed,
    test: &Bitmap,
    now: jiff::Timestamp,
) -> Result<Vec<Explained>, String> {
    let mut wanted: Vec<(usize, usize)> = Vec::new(); // (group, row)
    for (gi, (gb, ga)) in proposed.before.iter().zip(&proposed.after).enumerate() {
        if gb.membership_rule == ga.membership_rule && proposed.action(gi) == Action::Update {
            continue;
        }
        let (Some(mb), Some(ma)) = (
            before.memberships.groups.get(gi),
            after.memberships.groups.get(gi),
        ) else {
            continue;
        };
        if mb.object != crate::schema::ObjectType::User {
            continue;
        }
        for row in test.ones_iter() {
            if mb.members.get(row) != ma.members.get(row) {
                wanted.push((gi, row));
            }
        }
    }
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let ids: std::collections::HashSet<String> = wanted
        .iter()
        .filter_map(|&(_, r)| tenant.users.id(r).map(|i| i.trim().to_ascii_lowercase()))
        .collect();
    let records: HashMap<String, serde_json::Value> = match &tenant.user_records {
        crate::tenant::UserRecords::Path(p) => {
            crate::load::records_by_id(p, crate::schema::ObjectType::User, &ids)
                .map_err(|e| e.to_string())?
        }
        crate::tenant::UserRecords::Values(vs) => vs
            .iter()
            .filter_map(|v| {
                let id = v.get("id")?.as_str()?.trim().to_ascii_lowercase();
                ids.contains(&id).then(|| (id, v.clone()))
            })
            .collect(),
    };
    let mut cx = crate::oracle::Context::at(now);
    for g in &tenant.groups {
        for (m, _) in g.members.iter().flatten() {
            cx.member_of
                .entry(m.clone())
                .or_default()
                .push(g.id.clone());
        }
    }
    let eval = |rule: Option<&String>, record: &serde_json::Value| {
        let rule = rule?;
        let checked = crate::check(rule);
        let hir = checked.hir.as_ref()?;
        Some(crate::oracle::explain(hir, rule, record, &cx))
    };
    let mut out = Vec::new();
    for (gi, row) in wanted {
        let id = tenant
            .users
            .id(row)
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let Some(record) = records.get(&id) else {
            continue;
        };
        let (Some(gb), Some(ga)) = (proposed.before.get(gi), proposed.after.get(gi)) else {
            continue;
        };
        let action = proposed.action(gi);
        let member = |w: &Recomputed| {
            w.memberships
                .groups
                .get(gi)
                .is_some_and(|m| m.members.get(row))
        };
        out.push(Explained {
            id: tenant.users.id(row).unwrap_or("").to_string(),
            user_principal_name: tenant.users.name(row).unwrap_or("").to_string(),
            group: gb.display_name.clone(),
            member_before: member(before),
            member_after: member(after),
            before: eval(
                gb.membership_rule
                    .as_ref()
                    .filter(|_| gb.is_dynamic() && action != Action::Create),
                record,
            ),
            after: eval(
                ga.membership_rule
                    .as_ref()
                    .filter(|_| action != Action::Delete),
                record,
            ),
        });
    }
    Ok(out)
}

/// A change as reported.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeSummary {
    /// Group id.
    pub group: String,
    /// Group displayName.
    pub display_name: String,
    /// The change.
    #[serde(flatten)]
    pub change: Change,
}

/// Comparable form of a state list (the two sides intern their lists separately).
fn signature(a: &Assignments, list: ListIx) -> Vec<StateRecord> {
    let mut v = a.records(a.list(list));
    v.sort();
    v
}

/// Runs a what-if: before, after, and the difference (see the module docs).
///
/// Errors: a test group that is not a user group.
pub fn run(tenant: &Tenant, changes: &[Change], opts: &WhatIfOptions) -> Result<WhatIf, String> {
    let mut timings = BTreeMap::new();
    timings.insert("loadMs".to_string(), tenant.load_ms);
    let ropts = RecomputeOptions { now: opts.now };
    let proposed = Proposed::new(&tenant.groups, changes);
    let t0 = std::time::Instant::now();
    let before = recompute::run(
        tenant,
        &Overlay {
            groups: Some(&proposed.before),
            keep: None,
            reuse: None,
        },
        &ropts,
    );
    timings.insert("beforeMs".to_string(), t0.elapsed().as_secs_f64() * 1e3);
    let test = match opts.test_group {
        None => None,
        Some(g) => {
            let m = before
                .memberships
                .groups
                .get(g)
                .ok_or("no such test group")?;
            if m.object != crate::schema::ObjectType::User {
                return Err("the test group must be a group of users".into());
            }
            Some(m.members.clone())
        }
    };
    let changed_groups = &proposed.after;
    let pinned: Vec<usize> = changes
        .iter()
        .filter(|c| {
            c.action != Action::Delete
                && c.membership_rule_processing_state
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("Paused"))
        })
        .map(|c| c.group)
        .collect();
    let keep = Keep {
        base: &before.memberships,
        test: test.as_ref(),
        pinned,
    };
    let t1 = std::time::Instant::now();
    let changed_ix: Vec<usize> = changes.iter().map(|c| c.group).collect();
    let reuse = recompute::Reuse {
        base: &before.memberships,
        changed: &changed_ix,
    };
    let overlay = Overlay {
        groups: Some(changed_groups),
        keep: Some(&keep),
        reuse: (!opts.full).then_some(&reuse),
    };
    let mut after = recompute::run(tenant, &overlay, &ropts);
    timings.insert("afterMs".to_string(), t1.elapsed().as_secs_f64() * 1e3);
    let t2 = std::time::Instant::now();
    let unknown = unknown_until_apply(&proposed, changes, &mut after);
    let sides = Sides {
        tenant,
        proposed: &proposed,
        changed_groups,
        before: &before,
        after: &after,
        opts,
    };
    let mut out = diff(&sides, changes, test.as_ref());
    if let Some(t) = &test {
        out.explanations = explain_changes(tenant, &proposed, &before, &after, t, opts.now)?;
    }
    // Trust: coverage of what the groups in scope read (as they are and as they would be),
    // the baseline of the before side, the new rules' warnings, and values not known until
    // apply.
    let in_scope = scope(&proposed, changes, &before, &after);
    let mut checks = crate::trust::property_issues(tenant, &proposed.before, Some(&in_scope));
    checks.extend(crate::trust::property_issues(
        tenant,
        changed_groups,
        Some(&in_scope),
    ));
    checks.extend(crate::trust::baseline_issues(
        tenant,
        &proposed.before,
        &before,
        Some(&in_scope),
        opts.baseline_tolerance,
    ));
    checks.extend(unknown);
    for c in changes {
        let (Some(rule), Some(g)) = (&c.membership_rule, proposed.after.get(c.group)) else {
            continue;
        };
        for d in crate::check(rule)
            .diagnostics
            .iter()
            .filter(|d| !d.is_error())
        {
            checks.push(TenantIssue::about_group(
                crate::tenant::IssueKind::RuleWarning,
                crate::tenant::Severity::Warning,
                g,
                format!(
                    "the new rule: {} {}{}",
                    d.code.as_str(),
                    d.message,
                    d.help
                        .as_deref()
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    for i in checks {
        if !out.issues.contains(&i) {
            out.issues.push(i);
        }
    }
    let scoped: Vec<&Group> = in_scope
        .iter()
        .filter_map(|&g| proposed.after.get(g))
        .collect();
    let undermined_by: Vec<TenantIssue> = out
        .issues
        .iter()
        .filter(|i| {
            // A SKU's issue (unreadable seats) concerns the groups that assign the SKU.
            let assigns = |g: &&Group| {
                g.assigned_licenses
                    .iter()
                    .any(|l| i.object.as_deref() == Some(l.sku_id.as_str()))
            };
            i.kind.undermines()
                && (i.object.is_none() || scoped.iter().any(|g| i.concerns(g) || assigns(g)))
        })
        .cloned()
        .collect();
    out.trust = Trust {
        trusted: undermined_by.is_empty(),
        scope: scoped.iter().map(|g| group_name(g)).collect(),
        undermined_by,
        baseline_tolerance: opts.baseline_tolerance,
    };
    timings.insert("diffMs".to_string(), t2.elapsed().as_secs_f64() * 1e3);
    Ok(WhatIf { timings, ..out })
}

/// Marks the after membership of each group with a value not known until apply as unknown,
/// and returns an issue for each (they undermine the answer: dynrule does not guess).
fn unknown_until_apply(
    proposed: &Proposed,
    changes: &[Change],
    after: &mut Recomputed,
) -> Vec<TenantIssue> {
    let mut out = Vec::new();
    for c in changes.iter().filter(|c| !c.unknown_until_apply.is_empty()) {
        let (Some(g), Some(m)) = (
            proposed.after.get(c.group),
            after.memberships.groups.get_mut(c.group),
        ) else {
            continue;
        };
        m.known = false;
        out.push(TenantIssue::about_group(
            crate::tenant::IssueKind::UnknownUntilApply,
            crate::tenant::Severity::Error,
            g,
            format!(
                "{} not known until apply{}; the membership after is unknown (apply the values first, or plan with them set)",
                c.unknown_until_apply.join(", "),
                c.address
                    .as_deref()
                    .map(|a| format!(" in {a}"))
                    .unwrap_or_default()
            ),
        ));
    }
    out
}

fn label(tenant: &Tenant, row: usize) -> String {
    tenant
        .users
        .name(row)
        .or_else(|| tenant.users.id(row))
        .unwrap_or("?")
        .to_string()
}

/// Both sides of a what-if, as the diffs read them.
struct Sides<'a> {
    tenant: &'a Tenant,
    /// Both sides' groups.
    proposed: &'a Proposed,
    /// The groups after the change (`proposed.after`).
    changed_groups: &'a [Group],
    before: &'a Recomputed,
    after: &'a Recomputed,
    opts: &'a WhatIfOptions,
}

/// A group's name as the report shows it: `displayName`, else its id.
fn group_name(g: &Group) -> String {
    if g.display_name.is_empty() {
        g.id.clone()
    } else {
        g.display_name.clone()
    }
}

/// What the group diff leaves for the user diff and the risks.
#[derive(Default)]
struct GroupDiffs {
    groups: Vec<GroupDiff>,
    /// Per user row, the names of the groups they join and leave.
    joined_by_user: HashMap<usize, Vec<String>>,
    left_by_user: HashMap<usize, Vec<String>>,
    breaches: Vec<Breach>,
    static_to_dynamic: Vec<String>,
}

/// Every group that changes or whose membership moves, with who joins and leaves; a
/// `--max-removals` breach per group over it.
fn group_diffs(x: &Sides<'_>, changed: &BTreeSet<usize>) -> GroupDiffs {
    let tenant = x.tenant;
    let mut out = GroupDiffs::default();
    let p = x.proposed;
    for (gi, (g_before, g_after)) in p.before.iter().zip(&p.after).enumerate() {
        let (Some(mb), Some(ma)) = (
            x.before.memberships.groups.get(gi),
            x.after.memberships.groups.get(gi),
        ) else {
            continue;
        };
        let action = p.action(gi);
        let is_changed = changed.contains(&gi);
        // Most groups of a large tenant are the same on both sides: compared word by word
        // before any difference is built.
        if !is_changed && action != Action::Replace && ma.members == mb.members {
            continue;
        }
        // A replaced group is a new object: everyone leaves the old one and joins the new.
        let (joined, left) = if action == Action::Replace {
            (ma.members.clone(), mb.members.clone())
        } else {
            (
                ma.members.and_not(&mb.members),
                mb.members.and_not(&ma.members),
            )
        };
        if !is_changed && joined.count_ones() == 0 && left.count_ones() == 0 {
            continue;
        }
        let name = group_name(g_before);
        if mb.object == crate::schema::ObjectType::User && ma.object == mb.object {
            for r in joined.ones_iter() {
                out.joined_by_user.entry(r).or_default().push(name.clone());
            }
            for r in left.ones_iter() {
                out.left_by_user.entry(r).or_default().push(name.clone());
            }
        }
        let s2d = !g_before.is_dynamic() && g_after.is_dynamic();
        if s2d {
            out.static_to_dynamic.push(name.clone());
        }
        let removals = left.count_ones() as u64;
        if let Some(t) = x.opts.max_removals {
            let before_n = mb.members.count_ones() as f64;
            let over = match t {
                Threshold::Count(c) => removals > c,
                Threshold::Percent(p) => before_n > 0.0 && (removals as f64) * 100.0 / before_n > p,
            };
            if over {
                out.breaches.push(Breach {
                    what: format!("members leaving {name}"),
                    value: removals,
                    limit: format!("--max-removals {t}"),
                });
            }
        }
        let labels = |b: &Bitmap| member_labels(tenant, mb.object, b);
        let skus = |g: &Group| -> Vec<String> {
            g.assigned_licenses
                .iter()
                .map(|l| tenant.catalog.sku_label(&l.sku_id).to_string())
                .collect()
        };
        let rule_before = g_before
            .membership_rule
            .clone()
            .filter(|_| action != Action::Create);
        let rule_after = g_after.membership_rule.clone();
        let rule_changed = rule_before != rule_after;
        let lic_changed = g_before.assigned_licenses != g_after.assigned_licenses;
        out.groups.push(GroupDiff {
            id: g_before.id.clone(),
            display_name: g_before.display_name.clone(),
            action,
            changed: is_changed,
            rule_before: rule_before.filter(|_| rule_changed),
            rule_after: rule_after.filter(|_| rule_changed),
            before: mb.known.then(|| mb.members.count_ones()),
            after: ma.known.then(|| ma.members.count_ones()),
            unchanged: mb.members.count_ones() - left.count_ones(),
            joined: labels(&joined),
            left: labels(&left),
            static_to_dynamic: s2d,
            licenses_before: lic_changed.then(|| skus(g_before)),
            licenses_after: lic_changed.then(|| skus(g_after)),
        });
    }
    out
}

/// Members as the report names them: users by [`label`], devices by name or id.
fn member_labels(tenant: &Tenant, object: crate::schema::ObjectType, b: &Bitmap) -> Vec<String> {
    match object {
        crate::schema::ObjectType::User => b.ones_iter().map(|r| label(tenant, r)).collect(),
        crate::schema::ObjectType::Device => tenant
            .devices
            .as_ref()
            .map(|d| {
                b.ones_iter()
                    .filter_map(|r| d.name(r).or_else(|| d.id(r)).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A SKU as the report names it.
fn sku_name(tenant: &Tenant, a: &Assignments, s: SkuIx) -> String {
    a.sku(s)
        .map(|k| tenant.catalog.sku_label(&k.sku_id).to_string())
        .unwrap_or_default()
}

/// The errors of a state list, as (SKU, source group name or "direct", error).
fn error_keys(tenant: &Tenant, a: &Assignments, states: &[State]) -> BTreeSet<ErrorKey> {
    states
        .iter()
        .filter_map(|s| {
            let e = s.error?;
            // Sources index the tenant's groups first (`SourceIx`).
            let src = match (s.source, a.source_id(s)) {
                (None, _) => "direct".to_string(),
                (Some(g), id) => tenant
                    .groups
                    .get(g.index())
                    .map_or_else(|| id.unwrap_or("").to_string(), |g| g.display_name.clone()),
            };
            Some((sku_name(tenant, a, s.sku), src, e.as_str().to_string()))
        })
        .collect()
}

/// Every user (of the test group, when there is one) whose licence states or memberships
/// differ. State lists are compared by content, and their difference worked out, once per
/// distinct (before, after) pair of lists.
fn user_diffs(x: &Sides<'_>, test: Option<&Bitmap>, g: &mut GroupDiffs) -> Vec<UserDiff> {
    let (ab, aa) = (&x.before.assignments, &x.after.assignments);
    let mut sig_b: hashbrown::HashMap<ListIx, Vec<_>> = hashbrown::HashMap::new();
    let mut sig_a: hashbrown::HashMap<ListIx, Vec<_>> = hashbrown::HashMap::new();
    let mut same_pair: hashbrown::HashMap<(ListIx, ListIx), bool> = hashbrown::HashMap::new();
    let mut changes: hashbrown::HashMap<(ListIx, ListIx), LicenceChange> =
        hashbrown::HashMap::new();
    // Who joins and leaves, by row, walked in step with the rows.
    let sorted = |m: HashMap<usize, Vec<String>>| {
        let mut v: Vec<(usize, Vec<String>)> = m.into_iter().collect();
        v.sort_unstable_by_key(|(r, _)| *r);
        v.into_iter().peekable()
    };
    let mut joined_by = sorted(std::mem::take(&mut g.joined_by_user));
    let mut left_by = sorted(std::mem::take(&mut g.left_by_user));
    let take = |it: &mut std::iter::Peekable<std::vec::IntoIter<(usize, Vec<String>)>>,
                row: usize| {
        while it.next_if(|(r, _)| *r < row).is_some() {}
        it.next_if(|(r, _)| *r == row)
            .map(|(_, v)| v)
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for row in 0..x.tenant.users.len() {
        if test.is_some_and(|t| !t.get(row)) {
            continue;
        }
        let (cb, ca) = (ab.list_of(row), aa.list_of(row));
        let same = *same_pair.entry((cb, ca)).or_insert_with(|| {
            let b = sig_b.entry(cb).or_insert_with(|| signature(ab, cb)).clone();
            let a = sig_a.entry(ca).or_insert_with(|| signature(aa, ca));
            b == *a
        });
        let joined = take(&mut joined_by, row);
        let left = take(&mut left_by, row);
        if same && joined.is_empty() && left.is_empty() {
            continue;
        }
        let change = changes
            .entry((cb, ca))
            .or_insert_with(|| licence_change(x, ab.list(cb), aa.list(ca)));
        let users = &x.tenant.users;
        out.push(UserDiff {
            id: users.id(row).unwrap_or("").to_string(),
            user_principal_name: users.name(row).unwrap_or("").to_string(),
            groups_joined: joined,
            groups_left: left,
            skus_gained: change.skus_gained.clone(),
            skus_lost: change.skus_lost.clone(),
            plans_gained: change.plans_gained.clone(),
            plans_lost: change.plans_lost.clone(),
            loses_every_license: change.loses_every_license,
            data_plans_lost: change.data_plans_lost.clone(),
            errors_new: change.errors_new.clone(),
            errors_cleared: change.errors_cleared.clone(),
        });
    }
    out
}

/// How a user's licences change between two state lists (the licence fields of [`UserDiff`]).
struct LicenceChange {
    skus_gained: Vec<String>,
    skus_lost: Vec<String>,
    plans_gained: Vec<String>,
    plans_lost: Vec<String>,
    loses_every_license: bool,
    data_plans_lost: Vec<String>,
    errors_new: Vec<ErrorKey>,
    errors_cleared: Vec<ErrorKey>,
}

/// How licences change from states `sb` (before) to `sa` (after): SKUs, effective plans (plans
/// that hold data first, then by name) and errors.
fn licence_change(x: &Sides<'_>, sb: &[State], sa: &[State]) -> LicenceChange {
    let (tenant, catalog) = (x.tenant, &x.tenant.catalog);
    let (ab, aa) = (&x.before.assignments, &x.after.assignments);
    let held = |a: &Assignments, states: &[State]| -> BTreeSet<String> {
        a.held(states)
            .into_iter()
            .map(|(s, _)| sku_name(tenant, a, s))
            .collect()
    };
    let (hb, ha) = (held(ab, sb), held(aa, sa));
    let pb: BTreeSet<PlanIx> = ab.effective_plans(sb, catalog).into_iter().collect();
    let pa: BTreeSet<PlanIx> = aa.effective_plans(sa, catalog).into_iter().collect();
    let (eb, ea) = (error_keys(tenant, ab, sb), error_keys(tenant, aa, sa));
    let label = |p: &PlanIx| catalog.plan_label(*p).to_string();
    let lost: Vec<PlanIx> = pb.difference(&pa).copied().collect();
    let data_lost: Vec<String> = lost
        .iter()
        .filter(|p| tenant.rules.data_plans.contains(p))
        .map(label)
        .collect();
    let order = |mut v: Vec<String>| {
        let data: BTreeSet<&str> = data_lost.iter().map(String::as_str).collect();
        v.sort_by(|a, b| {
            (!data.contains(a.as_str()), a.to_ascii_lowercase())
                .cmp(&(!data.contains(b.as_str()), b.to_ascii_lowercase()))
        });
        v
    };
    LicenceChange {
        skus_gained: ha.difference(&hb).cloned().collect(),
        skus_lost: hb.difference(&ha).cloned().collect(),
        plans_gained: order(pa.difference(&pb).map(label).collect()),
        plans_lost: order(lost.iter().map(label).collect()),
        loses_every_license: !hb.is_empty() && ha.is_empty(),
        data_plans_lost: data_lost,
        errors_new: ea.difference(&eb).cloned().collect(),
        errors_cleared: eb.difference(&ea).cloned().collect(),
    }
}

/// The user-level risks: data loss, users losing every licence, new errors.
fn tally_user_risks(risks: &mut Risks, users: &[UserDiff]) {
    for d in users {
        if !d.data_plans_lost.is_empty() {
            risks.data_loss_users += 1;
            for p in &d.data_plans_lost {
                *risks.data_plans_lost.entry(p.clone()).or_default() += 1;
            }
        }
        if d.loses_every_license {
            risks.users_losing_every_license += 1;
        }
        if !d.errors_new.is_empty() {
            risks.users_with_new_errors += 1;
            for (_, _, e) in &d.errors_new {
                *risks.new_errors.entry(e.clone()).or_default() += 1;
            }
        }
    }
}

/// Every SKU whose seats move, and the seats short after the change beyond any shortage
/// before it.
fn sku_diffs(x: &Sides<'_>) -> (Vec<SkuDiff>, u64) {
    let (ab, aa) = (&x.before.assignments, &x.after.assignments);
    let mut skus = Vec::new();
    let mut added_shortfall = 0u64;
    for s in &aa.skus {
        let b = ab.skus.iter().find(|k| k.sku_id == s.sku_id);
        let used_before = b.map_or(0, |b| b.consumed_after);
        let cv_before = b.map_or(0, |b| b.count_violations);
        let needed = s.consumed_after.saturating_add(s.count_violations);
        let shortfall = s.assignable.map_or(0, |a| needed.saturating_sub(a));
        let shortfall_before = s.assignable.map_or(0, |a| {
            used_before.saturating_add(cv_before).saturating_sub(a)
        });
        // A SKU the change does not touch is not listed, short of seats or not.
        if used_before == s.consumed_after && cv_before == s.count_violations {
            continue;
        }
        added_shortfall += shortfall.saturating_sub(shortfall_before);
        skus.push(SkuDiff {
            sku_id: s.sku_id.clone(),
            sku_part_number: x.tenant.catalog.sku_label(&s.sku_id).to_string(),
            assignable: s.assignable,
            used_before,
            used_after: s.consumed_after,
            needed_after: needed,
            shortfall,
            shortfall_before,
            count_violations_before: cv_before,
            count_violations_after: s.count_violations,
        });
    }
    (skus, added_shortfall)
}

/// The tenant-wide thresholds (`--max-data-loss`, `--max-shortfall`, `--max-new-errors`) the
/// change goes over.
fn tenant_breaches(opts: &WhatIfOptions, risks: &Risks, added_shortfall: u64) -> Vec<Breach> {
    let mut out = Vec::new();
    let mut check = |value: u64, limit: Option<u64>, what: &str, flag: &str| {
        if let Some(limit) = limit.filter(|&l| value > l) {
            out.push(Breach {
                what: what.into(),
                value,
                limit: format!("{flag} {limit}"),
            });
        }
    };
    check(
        risks.data_loss_users as u64,
        opts.max_data_loss,
        "users losing a plan that holds data",
        "--max-data-loss",
    );
    check(
        added_shortfall,
        opts.max_shortfall,
        "seats short after the change (beyond any shortage before it)",
        "--max-shortfall",
    );
    check(
        risks.new_errors.values().map(|&n| n as u64).sum(),
        opts.max_new_errors,
        "licence errors that appear",
        "--max-new-errors",
    );
    out
}

/// The report of a what-if: groups, users and SKUs that change, the risks and breaches, and
/// the issues of both sides (each once).
fn diff(x: &Sides<'_>, changes: &[Change], test: Option<&Bitmap>) -> WhatIf {
    let tenant = x.tenant;
    let changed: BTreeSet<usize> = changes.iter().map(|c| c.group).collect();
    let mut g = group_diffs(x, &changed);
    let users = user_diffs(x, test, &mut g);
    let (skus, added_shortfall) = sku_diffs(x);
    let mut risks = Risks {
        iterations_before: x.before.iterations,
        iterations_after: x.after.iterations,
        converged: x.before.converged && x.after.converged,
        static_to_dynamic: g.static_to_dynamic,
        feedback_groups: x
            .proposed
            .before
            .iter()
            .zip(x.changed_groups)
            .filter(|(b, a)| reads_plans(b) || reads_plans(a))
            .map(|(b, _)| group_name(b))
            .collect(),
        replaced_groups: changes
            .iter()
            .filter(|c| c.action == Action::Replace)
            .filter_map(|c| x.proposed.before.get(c.group).map(group_name))
            .collect(),
        ..Risks::default()
    };
    tally_user_risks(&mut risks, &users);
    risks.breaches = g.breaches;
    risks
        .breaches
        .extend(tenant_breaches(x.opts, &risks, added_shortfall));
    let mut issues = tenant.issues.clone();
    for i in x.before.issues.iter().chain(&x.after.issues) {
        if !issues.contains(i) {
            issues.push(i.clone());
        }
    }
    WhatIf {
        tenant: tenant.dir.display().to_string(),
        user_count: tenant.users.len(),
        group_count: tenant.groups.len(),
        changes: changes
            .iter()
            .map(|c| {
                let g = x.proposed.after.get(c.group);
                ChangeSummary {
                    group: g.map(|g| g.id.clone()).unwrap_or_default(),
                    display_name: g.map(|g| g.display_name.clone()).unwrap_or_default(),
                    change: c.clone(),
                }
            })
            .collect(),
        test_group: x
            .opts
            .test_group
            .and_then(|g| tenant.groups.get(g))
            .map(|g| g.display_name.clone()),
        test_group_members: test.map(Bitmap::count_ones),
        groups: g.groups,
        users,
        skus,
        risks,
        explanations: Vec::new(),
        trust: Trust {
            trusted: true,
            scope: Vec::new(),
            undermined_by: Vec::new(),
            baseline_tolerance: x.opts.baseline_tolerance,
        },
        issues,
        timings: BTreeMap::new(),
    }
}

/// The groups a what-if's answer rests on (indices): the changed groups, groups whose
/// membership moves, groups sharing a SKU with a changed group (before or after), memberOf
/// groups naming a changed group, and, when licences change, rules reading `assignedPlans`.
fn scope(
    proposed: &Proposed,
    changes: &[Change],
    before: &Recomputed,
    after: &Recomputed,
) -> Vec<usize> {
    let changed: BTreeSet<usize> = changes.iter().map(|c| c.group).collect();
    let skus: BTreeSet<&str> = changed
        .iter()
        .flat_map(|&g| {
            proposed
                .before
                .get(g)
                .into_iter()
                .chain(proposed.after.get(g))
                .flat_map(|g| g.assigned_licenses.iter().map(|l| l.sku_id.as_str()))
        })
        .collect();
    let ids: Vec<&str> = changed
        .iter()
        .filter_map(|&g| proposed.before.get(g).map(|g| g.id.as_str()))
        .filter(|id| !id.is_empty())
        .collect();
    let licensing_moves = !skus.is_empty();
    (0..proposed.before.len())
        .filter(|gi| {
            let (Some(gb), Some(ga)) = (proposed.before.get(*gi), proposed.after.get(*gi)) else {
                return false;
            };
            let moved = match (
                before.memberships.groups.get(*gi),
                after.memberships.groups.get(*gi),
            ) {
                (Some(b), Some(a)) => b.members != a.members || b.known != a.known,
                _ => false,
            };
            let rule = |g: &Group| {
                g.membership_rule
                    .as_deref()
                    .unwrap_or("")
                    .to_ascii_lowercase()
            };
            changed.contains(gi)
                || moved
                || gb
                    .assigned_licenses
                    .iter()
                    .chain(&ga.assigned_licenses)
                    .any(|l| skus.contains(l.sku_id.as_str()))
                || ids
                    .iter()
                    .any(|id| rule(gb).contains(id) || rule(ga).contains(id))
                || (licensing_moves && (reads_plans(gb) || reads_plans(ga)))
        })
        .collect()
}
