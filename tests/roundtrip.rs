//! Printer and parser agree: `parse(print(ast)) == ast` for random syntax trees of every shape
//! the parser can produce, and for every rule of the corpus; the canonical formatter is
//! idempotent; arbitrary text never panics any stage (including diagnostic rendering).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

use dynrule::generate::syntax_tree as expr;
use dynrule::syntax::ast::*;
use dynrule::syntax::print::print;
use proptest::prelude::*;

#[test]
fn print_then_parse_is_identity() {
    // proptest's recursive value trees are deep; run on a thread with room for them.
    let outcome = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
                cases: 2000,
                ..ProptestConfig::default()
            });
            runner
                .run(&expr(), |body| {
                    let rule = Rule { body };
                    let text = print(&rule);
                    let (parsed, diags) = dynrule::parse(&text);
                    prop_assert!(parsed.is_some(), "did not parse: {text}\n{diags:?}");
                    prop_assert_eq!(parsed, Some(rule), "text: {}", text);
                    Ok(())
                })
                .map_err(|e| e.to_string())
        })
        .map(|h| h.join());
    match outcome {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => panic!("{e}"),
        _ => panic!("property test thread failed"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in any::<String>()) {
        let checked = dynrule::check(&src);
        let _ = dynrule::diag::render_plain(&checked.diagnostics, "rule", &src);
        let _ = dynrule::format(&src);
    }

    #[test]
    fn rule_like_text_never_panics(parts in prop::collection::vec(prop_oneof![
        Just("user.department"), Just("device.deviceOSType"), Just("_"), Just("-eq"), Just("-any"), Just("-all"),
        Just("-and"), Just("-or"), Just("-not"), Just("("), Just(")"), Just("["), Just("]"), Just(","), Just("\"x\""),
        Just("'y'"), Just("null"), Just("$null"), Just("true"), Just("system.now"), Just("-plus"), Just("P1D"),
        Just("Direct"), Just("Reports"), Just("for"), Just("–eq"), Just("“a”"), Just("`"), Just("\\\""), Just("assignedPlan.service"),
        Just("group.objectId"), Just("user.memberOf"), Just("-in"), Just("-match"), Just("\"*x\""), Just("2020-01-01"),
    ], 0..24)) {
        let src = parts.join(" ");
        let checked = dynrule::check(&src);
        let _ = dynrule::diag::render_plain(&checked.diagnostics, "rule", &src);
        if let Ok(formatted) = dynrule::format(&src) {
            prop_assert_eq!(dynrule::format(&formatted).ok(), Some(formatted.clone()), "fmt not idempotent on {}", src);
        }
    }
}

#[test]
fn corpus_rules_round_trip_and_format_idempotently() {
    let text = std::fs::read_to_string("corpus/entra-rules.jsonl").expect("corpus");
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let rule = v["rule"].as_str().expect("rule");
        let (Some(ast), _) = dynrule::parse(rule) else {
            continue;
        };
        let printed = print(&ast);
        assert_eq!(
            dynrule::parse(&printed).0.as_ref(),
            Some(&ast),
            "{rule}\n{printed}"
        );
        let formatted = dynrule::format(rule).expect("parses");
        assert_eq!(
            dynrule::format(&formatted).as_ref(),
            Ok(&formatted),
            "{rule}"
        );
        let before = dynrule::check(rule);
        let after = dynrule::check(&formatted);
        // Formatting repairs lexical slips (typographic dashes and quotes) but never changes a
        // valid rule's meaning.
        if before.is_valid() {
            assert!(after.is_valid(), "{rule} → {formatted}");
            assert_eq!(before.hir.map(|h| h.object), after.hir.map(|h| h.object));
        }
    }
}
