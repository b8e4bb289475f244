//! The `dynrule` binary end to end: exit codes, output shapes, formats.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use std::process::Output;

use common::dynrule_with_stdin as run;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_exit_codes() {
    let ok = run(
        &[
            "check",
            r#"(user.department -eq "Sales") -and (user.accountEnabled -eq true)"#,
        ],
        None,
    );
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(stdout(&ok).trim(), "valid user rule (0 warnings)");

    let bad = run(&["check", "user.departmnt -eq \"Sales\""], None);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("DR101") && err.contains("did you mean `user.department`?"),
        "{err}"
    );

    assert_eq!(run(&["check"], None).status.code(), Some(2));
    assert_eq!(
        run(&["check", "--file", "/nonexistent/rule.txt"], None)
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn check_json_shape() {
    let out = run(&["check", "--format", "json", "user.mail –ne null"], None);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    // Through serde_json: with `arbitrary_precision`, insta cannot serialize a `Value`'s numbers.
    insta::assert_snapshot!(
        "check_json_typographic_dash",
        serde_json::to_string_pretty(&v).expect("json")
    );
}

#[test]
fn check_jsonl_one_line_per_input_line() {
    let input = concat!(
        "user.department -eq \"Sales\"\n",
        "{\"rule\": \"device.deviceOwnership -eq \\\"Corporate\\\"\", \"note\": \"x\"}\n",
        "\"user.mail -ne null\"\n",
        "\n",
        "user.city -gt \"A\"\n",
    );
    let out = run(&["check", "--jsonl", "-"], Some(input));
    assert_eq!(out.status.code(), Some(1), "one rule is invalid");
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines
            .iter()
            .map(|l| l["valid"].as_bool())
            .collect::<Vec<_>>(),
        vec![Some(true), Some(true), Some(true), Some(false)]
    );
    assert_eq!(lines[1]["kind"], "device");
    assert_eq!(lines[1]["diagnostics"][0]["code"], "DR306");
    assert_eq!(
        lines[3]["diagnostics"][0]["span"],
        serde_json::json!([10, 13])
    );
}

#[test]
fn check_jsonl_reports_bad_lines_and_keeps_going() {
    let out = run(
        &["check", "--jsonl", "-"],
        Some("{\"rule\": 1}\n{broken\nuser.city -eq \"x\"\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[2]["valid"], true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("-:2: invalid JSON"), "{err}");
}

#[test]
fn fmt_prints_canonical_form_and_repairs_typography() {
    let out = run(
        &[
            "fmt",
            "(UsEr.proxyaddresses -AnY _ -StartsWith 'SMTP:admin') AND user.mail –ne $null",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).trim(),
        r#"(user.proxyAddresses -any (_ -startsWith "SMTP:admin")) -and user.mail -ne null"#
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DR004"), "fmt reports what it repaired: {err}");
    assert_eq!(run(&["fmt", "(user.a -eq"], None).status.code(), Some(1));
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("dynrule-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    let p = d.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

const USERS: &str = r#"{"id":"11111111-1111-1111-1111-111111111111","userPrincipalName":"Adele.Vance@contoso.com","displayName":"Adele Vance","department":"Sales","accountEnabled":true,"proxyAddresses":["SMTP:Adele.Vance@contoso.com"]}
{"id":"22222222-2222-2222-2222-222222222222","userPrincipalName":"bob@contoso.com","displayName":"Bob","department":"IT","accountEnabled":true}
{"id":"33333333-3333-3333-3333-333333333333","userPrincipalName":"carol@contoso.com","displayName":"Carol, \"C\"","department":"Sales","accountEnabled":false}
"#;

#[test]
fn gen_tenant_is_deterministic() {
    let d = std::env::temp_dir().join(format!("dynrule-gen-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("dir");
    let (a, b, c) = (d.join("a.jsonl"), d.join("b.jsonl"), d.join("c.jsonl"));
    for (p, seed) in [(&a, "9"), (&b, "9"), (&c, "10")] {
        let o = run(
            &[
                "gen-tenant",
                "--users",
                "300",
                "--seed",
                seed,
                "--out",
                p.to_str().expect("utf8"),
            ],
            None,
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let read = |p: &std::path::Path| std::fs::read(p).expect("read");
    assert_eq!(read(&a), read(&b));
    assert_ne!(read(&a), read(&c));
    assert_eq!(read(&a).iter().filter(|&&b| b == b'\n').count(), 300);
    // Every generated user loads and the suite's rules run over them.
    let o = run(
        &[
            "eval",
            "--users",
            a.to_str().expect("utf8"),
            "--rules",
            concat!(env!("CARGO_MANIFEST_DIR"), "/benches/suite.jsonl"),
            "--count",
            "--now",
            "2026-11-21T00:00:00Z",
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o).lines().count(), 36);
}

#[test]
fn eval_formats() {
    let users = temp_file("users.jsonl", USERS);
    let u = users.to_str().expect("utf8");
    let rule = r#"user.department -eq "sales""#;
    let ids = run(&["eval", "--users", u, rule], None);
    assert_eq!(ids.status.code(), Some(0));
    assert_eq!(
        stdout(&ids),
        "11111111-1111-1111-1111-111111111111\n33333333-3333-3333-3333-333333333333\n"
    );
    let count = run(&["eval", "--users", u, rule, "--count"], None);
    assert_eq!(
        stdout(&count).trim(),
        r#"{"count":2,"rule":"user.department -eq \"sales\""}"#
    );
    let csv = run(&["eval", "--users", u, rule, "--format", "csv"], None);
    insta::assert_snapshot!(stdout(&csv));
    let jsonl = run(&["eval", "--users", u, rule, "--format", "jsonl"], None);
    insta::assert_snapshot!(stdout(&jsonl));
    let timings = run(&["eval", "--users", u, rule, "--count", "--timings"], None);
    let err = String::from_utf8_lossy(&timings.stderr);
    assert!(
        err.contains("load") && err.contains("compile") && err.contains("evaluate"),
        "{err}"
    );
    // Linux says the peak resident memory (`VmHWM`); a process of this size holds some MB.
    if cfg!(target_os = "linux") {
        let mb = err
            .split(", peak resident ")
            .nth(1)
            .and_then(|r| r.trim().strip_suffix(" MB"))
            .and_then(|n| n.parse::<u64>().ok());
        assert!(mb.is_some_and(|mb| mb > 0), "{err}");
    }
}

#[test]
fn eval_many_rules_reports_invalid_ones_and_goes_on() {
    let users = temp_file("users2.jsonl", USERS);
    let rules = temp_file(
        "rules.txt",
        "# one rule a line\nuser.accountEnabled -eq true\n\nuser.department -eq\n{\"membershipRule\": \"user.displayName -contains \\\"o\\\"\"}\ndevice.deviceOSType -eq \"Windows\"\n",
    );
    let o = run(
        &[
            "eval",
            "--users",
            users.to_str().expect("utf8"),
            "--rules",
            rules.to_str().expect("utf8"),
            "--count",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rules.txt:4"), "{err}");
}

#[test]
fn eval_bad_users_file_is_located() {
    let users = temp_file(
        "bad.jsonl",
        &format!("{USERS}{{\"id\": 5, \"accountEnabled\": 3}}\n"),
    );
    let u = users.to_str().expect("utf8");
    let o = run(
        &["eval", "--users", u, "user.accountEnabled -eq true"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.jsonl:4:"), "{err}");
    let o = run(
        &[
            "eval",
            "--users",
            u,
            "user.accountEnabled -eq true",
            "--skip-invalid",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).lines().count(), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("skipped 1 invalid record"));
}

#[test]
fn explain_text_and_json() {
    let users = temp_file("users3.jsonl", USERS);
    let u = users.to_str().expect("utf8");
    let rule = r#"(user.department -eq "Sales") -and (user.accountEnabled -eq true) -and (user.proxyAddresses -any (_ -startsWith "smtp:"))"#;
    let text = run(
        &[
            "explain",
            "--users",
            u,
            "--user",
            "adele.vance@CONTOSO.com",
            rule,
        ],
        None,
    );
    assert_eq!(
        text.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let out = stdout(&text).replace(u, "<users>");
    insta::assert_snapshot!(out);
    let json = run(
        &[
            "explain",
            "--users",
            u,
            "--user",
            "33333333-3333-3333-3333-333333333333",
            rule,
            "--format",
            "json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("json");
    assert_eq!(v["membershipRuleEvaluationResult"], false);
    assert_eq!(v["membershipRule"], rule);
    assert!(v["membershipRuleEvaluationDetails"]["expressionEvaluationDetails"].is_array());
    let missing = run(&["explain", "--users", u, "--user", "nobody", rule], None);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn member_of_rules_read_a_groups_export() {
    let users = temp_file("users4.jsonl", USERS);
    // A Graph page of groups with `$expand=members`; the second group is dynamic (no members).
    let groups = temp_file(
        "groups.json",
        r##"{"value": [
  {"id": "aaaaaaaa-0000-0000-0000-000000000001", "displayName": "Sales static",
   "members": [{"@odata.type": "#microsoft.graph.user", "id": "11111111-1111-1111-1111-111111111111"},
               {"@odata.type": "#microsoft.graph.user", "id": "33333333-3333-3333-3333-333333333333"}]},
  {"id": "aaaaaaaa-0000-0000-0000-000000000002", "groupTypes": ["DynamicMembership"],
   "membershipRule": "user.department -eq \"IT\""}
]}"##,
    );
    let (u, g) = (
        users.to_str().expect("utf8"),
        groups.to_str().expect("utf8"),
    );
    let rule =
        r#"user.memberOf -any (group.objectId -in ["AAAAAAAA-0000-0000-0000-000000000001"])"#;
    let o = run(&["eval", "--users", u, "--groups", g, rule], None);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        stdout(&o),
        "11111111-1111-1111-1111-111111111111\n33333333-3333-3333-3333-333333333333\n"
    );
    // Without the groups export, users carry no memberOf here: nobody.
    let o = run(&["eval", "--users", u, rule], None);
    assert_eq!(stdout(&o), "");
    let e = run(
        &[
            "explain",
            "--users",
            u,
            "--groups",
            g,
            "--user",
            "carol@contoso.com",
            rule,
            "--format",
            "json",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&e)).expect("json");
    assert_eq!(v["membershipRuleEvaluationResult"], true);
    assert!(!String::from_utf8_lossy(&e.stderr).contains("disagrees"));
}

#[test]
fn recompute_writes_graph_shaped_outputs() {
    let out = std::env::temp_dir().join(format!("dynrule-rc-{}", std::process::id()));
    let o = run(
        &[
            "recompute",
            "--tenant",
            "corpus/licensing/kiosk-e1-vs-hr-e3-conflict",
            "--out",
            out.to_str().expect("utf8"),
            "--format",
            "json",
            "--now",
            "2026-11-01T00:00:00Z",
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("summary json");
    assert_eq!(
        summary["groups"][1]["auditSummary"],
        "Users successfully assigned licenses: 1, Users for whom license assignment failed: 1."
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("timings: load"));
    let written: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    assert_eq!(written["groups"], summary["groups"]);
    let licenses = std::fs::read_to_string(out.join("licenses.jsonl")).expect("licenses");
    let lines: Vec<serde_json::Value> = licenses
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(lines.len(), 2);
    let kiosk = lines
        .iter()
        .find(|l| l["userPrincipalName"] == "kiosk.hr@contoso.com")
        .expect("kiosk user");
    let states = kiosk["licenseAssignmentStates"].as_array().expect("states");
    assert_eq!(states.len(), 3);
    assert!(states.iter().all(|s| {
        [
            "assignedByGroup",
            "disabledPlans",
            "error",
            "skuId",
            "state",
        ]
        .iter()
        .all(|k| s.get(*k).is_some())
    }));
    let memberships = std::fs::read_to_string(out.join("memberships.jsonl")).expect("m");
    assert_eq!(memberships.lines().count(), 2);
    // Both users' computed states differ from the snapshot (the HR group is new to them).
    let diffs = std::fs::read_to_string(out.join("differences.jsonl")).expect("differences");
    let diffs: Vec<serde_json::Value> = diffs
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(diffs.len(), 2);
    assert_eq!(summary["snapshotAgreement"]["usersCompared"], 2);
    assert_eq!(summary["snapshotAgreement"]["usersMatching"], 0);
    let kiosk_diff = diffs
        .iter()
        .find(|d| d["userPrincipalName"] == "kiosk.hr@contoso.com")
        .expect("kiosk user differs");
    assert_eq!(kiosk_diff["exported"].as_array().map(Vec::len), Some(1));
    assert_eq!(kiosk_diff["computed"].as_array().map(Vec::len), Some(3));
    let _ = std::fs::remove_dir_all(&out);

    let bad = run(&["recompute", "--tenant", "corpus/licensing"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no users export"));
}

#[test]
fn recompute_evaluates_device_groups_over_the_devices_export() {
    let out = std::env::temp_dir().join(format!("dynrule-rc-dev-{}", std::process::id()));
    let o = run(
        &[
            "recompute",
            "--tenant",
            "corpus/whatif/contoso",
            "--out",
            out.to_str().expect("utf8"),
            "--members",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(summary["devices"], 3);
    let win = summary["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["displayName"] == "Windows devices"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(win["members"], 2);
    assert_eq!(win["processing"]["kind"], "evaluated");
    let m = std::fs::read_to_string(out.join("memberships.jsonl")).expect("memberships");
    let line: serde_json::Value = m
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["displayName"] == "Windows devices")
        .expect("device group line");
    assert_eq!(line["object"], "device");
    assert_eq!(line["count"], 2);
    // Every member only on request, in members.jsonl.
    assert!(line.get("members").is_none(), "{line}");
    let members = std::fs::read_to_string(out.join("members.jsonl")).expect("members");
    let win_id = line["id"].clone();
    let all: serde_json::Value = members
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["id"] == win_id)
        .expect("the device group in members.jsonl");
    assert_eq!(all["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        members.lines().count(),
        summary["groups"].as_array().map_or(0, Vec::len)
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// A rule that begins with `-` (`-not (…)`) is a rule, not a flag (issue: clap took it for
/// one and exited 2), in every command that takes a rule argument.
#[test]
fn rules_beginning_with_a_hyphen_are_rules() {
    let rule = r#"-not (user.department -eq "Sales")"#;
    let checked = run(&["check", rule], None);
    assert_eq!(checked.status.code(), Some(0), "{checked:?}");
    let formatted = run(&["fmt", rule], None);
    assert_eq!(formatted.status.code(), Some(0), "{formatted:?}");
    assert!(stdout(&formatted).starts_with("-not"), "{formatted:?}");
    let json = run(&["check", rule, "--format", "json"], None);
    assert!(stdout(&json).contains("\"valid\":true"), "{json:?}");
    let whatif = run(
        &[
            "whatif",
            "--group",
            "EMS users",
            "--rule",
            rule,
            "--format",
            "json",
        ],
        None,
    );
    assert_ne!(whatif.status.code(), Some(2), "{whatif:?}");
}

/// `check --deny-warnings` fails a valid rule with warnings (for CI gates).
#[test]
fn check_deny_warnings() {
    let rule = r#"user.displayName -match "^Da.*""#;
    assert_eq!(run(&["check", rule], None).status.code(), Some(0));
    assert_eq!(
        run(&["check", "--deny-warnings", rule], None).status.code(),
        Some(1)
    );
    let clean = r#"user.displayName -startsWith "Da""#;
    assert_eq!(
        run(&["check", "--deny-warnings", clean], None)
            .status
            .code(),
        Some(0)
    );
}

/// `check --jsonl` answers every input line, including one that is not UTF-8 (an error line,
/// exit 2), and goes on with the next.
#[test]
fn check_jsonl_invalid_utf8_line_gets_its_output_line() {
    let dir = std::env::temp_dir().join(format!("dynrule-jsonl-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let f = dir.join("rules.jsonl");
    std::fs::write(
        &f,
        b"user.city -eq \"a\"\r\nuser.city -eq \"\xff\"\n{\"rule\":\"user.x -eq 1\"}\n",
    )
    .expect("write");
    let out = run(&["check", "--jsonl", f.to_str().expect("utf8")], None);
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(lines[1]["line"], 2);
    assert!(
        lines[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid UTF-8"))
    );
    assert_eq!(lines[2]["valid"], false);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `recompute --out` stages every file and renames them into place with `summary.json` last;
/// a symlink planted at an output's name is refused (exit 2) and neither followed nor
/// replaced; a failed run leaves the last run's files, without its summary, and no temporary
/// files. `gen-tenant --snapshot` and `--out` write the same way.
#[test]
fn outputs_are_written_whole_and_never_through_symlinks() {
    let base = std::env::temp_dir().join(format!("dynrule-atomic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("dir");
    let out = base.join("out");
    let recompute = |out: &std::path::Path| {
        run(
            &[
                "recompute",
                "--tenant",
                "corpus/licensing/kiosk-e1-vs-hr-e3-conflict",
                "--out",
                out.to_str().expect("utf8"),
                "--now",
                "2026-11-01T00:00:00Z",
            ],
            None,
        )
    };
    assert_eq!(recompute(&out).status.code(), Some(0));
    let names = |d: &std::path::Path| {
        let mut n: Vec<String> = std::fs::read_dir(d)
            .expect("read")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&out),
        [
            "differences.jsonl",
            "licenses.jsonl",
            "memberships.jsonl",
            "summary.json"
        ]
    );
    let memberships = std::fs::read(out.join("memberships.jsonl")).expect("read");

    // A link planted where licenses.jsonl goes, pointing outside the folder.
    let outside = base.join("outside.txt");
    std::fs::write(&outside, "keep me").expect("write");
    std::fs::remove_file(out.join("licenses.jsonl")).expect("rm");
    std::os::unix::fs::symlink(&outside, out.join("licenses.jsonl")).expect("symlink");
    let o = recompute(&out);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("symbolic link"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&outside).expect("read"), "keep me");
    assert!(
        std::fs::symlink_metadata(out.join("licenses.jsonl"))
            .expect("link")
            .file_type()
            .is_symlink()
    );
    // The failed run removed the summary first and left the other files as they were.
    assert!(!out.join("summary.json").exists());
    assert_eq!(
        std::fs::read(out.join("memberships.jsonl")).expect("read"),
        memberships
    );
    assert!(
        names(&out).iter().all(|n| !n.ends_with(".tmp")),
        "{:?}",
        names(&out)
    );

    // gen-tenant: a snapshot folder and a single file, the same way.
    let snap = base.join("snap");
    std::fs::create_dir_all(&snap).expect("dir");
    std::os::unix::fs::symlink(&outside, snap.join("groups.json")).expect("symlink");
    let o = run(
        &[
            "gen-tenant",
            "--users",
            "20",
            "--snapshot",
            "--out",
            snap.to_str().expect("utf8"),
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&outside).expect("read"), "keep me");
    assert!(
        !snap.join("users.jsonl").exists(),
        "nothing renamed before every file is complete"
    );
    let file = base.join("users.jsonl");
    std::os::unix::fs::symlink(&outside, &file).expect("symlink");
    let o = run(
        &[
            "gen-tenant",
            "--users",
            "5",
            "--out",
            file.to_str().expect("utf8"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&outside).expect("read"), "keep me");
    let _ = std::fs::remove_dir_all(&base);
}

/// CSV output neutralises cells a spreadsheet would run as formulas (OWASP: a leading `'`).
#[test]
fn csv_output_neutralises_formulas() {
    let dir = std::env::temp_dir().join(format!("dynrule-csv-inj-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let users = dir.join("users.jsonl");
    std::fs::write(
        &users,
        "{\"id\":\"u1\",\"displayName\":\"=3+1\",\"userPrincipalName\":\"@x\",\"department\":\"A\"}\n",
    )
    .expect("write");
    let out = run(
        &[
            "eval",
            "--users",
            users.to_str().expect("utf8"),
            "--format",
            "csv",
            "user.department -eq \"A\"",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("u1,'@x,'=3+1"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `check --file -` and `fmt --file -` read the rule from stdin (PowerShell users pipe rules
/// rather than fight its quoting).
#[test]
fn check_and_fmt_read_stdin() {
    let out = run(
        &["check", "--file", "-"],
        Some("user.department -eq \"x\"\n"),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("valid user rule"));
    let out = run(
        &["fmt", "--file", "-"],
        Some("user.department   -eq  \"x\"\r\n"),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).trim(), "user.department -eq \"x\"");
}

/// `groups` lists a snapshot's groups (text and JSON); `completions` prints a script.
#[test]
fn groups_and_completions() {
    let out = run(
        &[
            "groups",
            "--tenant",
            "corpus/whatif/contoso",
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let sales = v
        .as_array()
        .expect("array")
        .iter()
        .find(|g| g["displayName"] == "Sales E3")
        .cloned()
        .expect("Sales E3");
    assert_eq!(sales["kind"], "dynamic");
    assert_eq!(sales["licenses"][0], "ENTERPRISEPACK");
    let out = run(&["groups"], None);
    assert!(stdout(&out).contains("Kiosk users"));
    let out = run(&["completions", "bash"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("_dynrule()"));
}

/// An unknown group or SKU name gets the closest one the snapshot has.
#[test]
fn unknown_names_get_a_did_you_mean() {
    let out = run(
        &[
            "whatif",
            "--group",
            "EMS user",
            "--rule",
            "user.city -eq \"x\"",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `EMS users`?"), "{err}");
    let out = run(
        &[
            "whatif",
            "--group",
            "EMS users",
            "--licenses",
            "ENTERPRISPACK",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `ENTERPRISEPACK`?"), "{err}");
}

/// A suggested rewrite is printed on one line, so it copies from the terminal whole.
#[test]
fn long_rewrites_are_not_wrapped() {
    let out = run(
        &[
            "check",
            "user.department -eq \"Sales\" -or user.department -eq \"Marketing\" -or user.department -eq \"Customer Support and Success\"",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines().any(|l| l.contains(
            "`user.department -in [\"Sales\", \"Marketing\", \"Customer Support and Success\"]`"
        )),
        "{err}"
    );
}

/// `explain` names a CSV user by its file line (CRLF files too), not its record number.
#[test]
fn explain_names_csv_lines() {
    let dir = std::env::temp_dir().join(format!("dynrule-explain-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let users = dir.join("users.csv");
    std::fs::write(&users, "id,department\r\nu1,Sales\r\nu2,HR\r\n").expect("write");
    let out = run(
        &[
            "explain",
            "--users",
            users.to_str().expect("utf8"),
            "--user",
            "u2",
            "user.department -eq \"HR\"",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("users.csv:3)"), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
