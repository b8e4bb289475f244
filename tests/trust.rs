//! No false all-clear: every way a snapshot can make `whatif` or `recompute` answer wrongly is
//! either answered right or loud (exit 4 or 2, the cause named). Each fixture is written here
//! in the shape of a published response, whose source is named beside it.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use serde_json::{Value, json};
use std::path::Path;

const NOW: &str = "2026-11-01T00:00:00Z";
const EMS: &str = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e";
const G1: &str = "e9f4a701-e7b5-4401-a0ca-5bd5f3cdcf4b";
const G2: &str = "0b7f7e4e-1111-4c2b-9d3a-5a6b7c8d9e01";

fn dir(name: &str) -> common::TempDir {
    common::temp_dir("trust", name)
}

fn write(dir: &Path, name: &str, v: &Value) {
    std::fs::write(
        dir.join(name),
        serde_json::to_string_pretty(v).expect("json"),
    )
    .expect("write");
}

use common::dynrule as run;

fn whatif_json(tenant: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec![
        "whatif",
        "--tenant",
        tenant.to_str().expect("utf8"),
        "--now",
        NOW,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (
        o.status.code(),
        v,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn kinds(v: &Value) -> Vec<String> {
    v["trust"]["underminedBy"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["kind"].as_str().map(str::to_string))
        .collect()
}

/// A dynamic security group as `GET /groups?$select=id,displayName,groupTypes,
/// membershipRule,membershipRuleProcessingState,securityEnabled,assignedLicenses` returns it,
/// assigned EMS when `licensed`.
fn dynamic_group(id: &str, name: &str, rule: &str, licensed: bool) -> Value {
    let licences = if licensed {
        json!([{"skuId": EMS, "disabledPlans": []}])
    } else {
        json!([])
    };
    json!({"id": id, "displayName": name, "groupTypes": ["DynamicMembership"],
        "membershipRule": rule, "membershipRuleProcessingState": "On",
        "securityEnabled": true, "assignedLicenses": licences})
}

/// `recompute --format json` on the snapshot in `d`: its exit code and summary.
fn recompute_json(d: &Path) -> (Option<i32>, Value) {
    let o = run(&[
        "recompute",
        "--tenant",
        d.to_str().expect("utf8"),
        "--now",
        NOW,
        "--format",
        "json",
    ]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code(), v)
}

fn skus() -> Value {
    json!({"value": [{"skuId": EMS, "skuPartNumber": "EMS", "appliesTo": "User",
        "capabilityStatus": "Enabled", "consumedUnits": 2,
        "prepaidUnits": {"enabled": 10, "suspended": 0, "warning": 0, "lockedOut": 0}}]})
}

/// Users as `GET /users` returns them without `$select` (Microsoft Graph docs, user-list
/// example 1: `businessPhones, displayName, givenName, jobTitle, mail, mobilePhone,
/// officeLocation, preferredLanguage, surname, userPrincipalName, id`): no `accountEnabled`,
/// no `department`.
fn default_users() -> Value {
    let user = |id: &str, name: &str| {
        json!({"businessPhones": [], "displayName": name, "givenName": null, "jobTitle": null,
            "mail": format!("{name}@contoso.com"), "mobilePhone": null, "officeLocation": null,
            "preferredLanguage": null, "surname": null,
            "userPrincipalName": format!("{name}@contoso.com"), "id": id})
    };
    json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": [
        user("6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0", "Adams"),
        user("4562bcc8-c436-4f95-b7c0-4f8ce89dca5e", "Alex"),
        user("87d349ed-44d7-43e1-9a83-5f2406dee5bd", "Diego"),
    ]})
}

#[test]
fn properties_missing_from_the_export_are_exit_4_with_the_select_to_add() {
    let d = dir("default-select");
    write(&d, "users.json", &default_users());
    write(
        &d,
        "groups.json",
        &json!([{"id": G1, "displayName": "Enabled users", "groupTypes": ["DynamicMembership"],
            "membershipRule": "user.accountEnabled -eq true", "membershipRuleProcessingState": "On",
            "securityEnabled": true, "assignedLicenses": [],
            "members": [{"id": "6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0"}, {"id": "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e"}]}]),
    );
    write(&d, "subscribedSkus.json", &skus());
    let (code, v, err) = whatif_json(
        &d,
        &[
            "--group",
            "Enabled users",
            "--rule",
            r#"user.accountEnabled -eq true -and user.department -eq "Sales""#,
        ],
    );
    assert_eq!(code, Some(4), "{err}");
    let k = kinds(&v);
    assert!(k.iter().any(|k| k == "propertyNotExported"), "{k:?}");
    assert!(k.iter().any(|k| k == "baselineMismatch"), "{k:?}");
    let text = v["trust"]["underminedBy"].to_string();
    assert!(
        text.contains("accountEnabled") && text.contains("$select") && text.contains("department"),
        "{text}"
    );
    // Turned into warnings for exploration.
    let (code, _, err) = whatif_json(
        &d,
        &[
            "--group",
            "Enabled users",
            "--rule",
            "user.accountEnabled -eq true",
            "--allow-untrusted",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("--allow-untrusted"), "{err}");
    // recompute says the same.
    let o = run(&[
        "recompute",
        "--tenant",
        d.to_str().expect("utf8"),
        "--now",
        NOW,
    ]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
}

/// A generated snapshot (consistent by construction) exits 0; the same with
/// `extensionAttribute1` nulled in every record, while the exported licenseAssignmentStates
/// still name the EMS group, exits 4 on the baseline (the case `recompute` saw and `whatif`
/// did not look at).
#[test]
fn a_nulled_property_breaks_the_baseline_not_the_all_clear() {
    let d = dir("nulled");
    dynrule::synth::write_snapshot(2_000, 7, &d).expect("snapshot");
    let args = [
        "--group",
        "Licence EMS",
        "--rule",
        r#"user.extensionAttribute1 -contains "EMS" -and user.accountEnabled -eq true"#,
    ];
    let (code, v, err) = whatif_json(&d, &args);
    assert_eq!(code, Some(0), "{err} {}", v["trust"]);
    assert_eq!(v["trust"]["trusted"], true);
    let users = std::fs::read_to_string(d.join("users.jsonl")).expect("users");
    let nulled: String = users
        .lines()
        .map(|l| {
            let mut u: Value = serde_json::from_str(l).expect("json");
            if let Some(ext) = u.get_mut("onPremisesExtensionAttributes") {
                ext["extensionAttribute1"] = Value::Null;
            }
            u.to_string() + "\n"
        })
        .collect();
    std::fs::write(d.join("users.jsonl"), nulled).expect("write");
    let (code, v, err) = whatif_json(&d, &args);
    assert_eq!(code, Some(4), "{err}");
    let k = kinds(&v);
    assert!(k.iter().any(|k| k == "baselineMismatch"), "{k:?}");
    assert!(k.iter().any(|k| k == "propertyAllNull"), "{k:?}");
}

#[test]
fn unreadable_or_unsubscribed_licensing_is_exit_2() {
    let d = dir("utf16");
    write(&d, "users.json", &default_users());
    write(
        &d,
        "groups.json",
        &json!([{"id": G1, "displayName": "EMS users", "groupTypes": [], "securityEnabled": true,
            "assignedLicenses": [], "members": []}]),
    );
    // PowerShell 5's Out-File default: UTF-16 LE with a BOM.
    let text = serde_json::to_string(&skus()).expect("json");
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    std::fs::write(d.join("subscribedSkus.json"), bytes).expect("write");
    let (code, _, err) = whatif_json(&d, &["--group", "EMS users", "--licenses", "EMS"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("subscribedSkus.json"), "{err}");
    // A SKU the tenant does not subscribe to: exit 2 naming what it has.
    write(&d, "subscribedSkus.json", &skus());
    let (code, _, err) = whatif_json(
        &d,
        &[
            "--group",
            "EMS users",
            "--licenses",
            "EMSPREMIUM",
            "--max-data-loss",
            "0",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("EMSPREMIUM") && err.contains("subscribedSkus: EMS"),
        "{err}"
    );
    // A partial users export (Graph Explorer's first page).
    let mut page = default_users();
    page["@odata.nextLink"] = json!("https://graph.microsoft.com/v1.0/users?$skiptoken=X");
    write(&d, "users.json", &page);
    let (code, _, err) = whatif_json(&d, &["--group", "EMS users", "--licenses", "EMS"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("partial export"), "{err}");
}

/// Users holding EMS from a group, in `licenseAssignmentStates` (Graph's user resource shape).
fn licensed_users(n: usize, group: &str) -> Value {
    let users: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": format!("00000000-0000-4000-8000-{i:012}"),
                "userPrincipalName": format!("u{i}@contoso.com"), "accountEnabled": true,
                "department": "Sales", "usageLocation": "US",
                "assignedLicenses": [{"skuId": EMS, "disabledPlans": []}],
                "licenseAssignmentStates": [{"skuId": EMS, "assignedByGroup": group,
                    "disabledPlans": [], "state": "Active", "error": "None"}]})
        })
        .collect();
    Value::Array(users)
}

/// A rule dynrule cannot compile, exported without members, is unknown: its licences are not
/// stripped (recompute keeps the snapshot states), it prints as `?`, and a what-if touching
/// it exits 4.
#[test]
fn a_rule_dynrule_cannot_compile_is_unknown_not_empty() {
    let d = dir("uncompiled");
    write(&d, "users.json", &licensed_users(4, G1));
    write(
        &d,
        "groups.json",
        &json!([
            dynamic_group(G1, "EMS users", "user.department -eq \"Sales\" -and", true),
            dynamic_group(G2, "Other", "user.department -eq \"HR\"", true)
        ]),
    );
    write(&d, "subscribedSkus.json", &skus());
    let out = d.join("out");
    let o = run(&[
        "recompute",
        "--tenant",
        d.to_str().expect("utf8"),
        "--now",
        NOW,
        "--format",
        "json",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["groups"][0]["members"], Value::Null, "{}", v["groups"][0]);
    let ems = v["skus"]
        .as_array()
        .expect("skus")
        .iter()
        .find(|s| s["skuId"] == EMS)
        .cloned()
        .expect("EMS");
    assert_eq!(ems["holdersAfter"], 4, "{ems}");
    let (code, v, err) = whatif_json(
        &d,
        &["--group", "Other", "--rule", "user.department -eq \"IT\""],
    );
    assert_eq!(code, Some(4), "{err}");
    let k = kinds(&v);
    assert!(k.iter().any(|k| k == "ruleNotCompiled"), "{k:?}");
}

/// A memberOf group over a dynamic group takes the source's computed members, and a what-if
/// on the source ripples into it.
#[test]
fn member_of_groups_follow_their_computed_sources() {
    let d = dir("memberof");
    write(&d, "users.json", &licensed_users(3, G2));
    let rule = format!("user.memberOf -any (group.objectId -in ['{G1}'])");
    write(
        &d,
        "groups.json",
        &json!([
            dynamic_group(G1, "Sales", "user.department -eq \"Sales\"", false),
            dynamic_group(G2, "Sales via memberOf", &rule, true)
        ]),
    );
    write(&d, "subscribedSkus.json", &skus());
    let (code, v) = recompute_json(&d);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["groups"][1]["members"], 3, "{}", v["groups"][1]);
    let (code, v, err) = whatif_json(
        &d,
        &["--group", "Sales", "--rule", "user.department -eq \"HR\""],
    );
    assert_eq!(code, Some(0), "{err}");
    let ripple = v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["displayName"] == "Sales via memberOf")
        .cloned()
        .expect("the memberOf group moves with its source");
    assert_eq!(ripple["after"], 0, "{ripple}");
    assert!(
        v["risks"]["usersLosingEveryLicense"].as_u64() == Some(3),
        "{}",
        v["risks"]
    );
}

/// Graph's own "list dynamic groups" example selects `id,membershipRule,
/// membershipRuleProcessingState` (Microsoft Graph docs, group-list example 6): such a group
/// is dynamic, not a static group turning dynamic; and members missing from the users export
/// are reported.
#[test]
fn groups_without_group_types_are_dynamic_from_their_rule() {
    let d = dir("ex6");
    write(&d, "users.json", &licensed_users(2, G1));
    write(
        &d,
        "groups.json",
        &json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups(id,membershipRule,membershipRuleProcessingState)",
            "value": [{"id": G1, "membershipRule": "user.department -eq \"Sales\"",
                "membershipRuleProcessingState": "On",
                "members": [{"id": "00000000-0000-4000-8000-000000000000"}, {"id": "00000000-0000-4000-8000-000000000001"}, {"id": "00000000-0000-4000-8000-00000000abcd"}]}]}),
    );
    let (code, v, err) = whatif_json(&d, &["--group", G1, "--rule", "user.department -eq \"HR\""]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["risks"]["staticToDynamic"], json!([]), "{}", v["risks"]);
    let issues = v["issues"].to_string();
    assert!(issues.contains("groupTypesMissing"), "{issues}");
    assert!(issues.contains("membersNotInExport"), "{issues}");
}

/// Microsoft's own Intune example rule reads Graph's `mdmAppId` (device resource; the
/// terraform-provider-microsoft365 fixture `get_devices_all.json` has it on every device).
#[test]
fn device_management_app_id_reads_mdm_app_id() {
    let d = dir("mdm");
    let devices = json!({"value": [
        {"id": "d1", "deviceId": "x1", "displayName": "PC-1", "mdmAppId": "0000000a-0000-0000-c000-000000000000", "operatingSystem": "Windows"},
        {"id": "d2", "deviceId": "x2", "displayName": "PC-2", "mdmAppId": null, "operatingSystem": "Windows"},
    ]});
    write(&d, "devices.json", &devices);
    let o = run(&[
        "eval",
        "--devices",
        d.join("devices.json").to_str().expect("utf8"),
        "--count",
        r#"device.deviceManagementAppId -eq "0000000a-0000-0000-c000-000000000000""#,
    ]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"count\":1"),
        "{o:?}"
    );
}

/// The new rule's warnings are in the what-if's issues, and the money gates trip.
#[test]
fn new_rule_warnings_and_money_gates() {
    let d = dir("gates");
    let mut users = licensed_users(6, G1);
    for (i, u) in users.as_array_mut().expect("array").iter_mut().enumerate() {
        if i >= 3 {
            u["department"] = json!("HR");
            u["licenseAssignmentStates"] = json!([]);
            u["assignedLicenses"] = json!([]);
        }
    }
    write(&d, "users.json", &users);
    write(
        &d,
        "groups.json",
        &json!([dynamic_group(
            G1,
            "EMS users",
            "user.department -eq \"Sales\"",
            true
        )]),
    );
    let mut s = skus();
    s["value"][0]["prepaidUnits"]["enabled"] = json!(4);
    s["value"][0]["consumedUnits"] = json!(3);
    write(&d, "subscribedSkus.json", &s);
    let rule = r#"user.department -eq "Sales" -or user.department -eq "HR" -and user.accountEnabled -eq true"#;
    let (code, v, err) = whatif_json(&d, &["--group", "EMS users", "--rule", rule]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        v["issues"].to_string().contains("ruleWarning"),
        "{}",
        v["issues"]
    );
    let (code, v, err) = whatif_json(
        &d,
        &[
            "--group",
            "EMS users",
            "--rule",
            rule,
            "--max-shortfall",
            "0",
        ],
    );
    assert_eq!(code, Some(3), "{err} {}", v["skus"]);
    let (code, _, err) = whatif_json(
        &d,
        &[
            "--group",
            "EMS users",
            "--rule",
            rule,
            "--max-new-errors",
            "1",
        ],
    );
    assert_eq!(code, Some(3), "{err}");
    // A shortage that exists before the change is not the change's.
    s["value"][0]["prepaidUnits"]["enabled"] = json!(2);
    write(&d, "subscribedSkus.json", &s);
    let (_, v, _) = whatif_json(
        &d,
        &[
            "--group",
            "EMS users",
            "--rule",
            "user.department -eq \"Sales\" -and user.accountEnabled -eq true",
        ],
    );
    for sku in v["skus"].as_array().into_iter().flatten() {
        assert!(
            sku["shortfall"].as_u64() <= sku["shortfallBefore"].as_u64(),
            "{sku}"
        );
    }
}

/// For generated snapshots (consistent by construction, so the untouched one is trusted),
/// removing from every record, or nulling, a property that the changed group's rule reads
/// never yields a trusted answer.
#[test]
fn removing_or_nulling_a_read_property_is_never_trusted() {
    use dynrule::tenant::{Tenant, TenantOptions};
    use dynrule::whatif::{self, Change, WhatIfOptions};
    let now: jiff::Timestamp = NOW.parse().expect("now");
    let d = dir("props");
    dynrule::synth::write_snapshot(600, 3, &d).expect("snapshot");
    let original = std::fs::read_to_string(d.join("users.jsonl")).expect("users");
    let tenant = Tenant::load(&d, &TenantOptions::default()).expect("load");
    // Dynamic groups, and the top-level Graph keys their rules (and licensing) read.
    let mut cases: Vec<(usize, String)> = Vec::new();
    for (gi, g) in tenant.groups.iter().enumerate() {
        let Some(rule) = g.membership_rule.as_deref() else {
            continue;
        };
        if !g.is_dynamic() {
            continue;
        }
        let checked = dynrule::check(rule);
        let Some(object) = checked.object else {
            continue;
        };
        for name in [
            "department",
            "accountEnabled",
            "city",
            "country",
            "userType",
            "jobTitle",
            "onPremisesExtensionAttributes",
            "usageLocation",
            "proxyAddresses",
        ] {
            let reads = rule
                .to_ascii_lowercase()
                .contains(&name.to_ascii_lowercase())
                || (name == "onPremisesExtensionAttributes" && rule.contains("extensionAttribute"))
                || (name == "usageLocation" && !g.assigned_licenses.is_empty());
            if reads
                && object == dynrule::schema::ObjectType::User
                && !cases.iter().any(|(_, n)| n == name)
            {
                cases.push((gi, name.to_string()));
            }
        }
    }
    assert!(cases.len() >= 3, "{cases:?}");
    let opts = WhatIfOptions::new(now);
    let change = |gi: usize, t: &Tenant| Change {
        group: gi,
        membership_rule: t.groups[gi].membership_rule.clone(),
        ..Change::default()
    };
    let untouched = whatif::run(&tenant, &[change(cases[0].0, &tenant)], &opts).expect("run");
    assert!(
        untouched.trust.trusted,
        "{:?}",
        untouched.trust.undermined_by
    );
    for (gi, name) in &cases {
        for null in [false, true] {
            let edited: String = original
                .lines()
                .map(|l| {
                    let mut u: Value = serde_json::from_str(l).expect("json");
                    let o = u.as_object_mut().expect("object");
                    if null {
                        o.insert(name.clone(), Value::Null);
                    } else {
                        o.remove(name);
                    }
                    u.to_string() + "\n"
                })
                .collect();
            std::fs::write(d.join("users.jsonl"), edited).expect("write");
            let t = Tenant::load(&d, &TenantOptions::default()).expect("load");
            let w = whatif::run(&t, &[change(*gi, &t)], &opts).expect("run");
            assert!(
                !w.trust.trusted,
                "{name} {} from every record of {}: trusted",
                if null { "nulled" } else { "removed" },
                t.groups[*gi].display_name
            );
        }
    }
}

/// A `-match` that exhausts the backtracking limit on a value cannot say whether it matches
/// (D63): `eval` prints how many values and exits 4, and so does a what-if whose new rule
/// rests on it.
#[test]
fn undecided_pattern_values_are_exit_4() {
    let d = dir("undecided");
    let mut users = licensed_users(4, G1);
    for (i, u) in users.as_array_mut().expect("users").iter_mut().enumerate() {
        // Half the users have a value on which the pattern backtracks past its limit.
        u["displayName"] = json!(if i % 2 == 0 {
            "a".repeat(30)
        } else {
            "b".into()
        });
    }
    write(&d, "users.json", &users);
    write(
        &d,
        "groups.json",
        &json!([dynamic_group(
            G1,
            "EMS users",
            "user.department -eq \"Sales\"",
            true
        )]),
    );
    write(&d, "subscribedSkus.json", &skus());
    let pattern = r#"user.displayName -match "^(?=a)(?:(a|a)*!x|aa)""#;
    let o = run(&[
        "eval",
        "--users",
        d.join("users.json").to_str().expect("utf8"),
        "--count",
        pattern,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("1 value(s) could not be decided"), "{err}");
    let (code, v, err) = whatif_json(&d, &["--group", "EMS users", "--rule", pattern]);
    assert_eq!(code, Some(4), "{err}");
    let k = kinds(&v);
    assert!(k.iter().any(|k| k == "patternUndecided"), "{k:?}");
    // A pattern that decides every value is trusted as before.
    let (code, _, err) = whatif_json(
        &d,
        &[
            "--group",
            "EMS users",
            "--rule",
            r#"user.displayName -match "^(?=a)a""#,
        ],
    );
    assert_ne!(code, Some(4), "{err}");
}

/// Seat counts are whole numbers ≥ 0 (an integral float or a string of digits is read as
/// one); anything else is a `seatsUnreadable` issue per field, the SKU's seats are not counted
/// (no invented shortfall), and a what-if on a group assigning it exits 4.
#[test]
fn unreadable_seat_counts_are_issues_not_zero() {
    let cases: &[(Value, Value, bool)] = &[
        (json!(10.0), json!(2), true),
        (json!("10"), json!(2), true),
        (json!(-5), json!(2), false),
        (json!(10.5), json!(2), false),
        (json!(1_180_591_620_717_411_303_424.0_f64), json!(2), false),
        (json!({"n": 10}), json!(2), false),
        (json!(10), json!(-3), false),
    ];
    for (i, (enabled, consumed, readable)) in cases.iter().enumerate() {
        let d = dir(&format!("seats{i}"));
        write(&d, "users.json", &licensed_users(2, G1));
        write(
            &d,
            "groups.json",
            &json!([dynamic_group(
                G1,
                "EMS users",
                "user.department -eq \"Sales\"",
                true
            )]),
        );
        write(
            &d,
            "subscribedSkus.json",
            &json!({"value": [{"skuId": EMS, "skuPartNumber": "EMS", "appliesTo": "User",
                "capabilityStatus": "Enabled", "consumedUnits": consumed,
                "prepaidUnits": {"enabled": enabled, "suspended": 0, "warning": 0, "lockedOut": 0}}]}),
        );
        let (code, v, err) = whatif_json(
            &d,
            &[
                "--group",
                "EMS users",
                "--rule",
                "user.department -eq \"HR\"",
            ],
        );
        let k = kinds(&v);
        if *readable {
            assert_eq!(code, Some(0), "{enabled}: {err} {k:?}");
        } else {
            assert_eq!(code, Some(4), "{enabled}/{consumed}: {err}");
            assert!(k.iter().any(|k| k == "seatsUnreadable"), "{k:?}");
        }
    }
}

/// Microsoft's EntraExporter layout (`Export-Entra`: one object per file, `Users/<id>/<id>.json`,
/// `Groups/<id>/<id>.json` with `Members/<memberId>/<memberId>.json`, `SubscribedSkus/…`,
/// `Organization/Organization.json`; microsoft/EntraExporter, src/Export-Entra.ps1) reads as
/// `--users` and as a tenant, with a static group's `Members/` as its members (D72).
#[test]
fn entraexporter_layout_reads_as_users_and_as_a_tenant() {
    let d = dir("entraexporter");
    let put = |rel: &str, v: &Value| {
        let p = d.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dirs");
        std::fs::write(&p, serde_json::to_string_pretty(v).expect("json")).expect("write");
    };
    let users = licensed_users(3, G1);
    for u in users.as_array().expect("users") {
        let id = u["id"].as_str().expect("id");
        put(&format!("Users/{id}/{id}.json"), u);
    }
    put(
        &format!("Groups/{G1}/{G1}.json"),
        &dynamic_group(G1, "EMS users", "user.department -eq \"Sales\"", true),
    );
    put(
        &format!("Groups/{G2}/{G2}.json"),
        &json!({"id": G2, "displayName": "Project team", "groupTypes": [],
            "securityEnabled": true, "assignedLicenses": []}),
    );
    let first = users[0]["id"].as_str().expect("id");
    put(
        &format!("Groups/{G2}/Members/{first}/{first}.json"),
        &json!({"@odata.type": "#microsoft.graph.user", "id": first, "displayName": "u0"}),
    );
    put(
        &format!("SubscribedSkus/{EMS}/{EMS}.json"),
        &skus()["value"][0],
    );
    put(
        "Organization/Organization.json",
        &json!({"id": "c0de", "countryLetterCode": "US"}),
    );
    let o = run(&[
        "eval",
        "--users",
        d.join("Users").to_str().expect("utf8"),
        "--count",
        "user.department -eq \"Sales\"",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"count\":3"));
    let (_, v) = recompute_json(&d);
    let team = v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["id"] == G2)
        .cloned()
        .expect("static group");
    assert_eq!(team["members"], 1, "{team}");
    assert_eq!(v["users"], 3, "{}", v["users"]);
}
