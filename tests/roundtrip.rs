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

use dynrule::syntax::ast::*;
use dynrule::syntax::print::{NO_SPAN, print};
use proptest::prelude::*;

fn e(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: NO_SPAN,
    }
}

fn path() -> impl Strategy<Value = Operand> {
    prop_oneof![
        Just(vec!["user", "department"]),
        Just(vec!["user", "accountEnabled"]),
        Just(vec!["User", "employeehiredate"]),
        Just(vec!["device", "deviceOSType"]),
        Just(vec![
            "user",
            "extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber"
        ]),
        Just(vec!["assignedPlan", "service"]),
        Just(vec!["group", "objectId"]),
        Just(vec!["department"]),
    ]
    .prop_map(|segs| Operand {
        kind: OperandKind::Path(segs.into_iter().map(String::from).collect()),
        span: NO_SPAN,
    })
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![4 => path(), 1 => Just(Operand { kind: OperandKind::Element, span: NO_SPAN })]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(ValueKind::Str),
        "[a-zA-Z0-9 '\"`\\\\@.:;-]{0,12}".prop_map(ValueKind::Str),
        Just(ValueKind::Null),
        any::<bool>().prop_map(ValueKind::Bool),
        "[0-9]{1,5}".prop_map(ValueKind::Number),
        prop_oneof![
            Just("2020-06-10T18:13:20Z"),
            Just("2018-01-01"),
            Just("2021-02-03T04:05:06+01:00")
        ]
        .prop_map(|s| ValueKind::DateTime(s.into())),
        Just(ValueKind::Guid(
            "62e19b97-8b3d-4d4a-a106-4ce66896a863".into()
        )),
        prop_oneof![Just("Sales"), Just("user.city"), Just("waar"), Just("P1D")]
            .prop_map(|s| ValueKind::Bare(s.into())),
    ]
    .prop_map(|kind| Value {
        kind,
        span: NO_SPAN,
    })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => scalar(),
        1 => prop::collection::vec(scalar(), 0..4).prop_map(|v| Value { kind: ValueKind::List(v), span: NO_SPAN }),
        1 => prop::option::of((prop_oneof![Just(Sign::Plus), Just(Sign::Minus)], prop_oneof![Just("P30D"), Just("p1d"), Just("PT12H")]))
            .prop_map(|o| Value { kind: ValueKind::Now(o.map(|(s, d)| (s, d.to_string()))), span: NO_SPAN }),
    ]
}

fn compare() -> impl Strategy<Value = Expr> {
    (
        operand(),
        prop::sample::select(CmpOp::ALL.to_vec()),
        value(),
    )
        .prop_map(|(lhs, (kind, _), rhs)| {
            e(ExprKind::Compare(Compare {
                lhs,
                op: Op {
                    kind,
                    span: NO_SPAN,
                },
                rhs,
            }))
        })
}

fn primary_leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        8 => compare(),
        1 => scalar().prop_map(|v| e(ExprKind::DirectReports(v))),
    ]
}

/// Trees restricted to the shapes the parser builds: no `Or` directly in `Or`, no `And` or `Or`
/// directly in `And` or `Not`.
fn expr() -> impl Strategy<Value = Expr> {
    primary_leaf().prop_recursive(5, 40, 4, |inner| {
        let primary = prop_oneof![
            3 => inner.clone().prop_map(|x| e(ExprKind::Paren(Box::new(x)))),
            1 => (path(), prop_oneof![Just(Quantifier::Any), Just(Quantifier::All)], prop_oneof![
                    inner.clone().prop_map(|x| e(ExprKind::Paren(Box::new(x)))),
                    compare(),
                ])
                .prop_map(|(collection, quantifier, p)| e(ExprKind::Quantified(Quantified { collection, quantifier, quantifier_span: NO_SPAN, predicate: Box::new(p) }))),
            2 => primary_leaf(),
        ];
        let unary = (0..3usize, primary).prop_map(|(n, mut x)| {
            for _ in 0..n {
                x = e(ExprKind::Not(Box::new(x)));
            }
            x
        });
        let and = prop::collection::vec(unary.clone(), 2..4).prop_map(|xs| e(ExprKind::And(xs)));
        let or_child = prop_oneof![unary.clone(), and.clone()];
        let or = prop::collection::vec(or_child, 2..4).prop_map(|xs| e(ExprKind::Or(xs)));
        prop_oneof![unary, and, or]
    })
}

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
