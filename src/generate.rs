//! Rules drawn from the grammar and the schema, for `dynrule fuzz` and the project's own
//! property tests: one generator, deterministic per seed.
//!
//! Three kinds ([`Mode`]):
//! - **valid**: every documented, current property of the object with operators and values of
//!   its type (strings with the documented escapes, `-in` lists, `-match` patterns, `null`),
//!   booleans, dates and `system.now` offsets, `-any`/`-all` over string collections with `_`
//!   and over `assignedPlans` with `assignedPlan`, directory extensions, `Direct Reports for`,
//!   `memberOf`, nested with `-and`, `-or`, `-not` and parentheses (depth ≤ 4). Each one checks
//!   clean (a test holds the generator to that).
//! - **invalid**: a valid rule broken so that the checker must refuse it (an unknown
//!   property, an operator its type does not take, an open parenthesis, a dangling `-and`, a
//!   list after `-eq`, a value missing).
//! - **mutate**: a rule changed the ways admins break them when they paste (typographic dashes
//!   and quotes, `\"` for a quote, a dropped parenthesis or hyphen, `-eq` with a list, an
//!   operator in another language, a misspelt property); the checker decides.
//!
//! Strategies are `proptest`'s, so a disagreement found by `fuzz diff` shrinks as a failing
//! property test does. [`syntax_tree`] draws syntax trees instead (any shape the parser builds,
//! values of every lexical kind), for the parser/printer round trip.

use crate::schema::{self, ObjectType, PropType, Status};
use crate::syntax::ast::{
    CmpOp, Compare, Expr, ExprKind, Op, Operand, OperandKind, Quantified, Quantifier, Sign,
    Value as AstValue, ValueKind,
};
use crate::syntax::print::{NO_SPAN, quote};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// What kind of rules to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Rules the checker accepts.
    Valid,
    /// Rules the checker refuses.
    Invalid,
    /// Rules changed as admins break them; either verdict.
    Mutate,
}

/// String values: plain, with spaces, punctuation, the escapes (`` ` `` before `"` and `` ` ``),
/// non-ASCII, and empty.
const WORDS: &[&str] = &[
    "Sales",
    "Human Resources",
    "Oslo",
    "EMS;E5_baseservices;",
    "O\"Brien",
    "back`tick",
    "Zürich",
    "İstanbul",
    "a.b@contoso.com",
    "SMTP:",
    "",
    "50%",
];

/// `-match` patterns the checker accepts (linear-time ones; see `pattern.rs`).
const PATTERNS: &[&str] = &[
    "^Sa",
    "es$",
    "^(Sales|Oslo)$",
    "a\\.b",
    "[0-9]{3}",
    "(?i)STRA",
];

/// GUIDs for ids, `Direct Reports for` and `memberOf`.
const GUIDS: &[&str] = &[
    "62e19b97-8b3d-4d4a-a106-4ce66896a863",
    "efb87545-963c-4e0d-99df-69c6916d9eb0",
    "0a1e5c2b-7d3f-4e6a-9b1c-2d3e4f5a6b70",
];

/// Date literals and `system.now` offsets.
const DATES: &[&str] = &[
    "2024-01-01T00:00:00Z",
    "2026-11-21T12:00:00Z",
    "2020-06-10T18:13:20+02:00",
];
const DURATIONS: &[&str] = &["P30D", "P1D", "PT12H", "P1Y"];

fn word() -> impl Strategy<Value = String> + Clone {
    proptest::sample::select(WORDS).prop_map(quote)
}

fn prefix(object: ObjectType) -> &'static str {
    match object {
        ObjectType::User => "user",
        ObjectType::Device => "device",
    }
}

/// A comparison on a single string `lhs` (`user.city`, `_`, `assignedPlan.service`).
fn string_test(lhs: String, values: &'static [&'static str]) -> BoxedStrategy<String> {
    let value = if values.is_empty() {
        word().boxed()
    } else {
        proptest::sample::select(values).prop_map(quote).boxed()
    };
    let l1 = lhs.clone();
    let l2 = lhs.clone();
    let l3 = lhs.clone();
    let ops = proptest::sample::select(
        &[
            "-eq",
            "-ne",
            "-startsWith",
            "-notStartsWith",
            "-endsWith",
            "-notEndsWith",
            "-contains",
            "-notContains",
        ][..],
    );
    prop_oneof![
        6 => (ops, value.clone()).prop_map(move |(op, v)| format!("{lhs} {op} {v}")),
        1 => proptest::sample::select(&["-eq null", "-ne null"][..]).prop_map(move |t| format!("{l1} {t}")),
        2 => (proptest::sample::select(&["-in", "-notIn"][..]), proptest::collection::vec(value, 1..4))
            .prop_map(move |(op, xs)| format!("{l2} {op} [{}]", xs.join(", "))),
        1 => (proptest::sample::select(&["-match", "-notMatch"][..]), proptest::sample::select(PATTERNS))
            .prop_map(move |(op, p)| format!("{l3} {op} {}", quote(p))),
    ]
    .boxed()
}

/// One clause on property `p` of `object` (`None` for properties only whole rules may use).
fn clause(object: ObjectType, p: &'static schema::Property) -> Option<BoxedStrategy<String>> {
    let lhs = format!("{}.{}", prefix(object), p.name);
    Some(match p.ty {
        PropType::String => string_test(lhs, p.values),
        PropType::Bool => {
            proptest::sample::select(&["-eq true", "-eq false", "-ne true", "-ne false"][..])
                .prop_map(move |t| format!("{lhs} {t}"))
                .boxed()
        }
        PropType::DateTime => {
            let l = lhs.clone();
            prop_oneof![
                (
                    proptest::sample::select(&["-eq", "-ne", "-ge", "-le"][..]),
                    proptest::sample::select(DATES)
                )
                    .prop_map(move |(op, d)| format!("{l} {op} {}", quote(d))),
                (
                    proptest::sample::select(&["-ge", "-le"][..]),
                    proptest::option::of((
                        proptest::sample::select(&["-minus", "-plus"][..]),
                        proptest::sample::select(DURATIONS)
                    ))
                )
                    .prop_map(move |(op, off)| match off {
                        Some((sign, d)) => format!("{lhs} {op} system.now {sign} {d}"),
                        None => format!("{lhs} {op} system.now"),
                    }),
            ]
            .boxed()
        }
        PropType::StringCollection => (
            proptest::sample::select(&["-any", "-all"][..]),
            string_test("_".into(), &[]),
        )
            .prop_map(move |(q, t)| format!("{lhs} {q} ({t})"))
            .boxed(),
        PropType::AssignedPlans => {
            let field = prop_oneof![
                proptest::sample::select(GUIDS)
                    .prop_map(|g| format!("assignedPlan.servicePlanId -eq {}", quote(g))),
                string_test(
                    "assignedPlan.service".into(),
                    &["exchange", "SharePoint", "MicrosoftOffice"]
                ),
                proptest::sample::select(&["Enabled", "Deleted", "Suspended", "Warning"][..])
                    .prop_map(|s| format!("assignedPlan.capabilityStatus -eq {}", quote(s))),
            ];
            (
                proptest::sample::select(&["-any", "-all"][..]),
                field.clone(),
                proptest::option::of(field),
            )
                .prop_map(move |(q, a, b)| match b {
                    Some(b) => format!("{lhs} {q} ({a} -and {b})"),
                    None => format!("{lhs} {q} ({a})"),
                })
                .boxed()
        }
        PropType::MemberOf => return None,
    })
}

/// One clause on any current property of `object`, or (users) a directory extension.
fn leaf(object: ObjectType) -> BoxedStrategy<String> {
    let mut clauses: Vec<BoxedStrategy<String>> = schema::PROPERTIES
        .iter()
        .filter(|p| p.object == object && !matches!(p.status, Status::Deprecated(_)))
        .filter_map(|p| clause(object, p))
        .collect();
    if object == ObjectType::User {
        // Directory extensions are user properties only.
        clauses.push(string_test(
            "user.extension_c272a57b722d4eb29bfe327874ae79cb_OfficeNumber".into(),
            &[],
        ));
    }
    proptest::strategy::Union::new(clauses).boxed()
}

/// Valid rules on `object` (see the module docs).
pub fn valid(object: ObjectType) -> BoxedStrategy<String> {
    let expr = leaf(object).prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                proptest::sample::select(&["-and", "-or"][..]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            inner.clone().prop_map(|a| format!("-not ({a})")),
        ]
    });
    let member_of =
        proptest::collection::vec(proptest::sample::select(GUIDS), 1..3).prop_map(move |ids| {
            let ids: Vec<String> = ids.iter().map(|i| quote(i)).collect();
            format!(
                "{}.memberOf -any (group.objectId -in [{}])",
                prefix(object),
                ids.join(", ")
            )
        });
    match object {
        ObjectType::User => prop_oneof![
            12 => expr,
            1 => proptest::sample::select(GUIDS).prop_map(|g| format!("Direct Reports for {}", quote(g))),
            1 => member_of,
        ]
        .boxed(),
        ObjectType::Device => prop_oneof![12 => expr, 1 => member_of].boxed(),
    }
}

/// Ways to break a valid rule so that the checker must refuse it.
const BREAKS: &[&str] = &[
    "unknown property",
    "operator its type does not take",
    "open parenthesis",
    "dangling -and",
    "list after -eq",
    "missing value",
];

/// Invalid rules on `object`: a valid one broken one of six ways (an unknown property, an
/// operator its type does not take, an open parenthesis, a dangling `-and`, a list after `-eq`,
/// a missing value). Returns
/// `(rule, how it was broken)`.
pub fn invalid(object: ObjectType) -> BoxedStrategy<(String, String)> {
    let p = prefix(object);
    (valid(object), proptest::sample::select(BREAKS))
        .prop_map(move |(rule, how)| {
            let broken = match how {
                "unknown property" => format!("({rule}) -and ({p}.departmentt -eq \"x\")"),
                "operator its type does not take" => {
                    format!("({rule}) -or ({p}.accountEnabled -contains \"t\")")
                }
                "open parenthesis" => format!("(({rule})"),
                "dangling -and" => format!("{rule} -and"),
                "list after -eq" => format!("({rule}) -and ({p}.displayName -eq [\"a\", \"b\"])"),
                _ => format!("({rule}) -and ({p}.displayName -eq)"),
            };
            (broken, how.to_string())
        })
        .boxed()
}

/// How admins break rules when they paste them: `(name, from, to)` replacements, the first
/// occurrence only.
const MUTATIONS: &[(&str, &str, &str)] = &[
    ("typographic dash", " -", " –"),
    ("typographic quotes", "\"", "\u{201c}"),
    ("backslash escape", "`\"", "\\\""),
    ("dropped parenthesis", ")", ""),
    ("dropped hyphen", " -", " "),
    ("-eq with a list", "-in", "-eq"),
    ("translated operator", "-contains", "-enthält"),
    ("misspelt property", "department", "deparment"),
    ("misspelt property", "displayName", "DisplayNmae"),
    ("word operator", "-eq", "equals"),
    ("doubled quote escape", "`\"", "\"\""),
];

/// Mutations of `rules` (or of valid rules on `object` when `rules` is empty): `(rule, what
/// was done)`. A mutation that does not apply to a rule leaves it as it is (`"none"`).
pub fn mutate(object: ObjectType, rules: Vec<String>) -> BoxedStrategy<(String, String)> {
    let base = if rules.is_empty() {
        valid(object)
    } else {
        proptest::sample::select(rules).boxed()
    };
    (base, proptest::sample::select(MUTATIONS))
        .prop_map(|(rule, (name, from, to))| match rule.find(from) {
            Some(at) => {
                let mut out = rule.clone();
                out.replace_range(at..at + from.len(), to);
                (out, name.to_string())
            }
            None => (rule, "none".to_string()),
        })
        .boxed()
}

/// A runner drawing values deterministically from `seed`.
pub fn runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    for (i, b) in seed.to_le_bytes().iter().enumerate() {
        if let Some(x) = bytes.get_mut(i) {
            *x = *b;
        }
    }
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// `count` values of `strategy`, deterministically from `seed`, each with its value tree (for
/// shrinking).
///
/// Errors: the strategy rejected too many draws (a generator bug; the message says which).
pub fn draw<T: std::fmt::Debug>(
    strategy: &BoxedStrategy<T>,
    count: usize,
    seed: u64,
) -> Result<Vec<Box<dyn ValueTree<Value = T>>>, String> {
    let mut runner = runner(seed);
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).map_err(|e| e.to_string()))
        .collect()
}

/// Shrinks `tree` while `still` holds for its value (proptest's simplify/complicate walk);
/// returns the smallest value found and how many candidates were tried.
pub fn shrink<T: Clone + std::fmt::Debug>(
    tree: &mut dyn ValueTree<Value = T>,
    mut still: impl FnMut(&T) -> bool,
    max_steps: usize,
) -> (T, usize) {
    let mut best = tree.current();
    let mut steps = 0;
    if !tree.simplify() {
        return (best, steps);
    }
    while steps < max_steps {
        steps += 1;
        let candidate = tree.current();
        if still(&candidate) {
            best = candidate;
            if !tree.simplify() {
                break;
            }
        } else if !tree.complicate() {
            break;
        }
    }
    (best, steps)
}

/// Reduces `rule` by its structure while `still` holds: the whole rule is replaced by one of
/// its parts (an operand of `-and`/`-or`, what `-not` or parentheses hold), again and again,
/// so a disagreement about one clause ends as that clause. Complements [`shrink`], whose
/// proptest trees cannot drop a branch of `-and`. Returns the smallest rule found.
pub fn reduce(rule: &str, mut still: impl FnMut(&str) -> bool) -> String {
    use crate::syntax::ast::ExprKind;
    use crate::syntax::print::print_expr;
    let mut best = rule.to_string();
    loop {
        let Some(ast) = crate::check(&best).ast else {
            return best;
        };
        let parts: Vec<String> = match &ast.body.kind {
            ExprKind::And(xs) | ExprKind::Or(xs) => xs.iter().map(print_expr).collect(),
            ExprKind::Not(x) | ExprKind::Paren(x) => vec![print_expr(x)],
            _ => Vec::new(),
        };
        match parts.into_iter().find(|p| still(p)) {
            Some(p) => best = p,
            None => return best,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax trees, for the parser/printer round trip.

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

fn scalar() -> impl Strategy<Value = AstValue> {
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
    .prop_map(|kind| AstValue {
        kind,
        span: NO_SPAN,
    })
}

fn value() -> impl Strategy<Value = AstValue> {
    prop_oneof![
        6 => scalar(),
        1 => prop::collection::vec(scalar(), 0..4).prop_map(|v| AstValue { kind: ValueKind::List(v), span: NO_SPAN }),
        1 => prop::option::of((prop_oneof![Just(Sign::Plus), Just(Sign::Minus)], prop_oneof![Just("P30D"), Just("p1d"), Just("PT12H")]))
            .prop_map(|o| AstValue { kind: ValueKind::Now(o.map(|(s, d)| (s, d.to_string()))), span: NO_SPAN }),
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

/// Syntax trees of every shape the parser builds, with values of every lexical kind (any
/// string, numbers, dates, GUIDs, bare words, lists, `system.now` offsets) on arbitrary paths:
/// the parser/printer round trip's generator (`tests/roundtrip.rs`, the `roundtrip` fuzz
/// target's sibling). Restricted to what the parser builds: no `Or` directly in `Or`, no `And` or `Or`
/// directly in `And` or `Not`.
pub fn syntax_tree() -> impl Strategy<Value = Expr> {
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
