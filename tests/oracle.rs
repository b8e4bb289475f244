//! The reference oracle on hand-written Graph objects: semantics as data, and Graph's documented
//! `evaluateDynamicMembership` example reproduced exactly.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

use dynrule::oracle::{Context, evaluate, explain};
use serde_json::{Value, json};

fn now() -> jiff::Timestamp {
    "2026-11-21T12:00:00Z".parse().expect("timestamp")
}

fn run(rule: &str, object: &Value, cx: &Context) -> bool {
    let checked = dynrule::check(rule);
    let hir = checked
        .hir
        .unwrap_or_else(|| panic!("{rule}: {:?}", checked.diagnostics));
    evaluate(&hir, object, cx)
}

#[test]
fn graph_documented_example() {
    // Microsoft Graph beta, group: evaluateDynamicMembership, example 2 (response shape).
    let rule = r#"(user.displayName -startsWith "EndTestUser")"#;
    let hir = dynrule::check(rule).hir.expect("valid");
    let user =
        json!({"id": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee", "displayName": "EndTestUser001"});
    let got = serde_json::to_value(explain(&hir, rule, &user, &Context::at(now()))).expect("json");
    let want = json!({
        "membershipRule": "(user.displayName -startsWith \"EndTestUser\")",
        "membershipRuleEvaluationResult": true,
        "membershipRuleEvaluationDetails": {
            "expressionResult": true,
            "expression": "user.displayName -startsWith \"EndTestUser\"",
            "propertyToEvaluate": {"propertyName": "displayName", "propertyValue": "EndTestUser001"}
        }
    });
    assert_eq!(got, want);
}

#[test]
fn semantics_table() {
    let alice = json!({
        "id": "11111111-1111-1111-1111-111111111111",
        "Department": "SALES",
        "accountEnabled": true,
        "mobilePhone": "+47 123",
        "businessPhones": ["+47 555"],
        "onPremisesExtensionAttributes": {"extensionAttribute1": "EMS;E5_baseservices;"},
        "extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber": "123",
        "displayName": "David Vidal",
        "proxyAddresses": ["SMTP:alice@contoso.com", "smtp:a@fabrikam.com"],
        "employeeHireDate": "2026-11-01T00:00:00Z",
        "assignedPlans": [
            {"servicePlanId": "efb87545-963c-4e0d-99df-69c6916d9eb0", "service": "exchange", "capabilityStatus": "Enabled"},
            {"servicePlanId": "5dbe027f-2339-4123-9542-606e4d348a72", "service": "SharePoint", "capabilityStatus": "Deleted"}
        ],
        "manager": {"id": "22222222-2222-2222-2222-222222222222"},
        "memberOf": [{"id": "33333333-3333-3333-3333-333333333333"}]
    });
    let bare = json!({"id": "44444444-4444-4444-4444-444444444444", "accountEnabled": "True"});
    let cx = Context::at(now());
    let cases: &[(&str, &Value, bool)] = &[
        // case-insensitive keys and values (D2, D4)
        (r#"user.department -eq "sales""#, &alice, true),
        (r#"user.department -in ["Legal", "Sales"]"#, &alice, true),
        // null semantics (D1)
        (r#"user.department -eq "sales""#, &bare, false),
        (r#"user.department -ne "sales""#, &bare, true),
        (r#"user.department -notIn ["Sales"]"#, &bare, true),
        (r#"user.department -startsWith "s""#, &bare, false),
        (r#"user.department -notContains "s""#, &bare, true),
        (r#"user.department -match ".*""#, &bare, false),
        ("user.department -eq null", &bare, true),
        ("user.department -ne null", &alice, true),
        // Graph key mapping from the schema
        (r#"user.mobile -eq "+47 123""#, &alice, true),
        (r#"user.telephoneNumber -eq "+47 555""#, &alice, true),
        (r#"user.extensionAttribute1 -contains "EMS""#, &alice, true),
        (
            r#"user.extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber -eq "123""#,
            &alice,
            true,
        ),
        // booleans, including CSV text
        ("user.accountEnabled -eq true", &alice, true),
        ("user.accountEnabled -eq true", &bare, true),
        ("user.accountEnabled -ne false", &bare, true),
        // -match is unanchored and case-insensitive (docs: ".*vid" is not "ends with")
        (r#"user.displayName -match ".*vid""#, &alice, true),
        (r#"user.displayName -match "^vid""#, &alice, false),
        // collections
        (
            r#"user.proxyAddresses -any (_ -endsWith "@fabrikam.com")"#,
            &alice,
            true,
        ),
        (
            r#"user.proxyAddresses -all (_ -startsWith "smtp:")"#,
            &alice,
            true,
        ),
        (
            r#"user.proxyAddresses -all (_ -startsWith "x")"#,
            &bare,
            true,
        ),
        (
            r#"user.proxyAddresses -any (_ -startsWith "x")"#,
            &bare,
            false,
        ),
        (r#"user.proxyAddresses -contains "fabrikam""#, &alice, true),
        (
            r#"user.assignedPlans -any (assignedPlan.service -eq "Exchange" -and assignedPlan.capabilityStatus -eq "Enabled")"#,
            &alice,
            true,
        ),
        (
            r#"user.assignedPlans -any (assignedPlan.service -eq "SharePoint" -and assignedPlan.capabilityStatus -eq "Enabled")"#,
            &alice,
            false,
        ),
        (
            "user.assignedPlans -all (assignedPlan.servicePlanId -eq null)",
            &bare,
            true,
        ),
        // dates against a fixed now
        (
            "user.employeeHireDate -ge system.now -minus P30D",
            &alice,
            true,
        ),
        (
            "user.employeeHireDate -ge system.now -minus P7D",
            &alice,
            false,
        ),
        (
            "user.employeeHireDate -le 2026-11-01T00:00:00Z",
            &alice,
            true,
        ),
        ("user.employeeHireDate -ge system.now", &bare, false),
        // Direct Reports includes the manager (D12)
        (
            r#"Direct Reports for "22222222-2222-2222-2222-222222222222""#,
            &alice,
            true,
        ),
        (
            r#"Direct Reports for "11111111-1111-1111-1111-111111111111""#,
            &alice,
            true,
        ),
        (
            r#"Direct Reports for "22222222-2222-2222-2222-222222222222""#,
            &bare,
            false,
        ),
        // memberOf from the object's own $expand=memberOf
        (
            "user.memberOf -any (group.objectId -in ['33333333-3333-3333-3333-333333333333'])",
            &alice,
            true,
        ),
        (
            "user.memberOf -any (group.objectId -in ['33333333-3333-3333-3333-333333333333'])",
            &bare,
            false,
        ),
        // connectives
        (
            r#"user.department -eq "Sales" -and -not (user.displayName -startsWith "D")"#,
            &alice,
            false,
        ),
        (
            r#"user.department -eq "Legal" -or user.accountEnabled -eq true -and user.mobile -ne null"#,
            &alice,
            true,
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter(|(rule, obj, want)| run(rule, obj, &cx) != *want)
        .map(|(rule, obj, want)| format!("{rule} on {} should be {want}", obj["id"]))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn member_of_from_context() {
    let mut cx = Context::at(now());
    cx.member_of.insert(
        "44444444-4444-4444-4444-444444444444".into(),
        vec!["55555555-5555-5555-5555-555555555555".into()],
    );
    let user = json!({"id": "44444444-4444-4444-4444-444444444444"});
    assert!(run(
        "user.memberOf -any (group.objectId -in ['55555555-5555-5555-5555-555555555555'])",
        &user,
        &cx
    ));
}

#[test]
fn explain_tree_has_a_node_per_clause() {
    let rule = r#"(user.department -eq "Sales") -and (user.accountEnabled -eq true)"#;
    let hir = dynrule::check(rule).hir.expect("valid");
    let user = json!({"department": "Sales", "accountEnabled": false});
    let result = explain(&hir, rule, &user, &Context::at(now()));
    assert!(!result.membership_rule_evaluation_result);
    let children = &result
        .membership_rule_evaluation_details
        .expression_evaluation_details;
    let got: Vec<(&str, bool, Option<&str>)> = children
        .iter()
        .map(|c| {
            (
                c.expression.as_str(),
                c.expression_result,
                c.property_to_evaluate
                    .as_ref()
                    .and_then(|p| p.property_value.as_deref()),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("user.department -eq \"Sales\"", true, Some("Sales")),
            ("user.accountEnabled -eq true", false, Some("false"))
        ]
    );
}
