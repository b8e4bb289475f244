//! Input-safety limits: deep nesting is an error, never a stack overflow; long rules are errors.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

use dynrule::syntax::parse::MAX_NESTING;

fn codes(rule: &str) -> Vec<&'static str> {
    dynrule::check(rule)
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect()
}

#[test]
fn one_hundred_thousand_parentheses_are_an_error() {
    let n = 100_000;
    let rule = format!(
        "{}user.department -eq \"x\"{}",
        "(".repeat(n),
        ")".repeat(n)
    );
    assert!(codes(&rule).contains(&"DR017"));
}

#[test]
fn one_hundred_thousand_nots_are_an_error() {
    let rule = format!("{}user.department -eq \"x\"", "-not ".repeat(100_000));
    assert!(codes(&rule).contains(&"DR017"));
}

#[test]
fn nesting_at_the_limit_is_fine() {
    let n = MAX_NESTING;
    let rule = format!(
        "{}user.department -eq \"x\"{}",
        "(".repeat(n),
        ")".repeat(n)
    );
    assert!(dynrule::check(&rule).is_valid());
    let rule = format!("({rule})");
    assert!(codes(&rule).contains(&"DR017"));
}

#[test]
fn long_rules_are_rejected_with_their_length() {
    let clause = "(user.department -eq \"Sales\")";
    let rule = vec![clause; 110].join(" -or ");
    assert!(rule.chars().count() > dynrule::MAX_RULE_CHARS);
    let checked = dynrule::check(&rule);
    assert!(checked.diagnostics.iter().any(
        |d| d.code.as_str() == "DR018" && d.message.contains(&rule.chars().count().to_string())
    ));
    let short = vec![clause; 90].join(" -or ");
    assert!(short.chars().count() <= dynrule::MAX_RULE_CHARS);
    assert!(dynrule::check(&short).is_valid());
}

#[test]
fn long_flat_chains_do_not_recurse() {
    let rule = vec!["user.city -eq \"a\""; 20_000].join(" -and ");
    let checked = dynrule::check(&rule);
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.code.as_str() == "DR018")
    );
}

#[test]
fn the_deepest_accepted_rule_checks_in_one_mebibyte_of_stack() {
    // Guards the recursion budget: rayon workers and test threads have 2 MiB stacks.
    let run = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let rule = format!(
                "{}user.department -eq \"x\"{}",
                "(-not ".repeat(MAX_NESTING / 2),
                ")".repeat(MAX_NESTING / 2)
            );
            let checked = dynrule::check(&rule);
            (checked.is_valid(), dynrule::format(&rule).is_ok())
        })
        .map(|h| h.join());
    assert!(matches!(run, Ok(Ok((true, true)))));
}
