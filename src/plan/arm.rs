//! ARM JSON as `bicep build` writes it for the Microsoft Graph Bicep extension:
//! `Microsoft.Graph/groups@v1.0` (or `@beta`) resources, in a `resources` array (classic
//! templates) or object keyed by symbolic name (`languageVersion` 2.0, which extensible
//! resources use), their values at the top level of the resource or under `properties`, and
//! nested deployments' templates (`Microsoft.Resources/deployments`,
//! `properties.template`).
//!
//! A template states what should exist: each group resource is matched to the snapshot by
//! `uniqueName`, else `displayName` ([`super::Plan::changes`]), and is a new group when none
//! matches. Nothing is deleted. A value that is an ARM expression (`"[parameters('rule')]"`,
//! `"[format(…)]"`; `"[["` escapes a literal `[`) is not known until deployment.

use super::{Plan, Planned, PlannedGroup, Source};
use crate::whatif::Action;
use serde_json::Value;

/// Reads a parsed ARM template (see the module docs).
///
/// Errors: `resources` that is neither an array nor an object.
pub fn read(v: &Value) -> Result<Plan, String> {
    let mut plan = Plan {
        source: Source::Arm,
        groups: Vec::new(),
        licences: Vec::new(),
        notes: Vec::new(),
    };
    collect(v, "", &mut plan)?;
    Ok(plan)
}

fn collect(template: &Value, prefix: &str, plan: &mut Plan) -> Result<(), String> {
    let resources: Vec<(String, &Value)> = match template.get("resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let name = r
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("resources[{i}]"), str::to_string);
                (name, r)
            })
            .collect(),
        Some(Value::Object(o)) => o.iter().map(|(k, r)| (k.clone(), r)).collect(),
        Some(_) => return Err("`resources` is neither an array nor an object".into()),
    };
    for (name, r) in resources {
        let kind = r.get("type").and_then(Value::as_str).unwrap_or("");
        let address = format!("{prefix}{name}");
        let base = kind.split('@').next().unwrap_or(kind);
        if base.eq_ignore_ascii_case("Microsoft.Graph/groups") {
            plan.groups.push(group(r, address));
        } else if base.eq_ignore_ascii_case("Microsoft.Resources/deployments") {
            if let Some(t) = r.get("properties").and_then(|p| p.get("template")) {
                collect(t, &format!("{address}/"), plan)?;
            }
        }
    }
    Ok(())
}

/// A value of the resource: at its top level or under `properties`.
fn field<'v>(r: &'v Value, key: &str) -> Option<&'v Value> {
    r.get(key)
        .or_else(|| r.get("properties").and_then(|p| p.get(key)))
}

/// A string value: a literal (`[[` unescaped), or unknown when it is an ARM expression.
fn string(r: &Value, key: &str) -> Planned<String> {
    match field(r, key) {
        Some(Value::String(s)) if s.starts_with("[[") => Planned::Set(s[1..].to_string()),
        Some(Value::String(s)) if s.starts_with('[') && s.ends_with(']') => Planned::Unknown,
        Some(Value::String(s)) => Planned::Set(s.clone()),
        Some(Value::Null) | None => Planned::Unset,
        Some(_) => Planned::Unknown,
    }
}

fn group(r: &Value, address: String) -> PlannedGroup {
    let dynamic = match field(r, "groupTypes") {
        Some(Value::Array(a)) => Planned::Set(a.iter().any(|t| {
            t.as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("DynamicMembership"))
        })),
        Some(Value::String(s)) if s.starts_with('[') => Planned::Unknown,
        _ => Planned::Unset,
    };
    PlannedGroup {
        address,
        action: Action::Update,
        object_id: None,
        unique_name: string(r, "uniqueName").known().cloned(),
        display_name: string(r, "displayName").known().cloned(),
        membership_rule: string(r, "membershipRule"),
        dynamic,
        processing_state: string(r, "membershipRuleProcessingState"),
        desired_state: true,
    }
}
