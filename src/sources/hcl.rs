//! Rules in Terraform files, through `hcl-edit`'s parser (it keeps every expression's byte
//! span): `rule` inside a `dynamic_membership` block, any `membership_rule` attribute, and any
//! `membershipRule` object key (`body = { … }`, `jsonencode({ … })`).

use super::literal::{self, Decoded, Escapes};
use super::{Found, Located};
use hcl_edit::Span;
use hcl_edit::expr::{Expression, ObjectKey, ObjectValue};
use hcl_edit::structure::{Attribute, Block};
use hcl_edit::template::Element;
use hcl_edit::visit::{self, Visit};

/// The rules of a `.tf` file.
///
/// Errors: HCL that does not parse (the byte offset and the parser's message).
pub(super) fn locate(text: &str) -> Result<Found, (usize, String)> {
    let body = hcl_edit::parser::parse_body(text).map_err(|e| {
        let loc = e.location();
        (
            line_offset(text, loc.line(), loc.column()),
            format!("HCL does not parse: {}", e.message()),
        )
    })?;
    let mut v = Finder {
        text,
        path: Vec::new(),
        found: Vec::new(),
        skipped: Vec::new(),
    };
    v.visit_body(&body);
    Ok((v.found, v.skipped))
}

/// The byte offset of a 1-based line and column (in characters).
fn line_offset(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = text.get(start..).unwrap_or("");
    start
        + rest
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i)
}

struct Finder<'t> {
    text: &'t str,
    /// Block idents and labels, attribute and object keys down to here.
    path: Vec<String>,
    found: Vec<Located>,
    skipped: Vec<(usize, String, String)>,
}

impl Finder<'_> {
    fn context(&self, key: &str) -> String {
        let mut parts = self.path.clone();
        parts.push(key.to_string());
        parts.join(" › ")
    }

    /// Records the rule `expr` holds, or why it cannot be checked.
    fn rule(&mut self, key: &str, expr: &Expression) {
        let context = self.context(key);
        match literal_of(self.text, expr) {
            Ok(literal) => self.found.push(Located { context, literal }),
            Err(reason) => {
                let at = expr.span().map_or(0, |s| s.start);
                self.skipped.push((at, context, reason));
            }
        }
    }
}

/// The decoded literal of a string or a heredoc without interpolations.
fn literal_of(source: &str, expr: &Expression) -> Result<Decoded, String> {
    let text = source;
    match expr {
        Expression::String(s) => {
            let span = s.span().ok_or("no span")?;
            let raw = text.get(span.clone()).unwrap_or("");
            let (start, end) = if raw.starts_with('"') && raw.ends_with('"') && raw.len() >= 2 {
                (span.start + 1, span.end - 1)
            } else {
                (span.start, span.end)
            };
            Ok(literal::decode(text, start, end, Escapes::Hcl)
                .filter(|d| d.text == *s.value())
                .unwrap_or_else(|| Decoded::at(s.value().clone(), span.start)))
        }
        Expression::HeredocTemplate(h) => {
            let mut text = String::new();
            let mut map = Vec::new();
            let mut end = h.span().map_or(0, |s| s.start);
            let mut i = 0;
            while let Some(e) = h.template.get(i) {
                let Element::Literal(l) = e else {
                    return Err("a heredoc with ${…} or %{…}: not known until apply".into());
                };
                let span = l.span().ok_or("no span")?;
                let d = if h.indent().is_some() {
                    // `<<-` strips indentation: the text no longer lines up with the source.
                    Decoded::at(l.value().clone(), span.start)
                } else {
                    literal::decode(source, span.start, span.end, Escapes::HclHeredoc)
                        .filter(|d| d.text == *l.value())
                        .unwrap_or_else(|| Decoded::at(l.value().clone(), span.start))
                };
                map.extend_from_slice(d.map.get(..d.text.len()).unwrap_or(&[]));
                end = d.source(d.text.len());
                text.push_str(&d.text);
                i += 1;
            }
            // A heredoc ends with a newline that is not part of the rule.
            while text.ends_with(['\n', '\r']) {
                text.pop();
                end = map.pop().unwrap_or(end);
            }
            map.push(end);
            Ok(Decoded { text, map })
        }
        Expression::StringTemplate(_) => {
            Err("a string with ${…} or %{…}: not known until apply".into())
        }
        _ => Err("an expression (a variable, a function call): not known until apply".into()),
    }
}

impl Visit for Finder<'_> {
    fn visit_block(&mut self, node: &Block) {
        let mut name = node.ident.value().to_string();
        for l in &node.labels {
            name.push(' ');
            name.push_str(l.as_str());
        }
        self.path.push(name);
        visit::visit_block(self, node);
        self.path.pop();
    }

    fn visit_attr(&mut self, node: &Attribute) {
        let key = node.key.value().as_str();
        let in_dynamic = self.path.last().is_some_and(|b| b == "dynamic_membership");
        if key == "membership_rule" || (key == "rule" && in_dynamic) {
            self.rule(key, &node.value);
            return;
        }
        self.path.push(key.to_string());
        visit::visit_attr(self, node);
        self.path.pop();
    }

    fn visit_object_item(&mut self, key: &ObjectKey, value: &ObjectValue) {
        let name = match key {
            ObjectKey::Ident(i) => i.value().as_str().to_string(),
            ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
            ObjectKey::Expression(_) => String::new(),
        };
        if name.eq_ignore_ascii_case("membershipRule") || name == "membership_rule" {
            self.rule(&name, value.expr());
            return;
        }
        self.path.push(name);
        visit::visit_object_item(self, key, value);
        self.path.pop();
    }
}
