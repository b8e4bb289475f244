//! `dynrule whatif` end to end on scenario tenants (`corpus/whatif/`) and the built-in sample:
//! exit codes, facts, and insta snapshots of the text and JSON reports.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use serde_json::Value;
use std::process::Output;

const TENANT: &str = "corpus/whatif/contoso";
const NOW: &str = "2026-11-01T00:00:00Z";

fn run(args: &[&str]) -> Output {
    common::dynrule(&[&["whatif"], args].concat())
}

fn text(args: &[&str]) -> (i32, String) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("timings: load"), "{err}");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

fn json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let o = run(&all);
    let mut v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    // Timings vary run to run.
    if let Some(m) = v.as_object_mut() {
        m.remove("timings");
    }
    (o.status.code().unwrap_or(-1), v)
}

const NARROW: &str = r#"user.department -eq "Sales" -and user.city -eq "Seattle""#;

#[test]
fn narrowed_rule_removes_users_who_lose_exchange() {
    let args = [
        "--tenant", TENANT, "--now", NOW, "--group", "Sales E3", "--rule", NARROW,
    ];
    let (code, v) = json(&args);
    assert_eq!(code, 0);
    let g = &v["groups"][0];
    assert_eq!(
        (g["before"].as_u64(), g["after"].as_u64()),
        (Some(5), Some(2))
    );
    assert_eq!(g["left"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["risks"]["dataLossUsers"], 3);
    assert_eq!(v["risks"]["dataPlansLost"]["EXCHANGE_S_ENTERPRISE"], 3);
    let lost: Vec<&Value> = v["users"].as_array().into_iter().flatten().collect();
    assert!(
        lost.iter()
            .all(|u| u["skusLost"] == serde_json::json!(["ENTERPRISEPACK"]))
    );
    assert!(
        lost.iter().all(|u| u["losesEveryLicense"] == false),
        "EMS stays"
    );
    // Through serde_json: with `arbitrary_precision`, insta cannot serialize a `Value`'s numbers.
    insta::assert_snapshot!(
        "narrowed_json",
        serde_json::to_string_pretty(&v).expect("json")
    );
    let (code, t) = text(&args);
    assert_eq!(code, 0);
    insta::assert_snapshot!("narrowed_text", t);
    // The pull-request comment: the verdict first, then the tables.
    let (code, md) = text(&[&args[..], &["--format", "markdown"]].concat());
    assert_eq!(code, 0);
    assert!(md.starts_with("### ❗") || md.starts_with("### ✅"), "{md}");
    insta::assert_snapshot!("narrowed_markdown", md);
    let (code, md) = text(&[&args[..], &["--format", "markdown", "--max-removals", "1"]].concat());
    assert_eq!(code, 3);
    assert!(
        md.starts_with("### ❌ dynrule what-if: 1 threshold crossed"),
        "{md}"
    );
    assert!(
        md.contains("- ❌ members leaving Sales E3: 3 (over --max-removals 1)"),
        "{md}"
    );
}

#[test]
fn widened_rule_runs_a_sku_out_of_seats() {
    let args = [
        "--tenant",
        TENANT,
        "--now",
        NOW,
        "--group",
        "E5 directors",
        "--rule",
        r#"user.jobTitle -in ["Director", "Engineering Manager", "Marketing Manager", "Sales Manager"]"#,
    ];
    let (code, v) = json(&args);
    assert_eq!(code, 0);
    let sku = v["skus"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["skuPartNumber"] == "ENTERPRISEPREMIUM"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(sku["assignable"], 4);
    assert_eq!(sku["neededAfter"], 6);
    assert_eq!(sku["shortfall"], 2);
    assert_eq!(sku["countViolationsAfter"], 2);
    assert_eq!(v["risks"]["newErrors"]["CountViolation"], 2);
    let (_, t) = text(&args);
    insta::assert_snapshot!("widened_text", t);
}

#[test]
fn a_change_that_only_moves_service_plans() {
    let args = [
        "--tenant",
        TENANT,
        "--now",
        NOW,
        "--changes",
        "corpus/whatif/disable-yammer-and-sway.json",
    ];
    let (code, v) = json(&args);
    assert_eq!(code, 0);
    let users = v["users"].as_array().cloned().unwrap_or_default();
    assert_eq!(users.len(), 5);
    for u in &users {
        assert_eq!(u["skusLost"], serde_json::json!([]));
        assert_eq!(u["skusGained"], serde_json::json!([]));
        assert_eq!(
            u["plansLost"],
            serde_json::json!(["SWAY", "YAMMER_ENTERPRISE"])
        );
    }
    assert_eq!(
        v["groups"][0]["licensesAfter"],
        serde_json::json!(["ENTERPRISEPACK"])
    );
    let (_, t) = text(&args);
    insta::assert_snapshot!("plans_only_text", t);
    // CSV: a header and one row per affected user.
    let mut csv_args = args.to_vec();
    csv_args.extend(["--format", "csv"]);
    let o = run(&csv_args);
    let csv = String::from_utf8_lossy(&o.stdout);
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.starts_with("id,userPrincipalName,groupsJoined"));
}

#[test]
fn test_group_run_explains_each_changed_member() {
    let args = [
        "--tenant",
        TENANT,
        "--now",
        NOW,
        "--group",
        "Sales E3",
        "--rule",
        NARROW,
        "--test-group",
        "Pilot testers",
    ];
    let (code, v) = json(&args);
    assert_eq!(code, 0);
    assert_eq!(v["testGroupMembers"], 4);
    let ex = v["explanations"].as_array().cloned().unwrap_or_default();
    let who: Vec<&str> = ex
        .iter()
        .filter_map(|e| e["userPrincipalName"].as_str())
        .collect();
    assert_eq!(who.len(), 2, "{who:?}");
    assert!(who.contains(&"diego.siciliani@contoso.com"));
    assert!(who.contains(&"henrietta.mueller@contoso.com"));
    // grady.archie is in Sales outside Seattle but not in the test group: unaffected.
    assert_eq!(v["groups"][0]["left"].as_array().map(Vec::len), Some(2));
    for e in &ex {
        assert_eq!(e["after"]["membershipRuleEvaluationResult"], false);
        assert_eq!(e["before"]["membershipRuleEvaluationResult"], true);
    }
    let (_, t) = text(&args);
    insta::assert_snapshot!("test_group_text", t);
}

#[test]
fn thresholds_fail_the_command() {
    let base = [
        "--tenant", TENANT, "--now", NOW, "--group", "Sales E3", "--rule", NARROW,
    ];
    let mut over = base.to_vec();
    over.extend(["--max-removals", "2"]);
    let o = run(&over);
    assert_eq!(o.status.code(), Some(3));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("✗ members leaving Sales E3: 3 (over --max-removals 2)"),
        "{out}"
    );
    let mut pct = base.to_vec();
    pct.extend(["--max-removals", "60%"]);
    assert_eq!(run(&pct).status.code(), Some(0), "3 of 5 is not over 60%");
    let mut data = base.to_vec();
    data.extend(["--max-data-loss", "0"]);
    assert_eq!(run(&data).status.code(), Some(3));
    // An invalid new rule: exit 1 with the diagnostics.
    let bad = run(&[
        "--tenant",
        TENANT,
        "--group",
        "Sales E3",
        "--rule",
        "user.department -eq",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    // Unknown group: exit 2.
    let unknown = run(&["--tenant", TENANT, "--group", "Nope", "--rule", NARROW]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no group with id or displayName"));
}

/// The README's first command, exactly.
#[test]
fn readme_first_command_on_the_sample_tenant() {
    let readme = std::fs::read_to_string("README.md").unwrap_or_default();
    let line = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -- whatif"))
        .unwrap_or_else(|| panic!("README has no whatif command"));
    let rule = line
        .split("--rule '")
        .nth(1)
        .and_then(|r| r.strip_suffix('\''))
        .unwrap_or_else(|| panic!("no --rule '…' in {line}"));
    assert!(line.contains("--group \"EMS users\""), "{line}");
    let (code, t) = text(&["--group", "EMS users", "--rule", rule]);
    assert_eq!(code, 0);
    assert!(t.contains("What-if on sample (3000 users"), "{t}");
    assert!(t.contains("EMS users"));
    insta::assert_snapshot!("sample_readme_text", t);
}

#[test]
fn pausing_a_group_changes_nothing_now() {
    let (code, v) = json(&[
        "--tenant", TENANT, "--now", NOW, "--group", "Sales E3", "--paused",
    ]);
    assert_eq!(code, 0);
    assert_eq!(v["users"], serde_json::json!([]));
    assert_eq!(v["groups"][0]["left"], serde_json::json!([]));
    // A licence change through --licenses: E3 swapped for E5 on the Sales group.
    let (code, v) = json(&[
        "--tenant",
        TENANT,
        "--now",
        NOW,
        "--group",
        "Sales E3",
        "--licenses",
        "ENTERPRISEPREMIUM",
    ]);
    assert_eq!(code, 0);
    let sku = v["skus"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["skuPartNumber"] == "ENTERPRISEPREMIUM"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(sku["neededAfter"], 8, "{sku}");
    assert_eq!(sku["shortfall"], 4);
}

/// A changes file as PowerShell writes it: keys in PascalCase, and one change as an object
/// (`ConvertTo-Json` unwraps a one-item array).
#[test]
fn changes_files_in_any_key_case_and_as_one_object() {
    let dir = std::env::temp_dir().join(format!("dynrule-changes-ps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let f = dir.join("change.json");
    std::fs::write(
        &f,
        "{\"Group\": \"Sales E3\", \"AssignedLicenses\": [{\"SkuId\": \"ENTERPRISEPACK\", \"DisabledPlans\": [\"YAMMER_ENTERPRISE\"]}], \"MembershipRuleProcessingState\": \"On\"}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let o = run(&["--tenant", TENANT, "--changes", f.to_str().unwrap_or("")]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_changes_are_located_errors() {
    let dir = std::env::temp_dir().join(format!("dynrule-changes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        (
            "[{\"group\": \"Nope\", \"membershipRule\": \"user.city -eq \\\"X\\\"\"}]",
            "change 1: no group with id or displayName `Nope`",
        ),
        ("[{\"group\": \"Sales E3\"}]", "change 1: changes nothing"),
        (
            "[{\"group\": \"Sales E3\", \"membershipRuleProcessingState\": \"Off\"}]",
            "must be On or Paused",
        ),
        (
            "[{\"group\": \"Sales E3\", \"assignedLicenses\": [{\"skuId\": \"NOT_A_SKU\"}]}]",
            "unknown SKU `NOT_A_SKU`",
        ),
        (
            "[{\"group\": \"Sales E3\", \"assignedLicenses\": [{\"skuId\": \"ENTERPRISEPACK\", \"disabledPlans\": [\"NOPE\"]}]}]",
            "unknown service plan `NOPE`",
        ),
        ("[\n{\"group\": \"Sales E3\",, }]", "line 2, column"),
        (
            "[{\"group\": \"Sales E3\", \"membershipRule\": \"user.city -eq \\\"X\\\"\"}, {\"group\": \"sales e3\", \"membershipRuleProcessingState\": \"Paused\"}]",
            "change 2: group \"sales e3\" is already changed by change 1",
        ),
        (
            "[{\"group\": \"Sales E3\", \"Group\": \"Other\", \"membershipRuleProcessingState\": \"Paused\"}]",
            "appears twice (keys match ignoring case)",
        ),
        (
            "[{\"group\": \"Sales E3\", \"membershipRules\": \"x\"}]",
            "unknown field `membershiprules`",
        ),
        ("42", "expected a JSON array of changes"),
        ("[]", "lists no change"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let f = dir.join(format!("c{i}.json"));
        std::fs::write(&f, text).unwrap_or_else(|e| panic!("{e}"));
        let o = run(&["--tenant", TENANT, "--changes", f.to_str().unwrap_or("")]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(want), "{text}: {err}");
    }
    let o = run(&[
        "--tenant",
        TENANT,
        "--group",
        "Sales E3",
        "--licenses",
        "ENTERPRISEPACK:NOPE",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--licenses: unknown service plan `NOPE`"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rule in a changes file may read columns no group reads: the projected load keeps them.
#[test]
fn a_changes_file_rule_reads_its_own_columns() {
    let dir = std::env::temp_dir().join(format!("dynrule-chrule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let f = dir.join("changes.json");
    let change = serde_json::json!([{"group": "Sales E3", "membershipRule": NARROW}]);
    std::fs::write(&f, change.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let (code, v) = json(&[
        "--tenant",
        TENANT,
        "--now",
        NOW,
        "--changes",
        f.to_str().unwrap_or(""),
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        v["groups"][0]["after"], 2,
        "city is read: two Seattle sales users stay"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes `changes` to a changes file and runs `whatif` on it as JSON.
fn changes_json(name: &str, changes: &str, extra: &[&str]) -> (i32, Value) {
    let dir = common::temp_dir("whatif", name);
    let path = dir.join("changes.json");
    std::fs::write(&path, changes).expect("write changes");
    let p = path.to_string_lossy().into_owned();
    let mut args = vec!["--tenant", TENANT, "--now", NOW, "--changes", &p];
    args.extend(extra);
    json(&args)
}

#[test]
fn a_created_group_starts_empty_and_its_members_join() {
    let (code, v) = changes_json(
        "create",
        r#"[{"group": "Seattle E3", "action": "create",
             "membershipRule": "user.city -eq \"Seattle\"",
             "assignedLicenses": [{"skuId": "ENTERPRISEPACK"}]}]"#,
        &[],
    );
    assert_eq!(code, 0, "{v}");
    let g = &v["groups"][0];
    assert_eq!(g["action"], "create");
    assert_eq!(g["displayName"], "Seattle E3");
    assert_eq!(g["id"], "");
    assert_eq!(g["before"], 0);
    assert!(g["after"].as_u64().unwrap() > 0, "{g}");
    assert_eq!(
        g["joined"].as_array().unwrap().len() as u64,
        g["after"].as_u64().unwrap()
    );
    assert_eq!(g["ruleAfter"], "user.city -eq \"Seattle\"");
    assert!(g.get("ruleBefore").is_none(), "{g}");
    assert_eq!(v["changes"][0]["action"], "create");
    // Seattle users outside Sales gain ENTERPRISEPACK; nobody loses anything.
    let users = v["users"].as_array().unwrap();
    assert!(!users.is_empty());
    assert!(
        users
            .iter()
            .all(|u| u["skusLost"].as_array().unwrap().is_empty())
    );
    assert!(
        users
            .iter()
            .any(|u| u["skusGained"] == serde_json::json!(["ENTERPRISEPACK"]))
    );
    // The created group is not mistaken for a group without exported members.
    assert_eq!(v["trust"]["trusted"], true, "{}", v["trust"]);
}

#[test]
fn a_deleted_group_loses_every_member_and_their_licences() {
    let (code, v) = changes_json(
        "delete",
        r#"[{"group": "Sales E3", "action": "delete"}]"#,
        &["--max-removals", "4"],
    );
    assert_eq!(code, 3, "five members leave, over the threshold: {v}");
    let g = &v["groups"][0];
    assert_eq!(g["action"], "delete");
    assert_eq!(
        (g["before"].as_u64(), g["after"].as_u64()),
        (Some(5), Some(0))
    );
    assert_eq!(g["left"].as_array().unwrap().len(), 5);
    assert_eq!(g["licensesAfter"], serde_json::json!([]));
    assert_eq!(v["risks"]["dataLossUsers"], 5);
    assert!(
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["skusLost"] == serde_json::json!(["ENTERPRISEPACK"]))
    );
}

#[test]
fn taking_every_licence_off_a_group_takes_it_from_its_members() {
    // Once a false all-clear: a group left with `assignedLicenses: []` kept its members'
    // licence states, as if the licences had not been exported.
    let (code, v) = changes_json(
        "no-licences",
        r#"[{"group": "Sales E3", "assignedLicenses": []}]"#,
        &[],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["groups"][0]["licensesAfter"], serde_json::json!([]));
    assert_eq!(v["users"].as_array().unwrap().len(), 5, "{v}");
    assert_eq!(v["risks"]["dataLossUsers"], 5);
}

#[test]
fn a_replaced_group_is_a_full_leave_and_rejoin() {
    let changes = r#"[{"group": "Sales E3", "action": "replace"}]"#;
    let (code, v) = changes_json("replace", changes, &[]);
    assert_eq!(code, 0, "{v}");
    let g = &v["groups"][0];
    assert_eq!(g["action"], "replace");
    assert_eq!(g["left"].as_array().unwrap().len(), 5);
    assert_eq!(g["joined"].as_array().unwrap().len(), 5);
    assert_eq!(g["unchanged"], 0);
    assert_eq!(
        v["risks"]["replacedGroups"],
        serde_json::json!(["Sales E3"])
    );
    // The same rule and licences after: each member leaves and joins, and holds the same
    // licences once the new group is processed.
    let users = v["users"].as_array().unwrap();
    assert_eq!(users.len(), 5);
    for u in users {
        assert_eq!(u["groupsLeft"], serde_json::json!(["Sales E3"]), "{u}");
        assert_eq!(u["groupsJoined"], serde_json::json!(["Sales E3"]), "{u}");
        assert_eq!(u["skusLost"], serde_json::json!([]), "{u}");
    }
    let (code, _) = changes_json("replace-threshold", changes, &["--max-removals", "2"]);
    assert_eq!(code, 3, "a replace counts every member as leaving");
    let dir = common::temp_dir("whatif", "replace-md");
    let path = dir.join("changes.json");
    std::fs::write(&path, changes).expect("write");
    let o = run(&[
        "--tenant",
        TENANT,
        "--now",
        NOW,
        "--changes",
        &path.to_string_lossy(),
        "--format",
        "markdown",
    ]);
    let md = String::from_utf8_lossy(&o.stdout);
    let first = md.lines().next().unwrap_or("");
    assert!(
        first.starts_with("### ❗") && first.contains("1 group replaced"),
        "{md}"
    );
    assert!(
        md.contains("| Sales E3 (replaced) | 5 | 5 | 5 | 5 | 0 |"),
        "{md}"
    );
}

#[test]
fn a_created_group_needs_a_rule_and_actions_are_checked() {
    for (name, changes, want) in [
        (
            "create-no-rule",
            r#"[{"group": "New", "action": "create", "assignedLicenses": [{"skuId": "EMS"}]}]"#,
            "a created group needs a membershipRule",
        ),
        (
            "bad-action",
            r#"[{"group": "Sales E3", "action": "rename"}]"#,
            "action must be update, create, delete or replace",
        ),
    ] {
        let dir = common::temp_dir("whatif", name);
        let path = dir.join("changes.json");
        std::fs::write(&path, changes).expect("write");
        let o = run(&["--tenant", TENANT, "--changes", &path.to_string_lossy()]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("change 1: ") && err.contains(want),
            "{name}: {err}"
        );
    }
}

/// The after side computed from the before side (the default) gives exactly the report of a
/// full computation (`--full`), on changes of every kind, with and without a test group, on
/// the what-if corpus and on the sample tenant (whose rules read `assignedPlans`).
#[test]
fn incremental_after_side_equals_the_full_computation() {
    let dir = common::temp_dir("whatif", "incremental");
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            TENANT,
            vec![
                "--group".into(),
                "Sales E3".into(),
                "--rule".into(),
                NARROW.into(),
            ],
        ),
        (
            TENANT,
            vec![
                "--group".into(),
                "E5 directors".into(),
                "--rule".into(),
                "user.accountEnabled -eq true".into(),
            ],
        ),
        (
            TENANT,
            vec![
                "--group".into(),
                "Sales E3".into(),
                "--licenses".into(),
                "ENTERPRISEPACK:YAMMER_ENTERPRISE+SWAY".into(),
            ],
        ),
        (
            TENANT,
            vec!["--group".into(), "Sales E3".into(), "--paused".into()],
        ),
        (
            TENANT,
            vec![
                "--group".into(),
                "Pilot testers".into(),
                "--rule".into(),
                "user.city -eq \"Seattle\"".into(),
            ],
        ),
        (
            TENANT,
            vec![
                "--group".into(),
                "Sales E3".into(),
                "--rule".into(),
                NARROW.into(),
                "--test-group".into(),
                "Pilot testers".into(),
            ],
        ),
        (
            "sample",
            vec![
                "--group".into(),
                "EMS users".into(),
                "--rule".into(),
                "user.extensionAttribute1 -contains \"EMS\" -and user.accountEnabled -eq true"
                    .into(),
            ],
        ),
        (
            "sample",
            vec![
                "--group".into(),
                "HR Department".into(),
                "--licenses".into(),
                "".into(),
            ],
        ),
    ];
    let mut all = cases;
    for (name, body) in [
        (
            "create",
            r#"[{"group": "Seattle E3", "action": "create", "membershipRule": "user.city -eq \"Seattle\"", "assignedLicenses": [{"skuId": "ENTERPRISEPACK"}]}]"#,
        ),
        ("delete", r#"[{"group": "Sales E3", "action": "delete"}]"#),
        (
            "replace",
            r#"[{"group": "Sales E3", "action": "replace", "membershipRule": "user.department -eq \"Sales\" -or user.department -eq \"Marketing\""}]"#,
        ),
    ] {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, body).expect("write");
        all.push((
            TENANT,
            vec!["--changes".into(), path.to_string_lossy().into_owned()],
        ));
    }
    for (tenant, args) in all {
        let mut base: Vec<&str> = vec!["--tenant", tenant, "--now", NOW];
        base.extend(args.iter().map(String::as_str));
        let (code, fast) = json(&base);
        base.push("--full");
        let (full_code, full) = json(&base);
        assert_eq!((code, &fast), (full_code, &full), "{tenant} {args:?}");
    }
}
