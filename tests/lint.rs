//! `dynrule lint` on `corpus/lint/`: rules in Terraform, Bicep, JSON and rule files, each
//! diagnostic at the right file, line and column through the file's escapes; SARIF 2.1.0
//! (insta snapshot), GitHub annotations, exit codes.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use serde_json::Value;

const DIR: &str = "corpus/lint";

fn lint(args: &[&str]) -> (i32, String, String) {
    let o = common::dynrule(&[&["lint"], args].concat());
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The text at (line, column) of `file`, `len` characters long.
fn at(file: &str, line: usize, column: usize, len: usize) -> String {
    let text = std::fs::read_to_string(file).expect("file");
    text.lines()
        .nth(line - 1)
        .expect("line")
        .chars()
        .skip(column - 1)
        .take(len)
        .collect()
}

#[test]
fn every_diagnostic_lands_on_its_source_text() {
    let (code, out, err) = lint(&[DIR, "--format", "json"]);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let found: Vec<(String, String, usize, usize)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap() as usize,
                f["column"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    // Each expected diagnostic and the source text its column points at.
    for (file, code, want) in [
        ("corpus/lint/main.tf", "DR004", "–and"),
        ("corpus/lint/main.tf", "DR011", "(device.accountEnabled"),
        (
            "corpus/lint/main.tf",
            "DR301",
            "user.jobTitle -match \\\"^Engineer",
        ),
        (
            "corpus/lint/main.tf",
            "DR303",
            "user.department -eq \"Marketing\"",
        ),
        ("corpus/lint/groups.bicep", "DR003", "“Sales”"),
        ("corpus/lint/staff.rules", "DR012", "(user.city"),
        ("corpus/lint/staff.rules", "DR016", "-not"),
    ] {
        let (_, _, line, column) = found
            .iter()
            .find(|(f, c, _, _)| f == file && c == code)
            .unwrap_or_else(|| panic!("no {code} in {file}: {found:?}"));
        assert_eq!(
            at(file, *line, *column, want.chars().count()),
            want,
            "{code} in {file}"
        );
    }
    assert_eq!(v["rules"], 12);
    assert_eq!(v["files"], 4);
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(skipped.iter().any(|r| r.contains("ARM expression")));
}

#[test]
fn sarif_for_code_scanning() {
    let (code, out, _) = lint(&[DIR, "--format", "sarif"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).expect("sarif is json");
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for r in run["results"].as_array().unwrap() {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
        assert!(r["partialFingerprints"]["dynruleRule/v1"].is_string());
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"],
            "%SRCROOT%"
        );
    }
    let dr004 = rules.iter().find(|r| r["id"] == "DR004").unwrap();
    assert_eq!(
        dr004["shortDescription"]["text"],
        "Error: Query compilation error."
    );
    insta::assert_snapshot!("corpus_lint_sarif", out);
}

#[test]
fn fingerprints_survive_lines_moving() {
    let dir = common::temp_dir("lint", "fingerprints");
    let tf = std::fs::read_to_string(format!("{DIR}/main.tf")).expect("main.tf");
    std::fs::write(dir.join("main.tf"), &tf).expect("write");
    let fingerprints = |d: &std::path::Path| -> Vec<String> {
        let o = common::dynrule(&[
            "lint",
            "--format",
            "json",
            &d.join("main.tf").to_string_lossy(),
        ]);
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fingerprint"].as_str().unwrap().to_string())
            .collect()
    };
    let before = fingerprints(&dir);
    std::fs::write(dir.join("main.tf"), format!("# a new comment\n\n{tf}")).expect("write");
    assert_eq!(fingerprints(&dir), before);
}

#[test]
fn github_annotations() {
    let (code, out, _) = lint(&["corpus/lint/main.tf", "--format", "github"]);
    assert_eq!(code, 1);
    assert!(
        out.lines().any(|l| l.starts_with(
            "::error file=corpus/lint/main.tf,line=11,col=46,endLine=11,endColumn=47,title=DR004 Error%3A Query compilation error.::typographic dash"
        )),
        "{out}"
    );
    assert!(
        out.contains("::warning file=corpus/lint/main.tf,line=23,col=1,"),
        "{out}"
    );
    assert!(
        out.contains("::notice file=corpus/lint/main.tf,line=34,col=15,"),
        "{out}"
    );
    // Multi-line messages are escaped onto one line.
    assert!(out.lines().all(|l| l.starts_with("::")), "{out}");
}

#[test]
fn exit_codes() {
    // Warnings only: 0, or 1 with --deny-warnings.
    let dir = common::temp_dir("lint", "warnings");
    let f = dir.join("w.rules");
    std::fs::write(&f, "user.jobTitle -match \"^Engineer.*\"\n").expect("write");
    let p = f.to_string_lossy().into_owned();
    assert_eq!(lint(&[&p]).0, 0);
    assert_eq!(lint(&[&p, "--deny-warnings"]).0, 1);
    // A file that does not parse: exit 2 with its line and column.
    let bad = dir.join("bad.tf");
    std::fs::write(
        &bad,
        "resource \"azuread_group\" \"x\" {\n  display_name = \n}\n",
    )
    .expect("write");
    let (code, out, _) = lint(&[&bad.to_string_lossy()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("bad.tf:") && out.contains("HCL does not parse"),
        "{out}"
    );
    let (code, out, _) = lint(&["no/such/file.tf"]);
    assert_eq!(code, 2);
    assert!(out.contains("no such file or folder"), "{out}");
}
