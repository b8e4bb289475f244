//! The compiled rule: [`Program`], a postfix bytecode over leaf predicates, built once from a
//! checked [`hir::Rule`] and evaluated many times (`crate::vm`).
//!
//! Compiling does what needs no data: string literals are case-folded (decision D2), `-in` lists
//! become hash sets, `-match` patterns are compiled once (decision D9), `system.now ± duration`
//! is resolved against [`CompileOptions::now`], and constants fold (`-in []` is false, `-not`
//! of a constant, `-and`/`-or` with constant operands). Binding a program to a table
//! (`crate::vm`) decides each string predicate once per distinct value of the column and folds
//! again with what the table knows (a column no record has is all null).
//!
//! Semantics follow the reference oracle (`crate::oracle`), which the VM is tested against:
//! null fails every positive test and passes its negation (D1); `-any` is false and `-all` true
//! on an empty collection (Microsoft Learn, "Multi-value properties"); Direct Reports is the
//! manager's reports and the manager (D12).

use crate::hir::{self, Attr, Body, Collection, DateValue, ExprKind, Test};
use crate::pattern::Pattern;
use crate::schema::{ObjectType, PropType};
use std::collections::HashSet;
use std::fmt::Write as _;

/// What compiling needs besides the rule.
#[derive(Clone, Copy, Debug)]
pub struct CompileOptions {
    /// The instant `system.now` stands for.
    pub now: jiff::Timestamp,
}

/// One bytecode instruction. The program is postfix: leaves and constants push a truth value
/// per row, `Not` replaces the top, `And`/`Or` pop two and push one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instr {
    /// Push leaf `n` of [`Program::leaves`].
    Leaf(u32),
    /// Push a constant.
    Const(bool),
    /// Negate the top.
    Not,
    /// Pop two, push both.
    And,
    /// Pop two, push either.
    Or,
}

/// A string test on one value, with literals folded. `test` sees the value as loaded and
/// folded (`None` for null).
#[derive(Clone, Debug)]
pub enum StrPred {
    /// `-eq null`
    IsNull,
    /// `-eq`
    Eq(String),
    /// `-startsWith`
    StartsWith(String),
    /// `-endsWith`
    EndsWith(String),
    /// `-contains`
    Contains(String),
    /// `-match`: the pattern and its source.
    Match(Pattern, String),
    /// `-in`: the set, and its sorted members (for the leaf's key).
    In(HashSet<String>, Vec<String>),
}

impl StrPred {
    /// The positive result on a value `(original, text)`; null fails all but `IsNull`. `text`
    /// is the value folded (Unicode lower case), or, when it is ASCII, the value itself: ASCII
    /// text is compared ASCII-case-insensitively against the folded literal, which is the same
    /// as comparing its lower-case form, without making it.
    #[inline]
    pub fn test(&self, value: Option<(&str, &str)>) -> bool {
        let ascii = value.is_some_and(|(_, t)| t.is_ascii());
        self.test_flagged(value, ascii)
    }

    /// [`StrPred::test`] with `text.is_ascii()` already known (deciding several predicates on
    /// one value scans it once).
    #[inline]
    pub fn test_flagged(&self, value: Option<(&str, &str)>, ascii: bool) -> bool {
        let Some((original, text)) = value else {
            return matches!(self, StrPred::IsNull);
        };
        let (t, b) = (text.as_bytes(), str::len);
        match self {
            StrPred::IsNull => false,
            StrPred::Eq(x) if ascii => t.eq_ignore_ascii_case(x.as_bytes()),
            StrPred::Eq(x) => text == x,
            StrPred::StartsWith(x) if ascii => t
                .get(..b(x))
                .is_some_and(|p| p.eq_ignore_ascii_case(x.as_bytes())),
            StrPred::StartsWith(x) => text.starts_with(x.as_str()),
            StrPred::EndsWith(x) if ascii => t
                .len()
                .checked_sub(b(x))
                .and_then(|start| t.get(start..))
                .is_some_and(|p| p.eq_ignore_ascii_case(x.as_bytes())),
            StrPred::EndsWith(x) => text.ends_with(x.as_str()),
            StrPred::Contains(x) if ascii => ascii_contains(t, x.as_bytes()),
            StrPred::Contains(x) => text.contains(x.as_str()),
            StrPred::Match(p, _) => p.is_match(original),
            StrPred::In(set, _) if ascii && t.iter().any(u8::is_ascii_uppercase) => {
                set.contains(&text.to_ascii_lowercase())
            }
            StrPred::In(set, _) => set.contains(text),
        }
    }

    /// Appends a canonical text of the predicate (equal texts, equal predicates).
    pub fn key(&self, out: &mut String) {
        let _ = match self {
            StrPred::IsNull => write!(out, "null"),
            StrPred::Eq(x) => write!(out, "eq{x:?}"),
            StrPred::StartsWith(x) => write!(out, "sw{x:?}"),
            StrPred::EndsWith(x) => write!(out, "ew{x:?}"),
            StrPred::Contains(x) => write!(out, "ct{x:?}"),
            StrPred::Match(_, s) => write!(out, "re{s:?}"),
            StrPred::In(_, xs) => write!(out, "in{xs:?}"),
        };
    }
}

/// True when `needle` (lower case) occurs in `hay` ignoring ASCII case: candidates for the
/// first byte (either case) by `memchr2`, then a case-insensitive compare.
#[inline]
fn ascii_contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    let last_start = hay.len() - needle.len();
    let upper = first.to_ascii_uppercase();
    memchr::memchr2_iter(first, upper, hay.get(..=last_start).unwrap_or(&[])).any(|i| {
        hay.get(i + 1..i + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(rest))
    })
}

/// Where a string leaf reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// A schema string property (canonical name).
    Prop(&'static str),
    /// A directory extension, name lower-cased.
    Extension(String),
    /// The manager's object id.
    Manager,
}

/// Which string collection a quantifier ranges over.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListSource {
    /// A schema string-collection property.
    Prop(&'static str),
    /// Direct group memberships.
    MemberOf,
}

/// A date test, the right-hand side resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateOp {
    /// `-eq null`
    IsNull,
    /// `-eq`
    Eq(jiff::Timestamp),
    /// `-ge`
    Ge(jiff::Timestamp),
    /// `-le`
    Le(jiff::Timestamp),
}

impl DateOp {
    /// The positive result on a value (`None` for null).
    #[inline]
    pub fn test(self, v: Option<jiff::Timestamp>) -> bool {
        match (self, v) {
            (DateOp::IsNull, v) => v.is_none(),
            (_, None) => false,
            (DateOp::Eq(t), Some(v)) => v == t,
            (DateOp::Ge(t), Some(v)) => v >= t,
            (DateOp::Le(t), Some(v)) => v <= t,
        }
    }
}

/// What an element predicate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `_`, the string element.
    Element,
    /// `assignedPlan.<field>`: 0 `servicePlanId`, 1 `service`, 2 `capabilityStatus`.
    Plan(usize),
}

/// A leaf of an element predicate.
#[derive(Clone, Debug)]
pub struct SubLeaf {
    /// What it reads.
    pub field: Field,
    /// The test.
    pub pred: StrPred,
    /// `-ne`, `-notContains`, …
    pub negated: bool,
}

/// The predicate inside `-any`/`-all`: postfix code over [`SubLeaf`]s, evaluated once per
/// distinct element (or plan set) when the program is bound to a table.
#[derive(Clone, Debug)]
pub struct Sub {
    /// Postfix code (`Instr::Leaf(n)` is `leaves[n]`).
    pub code: Vec<Instr>,
    /// The leaves.
    pub leaves: Vec<SubLeaf>,
}

impl Sub {
    /// Evaluates the predicate on one element; `read(field)` gives the field's
    /// (original, folded) text.
    pub fn eval<'a>(&self, read: impl Fn(Field) -> Option<(&'a str, &'a str)>) -> bool {
        run_postfix(&self.code, |i| {
            self.leaves
                .get(i as usize)
                .is_some_and(|l| l.pred.test(read(l.field)) != l.negated)
        })
    }

    fn key(&self, out: &mut String) {
        let _ = write!(out, "{:?}[", self.code);
        for l in &self.leaves {
            let _ = write!(out, "{:?}{}", l.field, if l.negated { "!" } else { "" });
            l.pred.key(out);
            out.push(',');
        }
        out.push(']');
    }
}

/// Evaluates postfix code on one row, `leaf(n)` giving leaf `n`'s value. The stack lives in a
/// fixed array (element predicates are small); code deeper than 64 falls back to the heap.
#[inline]
pub fn run_postfix(code: &[Instr], mut leaf: impl FnMut(u32) -> bool) -> bool {
    if let [Instr::Leaf(n)] = code {
        return leaf(*n);
    }
    let mut fixed = [false; 64];
    let mut heap: Vec<bool> = Vec::new();
    let mut depth = 0usize;
    let push = |v: bool, depth: &mut usize, fixed: &mut [bool; 64], heap: &mut Vec<bool>| {
        match fixed.get_mut(*depth) {
            Some(slot) => *slot = v,
            None => heap.push(v),
        }
        *depth += 1;
    };
    let top = |depth: usize, fixed: &[bool; 64], heap: &[bool]| -> bool {
        match depth.checked_sub(1) {
            Some(i) if i < 64 => fixed.get(i).copied().unwrap_or(false),
            Some(i) => heap.get(i - 64).copied().unwrap_or(false),
            None => false,
        }
    };
    let pop = |depth: &mut usize, fixed: &[bool; 64], heap: &mut Vec<bool>| -> bool {
        let v = top(*depth, fixed, heap);
        if *depth > 64 {
            heap.pop();
        }
        *depth = depth.saturating_sub(1);
        v
    };
    for ins in code {
        match *ins {
            Instr::Leaf(n) => {
                let v = leaf(n);
                push(v, &mut depth, &mut fixed, &mut heap);
            }
            Instr::Const(b) => push(b, &mut depth, &mut fixed, &mut heap),
            Instr::Not => {
                let v = pop(&mut depth, &fixed, &mut heap);
                push(!v, &mut depth, &mut fixed, &mut heap);
            }
            Instr::And | Instr::Or => {
                let b = pop(&mut depth, &fixed, &mut heap);
                let a = pop(&mut depth, &fixed, &mut heap);
                let v = if *ins == Instr::And { a && b } else { a || b };
                push(v, &mut depth, &mut fixed, &mut heap);
            }
        }
    }
    top(depth, &fixed, &heap)
}

/// A leaf predicate of a [`Program`]. Negation is folded into each leaf.
#[derive(Clone, Debug)]
pub enum Leaf {
    /// A string test on a single-valued string column.
    Str {
        /// The column.
        source: Source,
        /// The test.
        pred: StrPred,
        /// Negated?
        negated: bool,
    },
    /// A boolean column: the result for null, `false` and `true` (so every test on a boolean
    /// property, `-eq true`, `-ne false`, `-eq null`, is one truth table).
    Bool {
        /// Canonical property name.
        prop: &'static str,
        /// `[null, false, true]` → result.
        table: [bool; 3],
    },
    /// A date column.
    Date {
        /// Canonical property name.
        prop: &'static str,
        /// The test.
        op: DateOp,
        /// Negated?
        negated: bool,
    },
    /// `-any`/`-all` over a string collection.
    Strings {
        /// The collection.
        source: ListSource,
        /// `-all` (else `-any`).
        all: bool,
        /// The element predicate.
        pred: Sub,
    },
    /// `-any`/`-all` over `assignedPlans`.
    Plans {
        /// `-all` (else `-any`).
        all: bool,
        /// The plan predicate.
        pred: Sub,
    },
}

impl Leaf {
    /// A canonical text of the leaf: equal keys are equal predicates (so many rules over one
    /// table decide a shared leaf once).
    pub fn key(&self) -> String {
        let mut s = String::new();
        match self {
            Leaf::Str {
                source,
                pred,
                negated,
            } => {
                let _ = write!(s, "s{source:?}{}", if *negated { "!" } else { "" });
                pred.key(&mut s);
            }
            Leaf::Bool { prop, table } => {
                let _ = write!(s, "b{prop}{table:?}");
            }
            Leaf::Date { prop, op, negated } => {
                let _ = write!(s, "d{prop}{op:?}{negated}");
            }
            Leaf::Strings { source, all, pred } => {
                let _ = write!(s, "l{source:?}{all}");
                pred.key(&mut s);
            }
            Leaf::Plans { all, pred } => {
                let _ = write!(s, "p{all}");
                pred.key(&mut s);
            }
        }
        s
    }
}

/// A compiled rule: immutable, `Send + Sync`, evaluated by `crate::vm` over any table of its
/// object type.
#[derive(Clone, Debug)]
pub struct Program {
    /// Users or devices.
    pub object: ObjectType,
    /// Postfix code; never empty (a constant rule is one `Const`).
    pub code: Vec<Instr>,
    /// The leaves `Instr::Leaf` refers to.
    pub leaves: Vec<Leaf>,
}

/// A compile failure: a rule shape the checker lets through but the engine cannot evaluate
/// (none is known; the message names the construct).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot compile: {0}")]
pub struct CompileError(pub String);

/// Intermediate tree, folded before emitting postfix.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Const(bool),
    Leaf(u32),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

impl Node {
    /// Folds constants and flattens nested `And`/`Or`.
    pub(crate) fn simplify(self) -> Node {
        match self {
            Node::Not(x) => match x.simplify() {
                Node::Const(b) => Node::Const(!b),
                Node::Not(y) => *y,
                y => Node::Not(Box::new(y)),
            },
            Node::And(xs) | Node::Or(xs) if xs.is_empty() => Node::Const(false),
            Node::And(xs) => fold_chain(xs, true),
            Node::Or(xs) => fold_chain(xs, false),
            n => n,
        }
    }

    pub(crate) fn emit(&self, out: &mut Vec<Instr>) {
        match self {
            Node::Const(b) => out.push(Instr::Const(*b)),
            Node::Leaf(n) => out.push(Instr::Leaf(*n)),
            Node::Not(x) => {
                x.emit(out);
                out.push(Instr::Not);
            }
            Node::And(xs) | Node::Or(xs) => {
                let op = if matches!(self, Node::And(_)) {
                    Instr::And
                } else {
                    Instr::Or
                };
                for (i, x) in xs.iter().enumerate() {
                    x.emit(out);
                    if i > 0 {
                        out.push(op);
                    }
                }
            }
        }
    }

    /// Rebuilds the tree from postfix code.
    pub(crate) fn decode(code: &[Instr]) -> Node {
        let mut stack: Vec<Node> = Vec::new();
        for ins in code {
            match *ins {
                Instr::Leaf(n) => stack.push(Node::Leaf(n)),
                Instr::Const(b) => stack.push(Node::Const(b)),
                Instr::Not => {
                    let x = stack.pop().unwrap_or(Node::Const(false));
                    stack.push(Node::Not(Box::new(x)));
                }
                Instr::And | Instr::Or => {
                    let b = stack.pop().unwrap_or(Node::Const(false));
                    let a = stack.pop().unwrap_or(Node::Const(false));
                    let and = *ins == Instr::And;
                    stack.push(match a {
                        Node::And(mut xs) if and => {
                            xs.push(b);
                            Node::And(xs)
                        }
                        Node::Or(mut xs) if !and => {
                            xs.push(b);
                            Node::Or(xs)
                        }
                        a if and => Node::And(vec![a, b]),
                        a => Node::Or(vec![a, b]),
                    });
                }
            }
        }
        stack.pop().unwrap_or(Node::Const(false))
    }

    /// Replaces leaves by constants where `known(n)` says.
    pub(crate) fn substitute(self, known: &impl Fn(u32) -> Option<bool>) -> Node {
        match self {
            Node::Leaf(n) => known(n).map_or(Node::Leaf(n), Node::Const),
            Node::Not(x) => Node::Not(Box::new(x.substitute(known))),
            Node::And(xs) => Node::And(xs.into_iter().map(|x| x.substitute(known)).collect()),
            Node::Or(xs) => Node::Or(xs.into_iter().map(|x| x.substitute(known)).collect()),
            n => n,
        }
    }
}

/// `and`: true for `-and` chains. A constant equal to the chain's absorbing value decides it;
/// the identity value is dropped.
fn fold_chain(xs: Vec<Node>, and: bool) -> Node {
    let mut out = Vec::with_capacity(xs.len());
    for x in xs {
        match x.simplify() {
            Node::Const(b) if b == and => {}
            Node::Const(b) => return Node::Const(b),
            Node::And(ys) if and => out.extend(ys),
            Node::Or(ys) if !and => out.extend(ys),
            y => out.push(y),
        }
    }
    match out.len() {
        0 => Node::Const(and),
        1 => out.pop().unwrap_or(Node::Const(and)),
        _ if and => Node::And(out),
        _ => Node::Or(out),
    }
}

impl Program {
    /// Compiles a checked rule.
    ///
    /// Errors: [`CompileError`] for a rule shape the engine cannot evaluate (none that
    /// `crate::check` accepts).
    pub fn compile(rule: &hir::Rule, opts: &CompileOptions) -> Result<Program, CompileError> {
        let mut c = Compiler {
            leaves: Vec::new(),
            opts,
        };
        let node = match &rule.body {
            Body::Expr(e) => c.expr(e)?,
            Body::DirectReports { manager_id, .. } => {
                let id = manager_id.to_lowercase();
                let a = c.push(Leaf::Str {
                    source: Source::Manager,
                    pred: StrPred::Eq(id.clone()),
                    negated: false,
                });
                let b = c.push(Leaf::Str {
                    source: Source::Prop("objectId"),
                    pred: StrPred::Eq(id),
                    negated: false,
                });
                Node::Or(vec![a, b])
            }
            Body::MemberOf { group_ids, .. } => {
                let folded: Vec<String> = group_ids.iter().map(|g| g.to_lowercase()).collect();
                c.push(Leaf::Strings {
                    source: ListSource::MemberOf,
                    all: false,
                    pred: Sub {
                        code: vec![Instr::Leaf(0)],
                        leaves: vec![SubLeaf {
                            field: Field::Element,
                            pred: in_pred(folded),
                            negated: false,
                        }],
                    },
                })
            }
        };
        let mut code = Vec::new();
        node.simplify().emit(&mut code);
        Ok(Program {
            object: rule.object,
            code,
            leaves: c.leaves,
        })
    }

    /// The `-match` patterns this program tests, with their sources, in leaf order (a pattern
    /// inside `-any`/`-all` included).
    pub fn patterns(&self) -> Vec<(&str, &Pattern)> {
        let preds = self.leaves.iter().flat_map(|leaf| match leaf {
            Leaf::Str { pred, .. } => vec![pred],
            Leaf::Strings { pred, .. } | Leaf::Plans { pred, .. } => {
                pred.leaves.iter().map(|l| &l.pred).collect()
            }
            Leaf::Bool { .. } | Leaf::Date { .. } => Vec::new(),
        });
        preds
            .filter_map(|pred| match pred {
                StrPred::Match(p, src) => Some((src.as_str(), p)),
                _ => None,
            })
            .collect()
    }

    /// Adds the columns this program reads to `p` (see [`crate::table::Projection`]).
    pub fn add_reads(&self, p: &mut crate::table::Projection) {
        use crate::table::ColumnKey;
        for leaf in &self.leaves {
            match leaf {
                Leaf::Str { source, .. } => match source {
                    Source::Prop(name) => {
                        p.columns.insert(ColumnKey::Prop(name));
                    }
                    Source::Extension(name) => {
                        p.extensions.insert(name.to_ascii_lowercase());
                    }
                    Source::Manager => {
                        p.columns.insert(ColumnKey::Manager);
                    }
                },
                Leaf::Bool { prop, .. } | Leaf::Date { prop, .. } => {
                    p.columns.insert(ColumnKey::Prop(prop));
                }
                Leaf::Strings { source, .. } => {
                    p.columns.insert(match source {
                        ListSource::Prop(name) => ColumnKey::Prop(name),
                        ListSource::MemberOf => ColumnKey::MemberOf,
                    });
                }
                Leaf::Plans { .. } => {
                    p.columns.insert(ColumnKey::Prop("assignedPlans"));
                }
            }
        }
    }

    /// Compiles rule text: checks it and compiles the HIR. Errors are the checker's
    /// diagnostics (rendered by the caller), or a [`CompileError`] as one diagnostic-less
    /// message.
    pub fn from_text(src: &str, opts: &CompileOptions) -> Result<Program, String> {
        let checked = crate::check_rule(src, false);
        match (&checked.hir, checked.is_valid()) {
            (Some(hir), true) => Program::compile(hir, opts).map_err(|e| e.to_string()),
            _ => Err(checked
                .errors()
                .map(|d| format!("{}: {}", d.code.as_str(), d.message))
                .collect::<Vec<_>>()
                .join("; ")),
        }
    }
}

fn in_pred(folded: Vec<String>) -> StrPred {
    let mut sorted = folded.clone();
    sorted.sort();
    sorted.dedup();
    StrPred::In(folded.into_iter().collect(), sorted)
}

struct Compiler<'o> {
    leaves: Vec<Leaf>,
    opts: &'o CompileOptions,
}

fn str_pred(test: &Test) -> Result<Option<StrPred>, CompileError> {
    Ok(Some(match test {
        Test::IsNull => StrPred::IsNull,
        Test::Eq(x) => StrPred::Eq(x.to_lowercase()),
        Test::StartsWith(x) => StrPred::StartsWith(x.to_lowercase()),
        Test::EndsWith(x) => StrPred::EndsWith(x.to_lowercase()),
        Test::Contains(x) => StrPred::Contains(x.to_lowercase()),
        Test::Match(p) => match Pattern::new(p) {
            Ok(pat) => StrPred::Match(pat, p.clone()),
            // The checker rejects bad patterns; one that still fails never matches.
            Err(_) => return Ok(None),
        },
        Test::In(xs) if xs.is_empty() => return Ok(None),
        Test::In(xs) => in_pred(xs.iter().map(|x| x.to_lowercase()).collect()),
        Test::Bool(_) | Test::DateEq(_) | Test::DateGe(_) | Test::DateLe(_) => {
            return Err(CompileError(format!("{test:?} on a string")));
        }
    }))
}

impl Compiler<'_> {
    fn push(&mut self, leaf: Leaf) -> Node {
        self.leaves.push(leaf);
        Node::Leaf(self.leaves.len() as u32 - 1)
    }

    fn expr(&mut self, e: &hir::Expr) -> Result<Node, CompileError> {
        Ok(match &e.kind {
            ExprKind::And(xs) => {
                Node::And(xs.iter().map(|x| self.expr(x)).collect::<Result<_, _>>()?)
            }
            ExprKind::Or(xs) => {
                Node::Or(xs.iter().map(|x| self.expr(x)).collect::<Result<_, _>>()?)
            }
            ExprKind::Not(x) => Node::Not(Box::new(self.expr(x)?)),
            ExprKind::Cmp(c) => self.cmp(c)?,
            ExprKind::Any(coll, pred) | ExprKind::All(coll, pred) => {
                let all = matches!(e.kind, ExprKind::All(..));
                let sub = self.sub(pred)?;
                match coll {
                    Collection::Strings(p) => self.push(Leaf::Strings {
                        source: ListSource::Prop(p.name),
                        all,
                        pred: sub,
                    }),
                    Collection::AssignedPlans => self.push(Leaf::Plans { all, pred: sub }),
                }
            }
        })
    }

    fn cmp(&mut self, c: &hir::Cmp) -> Result<Node, CompileError> {
        let prop = match &c.attr {
            Attr::Prop(p) => Some(*p),
            _ => None,
        };
        let ty = prop.map_or(PropType::String, |p| p.ty);
        match (ty, &c.test) {
            (PropType::Bool, test) => {
                // The oracle reads a boolean as its text "true"/"false".
                let on = |v: Option<&str>| -> Result<bool, CompileError> {
                    let positive = match test {
                        Test::Bool(b) => v.is_some_and(|v| v == if *b { "true" } else { "false" }),
                        t => str_pred(t)?.is_some_and(|p| p.test(v.map(|v| (v, v)))),
                    };
                    Ok(positive != c.negated)
                };
                let table = [on(None)?, on(Some("false"))?, on(Some("true"))?];
                Ok(self.push(Leaf::Bool {
                    prop: prop.map_or("", |p| p.name),
                    table,
                }))
            }
            (_, Test::Bool(_)) => Ok(Node::Const(c.negated)),
            (PropType::DateTime, test) => {
                let op = match test {
                    Test::IsNull => Some(DateOp::IsNull),
                    Test::DateEq(d) => self.date(d).map(DateOp::Eq),
                    Test::DateGe(d) => self.date(d).map(DateOp::Ge),
                    Test::DateLe(d) => self.date(d).map(DateOp::Le),
                    t => return Err(CompileError(format!("{t:?} on a date"))),
                };
                Ok(match op {
                    Some(op) => self.push(Leaf::Date {
                        prop: prop.map_or("", |p| p.name),
                        op,
                        negated: c.negated,
                    }),
                    None => Node::Const(c.negated),
                })
            }
            (_, test) => {
                let source = match &c.attr {
                    Attr::Prop(p) => Source::Prop(p.name),
                    Attr::Extension(n) => Source::Extension(n.to_ascii_lowercase()),
                    Attr::Element | Attr::Plan(_) => {
                        return Err(CompileError(
                            "an element reference outside -any/-all".to_string(),
                        ));
                    }
                };
                Ok(match str_pred(test)? {
                    Some(pred) => self.push(Leaf::Str {
                        source,
                        pred,
                        negated: c.negated,
                    }),
                    None => Node::Const(c.negated),
                })
            }
        }
    }

    fn date(&self, d: &DateValue) -> Option<jiff::Timestamp> {
        d.resolve(self.opts.now)
    }

    /// Compiles an element predicate to its own postfix code.
    fn sub(&mut self, e: &hir::Expr) -> Result<Sub, CompileError> {
        let mut leaves = Vec::new();
        let node = sub_node(e, &mut leaves)?;
        let mut code = Vec::new();
        node.simplify().emit(&mut code);
        Ok(Sub { code, leaves })
    }
}

fn sub_node(e: &hir::Expr, leaves: &mut Vec<SubLeaf>) -> Result<Node, CompileError> {
    Ok(match &e.kind {
        ExprKind::And(xs) => Node::And(
            xs.iter()
                .map(|x| sub_node(x, leaves))
                .collect::<Result<_, _>>()?,
        ),
        ExprKind::Or(xs) => Node::Or(
            xs.iter()
                .map(|x| sub_node(x, leaves))
                .collect::<Result<_, _>>()?,
        ),
        ExprKind::Not(x) => Node::Not(Box::new(sub_node(x, leaves)?)),
        ExprKind::Cmp(c) => {
            let field = match &c.attr {
                Attr::Element => Field::Element,
                Attr::Plan(f) => Field::Plan(match f {
                    hir::PlanField::ServicePlanId => 0,
                    hir::PlanField::Service => 1,
                    hir::PlanField::CapabilityStatus => 2,
                }),
                a => {
                    return Err(CompileError(format!("`{}` inside -any/-all", a.name())));
                }
            };
            if let Test::Bool(_) = c.test {
                return Ok(Node::Const(c.negated));
            }
            match str_pred(&c.test)? {
                Some(pred) => {
                    leaves.push(SubLeaf {
                        field,
                        pred,
                        negated: c.negated,
                    });
                    Node::Leaf(leaves.len() as u32 - 1)
                }
                None => Node::Const(c.negated),
            }
        }
        ExprKind::Any(..) | ExprKind::All(..) => {
            return Err(CompileError("-any/-all inside -any/-all".to_string()));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(src: &str) -> Program {
        let now = jiff::Timestamp::UNIX_EPOCH;
        Program::from_text(src, &CompileOptions { now }).expect(src)
    }

    #[test]
    fn folds_constants() {
        assert_eq!(
            compile(r#"user.department -in []"#).code,
            vec![Instr::Const(false)]
        );
        assert_eq!(
            compile(r#"user.department -notIn []"#).code,
            vec![Instr::Const(true)]
        );
        let p = compile(r#"user.department -in [] -or user.city -eq "Oslo""#);
        assert_eq!(p.code, vec![Instr::Leaf(0)]);
        assert_eq!(p.leaves.len(), 1);
        let p = compile(
            r#"(user.department -eq "a") -and (user.city -eq "b") -and (user.state -eq "c")"#,
        );
        assert_eq!(
            p.code,
            vec![
                Instr::Leaf(0),
                Instr::Leaf(1),
                Instr::And,
                Instr::Leaf(2),
                Instr::And
            ]
        );
    }

    #[test]
    fn leaf_keys_are_canonical() {
        let a = compile(r#"user.department -in ["b", "A"]"#);
        let b = compile(r#"user.department -in ["a", "B", "a"]"#);
        assert_eq!(
            a.leaves.first().map(Leaf::key),
            b.leaves.first().map(Leaf::key)
        );
    }
}
