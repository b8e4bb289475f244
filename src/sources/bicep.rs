//! Rules in Bicep files: `membershipRule:` properties whose value is a string literal
//! (`'…'` with Bicep's escapes, or a `'''…'''` multi-line string). There is no maintained
//! Bicep parser in Rust; this scanner knows comments and strings, which is all it needs to
//! find a property and its literal. A string with `${…}` is skipped (not known until
//! deployment).

use super::literal::{self, Decoded, Escapes};
use super::{Found, Located};

/// The rules of a Bicep file.
pub(super) fn locate(text: &str) -> Found {
    let mut out: Found = (Vec::new(), Vec::new());
    let b = text.as_bytes();
    let mut i = 0;
    let mut resource = String::new();
    while i < b.len() {
        let rest = text.get(i..).unwrap_or("");
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if rest.starts_with("'''") {
            i += 3 + rest
                .get(3..)
                .and_then(|r| r.find("'''"))
                .map_or(rest.len(), |e| e + 3);
        } else if rest.starts_with('\'') {
            i = string_end(text, i).map_or(b.len(), |(_, e)| e + 1);
        } else if is_word_start(rest) {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let after = i + word.len();
            if word == "resource" {
                let name: String = text
                    .get(after..)
                    .unwrap_or("")
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                resource = name;
            } else if word == "membershipRule" {
                property(text, after, &resource, &mut out);
            }
            i = after.max(i + 1);
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

fn is_word_start(rest: &str) -> bool {
    rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

/// The `(body start, closing quote)` byte offsets of the `'…'` string opening at `open`.
fn string_end(text: &str, open: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut j = open + 1;
    while j < b.len() {
        match b.get(j) {
            Some(b'\\') => j += 2,
            Some(b'\'') => return Some((open + 1, j)),
            Some(b'\n') | None => return None,
            _ => j += 1,
        }
    }
    None
}

/// Reads the value of a `membershipRule` property whose name ends at `after`.
fn property(text: &str, after: usize, resource: &str, out: &mut Found) {
    let rest = text.get(after..).unwrap_or("");
    let trimmed = rest.trim_start();
    let Some(value) = trimmed.strip_prefix(':') else {
        return; // `membershipRule` used otherwise (a reference: `group.membershipRule`)
    };
    let lead = value.len() - value.trim_start().len();
    let at = after + (rest.len() - trimmed.len()) + 1 + lead;
    let context = if resource.is_empty() {
        "membershipRule".to_string()
    } else {
        format!("{resource} › membershipRule")
    };
    let v = value.trim_start();
    if let Some(body) = v.strip_prefix("'''") {
        let Some(end) = body.find("'''") else { return };
        // A multi-line string's first newline, right after the quotes, is not part of it.
        let skip = if body.starts_with("\r\n") {
            2
        } else {
            usize::from(body.starts_with('\n'))
        };
        let start = at + 3 + skip;
        let d = literal::decode(text, start, at + 3 + end, Escapes::Raw)
            .unwrap_or_else(|| Decoded::at(String::new(), at));
        out.0.push(Located {
            context,
            literal: d,
        });
    } else if v.starts_with('\'') {
        let Some((start, end)) = string_end(text, at) else {
            out.1.push((at, context, "an unterminated string".into()));
            return;
        };
        let raw = text.get(start..end).unwrap_or("");
        if raw.contains("${") && !raw.contains("\\${") {
            out.1.push((
                at,
                context,
                "a string with ${…}: not known until deployment".into(),
            ));
            return;
        }
        match literal::decode(text, start, end, Escapes::Bicep) {
            Some(d) => out.0.push(Located {
                context,
                literal: d,
            }),
            None => out.1.push((at, context, "a malformed escape".into())),
        }
    } else {
        out.1.push((
            at,
            context,
            "an expression (a parameter, a variable): not known until deployment".into(),
        ));
    }
}
