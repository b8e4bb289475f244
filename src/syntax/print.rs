//! The printer: [`ast::Rule`](crate::syntax::ast::Rule) → rule text.
//!
//! [`print`](fn@print) is faithful: names are printed as written and parentheses where the author put
//! them, so `parse(print(rule)) == rule` for every rule the parser produces (the round-trip
//! property tested by `tests/roundtrip.rs` and the `roundtrip` fuzz target). Spelling that the
//! tree does not keep is printed canonically: hyphenated operators in Microsoft's casing
//! (`-startsWith`), `-and`/`-or`/`-not`, `null`, `true`/`false`, double-quoted strings with the
//! documented escapes (`` `" `` for `"`, `''` for `'`, ``` `` ``` for a backtick).
//!
//! [`canonicalize`] additionally rewrites the tree into the house style used by `dynrule fmt`:
//! lower-case object prefixes, property names in the schema's casing, and `-any (…)` predicates
//! always parenthesised.

use super::ast::*;
use crate::schema::{self, ObjectType};
use crate::span::Span;

/// Prints a rule.
pub fn print(rule: &Rule) -> String {
    let mut out = String::new();
    expr(&mut out, &rule.body);
    out
}

/// Prints one expression.
pub fn print_expr(e: &Expr) -> String {
    let mut out = String::new();
    expr(&mut out, e);
    out
}

fn expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Or(xs) | ExprKind::And(xs) => {
            let sep = if matches!(e.kind, ExprKind::Or(_)) {
                " -or "
            } else {
                " -and "
            };
            for (n, x) in xs.iter().enumerate() {
                if n > 0 {
                    out.push_str(sep);
                }
                expr(out, x);
            }
        }
        ExprKind::Not(x) => {
            out.push_str("-not ");
            expr(out, x);
        }
        ExprKind::Paren(x) => {
            out.push('(');
            expr(out, x);
            out.push(')');
        }
        ExprKind::Compare(c) => {
            operand(out, &c.lhs);
            out.push(' ');
            out.push_str(c.op.kind.as_str());
            out.push(' ');
            value(out, &c.rhs);
        }
        ExprKind::Quantified(q) => {
            operand(out, &q.collection);
            out.push(' ');
            out.push_str(q.quantifier.as_str());
            out.push(' ');
            expr(out, &q.predicate);
        }
        ExprKind::DirectReports(v) => {
            out.push_str("Direct Reports for ");
            value(out, v);
        }
    }
}

fn operand(out: &mut String, o: &Operand) {
    match &o.kind {
        OperandKind::Element => out.push('_'),
        OperandKind::Path(segs) => out.push_str(&segs.join(".")),
    }
}

/// Quotes a string with the rule language's escapes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("`\""),
            '\'' => out.push_str("''"),
            '`' => out.push_str("``"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn value(out: &mut String, v: &Value) {
    match &v.kind {
        ValueKind::Str(s) => out.push_str(&quote(s)),
        ValueKind::Null => out.push_str("null"),
        ValueKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ValueKind::Number(s) | ValueKind::DateTime(s) | ValueKind::Guid(s) | ValueKind::Bare(s) => {
            out.push_str(s)
        }
        ValueKind::List(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                value(out, item);
            }
            out.push(']');
        }
        ValueKind::Now(offset) => {
            out.push_str("system.now");
            if let Some((sign, d)) = offset {
                out.push_str(match sign {
                    Sign::Plus => " -plus ",
                    Sign::Minus => " -minus ",
                });
                out.push_str(d);
            }
        }
    }
}

/// Rewrites a rule into canonical form (see the module documentation). Unknown names are left
/// as written, so a rule with errors still formats.
pub fn canonicalize(rule: &Rule) -> Rule {
    Rule {
        body: canon_expr(&rule.body),
    }
}

fn canon_expr(e: &Expr) -> Expr {
    let kind = match &e.kind {
        ExprKind::Or(xs) => ExprKind::Or(xs.iter().map(canon_expr).collect()),
        ExprKind::And(xs) => ExprKind::And(xs.iter().map(canon_expr).collect()),
        ExprKind::Not(x) => ExprKind::Not(Box::new(canon_expr(x))),
        ExprKind::Paren(x) => ExprKind::Paren(Box::new(canon_expr(x))),
        ExprKind::Compare(c) => ExprKind::Compare(Compare {
            lhs: canon_operand(&c.lhs),
            op: c.op,
            rhs: canon_value(&c.rhs),
        }),
        ExprKind::Quantified(q) => {
            let pred = canon_expr(&q.predicate);
            let predicate = match pred.kind {
                ExprKind::Paren(_) => pred,
                _ => Expr {
                    span: pred.span,
                    kind: ExprKind::Paren(Box::new(pred)),
                },
            };
            ExprKind::Quantified(Quantified {
                collection: canon_operand(&q.collection),
                quantifier: q.quantifier,
                quantifier_span: q.quantifier_span,
                predicate: Box::new(predicate),
            })
        }
        ExprKind::DirectReports(v) => ExprKind::DirectReports(v.clone()),
    };
    Expr { kind, span: e.span }
}

fn canon_value(v: &Value) -> Value {
    match &v.kind {
        ValueKind::Now(Some((sign, d))) => Value {
            kind: ValueKind::Now(Some((*sign, d.to_ascii_uppercase()))),
            span: v.span,
        },
        _ => v.clone(),
    }
}

fn canon_operand(o: &Operand) -> Operand {
    let OperandKind::Path(segs) = &o.kind else {
        return o.clone();
    };
    let [object, name] = segs.as_slice() else {
        return o.clone();
    };
    let lower = object.to_ascii_lowercase();
    let canonical_name = match lower.as_str() {
        "user" => schema::lookup(ObjectType::User, name).map(|p| p.name.to_string()),
        "device" => schema::lookup(ObjectType::Device, name).map(|p| p.name.to_string()),
        "assignedplan" => schema::ASSIGNED_PLAN_FIELDS
            .iter()
            .find(|f| f.eq_ignore_ascii_case(name))
            .map(|f| f.to_string()),
        "group" if name.eq_ignore_ascii_case("objectId") => Some("objectId".to_string()),
        _ => None,
    };
    let object = match lower.as_str() {
        "user" | "device" | "group" => lower.clone(),
        "assignedplan" => "assignedPlan".to_string(),
        _ => object.clone(),
    };
    let name = canonical_name.unwrap_or_else(|| name.clone());
    Operand {
        kind: OperandKind::Path(vec![object, name]),
        span: o.span,
    }
}

/// A span-free placeholder used when building synthetic trees.
pub const NO_SPAN: Span = Span::new(0, 0);
