//! Lints: warnings that never block a rule.
//!
//! Sources: Microsoft Learn, "Create simpler, more efficient rules for dynamic membership groups"
//! (prefer `-eq`/`-startsWith`/`-endsWith` to `-match`/`-contains`; `-or` chains on one property
//! → `-in`; `-ne` chains → `-notIn`), the `deviceOwnership` note ("Company", not Intune's
//! "Corporate"), and cheap always-true/always-false detection of our own.

use crate::diag::{Code, Diagnostic};
use crate::hir::{self, Attr, Cmp, ExprKind, PlanField, Test};
use crate::schema::ObjectType;
use crate::span::Span;
use crate::syntax::ast;
use crate::syntax::print::{print_expr, quote};

/// Runs every lint over a rule that checked without errors.
pub fn lint(rule_ast: &ast::Rule, rule: &hir::Rule) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    mixed_and_or(&rule_ast.body, &mut out);
    if let hir::Body::Expr(e) = &rule.body {
        e.walk(&mut |e| match &e.kind {
            ExprKind::Or(xs) => {
                chains(rule.object, xs, false, &mut out);
                or_contradiction(xs, e.span, &mut out);
            }
            ExprKind::And(xs) => {
                chains(rule.object, xs, true, &mut out);
                and_contradiction(xs, e.span, &mut out);
            }
            ExprKind::Cmp(c) => comparison(rule.object, c, e.span, &mut out),
            _ => {}
        });
    }
    out
}

fn attr_text(object: ObjectType, a: &Attr) -> String {
    match a {
        Attr::Prop(p) => format!("{}.{}", object.as_str(), p.name),
        Attr::Extension(n) => format!("{}.{n}", object.as_str()),
        Attr::Element => "_".into(),
        Attr::Plan(f) => format!("assignedPlan.{}", f.as_str()),
    }
}

fn mixed_and_or(e: &ast::Expr, out: &mut Vec<Diagnostic>) {
    e.walk(&mut |e| {
        if let ast::ExprKind::Or(xs) = &e.kind {
            if xs.iter().any(|x| matches!(x.kind, ast::ExprKind::And(_))) {
                let explicit: Vec<ast::Expr> = xs
                    .iter()
                    .map(|x| match x.kind {
                        ast::ExprKind::And(_) => ast::Expr { kind: ast::ExprKind::Paren(Box::new(x.clone())), span: x.span },
                        _ => x.clone(),
                    })
                    .collect();
                let shown = print_expr(&ast::Expr { kind: ast::ExprKind::Or(explicit), span: e.span });
                out.push(
                    Diagnostic::new(Code::MixedAndOr, e.span, "`-and` and `-or` mixed without parentheses")
                        .with_help(format!("`-and` binds tighter than `-or`, so this reads as `{shown}`; add parentheses to make that explicit")),
                );
            }
        }
    });
}

fn eq_value(c: &Cmp) -> Option<&str> {
    match &c.test {
        Test::Eq(v) => Some(v),
        _ => None,
    }
}

fn chains(object: ObjectType, xs: &[hir::Expr], and: bool, out: &mut Vec<Diagnostic>) {
    let mut groups: Vec<(&Attr, Vec<&str>, Span)> = Vec::new();
    for x in xs {
        let ExprKind::Cmp(c) = &x.kind else { continue };
        if c.negated != and {
            continue;
        }
        let Some(v) = eq_value(c) else { continue };
        match groups.iter_mut().find(|(a, _, _)| **a == c.attr) {
            Some(g) => {
                g.1.push(v);
                g.2 = g.2.to(x.span);
            }
            None => groups.push((&c.attr, vec![v], x.span)),
        }
    }
    for (attr, values, span) in groups.into_iter().filter(|g| g.1.len() >= 2) {
        let list = values
            .iter()
            .map(|v| quote(v))
            .collect::<Vec<_>>()
            .join(", ");
        let (code, op, words) = if and {
            (
                Code::AndChainToNotIn,
                "-notIn",
                "`-ne` comparisons joined by `-and`",
            )
        } else {
            (
                Code::OrChainToIn,
                "-in",
                "`-eq` comparisons joined by `-or`",
            )
        };
        out.push(
            Diagnostic::new(
                code,
                span,
                format!("{} {words} on `{}`", values.len(), attr.name()),
            )
            .with_help(format!(
                "write `{} {op} [{list}]` (Microsoft's guidance for simpler, faster rules)",
                attr_text(object, attr)
            )),
        );
    }
}

fn and_contradiction(xs: &[hir::Expr], span: Span, out: &mut Vec<Diagnostic>) {
    let eqs: Vec<&Cmp> = xs
        .iter()
        .filter_map(|x| match &x.kind {
            ExprKind::Cmp(c) if !c.negated && eq_value(c).is_some() => Some(c),
            _ => None,
        })
        .collect();
    for (i, a) in eqs.iter().enumerate() {
        for b in eqs.iter().skip(i + 1) {
            if a.attr == b.attr
                && !eq_value(a)
                    .unwrap_or("")
                    .eq_ignore_ascii_case(eq_value(b).unwrap_or(""))
                && a.attr != Attr::Element
            {
                out.push(
                    Diagnostic::new(
                        Code::AlwaysFalse,
                        span,
                        format!(
                            "`{}` cannot equal two different values: this `-and` is never true",
                            a.attr.name()
                        ),
                    )
                    .with_help("did you mean `-or`, or `-in [...]`?"),
                );
                return;
            }
        }
    }
}

fn or_contradiction(xs: &[hir::Expr], span: Span, out: &mut Vec<Diagnostic>) {
    let cmps: Vec<&Cmp> = xs
        .iter()
        .filter_map(|x| match &x.kind {
            ExprKind::Cmp(c) => Some(c),
            _ => None,
        })
        .collect();
    for a in &cmps {
        for b in &cmps {
            if a.attr == b.attr && !a.negated && b.negated && a.test == b.test {
                out.push(
                    Diagnostic::new(
                        Code::AlwaysTrue,
                        span,
                        format!(
                            "a test on `{}` and its negation joined by `-or`: always true",
                            a.attr.name()
                        ),
                    )
                    .with_help("this selects every object; check the operators"),
                );
                return;
            }
        }
    }
}

/// For a `-match` pattern that is a plain literal with optional anchors, the operator that
/// does the same job and the literal.
pub fn simpler_than_match(pattern: &str) -> Option<(&'static str, String)> {
    let mut s = pattern;
    let start = if let Some(rest) = s.strip_prefix('^') {
        s = rest;
        true
    } else {
        s = s
            .strip_prefix(".*?")
            .or_else(|| s.strip_prefix(".*"))
            .unwrap_or(s);
        false
    };
    let end = if s.ends_with('$') && !s.ends_with("\\$") {
        s = s.get(..s.len() - 1).unwrap_or("");
        true
    } else {
        s = s
            .strip_suffix(".*?")
            .or_else(|| s.strip_suffix(".*"))
            .unwrap_or(s);
        false
    };
    let mut lit = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if !e.is_alphanumeric() => lit.push(e),
                _ => return None,
            },
            '.' | '[' | ']' | '{' | '}' | '(' | ')' | '*' | '+' | '?' | '|' | '^' | '$' => {
                return None;
            }
            c => lit.push(c),
        }
    }
    if lit.is_empty() {
        return None;
    }
    let op = match (start, end) {
        (true, true) => "-eq",
        (true, false) => "-startsWith",
        (false, true) => "-endsWith",
        (false, false) => "-contains",
    };
    Some((op, lit))
}

/// Characters that do not show: zero-width spaces and joiners, the byte-order mark, the soft
/// hyphen, bidirectional controls. Pasted from web pages and documents into values.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{202A}'..='\u{202E}')
}

/// The lints of one comparison `c` (named `name` in the rule), each pushing its diagnostics.
fn comparison(object: ObjectType, c: &Cmp, span: Span, out: &mut Vec<Diagnostic>) {
    let name = attr_text(object, &c.attr);
    invisible_characters(c, span, out);
    constant_tests(c, span, &name, out);
    duplicate_list_items(c, span, out);
    if let Test::Eq(v) = &c.test {
        equality(c, v, span, &name, out);
    }
    enum_values(c, span, out);
}

/// DR314: a value holding a character that does not show.
fn invisible_characters(c: &Cmp, span: Span, out: &mut Vec<Diagnostic>) {
    let values: Vec<&str> = match &c.test {
        Test::Eq(v)
        | Test::StartsWith(v)
        | Test::EndsWith(v)
        | Test::Contains(v)
        | Test::Match(v) => {
            vec![v.as_str()]
        }
        Test::In(vs) => vs.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    if let Some((v, ch)) = values
        .iter()
        .find_map(|v| v.chars().find(|&ch| invisible(ch)).map(|ch| (*v, ch)))
    {
        out.push(
            Diagnostic::new(
                Code::InvisibleCharacter,
                span,
                format!(
                    "{} holds an invisible character (U+{:04X}), so it will not match the text it looks like",
                    quote(v),
                    u32::from(ch)
                ),
            )
            .with_help("retype the value, or delete the character (it came with a copy from a web page or document)"),
        );
    }
}

/// `-match` that is a plain text test (DR309), a backtracking pattern (DR312), and tests that
/// are always true or false (a pattern matching "", an empty substring, an empty list).
fn constant_tests(c: &Cmp, span: Span, name: &str, out: &mut Vec<Diagnostic>) {
    let written = if c.negated { "-notMatch" } else { "-match" };
    match &c.test {
        Test::Match(p) => {
            if let Some((op, lit)) = simpler_than_match(p) {
                let op = if c.negated {
                    negate(op)
                } else {
                    op.to_string()
                };
                out.push(
                    Diagnostic::new(Code::MatchCanBeSimpler, span, format!("this `{written}` is a plain text test"))
                        .with_help(format!("write `{name} {op} {}`: cheaper to evaluate (Microsoft's guidance for efficient rules)", quote(&lit))),
                );
            } else if crate::pattern::Pattern::new(p).is_ok_and(|r| r.backtracks()) {
                out.push(
                    Diagnostic::new(
                        Code::BacktrackingPattern,
                        span,
                        "this pattern needs a backtracking engine (look-around or back-references)",
                    )
                    .with_help(format!(
                        "it runs in exponential time on some values; one that exceeds {} steps cannot be decided, and answers resting on it are reported as untrusted (exit 4). Rewrite it without look-around or back-references if you can",
                        crate::pattern::BACKTRACK_LIMIT
                    )),
                );
            } else if crate::pattern::Pattern::new(p).is_ok_and(|r| r.is_match("")) {
                out.push(always(
                    c.negated,
                    span,
                    name,
                    "its pattern matches the empty string",
                ));
            }
        }
        Test::Contains(v) | Test::StartsWith(v) | Test::EndsWith(v) if v.is_empty() => {
            out.push(always(
                c.negated,
                span,
                name,
                "every value contains the empty string",
            ));
        }
        Test::In(vs) if vs.is_empty() => {
            let code = if c.negated {
                Code::AlwaysTrue
            } else {
                Code::AlwaysFalse
            };
            out.push(Diagnostic::new(code, span, "empty list"));
        }
        _ => {}
    }
}

/// A list item given twice (case-insensitively).
fn duplicate_list_items(c: &Cmp, span: Span, out: &mut Vec<Diagnostic>) {
    if let Test::In(vs) = &c.test {
        for (i, v) in vs.iter().enumerate() {
            if vs.iter().take(i).any(|w| w.eq_ignore_ascii_case(v)) {
                out.push(
                    Diagnostic::new(
                        Code::DuplicateListItem,
                        span,
                        format!("{} appears twice in the list", quote(v)),
                    )
                    .with_help("comparisons ignore case, so case variants are duplicates too"),
                );
                break;
            }
        }
    }
}

/// `-eq` lints: the quoted "null", an id that is not a GUID (with the servicePlanId of a
/// servicePlanName), and PowerShell's `*` wildcard (DR313).
fn equality(c: &Cmp, v: &str, span: Span, name: &str, out: &mut Vec<Diagnostic>) {
    if v.eq_ignore_ascii_case("null") {
        out.push(
            Diagnostic::new(
                Code::QuotedNull,
                span,
                format!(
                    "{} compares with the text \"null\", not with a missing value",
                    quote(v)
                ),
            )
            .with_help(format!(
                "write `{name} {} null` without quotes",
                if c.negated { "-ne" } else { "-eq" }
            )),
        );
    }
    let is_id = match &c.attr {
        Attr::Prop(p) => matches!(p.name, "objectId" | "deviceId" | "deviceManagementAppId"),
        Attr::Plan(PlanField::ServicePlanId) => true,
        _ => false,
    };
    if is_id && !v.eq_ignore_ascii_case("null") && !crate::formats::is_guid(v) {
        let code = if c.negated {
            Code::AlwaysTrue
        } else {
            Code::AlwaysFalse
        };
        let d = Diagnostic::new(
            code,
            span,
            format!(
                "{} is not a GUID, so it never equals `{}`",
                quote(v),
                c.attr.name()
            ),
        );
        // A service plan's name where its id belongs: the catalogue knows the id.
        let plan_id = matches!(c.attr, Attr::Plan(PlanField::ServicePlanId))
            .then(|| {
                let catalog = crate::catalog::Catalog::microsoft();
                catalog
                    .resolve_plan(v)
                    .and_then(|p| catalog.plan_info(p))
                    .map(|i| i.service_plan_id.clone())
            })
            .flatten();
        out.push(match plan_id {
            Some(id) => d.with_help(format!(
                "{} is a servicePlanName; its servicePlanId is {} (Microsoft's product and service plan identifiers)",
                quote(v),
                quote(&id)
            )),
            None => d,
        });
    }
    // PowerShell's wildcard in an equality: `*` is a literal character here.
    if !is_id && (v.starts_with('*') || v.ends_with('*')) && !v.trim_matches('*').is_empty() {
        let core = v.trim_matches('*');
        let op = match (v.starts_with('*'), v.ends_with('*'), c.negated) {
            (true, true, false) => "-contains",
            (true, true, true) => "-notContains",
            (false, true, false) => "-startsWith",
            (false, true, true) => "-notStartsWith",
            (true, false, false) => "-endsWith",
            _ => "-notEndsWith",
        };
        out.push(
            Diagnostic::new(
                Code::WildcardInEquality,
                span,
                format!("`*` in {} is a literal star, not a wildcard", quote(v)),
            )
            .with_help(format!("write `{name} {op} {}`", quote(core))),
        );
    }
}

/// Values of a property with a fixed set of documented values.
fn enum_values(c: &Cmp, span: Span, out: &mut Vec<Diagnostic>) {
    if let Attr::Prop(p) = &c.attr {
        if !p.values.is_empty() {
            let values: Vec<&str> = match &c.test {
                Test::Eq(v) => vec![v.as_str()],
                Test::In(vs) => vs.iter().map(String::as_str).collect(),
                Test::Contains(_) | Test::Match(_) => {
                    out.push(
                        Diagnostic::new(
                            Code::PreferEquality,
                            span,
                            format!("`{}` has a fixed set of values", p.name),
                        )
                        .with_help(format!(
                            "compare with `-eq` or `-in`: {}",
                            p.values.join(", ")
                        )),
                    );
                    vec![]
                }
                _ => vec![],
            };
            for v in values {
                if p.name == "deviceOwnership" && v.eq_ignore_ascii_case("Corporate") {
                    out.push(
                        Diagnostic::new(Code::CorporateOwnership, span, "Entra stores corporate ownership as \"Company\"")
                            .with_help("Intune shows \"Corporate\" but the directory value is \"Company\": write `device.deviceOwnership -eq \"Company\"`"),
                    );
                } else if !p.values.iter().any(|k| k.eq_ignore_ascii_case(v)) {
                    out.push(
                        Diagnostic::new(
                            Code::UnknownEnumValue,
                            span,
                            format!("{} is not a documented value of `{}`", quote(v), p.name),
                        )
                        .with_help(format!("documented values: {}", p.values.join(", "))),
                    );
                }
            }
        }
    }
}

fn negate(op: &str) -> String {
    match op {
        "-eq" => "-ne".into(),
        other => format!(
            "-not{}",
            other.get(1..2).unwrap_or("").to_uppercase() + other.get(2..).unwrap_or("")
        ),
    }
}

fn always(negated: bool, span: Span, name: &str, why: &str) -> Diagnostic {
    if negated {
        Diagnostic::new(
            Code::AlwaysFalse,
            span,
            format!("never true for an object with a `{name}` value: {why}"),
        )
    } else {
        Diagnostic::new(
            Code::AlwaysTrue,
            span,
            format!("true for every object with a `{name}` value: {why}"),
        )
        .with_help(format!(
            "if that is meant, `{name} -ne null` says it directly"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_literals() {
        assert_eq!(
            simpler_than_match("^Da.*"),
            Some(("-startsWith", "Da".into()))
        );
        assert_eq!(
            simpler_than_match(".*vid"),
            Some(("-contains", "vid".into()))
        );
        assert_eq!(
            simpler_than_match("@domain\\.ext$"),
            Some(("-endsWith", "@domain.ext".into()))
        );
        assert_eq!(simpler_than_match("^a$"), Some(("-eq", "a".into())));
        assert_eq!(simpler_than_match("^[a-z]{3}"), None);
        assert_eq!(simpler_than_match("\\d"), None);
        assert_eq!(negate("-startsWith"), "-notStartsWith");
    }
}
