//! Terraform's JSON plan (`terraform show -json tfplan`; developer.hashicorp.com
//! `terraform/internals/json-format`): `format_version` 1.x (unknown keys ignored, another
//! major refused), and of `resource_changes` the group resources of the azuread, msgraph and
//! microsoft365 providers:
//!
//! | `type` | group | rule | processing | licences |
//! | --- | --- | --- | --- | --- |
//! | `azuread_group` | `object_id` / `id`, `display_name` | `dynamic_membership[0].rule` | `dynamic_membership[0].enabled` (false = `Paused`) | — |
//! | `msgraph_resource` with `url = "groups"` | `id`, `body.displayName` | `body.membershipRule` | `body.membershipRuleProcessingState` | — |
//! | `microsoft365_graph_beta_groups_group` | `id`, `display_name` | `membership_rule` | `membership_rule_processing_state` | — |
//! | `azuread_group_license` | `group_object_id` | | | `sku_id`, `disabled_plans` |
//! | `microsoft365_graph_beta_groups_license_assignment` | `group_id` | | | `sku_id`, `disabled_plans` |
//!
//! Nested blocks are JSON arrays. A value under `after_unknown` is not known until apply; a
//! licence whose group id is unknown is traced through `configuration` to the group resource
//! of the same plan it references.

use super::{GroupRef, Plan, Planned, PlannedGroup, PlannedLicence, Source};
use crate::whatif::Action;
use serde_json::Value;

/// Reads a parsed plan (see the module docs).
///
/// Errors: no `format_version`, or one whose major is not 1; `resource_changes` that is not
/// an array.
pub fn read(v: &Value) -> Result<Plan, String> {
    let version = v.get("format_version").and_then(Value::as_str).ok_or(
        "a Terraform plan without format_version (write it with `terraform show -json tfplan`)",
    )?;
    if version.split('.').next() != Some("1") {
        return Err(format!(
            "Terraform plan format_version {version} is not supported (dynrule reads 1.x)"
        ));
    }
    let changes = match v.get("resource_changes") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err("resource_changes is not an array".into()),
    };
    let mut plan = Plan {
        source: Source::Terraform(version.to_string()),
        groups: Vec::new(),
        licences: Vec::new(),
        notes: Vec::new(),
    };
    for rc in changes {
        if rc.get("mode").and_then(Value::as_str) == Some("data") {
            continue;
        }
        let Some(r) = Resource::of(rc) else { continue };
        match r.kind.as_str() {
            "azuread_group" => plan.groups.extend(azuread_group(&r, &mut plan.notes)),
            "msgraph_resource" => plan.groups.extend(msgraph_group(&r)),
            "microsoft365_graph_beta_groups_group" => plan.groups.extend(m365_group(&r)),
            "azuread_group_license" => {
                plan.licences.push(licence(&r, "group_object_id", v));
            }
            "microsoft365_graph_beta_groups_license_assignment" => {
                plan.licences.push(licence(&r, "group_id", v));
            }
            _ => {}
        }
    }
    Ok(plan)
}

/// One entry of `resource_changes`, with its action.
struct Resource<'a> {
    address: String,
    kind: String,
    action: Action,
    before: &'a Value,
    after: &'a Value,
    after_unknown: &'a Value,
}

impl<'a> Resource<'a> {
    /// `None` for entries that change nothing (`no-op`, `read`, `forget`).
    fn of(rc: &'a Value) -> Option<Resource<'a>> {
        let change = rc.get("change")?;
        let actions: Vec<&str> = change
            .get("actions")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        Some(Resource {
            address: rc.get("address")?.as_str()?.to_string(),
            kind: rc.get("type")?.as_str()?.to_string(),
            action: Action::from_terraform(&actions)?,
            before: change.get("before").unwrap_or(&Value::Null),
            after: change.get("after").unwrap_or(&Value::Null),
            after_unknown: change.get("after_unknown").unwrap_or(&Value::Null),
        })
    }

    /// The value after apply at `path` (before, for a delete).
    fn value(&self, path: &[Key<'_>]) -> Planned<&'a Value> {
        if self.action != Action::Delete && unknown(self.after_unknown, path) {
            return Planned::Unknown;
        }
        let side = if self.action == Action::Delete {
            self.before
        } else {
            self.after
        };
        match walk(side, path) {
            Some(Value::Null) | None => Planned::Unset,
            Some(v) => Planned::Set(v),
        }
    }

    fn string(&self, path: &[Key<'_>]) -> Planned<String> {
        match self.value(path) {
            Planned::Set(Value::String(s)) => Planned::Set(s.clone()),
            Planned::Set(_) | Planned::Unset => Planned::Unset,
            Planned::Unknown => Planned::Unknown,
        }
    }

    /// A string known before (the object id of an existing resource), else after.
    fn known_string(&self, key: &str) -> Option<String> {
        [self.before, self.after]
            .iter()
            .find_map(|side| side.get(key)?.as_str().filter(|s| !s.is_empty()))
            .map(str::to_string)
    }

    fn group(&self) -> PlannedGroup {
        PlannedGroup {
            address: self.address.clone(),
            action: self.action,
            ..PlannedGroup::default()
        }
    }
}

/// A step of a path into a plan value.
#[derive(Clone, Copy)]
enum Key<'k> {
    Field(&'k str),
    Index(usize),
}

fn walk<'v>(v: &'v Value, path: &[Key<'_>]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| match k {
        Key::Field(f) => v.get(*f),
        Key::Index(i) => v.get(*i),
    })
}

/// Whether `after_unknown` marks `path` (or a value holding it) unknown.
fn unknown(after_unknown: &Value, path: &[Key<'_>]) -> bool {
    let mut v = after_unknown;
    for k in path {
        if v.as_bool() == Some(true) {
            return true;
        }
        let next = match k {
            Key::Field(f) => v.get(*f),
            Key::Index(i) => v.get(*i),
        };
        match next {
            Some(n) => v = n,
            None => return false,
        }
    }
    v.as_bool() == Some(true)
}

/// The processing state of an `enabled` flag.
fn state_of(enabled: Planned<&Value>) -> Planned<String> {
    match enabled {
        Planned::Set(Value::Bool(true)) => Planned::Set("On".into()),
        Planned::Set(Value::Bool(false)) => Planned::Set("Paused".into()),
        Planned::Unknown => Planned::Unknown,
        _ => Planned::Unset,
    }
}

/// Whether `types` (a list of strings) holds `DynamicMembership`.
fn dynamic_in(types: Planned<&Value>) -> Planned<bool> {
    match types {
        Planned::Set(Value::Array(a)) => Planned::Set(a.iter().any(|t| {
            t.as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("DynamicMembership"))
        })),
        Planned::Unknown => Planned::Unknown,
        _ => Planned::Unset,
    }
}

fn azuread_group(r: &Resource<'_>, notes: &mut Vec<String>) -> Option<PlannedGroup> {
    use Key::{Field, Index};
    let block = [Field("dynamic_membership"), Index(0)];
    let mut g = r.group();
    g.object_id = r.known_string("object_id").or_else(|| r.known_string("id"));
    g.display_name = r.known_string("display_name");
    g.membership_rule = r.string(&[block[0], block[1], Field("rule")]);
    g.processing_state = state_of(r.value(&[block[0], block[1], Field("enabled")]));
    g.dynamic = match (dynamic_in(r.value(&[Field("types")])), r.value(&block)) {
        (Planned::Set(true), _) | (_, Planned::Set(_)) => Planned::Set(true),
        (Planned::Unknown, _) | (_, Planned::Unknown) => Planned::Unknown,
        (Planned::Set(false), Planned::Unset) => Planned::Set(false),
        (Planned::Unset, Planned::Unset) => Planned::Unset,
    };
    if g.dynamic == Planned::Set(false) {
        let members = |side: &Value| side.get("members").cloned().unwrap_or(Value::Null);
        if r.action != Action::Delete && members(r.before) != members(r.after) {
            notes.push(format!(
                "{}: the static members it sets are not modelled by dynrule",
                r.address
            ));
        }
    }
    Some(g)
}

fn msgraph_group(r: &Resource<'_>) -> Option<PlannedGroup> {
    use Key::Field;
    let url = [r.after, r.before]
        .iter()
        .find_map(|s| s.get("url")?.as_str())?;
    if !url.trim_matches('/').eq_ignore_ascii_case("groups") {
        return None;
    }
    let mut g = r.group();
    g.object_id = r.known_string("id");
    g.display_name = [r.after, r.before]
        .iter()
        .find_map(|s| s.get("body")?.get("displayName")?.as_str())
        .map(str::to_string);
    g.membership_rule = r.string(&[Field("body"), Field("membershipRule")]);
    g.processing_state = r.string(&[Field("body"), Field("membershipRuleProcessingState")]);
    g.dynamic = dynamic_in(r.value(&[Field("body"), Field("groupTypes")]));
    Some(g)
}

fn m365_group(r: &Resource<'_>) -> Option<PlannedGroup> {
    use Key::Field;
    let mut g = r.group();
    g.object_id = r.known_string("id");
    g.display_name = r.known_string("display_name");
    g.membership_rule = r.string(&[Field("membership_rule")]);
    g.processing_state = r.string(&[Field("membership_rule_processing_state")]);
    g.dynamic = dynamic_in(r.value(&[Field("group_types")]));
    Some(g)
}

fn licence(r: &Resource<'_>, group_key: &str, plan: &Value) -> PlannedLicence {
    use Key::Field;
    let group = match r.string(&[Field(group_key)]) {
        Planned::Set(id) => GroupRef::ObjectId(id),
        _ => match r.known_string(group_key) {
            Some(id) if r.action == Action::Delete => GroupRef::ObjectId(id),
            _ => referenced_group(plan, &r.address, group_key)
                .map_or(GroupRef::Unknown, GroupRef::Address),
        },
    };
    let disabled_plans = match r.value(&[Field("disabled_plans")]) {
        Planned::Set(Value::Array(a)) => Planned::Set(
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        Planned::Unknown => Planned::Unknown,
        _ => Planned::Unset,
    };
    PlannedLicence {
        address: r.address.clone(),
        action: r.action,
        group,
        sku_id: r.string(&[Field("sku_id")]),
        disabled_plans,
    }
}

/// The address of the group resource that the configuration of resource `address` references
/// in `key` (`group_object_id = azuread_group.sales.object_id`), from the plan's
/// `configuration.root_module` (or a module call's module, for `module.x.` addresses).
fn referenced_group(plan: &Value, address: &str, key: &str) -> Option<String> {
    let mut module = plan.get("configuration")?.get("root_module")?;
    let mut prefix = String::new();
    let mut rest = address;
    // `module.a.module.b.type.name` → walk module_calls a, b.
    while let Some(after) = rest.strip_prefix("module.") {
        let (name, tail) = after.split_once('.')?;
        let name_plain = name.split('[').next().unwrap_or(name);
        module = module.get("module_calls")?.get(name_plain)?.get("module")?;
        prefix.push_str(&format!("module.{name}."));
        rest = tail;
    }
    let rest_plain = rest.split('[').next().unwrap_or(rest);
    let resource = module
        .get("resources")?
        .as_array()?
        .iter()
        .find(|x| x.get("address").and_then(Value::as_str) == Some(rest_plain))?;
    let refs = resource.get("expressions")?.get(key)?.get("references")?;
    refs.as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|r| {
            let parts: Vec<&str> = r.split('.').collect();
            parts.len() == 2
                && parts.first().is_some_and(|t| {
                    t.ends_with("_group")
                        || *t == "msgraph_resource"
                        || *t == "microsoft365_graph_beta_groups_group"
                })
        })
        .map(|r| format!("{prefix}{r}"))
}
