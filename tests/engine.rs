//! The columnar engine (loader → table → program → VM) against the reference oracle on
//! hand-written records: every rule's member set must be the oracle's.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use dynrule::load::table_from_values;
use dynrule::oracle::{self, Context};
use dynrule::program::{CompileOptions, Program};
use dynrule::schema::ObjectType;
use serde_json::{Value, json};

use common::now;

fn users() -> Vec<Value> {
    vec![
        json!({"id": "u1", "userPrincipalName": "Adele.Vance@contoso.com", "department": "Sales",
               "accountEnabled": true, "city": "Oslo", "usageLocation": "NO",
               "proxyAddresses": ["SMTP:Adele.Vance@contoso.com", "smtp:adele@contoso.onmicrosoft.com"],
               "onPremisesExtensionAttributes": {"extensionAttribute1": "EMS;E5_baseservices;"},
               "employeeHireDate": "2025-01-15T00:00:00Z",
               "manager": {"id": "62e19b97-8b3d-4d4a-a106-4ce66896a863"},
               "assignedPlans": [
                   {"servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0", "service": "exchange", "capabilityStatus": "Enabled", "assignedDateTime": "2024-01-01T00:00:00Z"},
                   {"servicePlanId": "5dbe027f-2339-4123-9542-606e4d348a72", "service": "SharePoint", "capabilityStatus": "Deleted"}
               ],
               "extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter": "CC-100"}),
        json!({"Id": "u2", "UserPrincipalName": "BOB@contoso.com", "Department": "SALES",
               "AccountEnabled": false, "City": null, "mobilePhone": "+47 1234",
               "proxyAddresses": [], "manager": "62E19B97-8B3D-4D4A-A106-4CE66896A863", "employeeHireDate": "2019-05-01T08:00:00Z"}),
        json!({"id": "62e19b97-8b3d-4d4a-a106-4ce66896a863", "userPrincipalName": "carol@contoso.com", "department": "Marketing",
               "accountEnabled": true, "userType": "Guest", "proxyAddresses": ["smtp:carol@fabrikam.com"],
               "assignedPlans": [{"servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0", "service": "exchange", "capabilityStatus": "Suspended"}]}),
        json!({"id": "u4", "userPrincipalName": "dan@contoso.com", "extensionAttribute1": "E3",
               "businessPhones": ["+1 555", "+1 556"], "memberOf": [{"id": "11111111-1111-1111-1111-11111111111A"}, "22222222-2222-2222-2222-222222222222"]}),
    ]
}

const RULES: &[&str] = &[
    r#"user.department -eq "sales""#,
    r#"user.department -ne "Sales""#,
    r#"user.department -eq null"#,
    r#"user.department -ne null"#,
    r#"user.accountEnabled -eq true"#,
    r#"user.accountEnabled -ne true"#,
    r#"user.accountEnabled -eq false"#,
    r#"user.city -in ["oslo", "Bergen"]"#,
    r#"user.city -notIn ["oslo"]"#,
    r#"user.userPrincipalName -startsWith "adele""#,
    r#"user.userPrincipalName -endsWith "@CONTOSO.com""#,
    r#"user.userPrincipalName -contains ".""#,
    r#"user.userPrincipalName -notContains "o""#,
    r#"user.userPrincipalName -match "^[a-c].*@contoso""#,
    r#"user.userPrincipalName -notMatch "(?<=a)d""#,
    r#"user.extensionAttribute1 -contains "EMS""#,
    r#"user.extensionAttribute1 -eq "e3""#,
    r#"user.mobile -eq "+47 1234""#,
    r#"user.telephoneNumber -eq "+1 555""#,
    r#"user.proxyAddresses -any (_ -startsWith "smtp:")"#,
    r#"user.proxyAddresses -all (_ -startsWith "smtp:")"#,
    r#"user.proxyAddresses -any (_ -contains "fabrikam")"#,
    r#"user.assignedPlans -any (assignedPlan.servicePlanId -eq "efb87545-963c-4e0d-99df-69c6916d9eb0" -and assignedPlan.capabilityStatus -eq "Enabled")"#,
    r#"user.assignedPlans -all (assignedPlan.capabilityStatus -eq "Enabled")"#,
    r#"user.assignedPlans -any (assignedPlan.service -eq "SharePoint")"#,
    r#"user.employeeHireDate -ge "2020-01-01T00:00:00Z""#,
    r#"user.employeeHireDate -le system.now -minus p365d"#,
    r#"user.employeeHireDate -eq null"#,
    r#"user.extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter -eq "cc-100""#,
    r#"user.extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter -ne "cc-100""#,
    r#"user.extension_00000000000000000000000000000000_missing -eq null"#,
    r#"Direct Reports for "62E19B97-8B3D-4D4A-A106-4CE66896A863""#,
    r#"user.memberOf -any (group.objectId -in ["11111111-1111-1111-1111-11111111111a"])"#,
    r#"(user.department -eq "Sales") -and (user.accountEnabled -eq true) -or (user.userType -eq "Guest")"#,
    r#"-not (user.department -in ["sales", "marketing"])"#,
    r#"user.department -in []"#,
    r#"user.objectId -ne null"#,
];

#[test]
fn vm_matches_oracle_on_handwritten_users() {
    let users = users();
    let table = table_from_values(&users, ObjectType::User).expect("table");
    let opts = CompileOptions { now: now() };
    let cx = Context::at(now());
    let mut programs = Vec::new();
    let mut hirs = Vec::new();
    for r in RULES {
        let checked = dynrule::check(r);
        let hir = checked
            .hir
            .clone()
            .unwrap_or_else(|| panic!("{r}: {:?}", checked.diagnostics));
        programs.push(Program::compile(&hir, &opts).expect(r));
        hirs.push(hir);
    }
    let got = dynrule::vm::evaluate(&programs, &table);
    let mut report = Vec::new();
    for ((rule, hir), members) in RULES.iter().zip(&hirs).zip(&got) {
        let want: Vec<&str> = users
            .iter()
            .filter(|u| oracle::evaluate(hir, u, &cx))
            .map(|u| {
                u.get("id")
                    .or_else(|| u.get("Id"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            })
            .collect();
        let have: Vec<&str> = members
            .ones_iter()
            .map(|r| table.id(r).unwrap_or(""))
            .collect();
        assert_eq!(have, want, "{rule}");
        report.push(format!("{rule}\n  => {}", have.join(", ")));
    }
    insta::assert_snapshot!(report.join("\n"));
}

/// A generated tenant large enough that high-cardinality columns (ids, UPNs, proxyAddresses)
/// switch to plain (non-deduplicated) storage: the VM must still agree with the oracle on every
/// user, for every rule of the bench suite that reads such a column or `assignedPlans` (the
/// others are covered by the tests above; the oracle is slow in debug builds).
#[test]
fn vm_matches_oracle_on_generated_tenant() {
    let users = dynrule::synth::tenant_values(17_000, 3);
    assert_eq!(users.len(), 17_000);
    let table = table_from_values(&users, ObjectType::User).expect("table");
    let suite =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/suite.jsonl"))
            .expect("suite");
    let rules: Vec<String> = suite
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("rule").and_then(Value::as_str).map(str::to_string))
        .filter(|r| {
            [
                "userPrincipalName",
                "mail",
                "proxyAddresses",
                "employeeId",
                "assignedPlans",
            ]
            .iter()
            .any(|c| r.contains(c))
        })
        .collect();
    assert_eq!(rules.len(), 14);
    let cx = Context::at(now());
    let hirs: Vec<_> = rules
        .iter()
        .map(|r| dynrule::check(r).hir.expect("suite rules are valid"))
        .collect();
    let programs: Vec<Program> = hirs
        .iter()
        .map(|h| Program::compile(h, &CompileOptions { now: now() }).expect("compiles"))
        .collect();
    let got = dynrule::vm::evaluate(&programs, &table);
    for ((rule, hir), members) in rules.iter().zip(&hirs).zip(&got) {
        let mut mismatches = 0;
        for (row, u) in users.iter().enumerate() {
            if members.get(row) != oracle::evaluate(hir, u, &cx) {
                mismatches += 1;
            }
        }
        assert_eq!(mismatches, 0, "{rule}");
    }
}
