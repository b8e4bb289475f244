//! Harnesses the fuzz targets and `cargo test` share, so a fuzz finding replays as a test of the
//! very same check (`tests/fuzz_regressions.rs` runs every file of `fuzz/regressions/`).

use crate::recompute::{RecomputeOptions, memberships};
use crate::schema::ObjectType;
use crate::tenant::{Parts, Tenant, UserRecords};
use std::path::PathBuf;

fn objects(text: &str, file: &str) -> Vec<(PathBuf, usize, serde_json::Value)> {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    let items = match v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(mut o) => match o.remove("value") {
            Some(serde_json::Value::Array(a)) => a,
            _ => vec![serde_json::Value::Object(o)],
        },
        _ => Vec::new(),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| (PathBuf::from(file), i + 1, v))
        .collect()
}

/// A tenant snapshot from arbitrary bytes — users (JSON Lines), NUL, groups, NUL, subscribed
/// SKUs, NUL, a licensing rules file — assembled, recomputed and licensed, and
/// `licenses.jsonl` written. Nothing may panic, and no SKU within its seats before may be
/// pushed over them (D39).
///
/// Errors: a description of the SKU pushed over its seats.
pub fn licensing(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let users_text = parts.next().unwrap_or("");
    let groups_text = parts.next().unwrap_or("[]");
    let skus_text = parts.next();
    let rules_text = parts.next();
    let users: Vec<serde_json::Value> = users_text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let Ok(table) = crate::load::table_from_values(&users, ObjectType::User) else {
        return Ok(());
    };
    let tenant = Tenant::assemble(Parts {
        dir: PathBuf::from("fuzz"),
        groups_path: PathBuf::from("groups.json"),
        users: table,
        user_bytes: 0,
        user_records: UserRecords::Values(std::sync::Arc::new(users)),
        devices: None,
        groups: objects(groups_text, "groups.json"),
        skus: skus_text.map(|t| Ok(objects(t, "subscribedSkus.json"))),
        organization: None,
        licensing_rules: rules_text
            .map(|t| (PathBuf::from("licensingRules.json"), Ok(t.to_string()))),
        issues: Vec::new(),
    });
    let now = jiff::Timestamp::UNIX_EPOCH;
    let (m, _) = memberships(
        &tenant,
        &tenant.groups,
        &tenant.users,
        &RecomputeOptions { now },
    );
    let (a, _) = crate::licensing::assign(&tenant, &tenant.groups, &m);
    for s in &a.skus {
        if let Some(cap) = s.assignable {
            if s.consumed_before <= cap && s.consumed_after > cap {
                return Err(format!(
                    "a SKU within its seats was pushed over them: {s:?}"
                ));
            }
        }
    }
    let mut out = Vec::new();
    let _ = crate::report::write_licenses(&mut out, &tenant, &a, |_| {});
    Ok(())
}
