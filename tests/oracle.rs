//! The reference oracle on hand-written Graph objects: semantics as data, and Graph's documented
//! `evaluateDynamicMembership` example reproduced exactly.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use dynrule::oracle::{Context, evaluate, explain};
use serde_json::{Value, json};

use common::now;

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
