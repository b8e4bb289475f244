//! The rule generator (`dynrule::generate`, behind `dynrule fuzz gen`): valid rules check clean and
//! format to a fixed point, invalid ones are refused, and a seed gives the same rules.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

use dynrule::generate;
use dynrule::schema::ObjectType;

fn canonical(rule: &str) -> String {
    let checked = dynrule::check(rule);
    let ast = checked.ast.expect("parses");
    dynrule::syntax::print::print(&dynrule::syntax::print::canonicalize(&ast))
}

#[test]
fn valid_rules_check_clean_and_format_to_a_fixed_point() {
    for object in [ObjectType::User, ObjectType::Device] {
        let strategy = generate::valid(object);
        let mut bad = Vec::new();
        for tree in generate::draw(&strategy, 600, 7).unwrap() {
            let rule = tree.current();
            let checked = dynrule::check(&rule);
            if !checked.is_valid() {
                let codes: Vec<&str> = checked.errors().map(|d| d.code.as_str()).collect();
                bad.push(format!("{rule}  {codes:?}"));
                continue;
            }
            let once = canonical(&rule);
            assert!(dynrule::check(&once).is_valid(), "{once}");
            assert_eq!(canonical(&once), once, "fmt is not idempotent on {rule}");
        }
        assert!(bad.is_empty(), "{} invalid:\n{}", bad.len(), bad.join("\n"));
    }
}

#[test]
fn invalid_rules_are_refused() {
    for object in [ObjectType::User, ObjectType::Device] {
        for tree in generate::draw(&generate::invalid(object), 300, 3).unwrap() {
            let (rule, how) = tree.current();
            assert!(!dynrule::check(&rule).is_valid(), "{how}: {rule}");
        }
    }
}

#[test]
fn a_seed_gives_the_same_rules() {
    let a: Vec<String> = generate::draw(&generate::valid(ObjectType::User), 50, 42)
        .unwrap()
        .iter()
        .map(|t| t.current())
        .collect();
    let b: Vec<String> = generate::draw(&generate::valid(ObjectType::User), 50, 42)
        .unwrap()
        .iter()
        .map(|t| t.current())
        .collect();
    let c: Vec<String> = generate::draw(&generate::valid(ObjectType::User), 50, 43)
        .unwrap()
        .iter()
        .map(|t| t.current())
        .collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

mod common;

fn lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn fuzz_gen_writes_verdicts_deterministically() {
    let run = |args: &[&str]| common::dynrule(&[&["fuzz", "gen"], args].concat());
    let a = run(&["--count", "150", "--seed", "9"]);
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    let rules = lines(&a.stdout);
    assert_eq!(rules.len(), 150);
    assert!(
        rules
            .iter()
            .all(|r| r["valid"] == true && r["object"] == "user")
    );
    assert_eq!(run(&["--count", "150", "--seed", "9"]).stdout, a.stdout);
    let invalid = lines(&run(&["--count", "60", "--mode", "invalid", "--object", "device"]).stdout);
    assert!(
        invalid
            .iter()
            .all(|r| r["valid"] == false && !r["codes"].as_array().unwrap().is_empty())
    );
    let members = lines(
        &run(&[
            "--count",
            "20",
            "--tenant",
            "sample",
            "--now",
            "2026-11-21T12:00:00Z",
        ])
        .stdout,
    );
    assert!(members.iter().all(|r| r["members"].is_u64()), "{members:?}");
    assert!(members.iter().any(|r| r["members"].as_u64() > Some(0)));
}

/// A fake checker that wrongly rejects `-notIn`: every disagreement is found, and shrunk to a
/// one-clause rule that still uses `-notIn`.
#[test]
fn fuzz_diff_finds_and_shrinks_a_planted_disagreement() {
    let fake = r#"while IFS= read -r l; do case "$l" in *-notIn*) echo invalid;; *) echo valid;; esac; done"#;
    let o = common::dynrule(&[
        "fuzz",
        "diff",
        "--command",
        fake,
        "--count",
        "200",
        "--seed",
        "4",
        "--mode",
        "valid",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let found = lines(&o.stdout);
    assert!(!found.is_empty(), "{err}");
    for f in &found {
        let rule = f["rule"].as_str().unwrap();
        assert!(rule.contains("-notIn"), "{rule}");
        assert!(
            !rule.contains(" -and ") && !rule.contains(" -or ") && !rule.contains("-not ("),
            "not shrunk to one clause: {rule}"
        );
        assert_eq!(
            (f["dynrule"].as_str(), f["other"].as_str()),
            (Some("valid"), Some("invalid"))
        );
    }
    // A checker that agrees: nothing found, exit 0.
    let same = common::dynrule(&[
        "fuzz",
        "diff",
        "--command",
        "while IFS= read -r l; do echo '{\"valid\": true}'; done",
        "--count",
        "50",
        "--mode",
        "valid",
    ]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    // A command that answers nonsense is an error, not a finding.
    let bad = common::dynrule(&[
        "fuzz",
        "diff",
        "--command",
        "while read l; do echo maybe; done",
        "--count",
        "5",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("neither `valid`, `invalid`"));
}

/// With `--tenant`, an evaluator's members are compared too: one that finds nobody disagrees
/// on every rule that selects someone in the sample tenant, and each finding names members only
/// dynrule has.
#[test]
fn fuzz_diff_compares_an_evaluators_members() {
    let nobody = r#"while IFS= read -r l; do echo '{"valid": true, "members": []}'; done"#;
    let o = common::dynrule(&[
        "fuzz",
        "diff",
        "--command",
        nobody,
        "--count",
        "30",
        "--mode",
        "valid",
        "--tenant",
        "sample",
        "--now",
        "2026-11-21T12:00:00Z",
        "--max-shrink",
        "100",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let found = lines(&o.stdout);
    assert!(!found.is_empty(), "{err}");
    for f in &found {
        assert!(!f["onlyDynrule"].as_array().unwrap().is_empty(), "{f}");
        assert!(f["onlyOther"].as_array().unwrap().is_empty(), "{f}");
    }
}
