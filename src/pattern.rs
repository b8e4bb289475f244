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
}
