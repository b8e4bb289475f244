//! Licensing scenarios as data: every folder under `corpus/licensing/` is a tenant snapshot with
//! an `expect.json` (the facts the scenario's Microsoft doc states). Each is recomputed; the
//! facts are checked against `licenses.jsonl` and the summary, and the text report is an insta
//! snapshot.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

use dynrule::licensing;
use dynrule::recompute::{self, RecomputeOptions};
use dynrule::report::{self, RecomputeReport, Timings};
use dynrule::tenant::{Tenant, TenantOptions};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

struct Outcome {
    report: RecomputeReport,
    /// userPrincipalName → licenses.jsonl line.
    users: BTreeMap<String, Value>,
    /// skuId → skuPartNumber.
    parts: BTreeMap<String, String>,
    /// servicePlanId → servicePlanName.
    plan_names: BTreeMap<String, String>,
}

fn run(dir: &Path) -> Outcome {
    let tenant = Tenant::load(dir, &TenantOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let now = "2026-11-01T00:00:00Z"
        .parse()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let (m, mut issues) = recompute::memberships(
        &tenant,
        &tenant.groups,
        &tenant.users,
        &RecomputeOptions { now },
    );
    let (a, more) = licensing::assign(&tenant, &tenant.groups, &m);
    let mut all = tenant.issues.clone();
    all.append(&mut issues);
    all.extend(more);
    let mut buf = Vec::new();
    report::write_licenses(&mut buf, &tenant, &a, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    let mut users = BTreeMap::new();
    for line in String::from_utf8_lossy(&buf).lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let upn = v["userPrincipalName"].as_str().unwrap_or("").to_lowercase();
        users.insert(upn, v);
    }
    let parts = a
        .skus
        .iter()
        .map(|s| (s.sku_id.clone(), s.sku_part_number.clone()))
        .collect();
    let mut plan_names = BTreeMap::new();
    for v in users.values() {
        for l in v["assignedLicenses"].as_array().into_iter().flatten() {
            for id in strs(&l["disabledPlans"]) {
                if let Some(p) = tenant.catalog.plan_by_id(&id) {
                    plan_names.insert(id, tenant.catalog.plan_label(p).to_string());
                }
            }
        }
    }
    let report = RecomputeReport::new(&tenant, &m, &a, all, Timings::default());
    Outcome {
        report,
        users,
        parts,
        plan_names,
    }
}

fn strs(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Every mismatch between `expect.json` and the outcome, as text.
fn check(o: &Outcome, expect: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let part = |id: &str| o.parts.get(id).cloned().unwrap_or_else(|| id.to_string());
    for (upn, want) in expect["users"].as_object().into_iter().flatten() {
        let got = o
            .users
            .get(&upn.to_lowercase())
            .cloned()
            .unwrap_or(Value::Null);
        let held: BTreeSet<String> = got["assignedLicenses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| part(l["skuId"].as_str().unwrap_or("")))
            .collect();
        if let Some(w) = want.get("skus") {
            if strs(w) != held {
                bad.push(format!("{upn}: skus {held:?}, expected {:?}", strs(w)));
            }
        }
        let plans: BTreeSet<String> = got["servicePlans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        for p in strs(&want["plans"]) {
            if !plans.contains(&p) {
                bad.push(format!("{upn}: lacks plan {p}"));
            }
        }
        for p in strs(&want["notPlans"]) {
            if plans.contains(&p) {
                bad.push(format!("{upn}: has plan {p}, expected not"));
            }
        }
        let states = got["licenseAssignmentStates"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let errors: BTreeSet<String> = states
            .iter()
            .filter_map(|s| s["error"].as_str())
            .filter(|e| *e != "None")
            .map(str::to_string)
            .collect();
        if let Some(w) = want.get("errors") {
            if strs(w) != errors {
                bad.push(format!("{upn}: errors {errors:?}, expected {:?}", strs(w)));
            }
        }
        for (sku, err) in want["errorStates"].as_object().into_iter().flatten() {
            let found = states
                .iter()
                .any(|s| part(s["skuId"].as_str().unwrap_or("")) == *sku && s["error"] == *err);
            if !found {
                bad.push(format!("{upn}: no {sku} state with error {err}"));
            }
        }
        if let Some(n) = want["states"].as_u64() {
            if states.len() as u64 != n {
                bad.push(format!(
                    "{upn}: {} licenseAssignmentStates, expected {n}",
                    states.len()
                ));
            }
        }
        for (sku, names) in want["disabledPlans"].as_object().into_iter().flatten() {
            let lic = got["assignedLicenses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| part(l["skuId"].as_str().unwrap_or("")) == *sku);
            let d: BTreeSet<String> = lic
                .map(|l| strs(&l["disabledPlans"]))
                .unwrap_or_default()
                .iter()
                .map(|id| o.plan_names.get(id).cloned().unwrap_or_else(|| id.clone()))
                .collect();
            if d != strs(names) {
                bad.push(format!(
                    "{upn}: {sku} disabledPlans {d:?}, expected {:?}",
                    strs(names)
                ));
            }
        }
        for key in ["usageLocation", "usageLocationSource"] {
            if let Some(w) = want.get(key) {
                if got[key] != *w {
                    bad.push(format!("{upn}: {key} {}, expected {w}", got[key]));
                }
            }
        }
    }
    for (sku, want) in expect["skus"].as_object().into_iter().flatten() {
        let Some(s) = o.report.skus.iter().find(|s| s.sku_part_number == *sku) else {
            bad.push(format!("no SKU {sku}"));
            continue;
        };
        let got = serde_json::to_value(s).unwrap_or(Value::Null);
        for (k, w) in want.as_object().into_iter().flatten() {
            if got[k] != *w {
                bad.push(format!("SKU {sku}: {k} {}, expected {w}", got[k]));
            }
        }
    }
    for (name, want) in expect["groups"].as_object().into_iter().flatten() {
        let Some(g) = o.report.groups.iter().find(|g| g.display_name == *name) else {
            bad.push(format!("no group {name}"));
            continue;
        };
        let got = serde_json::json!({
            "members": g.members, "joined": g.joined, "left": g.left,
            "usersSucceeded": g.licensing.users_succeeded, "usersFailed": g.licensing.users_failed,
        });
        for (k, w) in want.as_object().into_iter().flatten() {
            if got[k] != *w {
                bad.push(format!("group {name}: {k} {}, expected {w}", got[k]));
            }
        }
    }
    for needle in strs(&expect["issues"]) {
        if !o.report.issues.iter().any(|i| i.message.contains(&needle)) {
            bad.push(format!("no issue mentioning {needle:?}"));
        }
    }
    bad
}

#[test]
fn licensing_scenarios() {
    let root = Path::new("corpus/licensing");
    let mut dirs: Vec<_> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expect.json").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 9, "scenarios: {dirs:?}");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let expect: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("expect.json")).unwrap_or_default(),
        )
        .unwrap_or_else(|e| panic!("{name}/expect.json: {e}"));
        let o = run(dir);
        for b in check(&o, &expect) {
            failures.push(format!("{name}: {b}"));
        }
        insta::with_settings!({ snapshot_suffix => name.clone(), description => expect["description"].as_str().unwrap_or("") }, {
            insta::assert_snapshot!("report", o.report.text());
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_harness_notices_a_wrong_expectation() {
    let dir = Path::new("corpus/licensing/two-skus-one-runs-out");
    let o = run(dir);
    let wrong = serde_json::json!({
        "skus": {"EMS": {"countViolations": 0}},
        "users": {"analyst3@contoso.com": {"skus": ["EMS"]}},
        "groups": {"Finance E3 + EMS": {"usersFailed": 0}},
    });
    assert_eq!(check(&o, &wrong).len(), 3);
}

/// A generated snapshot is consistent: recomputing it changes no user's licence states and no
/// seat count.
#[test]
fn recomputing_a_generated_snapshot_changes_nothing() {
    let dir = std::env::temp_dir().join(format!("dynrule-snap-{}", std::process::id()));
    dynrule::synth::write_snapshot(3_000, 11, &dir).unwrap_or_else(|e| panic!("{e}"));
    let tenant = Tenant::load(&dir, &TenantOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let now = "2026-11-01T00:00:00Z"
        .parse()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let (m, issues) = recompute::memberships(
        &tenant,
        &tenant.groups,
        &tenant.users,
        &RecomputeOptions { now },
    );
    assert!(
        issues
            .iter()
            .all(|i| i.severity != dynrule::tenant::Severity::Error),
        "{issues:?}"
    );
    let (a, more) = licensing::assign(&tenant, &tenant.groups, &m);
    assert!(more.is_empty(), "{more:?}");
    let states = tenant
        .users
        .licenses(dynrule::table::ColumnKey::LicenseStates)
        .unwrap_or_else(|| panic!("no licenseAssignmentStates column"));
    let mut licensed = 0;
    for row in 0..tenant.users.len() {
        let before: BTreeSet<(String, Option<String>, Vec<String>)> = states
            .get(row)
            .unwrap_or(&[])
            .iter()
            .map(|e| {
                (
                    e.sku_id.clone(),
                    e.assigned_by_group.clone(),
                    e.disabled_plans.clone(),
                )
            })
            .collect();
        let after: BTreeSet<(String, Option<String>, Vec<String>)> = a
            .states(row)
            .iter()
            .map(|s| {
                assert_eq!(s.error, None);
                (
                    a.sku_id(s.sku).to_string(),
                    a.source_id(s).map(str::to_string),
                    a.disabled_plans(s.disabled).to_vec(),
                )
            })
            .collect();
        assert_eq!(before, after, "row {row}");
        licensed += usize::from(!after.is_empty());
    }
    assert!(licensed > 2_000, "{licensed}");
    for s in &a.skus {
        assert_eq!(s.consumed_before, s.consumed_after, "{}", s.sku_part_number);
        assert_eq!(s.count_violations, 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad pieces of a snapshot are issues with their location; only unreadable users or groups are
/// fatal, and those name file and line.
#[test]
fn snapshot_problems_are_located() {
    let dir = std::env::temp_dir().join(format!("dynrule-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let w = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    };
    w(
        "users.jsonl",
        "{\"id\": \"u1\", \"department\": \"Sales\"}\n",
    );
    w(
        "groups.json",
        "[\n{\"displayName\": \"no id\"},\n{\"id\": \"g1\", \"groupTypes\": [\"DynamicMembership\"], \"membershipRule\": \"user.department -eq \\\"Sales\\\"\", \"assignedLicenses\": [{\"disabledPlans\": []}]}\n]",
    );
    w("subscribedSkus.json", "{\"value\": [ {\"skuId\": 5} ]}");
    w(
        "licensingRules.json",
        "{\"conflicts\": [{\"servicePlans\": [\"NOT_A_PLAN\", \"TEAMS1\"]}]}",
    );
    let t = Tenant::load(&dir, &TenantOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let text: Vec<String> = t.issues.iter().map(ToString::to_string).collect();
    let has = |needle: &str| text.iter().any(|i| i.contains(needle));
    assert!(
        has("groups.json:2: group left out: the group has no `id`"),
        "{text:#?}"
    );
    assert!(
        has("groups.json:3: group left out: an `assignedLicenses` entry has no `skuId`"),
        "{text:#?}"
    );
    assert!(has("SKU left out: the SKU has no `skuId`"), "{text:#?}");
    assert!(has("unknown service plan `NOT_A_PLAN`"), "{text:#?}");
    assert!(t.groups.is_empty());

    w("groups.json", "[\n{\"id\": \"g1\",\n \"displayName\": }\n]");
    match Tenant::load(&dir, &TenantOptions::default()) {
        Err(e) => assert!(e.to_string().contains("groups.json:3:"), "{e}"),
        Ok(_) => panic!("malformed groups.json must fail"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
