//! The real-rule corpus (`corpus/entra-rules.jsonl`, harvested from Microsoft's docs and public
//! repositories) run through the front end. Every `valid` rule must check clean of errors, every
//! `invalid` rule must give an error, and every `unknown` rule must follow the decision recorded
//! for it in `grammar/corpus-decisions.jsonl` (verdict and diagnostic codes), whose decision id
//! must exist in `grammar/DECISIONS.md`. The rendered diagnostics of every rule are one insta
//! snapshot; the ASTs of a representative set are another.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

use dynrule::diag::render_plain;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

fn read_jsonl(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}:{}: {e}", n + 1)))
        .collect()
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing {k} in {v}"))
}

#[test]
fn corpus_entries_check_as_labelled() {
    let corpus = read_jsonl("corpus/entra-rules.jsonl");
    let decisions: HashMap<String, Value> = read_jsonl("grammar/corpus-decisions.jsonl")
        .into_iter()
        .map(|d| (field(&d, "rule").to_string(), d))
        .collect();
    let decisions_md =
        std::fs::read_to_string("grammar/DECISIONS.md").expect("grammar/DECISIONS.md");
    assert!(corpus.len() >= 241, "corpus shrank: {}", corpus.len());
    let mut failures = Vec::new();
    for (n, entry) in corpus.iter().enumerate() {
        let rule = field(entry, "rule");
        let checked = dynrule::check(rule);
        let codes: BTreeSet<String> = checked
            .diagnostics
            .iter()
            .map(|d| d.code.as_str().to_string())
            .collect();
        let line = n + 1;
        match field(entry, "expect") {
            "valid" if !checked.is_valid() => {
                failures.push(format!("line {line}: expected valid: {rule:?} {codes:?}"))
            }
            "invalid" if checked.is_valid() => {
                failures.push(format!("line {line}: expected invalid: {rule:?}"))
            }
            "unknown" => {
                let Some(d) = decisions.get(rule) else {
                    failures.push(format!(
                        "line {line}: unknown rule without a decision: {rule:?}"
                    ));
                    continue;
                };
                let want_valid = field(d, "verdict") == "valid";
                if checked.is_valid() != want_valid {
                    failures.push(format!(
                        "line {line}: decision says {}: {rule:?} {codes:?}",
                        field(d, "verdict")
                    ));
                }
                let want: BTreeSet<String> = d["codes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect();
                if want != codes {
                    failures.push(format!(
                        "line {line}: codes {codes:?}, decision file says {want:?}: {rule:?}"
                    ));
                }
                let id = field(d, "decision");
                if !decisions_md.contains(&format!("| {id} |")) {
                    failures.push(format!(
                        "line {line}: decision {id} is not in grammar/DECISIONS.md"
                    ));
                }
            }
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_diagnostic_span_is_inside_its_rule() {
    for entry in read_jsonl("corpus/entra-rules.jsonl") {
        let rule = field(&entry, "rule");
        for d in dynrule::check(rule).diagnostics {
            for span in std::iter::once(d.span).chain(d.labels.iter().map(|l| l.0)) {
                assert!(
                    span.start <= span.end && span.end <= rule.len(),
                    "{rule:?}: {d:?}"
                );
                assert!(
                    rule.is_char_boundary(span.start) && rule.is_char_boundary(span.end),
                    "{rule:?}: {d:?}"
                );
            }
        }
    }
}

#[test]
fn corpus_diagnostics_snapshot() {
    let mut out = String::new();
    for (n, entry) in read_jsonl("corpus/entra-rules.jsonl").iter().enumerate() {
        let rule = field(entry, "rule");
        let checked = dynrule::check(rule);
        out.push_str(&format!(
            "── line {} ({}, labelled {}) → {}\n{rule}\n",
            n + 1,
            field(entry, "kind"),
            field(entry, "expect"),
            if checked.is_valid() {
                "valid"
            } else {
                "invalid"
            }
        ));
        out.push_str(&render_plain(&checked.diagnostics, "rule", rule));
    }
    insta::assert_snapshot!("corpus_diagnostics", out);
}

#[test]
fn representative_asts() {
    let rules = [
        ("simple", r#"user.department -eq "Sales""#),
        (
            "precedence",
            r#"user.country -eq "US" -and user.department -eq "Marketing" -or user.department -eq "Sales""#,
        ),
        (
            "parens_not",
            r#"(user.department -eq "Sales") -and -not (user.jobTitle -startsWith "SDE")"#,
        ),
        ("in_list", r#"user.city -notin ["Lagos", 'Ibadan']"#),
        (
            "any_underscore",
            r#"(user.proxyAddresses -any (_ -startsWith "contoso"))"#,
        ),
        (
            "any_unparenthesised",
            r#"device.devicePhysicalIDs -any _ -eq "[OrderID]:179887111881""#,
        ),
        (
            "assigned_plans",
            r#"user.assignedPlans -any (assignedPlan.servicePlanId -eq "efb87545-963c-4e0d-99df-69c6916d9eb0" -and assignedPlan.capabilityStatus -eq "Enabled")"#,
        ),
        (
            "hire_date",
            r#"(user.employeeHireDate -le (system.now -minus P350D)) -and (user.employeeHireDate -ge 2020-06-10T18:13:20Z)"#,
        ),
        (
            "direct_reports",
            r#"Direct Reports for "62e19b97-8b3d-4d4a-a106-4ce66896a863""#,
        ),
        (
            "member_of",
            r#"user.memberof -any (group.objectId -in ['5f0c4a4e-6b1d-4a52-9d6e-2f1c0d8b7a11'])"#,
        ),
        (
            "bare_keywords",
            r#"device.extensionAttribute10 eq "0421" and not (device.isRooted -eq True)"#,
        ),
        ("escapes", r#"user.displayName -eq "O''Brien `"Jr`"""#),
    ];
    for (name, rule) in rules {
        let (ast, diags) = dynrule::parse(rule);
        assert!(diags.iter().all(|d| !d.is_error()), "{name}: {diags:?}");
        insta::assert_debug_snapshot!(format!("ast_{name}"), ast);
    }
}
