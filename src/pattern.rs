//! `-match` patterns: unanchored, case-insensitive regular expressions.
//!
//! Entra does not document its regex flavour; .NET with `IgnoreCase` is the likely engine
//! (`research/rule-language.md`, open question 2). Decision D9 (`grammar/DECISIONS.md`): patterns
//! compile with the `regex` crate (linear time); a pattern that needs look-around or
//! back-references, which .NET has and `regex` lacks, compiles with `fancy-regex` under a
//! backtracking limit. A pattern neither accepts is a "Query compilation error", as Entra
//! reports for `*@domain.ext`.

/// Backtracking steps allowed per match for `fancy-regex` patterns.
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// A compiled pattern.
#[derive(Clone, Debug)]
pub enum Pattern {
    /// Compiled by `regex` (linear time, the common case).
    Linear(regex::Regex),
    /// Needs look-around or back-references: `fancy-regex` with [`BACKTRACK_LIMIT`].
    Backtracking(fancy_regex::Regex),
}

impl Pattern {
    /// Compiles `source` case-insensitively. The error is the `regex` crate's message (the most
    /// precise one), for example "repetition operator missing expression".
    pub fn new(source: &str) -> Result<Pattern, String> {
        match regex::RegexBuilder::new(source)
            .case_insensitive(true)
            .size_limit(1 << 22)
            .build()
        {
            Ok(r) => Ok(Pattern::Linear(r)),
            Err(linear_err) => {
                let fancy = fancy_regex::RegexBuilder::new(source)
                    .case_insensitive(true)
                    .backtrack_limit(BACKTRACK_LIMIT)
                    .build();
                match fancy {
                    Ok(r) => Ok(Pattern::Backtracking(r)),
                    Err(_) => Err(clean_error(&linear_err.to_string())),
                }
            }
        }
    }

    /// True when the pattern matches anywhere in `haystack`. A backtracking pattern that hits
    /// its limit does not match (decision D9).
    pub fn is_match(&self, haystack: &str) -> bool {
        match self {
            Pattern::Linear(r) => r.is_match(haystack),
            Pattern::Backtracking(r) => r.is_match(haystack).unwrap_or(false),
        }
    }
}

/// A literal (lower-case ASCII, at least two bytes) that every match of `source` contains,
/// compared ASCII-case-insensitively, when the pattern has one: `^[a-c].*\.vance[0-9]*@` →
/// `.vance`. The engine uses it to test a pattern only on the dictionary values that contain
/// the literal, found by one pass over the dictionary's text. `None` for patterns the `regex`
/// crate's parser does not accept (look-around) or without such a literal.
///
/// Exact for ASCII values: under case-insensitive matching an ASCII letter only matches itself,
/// its other case, and non-ASCII look-alikes (the Kelvin sign, the long s) that an ASCII value
/// cannot contain. Non-ASCII values are always tested in full by the caller.
pub fn required_literal(source: &str) -> Option<String> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .build()
        .parse(source)
        .ok()?;
    let best = required(&hir);
    best.filter(|l| l.len() >= 2)
}

/// One character a HIR node always matches, as lower-case ASCII: a literal byte or a class that
/// is one ASCII letter in both cases (plus its non-ASCII case variants).
fn single_char(h: &regex_syntax::hir::Hir) -> Option<u8> {
    use regex_syntax::hir::{Class, HirKind};
    match h.kind() {
        HirKind::Literal(l) => match l.0.as_ref() {
            [b] if b.is_ascii() => Some(b.to_ascii_lowercase()),
            _ => None,
        },
        HirKind::Class(Class::Unicode(c)) => {
            let mut ascii: Vec<u8> = Vec::new();
            for r in c.ranges() {
                for ch in r.start()..=r.end() {
                    if ch.is_ascii() {
                        ascii.push(ch as u8);
                    } else if !matches!(ch, '\u{212A}' | '\u{17F}') {
                        return None;
                    }
                    if ascii.len() > 2 {
                        return None;
                    }
                }
            }
            match ascii.as_slice() {
                [a] => Some(a.to_ascii_lowercase()),
                [a, b] if a.eq_ignore_ascii_case(b) => Some(a.to_ascii_lowercase()),
                _ => None,
            }
        }
        HirKind::Class(Class::Bytes(c)) => match c.ranges() {
            [r] if r.start() == r.end() && r.start().is_ascii() => {
                Some(r.start().to_ascii_lowercase())
            }
            _ => None,
        },
        _ => None,
    }
}

/// The longest literal every match of `h` contains (lower-case ASCII).
fn required(h: &regex_syntax::hir::Hir) -> Option<String> {
    use regex_syntax::hir::HirKind;
    if let Some(c) = single_char(h) {
        return Some((c as char).to_string());
    }
    match h.kind() {
        HirKind::Literal(l) => std::str::from_utf8(&l.0)
            .ok()
            .filter(|s| s.is_ascii())
            .map(str::to_ascii_lowercase),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub),
        HirKind::Concat(parts) => {
            let mut best: Option<String> = None;
            let mut run = String::new();
            let keep = |s: &str, best: &mut Option<String>| {
                if best.as_ref().is_none_or(|b| s.len() > b.len()) && !s.is_empty() {
                    *best = Some(s.to_string());
                }
            };
            for p in parts {
                match p.kind() {
                    HirKind::Literal(l)
                        if std::str::from_utf8(&l.0).is_ok_and(|s| s.is_ascii()) =>
                    {
                        run.push_str(&String::from_utf8_lossy(&l.0).to_ascii_lowercase());
                    }
                    _ => match single_char(p) {
                        Some(c) => run.push(c as char),
                        None => {
                            keep(&run, &mut best);
                            run.clear();
                            if let Some(inner) = required(p) {
                                keep(&inner, &mut best);
                            }
                        }
                    },
                }
            }
            keep(&run, &mut best);
            best
        }
        _ => None,
    }
}

fn clean_error(msg: &str) -> String {
    msg.lines()
        .rev()
        .find(|l| l.trim_start().starts_with("error:"))
        .map_or_else(
            || msg.lines().last().unwrap_or(msg).trim().to_string(),
            |l| {
                l.trim_start()
                    .trim_start_matches("error:")
                    .trim()
                    .to_string()
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavours() {
        assert!(matches!(Pattern::new("^Da.*"), Ok(Pattern::Linear(_))));
        assert!(matches!(
            Pattern::new("(?<=a)b"),
            Ok(Pattern::Backtracking(_))
        ));
        assert_eq!(
            Pattern::new("*@domain.ext").err().as_deref(),
            Some("repetition operator missing expression")
        );
        let p = Pattern::new("^da").ok();
        assert!(p.is_some_and(|p| p.is_match("David") && !p.is_match("aDa")));
    }

    #[test]
    fn required_literals() {
        assert_eq!(
            required_literal("^[a-c].*\\.vance[0-9]*@").as_deref(),
            Some(".vance")
        );
        assert_eq!(required_literal("^E00012").as_deref(), Some("e00012"));
        assert_eq!(required_literal("^(Megan|Miriam) ").as_deref(), None);
        assert_eq!(required_literal("(abc)+x?yz").as_deref(), Some("abc"));
        assert_eq!(required_literal("a?bc").as_deref(), Some("bc"));
        assert_eq!(required_literal("[0-9]+").as_deref(), None);
        assert_eq!(required_literal("(?<=a)bc"), None);
        assert_eq!(required_literal("K[a]").as_deref(), Some("ka"));
    }
}
