//! Harnesses the fuzz targets and `cargo test` share, so a fuzz finding replays as a test of the
//! very same check (`tests/fuzz_regressions.rs` runs every file of `fuzz/regressions/`).

use crate::load::TwoReads;
use crate::program::{CompileOptions, Program};
use crate::recompute::{RecomputeOptions, memberships};
use crate::schema::ObjectType;
use crate::table::{ColumnKey, Projection};
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

/// Runs `rule` over JSON Lines `text` both ways and says whether they agree: the records as
/// `eval` loads them (the chunk parser, byte scanner and serde visitors; with the rule's
/// projection and without) evaluated by the compiled program on the VM, and each line as
/// `explain` reads it (the same record check, then a JSON object) evaluated by the oracle. The
/// two must accept the same lines, read the same ids, and select the same records. `now` is
/// `system.now`. An invalid rule is no comparison (`Ok(0)`).
///
/// Returns how many records were compared.
///
/// Errors: a description of the first disagreement.
#[doc(hidden)]
pub fn differential(rule: &str, text: &[u8], now: jiff::Timestamp) -> Result<usize, String> {
    let checked = crate::check(rule);
    let Some(hir) = checked.hir.as_ref().filter(|_| checked.is_valid()) else {
        return Ok(0);
    };
    let object = hir.object;
    let Ok(program) = Program::compile(hir, &CompileOptions { now }) else {
        return Ok(0);
    };
    let cx = crate::oracle::Context::at(now);
    let mut projection = Projection::default();
    program.add_reads(&mut projection);
    projection.columns.insert(ColumnKey::Prop("objectId"));
    let mut compared = 0;
    for projection in [None, Some(projection)] {
        let projected = projection.is_some();
        let TwoReads {
            values: lines,
            table,
            rejected: errors,
        } = crate::load::read_both_ways(text, object, projection.as_ref())?;
        let rejected: std::collections::HashSet<usize> = errors.iter().map(|e| e.line).collect();
        if let Some((l, _)) = lines.iter().find(|(l, _)| rejected.contains(l)) {
            let e = errors
                .iter()
                .find(|e| e.line == *l)
                .map(ToString::to_string);
            return Err(format!(
                "the load rejects line {l}, which the oracle reads (projected: {projected}): {}",
                e.unwrap_or_default()
            ));
        }
        if table.len() != lines.len() {
            return Err(format!(
                "the load holds {} records, the oracle reads {} lines (projected: {projected})",
                table.len(),
                lines.len()
            ));
        }
        let members = crate::vm::evaluate(std::slice::from_ref(&program), &table);
        for (row, (line, v)) in lines.iter().enumerate() {
            let id = table.id(row);
            // An id as the oracle reads it: a string, or a number or boolean as its JSON text.
            let want_id =
                crate::oracle::text_of(v.as_object().and_then(|o| crate::formats::get_ci(o, "id")));
            let want_id = want_id.as_deref();
            if id != want_id {
                return Err(format!(
                    "line {line}: the load read id {id:?}, the oracle {want_id:?} (projected: {projected})"
                ));
            }
            let want = crate::oracle::evaluate(hir, v, &cx);
            let got = members.first().is_some_and(|m| m.get(row));
            if got != want {
                return Err(format!(
                    "line {line}: the engine says {got}, the oracle {want} (projected: {projected}) for {rule:?} on {v}"
                ));
            }
        }
        compared += lines.len();
    }
    Ok(compared)
}
