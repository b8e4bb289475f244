//! Rules in JSON files (ARM templates from `bicep build`, Graph `groups` exports), through
//! `jsonc-parser`'s AST (it keeps every literal's byte range): every `membershipRule` key, any
//! case, at any depth. An ARM expression (`"[parameters('rule')]"`) is skipped; `"[["` escapes a
//! literal `[`.

use super::literal::{self, Decoded, Escapes};
use super::{Found, Located};
use jsonc_parser::ast::{ObjectPropName, Value};

/// The rules of a JSON file.
///
/// Errors: JSON that does not parse (the byte offset and the parser's message).
pub(super) fn locate(text: &str) -> Result<Found, (usize, String)> {
    let parsed = jsonc_parser::parse_to_ast(
        text,
        &jsonc_parser::CollectOptions::default(),
        &jsonc_parser::ParseOptions::default(),
    )
    .map_err(|e| {
        (
            e.range().start,
            format!("JSON does not parse: {}", e.kind()),
        )
    })?;
    let mut out = (Vec::new(), Vec::new());
    if let Some(v) = &parsed.value {
        walk(text, v, &mut Vec::new(), &mut out);
    }
    Ok(out)
}

fn walk(text: &str, v: &Value<'_>, path: &mut Vec<String>, out: &mut Found) {
    match v {
        Value::Object(o) => {
            // A group's displayName names it in the context (Graph exports).
            let name = o.properties.iter().find_map(|p| match (&p.name, &p.value) {
                (n, Value::StringLit(s)) if name_of(n).eq_ignore_ascii_case("displayName") => {
                    Some(s.value.to_string())
                }
                _ => None,
            });
            for p in &o.properties {
                let key = name_of(&p.name);
                let here = match &name {
                    Some(n) => format!("{key} ({n})"),
                    None => key.clone(),
                };
                if key.eq_ignore_ascii_case("membershipRule") {
                    let context = context(path, &here);
                    match &p.value {
                        Value::StringLit(s) => rule(text, s, context, out),
                        other => out
                            .1
                            .push((range_start(other), context, "not a string".into())),
                    }
                    continue;
                }
                path.push(key);
                walk(text, &p.value, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, e) in a.elements.iter().enumerate() {
                path.push(format!("[{i}]"));
                walk(text, e, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn name_of(n: &ObjectPropName<'_>) -> String {
    match n {
        ObjectPropName::String(s) => s.value.to_string(),
        ObjectPropName::Word(w) => w.value.to_string(),
    }
}

fn context(path: &[String], key: &str) -> String {
    let mut parts: Vec<&str> = path.iter().map(String::as_str).collect();
    parts.push(key);
    parts.join(" › ").replace(" › [", "[")
}

fn range_start(v: &Value<'_>) -> usize {
    match v {
        Value::StringLit(x) => x.range.start,
        Value::NumberLit(x) => x.range.start,
        Value::BooleanLit(x) => x.range.start,
        Value::Object(x) => x.range.start,
        Value::Array(x) => x.range.start,
        Value::NullKeyword(x) => x.range.start,
    }
}

fn rule(text: &str, s: &jsonc_parser::ast::StringLit<'_>, context: String, out: &mut Found) {
    let value: &str = &s.value;
    if value.starts_with('[') && !value.starts_with("[[") && value.ends_with(']') {
        out.1.push((
            s.range.start,
            context,
            "an ARM expression: not known until deployment".into(),
        ));
        return;
    }
    let (start, end) = (s.range.start + 1, s.range.end.saturating_sub(1));
    let mut d = literal::decode(text, start, end, Escapes::Json)
        .filter(|d| d.text == value)
        .unwrap_or_else(|| Decoded::at(value.to_string(), s.range.start));
    if value.starts_with("[[") {
        // ARM's escape for a literal `[`.
        d.text.remove(0);
        d.map.remove(0);
    }
    out.0.push(Located {
        context,
        literal: d,
    });
}
