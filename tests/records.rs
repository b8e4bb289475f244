//! One answer per record (issue #13, D62): each case is a record as an export or a hand edit
//! damaged it, and a rule. `eval` (the columnar engine over the loaded table) and `explain`
//! (the reference oracle over the raw record) must give the same answer: both the same
//! membership, or both refuse the record as malformed (exit 2) naming the same line.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use std::path::Path;

use common::dynrule as run;

/// What a command concluded about user `u1`.
#[derive(Debug, PartialEq)]
enum Answer {
    Member(bool),
    Malformed,
}

fn eval(users: &Path, rule: &str) -> Answer {
    let out = run(&[
        "eval",
        "--users",
        users.to_str().unwrap(),
        "--now",
        NOW,
        rule,
    ]);
    match out.status.code() {
        Some(0) => Answer::Member(String::from_utf8_lossy(&out.stdout).contains("u1")),
        Some(2) => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(":1:"), "the error names the line: {err}");
            Answer::Malformed
        }
        c => panic!("eval exit {c:?}: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

fn explain(users: &Path, rule: &str) -> Answer {
    let out = run(&[
        "explain",
        "--users",
        users.to_str().unwrap(),
        "--user",
        "u1",
        "--format",
        "json",
        "--now",
        NOW,
        rule,
    ]);
    match out.status.code() {
        Some(0) => {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            Answer::Member(v["membershipRuleEvaluationResult"] == true)
        }
        Some(2) => {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(":1:"), "the error names the line: {err}");
            Answer::Malformed
        }
        c => panic!(
            "explain exit {c:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

const NOW: &str = "2026-12-01T00:00:00Z";

/// (record, rule, the answer both must give).
const CASES: &[(&str, &str, Answer)] = &[
    // A null key plus a case variant, at the top level and inside the objects the load reads.
    (
        r#"{"id":"u1","department":null,"Department":"A"}"#,
        r#"user.department -eq "A""#,
        Answer::Malformed,
    ),
    (
        r#"{"id":"u1","onPremisesExtensionAttributes":{"extensionAttribute1":null,"ExtensionAttribute1":"A"}}"#,
        r#"user.extensionAttribute1 -eq "A""#,
        Answer::Malformed,
    ),
    (
        r#"{"id":"u1","mobilePhone":null,"MobilePhone":"1"}"#,
        r#"user.mobile -eq "1""#,
        Answer::Malformed,
    ),
    (
        r#"{"id":"u1","businessPhones":[],"BusinessPhones":["1"]}"#,
        r#"user.telephoneNumber -eq "1""#,
        Answer::Malformed,
    ),
    (
        r#"{"id":"u1","assignedPlans":[{"service":"exchange","Service":"SharePoint","capabilityStatus":"Enabled"}]}"#,
        r#"user.assignedPlans -any (assignedPlan.service -eq "SharePoint")"#,
        Answer::Malformed,
    ),
    (
        r#"{"id":"u1","memberOf":[{"id":"11111111-1111-1111-1111-111111111111","ID":"22222222-2222-2222-2222-222222222222"}]}"#,
        r#"user.memberOf -any (group.objectId -in ["22222222-2222-2222-2222-222222222222"])"#,
        Answer::Malformed,
    ),
    (
        r#"{"id":"u1","extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter":"A","Extension_B7D8E5FA0A1B4C0FB1E4C2F0A2B3C4D5_costCenter":null}"#,
        r#"user.extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter -eq "A""#,
        Answer::Malformed,
    ),
    // An exact duplicate.
    (
        r#"{"id":"u1","department":"A","department":null}"#,
        r#"user.department -eq "A""#,
        Answer::Malformed,
    ),
    // A repeated key no rule reads is not the rule's business.
    (
        r#"{"id":"u1","department":"A","city":"X","City":"Y"}"#,
        r#"user.department -eq "A""#,
        Answer::Member(true),
    ),
    // The Graph key and the rule's own name are not a repetition: the Graph key wins.
    (
        r#"{"id":"u1","mobilePhone":"1","mobile":"2"}"#,
        r#"user.mobile -eq "1""#,
        Answer::Member(true),
    ),
    (
        r#"{"id":"u1","mobilePhone":null,"mobile":"2"}"#,
        r#"user.mobile -eq "2""#,
        Answer::Member(true),
    ),
    // Blank booleans and dates are null to both engines.
    (
        r#"{"id":"u1","accountEnabled":""}"#,
        "user.accountEnabled -eq null",
        Answer::Member(true),
    ),
    (
        r#"{"id":"u1","accountEnabled":" "}"#,
        "user.accountEnabled -ne null",
        Answer::Member(false),
    ),
    (
        r#"{"id":"u1","employeeHireDate":" "}"#,
        "user.employeeHireDate -eq null",
        Answer::Member(true),
    ),
    // Numbers in string properties keep their JSON text.
    // Digits are kept exactly; an exponent is written as serde_json reads it (`1E2` → `1e+2`).
    (
        r#"{"id":"u1","employeeId":1E2}"#,
        r#"user.employeeId -eq "1e+2""#,
        Answer::Member(true),
    ),
    (
        r#"{"id":"u1","employeeId":123456789012345678901234}"#,
        r#"user.employeeId -eq "123456789012345678901234""#,
        Answer::Member(true),
    ),
    (
        r#"{"id":"u1","employeeId":10.50}"#,
        r#"user.employeeId -eq "10.50""#,
        Answer::Member(true),
    ),
    // Arrays or objects inside a string collection.
    (
        r#"{"id":"u1","proxyAddresses":[["smtp:x@contoso.com"]]}"#,
        r#"user.proxyAddresses -any (_ -eq null)"#,
        Answer::Malformed,
    ),
    (
        r#"{"id":"u1","proxyAddresses":[{"a":"smtp:x@contoso.com"}]}"#,
        r#"user.proxyAddresses -any (_ -contains "x")"#,
        Answer::Malformed,
    ),
    // Graph PowerShell (`Get-MgUser | ConvertTo-Json`): directory extensions under
    // `AdditionalProperties` are the record's own (D70); a key in both places is repeated.
    (
        r##"{"Id":"u1","AdditionalProperties":{"@odata.type":"#microsoft.graph.user","extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter":"A"}}"##,
        r#"user.extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter -eq "A""#,
        Answer::Member(true),
    ),
    (
        r#"{"id":"u1","Department":"B","AdditionalProperties":{"department":"A"}}"#,
        r#"user.department -eq "A""#,
        Answer::Malformed,
    ),
    // A lone boolean in a collection is one element.
    (
        r#"{"id":"u1","otherMails":true}"#,
        r#"user.otherMails -any (_ -eq "true")"#,
        Answer::Member(true),
    ),
];

#[test]
fn eval_and_explain_give_one_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for (i, (record, rule, want)) in CASES.iter().enumerate() {
        let users = dir.path().join(format!("case{i}.jsonl"));
        std::fs::write(&users, format!("{record}\n")).expect("write");
        let (e, x) = (eval(&users, rule), explain(&users, rule));
        if e != *want || x != *want {
            failures.push(format!(
                "{record} / {rule}: eval {e:?}, explain {x:?}, want {want:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A byte-order mark at the start of a line in mid-file (files joined with `cat`) is skipped,
/// by `eval` and by `explain`.
#[test]
fn byte_order_mark_mid_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let users = dir.path().join("users.jsonl");
    std::fs::write(
        &users,
        "\u{feff}{\"id\":\"u0\",\"department\":\"A\"}\n\u{feff}{\"id\":\"u1\",\"department\":\"A\"}\n",
    )
    .expect("write");
    assert_eq!(
        eval(&users, r#"user.department -eq "A""#),
        Answer::Member(true)
    );
    assert_eq!(
        explain(&users, r#"user.department -eq "A""#),
        Answer::Member(true)
    );
}
