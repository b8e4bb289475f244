//! `-match` patterns: unanchored, case-insensitive regular expressions.
//!
//! Entra does not document its regex flavour; .NET with `IgnoreCase` is the likely engine
//! (`research/rule-language.md`, open question 2). Decision D9 (`grammar/DECISIONS.md`): patterns
//! compile with the `regex` crate (linear time); a pattern that needs look-around or
//! back-references, which .NET has and `regex` lacks, compiles with `fancy-regex` under a
//! backtracking limit. A pattern neither accepts is a "Query compilation error", as Entra
//! reports for `*@domain.ext`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Backtracking steps allowed per match for `fancy-regex` patterns.
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// Values a backtracking pattern may leave undecided (each up to [`BACKTRACK_LIMIT`] steps)
/// before it stops trying: every later value is undecided at once. This caps the time one
/// rule can take at about this many limit hits (a hit took ~13 ms here), whatever the data.
pub const UNDECIDED_CAP: u64 = 64;

/// Bytes a pattern's fully compiled DFA may take ([`Linear`]); a larger one is not built.
pub const DFA_SIZE_LIMIT: usize = 1 << 20;

/// A compiled pattern.
#[derive(Clone, Debug)]
pub enum Pattern {
    /// Compiled by `regex` (linear time, the common case).
    Linear(Linear),
    /// Needs look-around or back-references: `fancy-regex` with [`BACKTRACK_LIMIT`].
    Backtracking(Backtracking),
}

/// A pattern `regex` compiles, and when it fits in [`DFA_SIZE_LIMIT`], the same pattern as a
/// fully compiled DFA (`regex-automata`, the engine crate behind `regex`, with the same syntax and
/// case folding). A rule tests a pattern on up to millions of short dictionary values; the DFA
/// walks each value byte by byte with none of a search's setup, several times faster per value.
///
/// The DFA is built on the pattern's first test, not when it compiles (a rule that is only
/// checked never pays for it), and shared by the pattern's clones.
#[derive(Clone, Debug)]
pub struct Linear {
    regex: regex::Regex,
    dfa: Arc<OnceLock<Option<Dfa>>>,
}

/// A fully compiled DFA for an unanchored search and its start state (the same for every
/// value, each searched from its own start).
#[derive(Debug)]
struct Dfa {
    dfa: regex_automata::dfa::dense::DFA<Vec<u32>>,
    start: regex_automata::util::primitives::StateID,
}

impl Linear {
    fn new(regex: regex::Regex) -> Linear {
        Linear {
            regex,
            dfa: Arc::default(),
        }
    }

    fn dfa(&self) -> Option<&Dfa> {
        self.dfa
            .get_or_init(|| Dfa::new(self.regex.as_str()))
            .as_ref()
    }

    fn is_match(&self, haystack: &str) -> bool {
        match self.dfa() {
            Some(d) => d.is_match(haystack.as_bytes()),
            None => self.regex.is_match(haystack),
        }
    }
}

impl Dfa {
    /// `None` when the DFA would be too large or needs what a DFA lacks (a Unicode word
    /// boundary, say): `regex` then searches.
    fn new(source: &str) -> Option<Dfa> {
        use regex_automata::dfa::{Automaton, StartKind, dense};
        use regex_automata::util::{start, syntax};
        let dfa = dense::Builder::new()
            .syntax(syntax::Config::new().case_insensitive(true))
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Unanchored)
                    .accelerate(false)
                    .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                    .determinize_size_limit(Some(4 * DFA_SIZE_LIMIT)),
            )
            .build(source)
            .ok()?;
        // A value is searched from its start, with nothing before it.
        let start = dfa.start_state(&start::Config::new()).ok()?;
        Some(Dfa { dfa, start })
    }

    /// True when the pattern matches anywhere in `haystack`.
    fn is_match(&self, haystack: &[u8]) -> bool {
        use regex_automata::dfa::Automaton;
        let dfa = &self.dfa;
        let mut s = self.start;
        for &b in haystack {
            s = dfa.next_state(s, b);
            if dfa.is_special_state(s) {
                if dfa.is_match_state(s) {
                    return true;
                }
                if dfa.is_dead_state(s) {
                    return false;
                }
            }
        }
        dfa.is_match_state(dfa.next_eoi_state(s))
    }
}

/// A `fancy-regex` pattern and the count of values it could not decide, shared by its clones.
#[derive(Clone, Debug)]
pub struct Backtracking {
    regex: fancy_regex::Regex,
    undecided: Arc<AtomicU64>,
}

/// A pattern's answer on one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It matches.
    Match,
    /// It does not.
    NoMatch,
    /// The backtracking engine hit [`BACKTRACK_LIMIT`] on it, or the pattern had already left
    /// [`UNDECIDED_CAP`] values undecided and did not try.
    Undecided,
}

impl Pattern {
    /// Compiles `source` case-insensitively. The error is the `regex` crate's message (the most
    /// precise one), for example "repetition operator missing expression"; when `regex` lacks
    /// the feature (look-around, back-references) and `fancy-regex` fails too, `fancy-regex`'s
    /// reason (a pattern too large, say) is given instead.
    pub fn new(source: &str) -> Result<Pattern, String> {
        match regex::RegexBuilder::new(source)
            .case_insensitive(true)
            .size_limit(1 << 22)
            .build()
        {
            Ok(r) => Ok(Pattern::Linear(Linear::new(r))),
            Err(linear_err) => {
                let fancy = fancy_regex::RegexBuilder::new(source)
                    .case_insensitive(true)
                    .backtrack_limit(BACKTRACK_LIMIT)
                    .build();
                match fancy {
                    Ok(regex) => Ok(Pattern::Backtracking(Backtracking {
                        regex,
                        undecided: Arc::new(AtomicU64::new(0)),
                    })),
                    Err(fancy_err) => {
                        let linear = clean_error(&linear_err.to_string());
                        if linear.contains("not supported") {
                            Err(format!(
                                "the pattern needs look-around or back-references, and with them it does not compile: {}",
                                fancy_reason(&fancy_err.to_string())
                            ))
                        } else {
                            Err(linear)
                        }
                    }
                }
            }
        }
    }

    /// The pattern's answer on `haystack` (matched anywhere).
    pub fn test(&self, haystack: &str) -> Verdict {
        match self {
            Pattern::Linear(r) => {
                if r.is_match(haystack) {
                    Verdict::Match
                } else {
                    Verdict::NoMatch
                }
            }
            Pattern::Backtracking(b) => {
                if b.undecided.load(Ordering::Relaxed) >= UNDECIDED_CAP {
                    b.undecided.fetch_add(1, Ordering::Relaxed);
                    return Verdict::Undecided;
                }
                match b.regex.is_match(haystack) {
                    Ok(true) => Verdict::Match,
                    Ok(false) => Verdict::NoMatch,
                    Err(_) => {
                        b.undecided.fetch_add(1, Ordering::Relaxed);
                        Verdict::Undecided
                    }
                }
            }
        }
    }

    /// True when the pattern matches anywhere in `haystack`. An undecided value does not
    /// match (decision D9); [`Pattern::undecided`] counts them, so the answer can say so.
    pub fn is_match(&self, haystack: &str) -> bool {
        self.test(haystack) == Verdict::Match
    }

    /// How many values this pattern (and its clones) left undecided since it was compiled.
    pub fn undecided(&self) -> u64 {
        match self {
            Pattern::Linear(_) => 0,
            Pattern::Backtracking(b) => b.undecided.load(Ordering::Relaxed),
        }
    }

    /// True for a pattern that needs the backtracking engine.
    pub fn backtracks(&self) -> bool {
        matches!(self, Pattern::Backtracking(_))
    }
}

/// `fancy-regex`'s error without its wrapping: "Error compiling regex: Regex error: error
/// building NFA" becomes "it is too large (its compiled form exceeds the size limit)".
fn fancy_reason(msg: &str) -> String {
    if msg.contains("NFA") || msg.contains("size limit") || msg.contains("too big") {
        "it is too large (its compiled form exceeds the size limit)".to_string()
    } else {
        msg.rsplit(": ").next().unwrap_or(msg).to_string()
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
    required_literals(source).into_iter().next()
}

/// Every literal (lower-case ASCII, at least two bytes) that every match of `source` contains,
/// longest first: the pieces of a top-level concatenation and what they require in turn
/// (`.*\.nakamura[0-9]*@contoso\.com` → `@contoso.com`, `.nakamura`). The engine keeps the
/// values holding all of them, so a pattern whose longest literal is in every value (a
/// domain) still runs only on the values holding its rarer one. Empty when
/// [`required_literal`] is `None`.
pub fn required_literals(source: &str) -> Vec<String> {
    let Some(hir) = regex_syntax::ParserBuilder::new()
        .case_insensitive(true)
        .build()
        .parse(source)
        .ok()
    else {
        return Vec::new();
    };
    let mut all = Vec::new();
    collect_required(&hir, &mut all);
    all.retain(|l| l.len() >= 2);
    all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    all.dedup();
    all
}

/// Pushes the literals every match of `h` contains (see [`required_literals`]).
fn collect_required(h: &regex_syntax::hir::Hir, out: &mut Vec<String>) {
    use regex_syntax::hir::HirKind;
    match h.kind() {
        HirKind::Capture(c) => collect_required(&c.sub, out),
        HirKind::Repetition(r) if r.min >= 1 => collect_required(&r.sub, out),
        HirKind::Concat(parts) => {
            let mut run = String::new();
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
                            out.push(std::mem::take(&mut run));
                            collect_required(p, out);
                        }
                    },
                }
            }
            out.push(run);
        }
        HirKind::Literal(l) => {
            if let Some(t) = std::str::from_utf8(&l.0).ok().filter(|t| t.is_ascii()) {
                out.push(t.to_ascii_lowercase());
            }
        }
        _ => out.extend(single_char(h).map(|c| (c as char).to_string())),
    }
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
        // Look-around that is also too large names the size, not the look-around.
        let big = Pattern::new("(?=a)(b{1000}){1000}x")
            .err()
            .unwrap_or_default();
        assert!(big.contains("too large"), "{big}");
        assert_eq!(
            Pattern::new("*@domain.ext").err().as_deref(),
            Some("repetition operator missing expression")
        );
        let p = Pattern::new("^da").ok();
        assert!(p.is_some_and(|p| p.is_match("David") && !p.is_match("aDa")));
    }

    /// A value that exhausts the backtrack limit is undecided and counted; after
    /// [`UNDECIDED_CAP`] of them the pattern stops trying.
    #[test]
    fn undecided_values_are_counted_and_capped() {
        let p = Pattern::new("^(?=a)(?:(a|a)*!x|aa)").expect("compiles");
        assert!(p.backtracks());
        let long = "a".repeat(40);
        assert_eq!(p.test(&long), Verdict::Undecided);
        assert_eq!(p.undecided(), 1);
        assert_eq!(
            p.clone().test("b"),
            Verdict::NoMatch,
            "a quick no-match still decides"
        );
        // As if the pattern had left the cap's worth undecided already.
        if let Pattern::Backtracking(b) = &p {
            b.undecided.store(UNDECIDED_CAP, Ordering::Relaxed);
        }
        let t = std::time::Instant::now();
        assert_eq!(p.test("aa"), Verdict::Undecided, "capped: not tried");
        assert!(t.elapsed().as_millis() < 5);
        assert_eq!(p.undecided(), UNDECIDED_CAP + 1);
    }

    /// The fully compiled DFA answers as `regex` does: anchors, classes, case folding (ASCII
    /// and not), alternations, empty matches, values with non-ASCII text.
    #[test]
    fn dfa_agrees_with_regex() {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just("a"),
            Just("B"),
            Just("\\."),
            Just("."),
            Just("[^.@]+"),
            Just("[0-9]{2}"),
            Just("(a|bc)"),
            Just("é"),
            Just("ß"),
            Just("^"),
            Just("$"),
            Just("x*"),
            Just("@contoso\\.com"),
            Just("\\d"),
            Just("\\s"),
        ];
        let pattern = proptest::collection::vec(piece, 0..6).prop_map(|v| v.concat());
        let value = "[aAbBcC.@é ÉßSs0-9xX]{0,12}";
        let mut runner = proptest::test_runner::TestRunner::default();
        let result = runner.run(&(pattern, value), |(src, v)| {
            let Ok(Pattern::Linear(l)) = Pattern::new(&src) else {
                return Ok(());
            };
            prop_assert!(l.dfa().is_some(), "{src}: no DFA");
            prop_assert_eq!(l.is_match(&v), l.regex.is_match(&v), "{} on {:?}", src, v);
            Ok(())
        });
        assert!(result.is_ok(), "{result:?}");
        // A Unicode word boundary has no DFA: `regex` answers.
        let Ok(Pattern::Linear(l)) = Pattern::new("\\bvance\\b") else {
            panic!("compiles");
        };
        assert!(l.dfa().is_none());
        assert!(l.is_match("adele vance") && !l.is_match("advancement"));
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
        // Every literal, longest first: the domain (in every value) and the rarer name.
        assert_eq!(
            super::required_literals(".*\\.nakamura[0-9]*@contoso\\.com"),
            vec!["@contoso.com".to_string(), ".nakamura".to_string()]
        );
        assert_eq!(
            super::required_literals("^(ab)+c?de(fg|hi)"),
            vec!["ab".to_string(), "de".to_string()]
        );
        assert!(super::required_literals("^(Megan|Miriam) ").is_empty());
        assert!(super::required_literals("(?<=a)bc").is_empty());
    }
}
