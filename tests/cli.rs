//! The `dynrule` binary end to end: exit codes, output shapes, formats.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dynrule"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dynrule");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

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
    insta::assert_json_snapshot!("check_json_typographic_dash", v);
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
