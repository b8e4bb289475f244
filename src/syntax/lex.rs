//! The lexer: rule text → [`Token`]s with byte spans, built on `logos`.
//!
//! Lexing never fails. Problems become [`Diagnostic`]s and the lexer recovers so the parser can
//! report more: a typographic dash still yields an operator token, a curly-quoted string still
//! yields a string, a stray `*` or `\` is dropped. Each recovery has an error diagnostic, so a
//! recovered rule is never reported valid.
//!
//! String literals (Microsoft Learn, "Dynamic membership rules for groups", *Supported values*):
//! - `"…"`: `` `" `` is a double quote, `''` a single quote, `` `' `` and ``` `` ``` also escape
//!   (PowerShell's backtick); a lone `'` is kept with a warning (DR207).
//! - `'…'`: `''` is a single quote; backtick escapes as above.
//! - `\"` followed by more text is a JSON escape pasted from a Graph body (DR005): reported, then
//!   read as a quote.

use crate::diag::{Code, Diagnostic};
use crate::span::Span;
use logos::Logos;

/// A token with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Where it is.
    pub span: Span,
    /// True when whitespace (or the start of the rule) immediately precedes the token.
    pub space_before: bool,
}

/// Token kinds. Words are classified by the parser, which knows whether it expects an operand,
/// an operator or a value (`eq` is an operator after a property; `true` is a value).
#[derive(Clone, Debug, PartialEq)]
pub enum TokenKind {
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `-eq`, `-and`, `-startsWith`…: the word after the dash, as written.
    Dash(String),
    /// A word, possibly dotted: `user.department`, `and`, `true`, `system.now`, `_`, `P30D`.
    Word(String),
    /// `$null` (the word after `$`).
    Dollar(String),
    /// A string literal, escapes resolved.
    Str(String),
    /// An unquoted ISO 8601 date or date-time: `2020-06-10T18:13:20Z`.
    DateTime(String),
    /// An unquoted GUID (always an error later: strings must be quoted).
    Guid(String),
    /// An unquoted number.
    Number(String),
}

impl TokenKind {
    /// A short description for "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::LParen => "`(`".into(),
            TokenKind::RParen => "`)`".into(),
            TokenKind::LBracket => "`[`".into(),
            TokenKind::RBracket => "`]`".into(),
            TokenKind::Comma => "`,`".into(),
            TokenKind::Dash(w) => format!("`-{w}`"),
            TokenKind::Word(w) => format!("`{w}`"),
            TokenKind::Dollar(w) => format!("`${w}`"),
            TokenKind::Str(s) => format!("string {s:?}"),
            TokenKind::DateTime(s) | TokenKind::Guid(s) | TokenKind::Number(s) => format!("`{s}`"),
        }
    }
}

/// Result of scanning a quoted string.
#[derive(Clone, Debug, PartialEq, Default)]
struct StrScan {
    value: String,
    /// Diagnostics, with spans relative to the opening quote.
    diags: Vec<(Code, usize, usize, &'static str, &'static str)>,
}

#[derive(Logos, Debug, Clone, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
enum Raw {
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[regex(r"-[A-Za-z]+")]
    Dash,
    #[regex(r"[\u{2010}\u{2011}\u{2012}\u{2013}\u{2014}\u{2212}\u{FE63}\u{FF0D}][A-Za-z]+")]
    TypoDash,
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")]
    Word,
    #[regex(r"\$[A-Za-z_][A-Za-z0-9_]*")]
    Dollar,
    #[token("\"", |lex| bump_string(lex, Quote::Double))]
    DStr(StrScan),
    #[token("'", |lex| bump_string(lex, Quote::Single))]
    SStr(StrScan),
    #[regex(r"[\u{201C}\u{201D}\u{201E}\u{00AB}\u{00BB}]", |lex| bump_string(lex, Quote::CurlyDouble))]
    CurlyDStr(StrScan),
    #[regex(r"[\u{2018}\u{2019}\u{201A}]", |lex| bump_string(lex, Quote::CurlySingle))]
    CurlySStr(StrScan),
    #[token("`")]
    Backtick,
    #[regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|z|[+-][0-9]{2}:?[0-9]{2})?)?")]
    DateTime,
    #[regex(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")]
    Guid,
    #[regex(r"[0-9]+(\.[0-9]+)?")]
    Number,
}

#[derive(Clone, Copy, PartialEq)]
enum Quote {
    Double,
    Single,
    CurlyDouble,
    CurlySingle,
}

fn bump_string(lex: &mut logos::Lexer<'_, Raw>, quote: Quote) -> StrScan {
    let (scan, used) = scan_string(lex.remainder(), quote);
    lex.bump(used);
    scan
}

/// Scans a string body starting right after its opening quote. The returned scan's `value` is
/// the unescaped content; the number of bytes consumed (including the closing quote) is
/// returned through `StrScan` via the caller bumping the lexer.
fn scan_string(rest: &str, quote: Quote) -> (StrScan, usize) {
    let mut scan = StrScan::default();
    let closers: &[char] = match quote {
        Quote::Double => &['"'],
        Quote::Single => &['\''],
        Quote::CurlyDouble => &[
            '"', '\u{201C}', '\u{201D}', '\u{201E}', '\u{00AB}', '\u{00BB}',
        ],
        Quote::CurlySingle => &['\'', '\u{2018}', '\u{2019}', '\u{201A}'],
    };
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < rest.len() {
        let Some(c) = rest.get(i..).and_then(|s| s.chars().next()) else {
            break;
        };
        let next = rest.get(i + c.len_utf8()..).and_then(|s| s.chars().next());
        match c {
            '`' if matches!(next, Some('"' | '\'' | '`')) => {
                scan.value.push(next.unwrap_or('`'));
                i += 2;
            }
            '\\' if quote == Quote::Double && next == Some('"') => {
                // `\"` then more string text: a JSON escape. `\"` at the end of a value (before
                // whitespace, `)`, `]`, `,` or the end) is a backslash closing the string.
                let after = bytes.get(i + 2).copied();
                let closes = matches!(
                    after,
                    None | Some(b' ' | b'\t' | b'\r' | b'\n' | b')' | b']' | b',')
                );
                if closes {
                    scan.value.push('\\');
                    return (scan, i + 2);
                }
                scan.diags.push((
                    Code::JsonEscape,
                    i,
                    i + 2,
                    "`\\\"` is a JSON escape; inside a rule a double quote is escaped with a backtick",
                    "write `\"` as `` `\" `` in the rule text; JSON escaping belongs only to the request body",
                ));
                scan.value.push('"');
                i += 2;
            }
            '\'' if quote != Quote::Single && quote != Quote::CurlySingle => {
                if next == Some('\'') {
                    scan.value.push('\'');
                    i += 2;
                } else {
                    if quote == Quote::Double {
                        scan.diags.push((
                            Code::LoneApostrophe,
                            i,
                            i + 1,
                            "a lone `'` inside a string; the documented escape is `''`",
                            "write `''` for an apostrophe: a rule re-saved with a lone `'` was reported to match nothing (azure-docs#68441)",
                        ));
                    }
                    scan.value.push('\'');
                    i += 1;
                }
            }
            '\'' if quote == Quote::Single && next == Some('\'') => {
                scan.value.push('\'');
                i += 2;
            }
            c if closers.contains(&c) => return (scan, i + c.len_utf8()),
            c => {
                scan.value.push(c);
                i += c.len_utf8();
            }
        }
    }
    // Unterminated. For a straight quote, a curly closing quote inside is the likely end.
    if matches!(quote, Quote::Double | Quote::Single) {
        let curly: &[char] = if quote == Quote::Double {
            &['\u{201C}', '\u{201D}']
        } else {
            &['\u{2018}', '\u{2019}']
        };
        if let Some(pos) = rest.find(curly) {
            let (mut again, _) = scan_string(rest.get(..pos).unwrap_or(""), quote);
            again.diags.retain(|d| d.0 != Code::UnterminatedString);
            let width = rest
                .get(pos..)
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8);
            again.diags.push((
                Code::TypographicQuote,
                pos,
                pos + width,
                "string closed with a curly quote",
                "use a straight quote `\"` (curly quotes come from word processors and web pages)",
            ));
            return (again, pos + width);
        }
    }
    scan.diags
        .push((Code::UnterminatedString, 0, rest.len(), "", ""));
    (scan, rest.len())
}

/// Lexes `src` into tokens, with diagnostics for whatever had to be recovered.
pub fn lex(src: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut tokens: Vec<Token> = Vec::new();
    let mut diags: Vec<Diagnostic> = Vec::new();
    let mut lexer = Raw::lexer(src);
    let mut pending_unknown: Option<Span> = None;
    let flush_unknown = |pending: &mut Option<Span>, diags: &mut Vec<Diagnostic>| {
        if let Some(span) = pending.take() {
            diags.push(unknown_char(src, span));
        }
    };
    while let Some(item) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(range.start, range.end);
        let space_before = span.start == 0
            || src
                .get(..span.start)
                .and_then(|s| s.chars().next_back())
                .is_some_and(char::is_whitespace);
        let raw = match item {
            Ok(raw) => raw,
            Err(()) => {
                pending_unknown = Some(match pending_unknown {
                    Some(p) if p.end == span.start => p.to(span),
                    Some(p) => {
                        diags.push(unknown_char(src, p));
                        span
                    }
                    None => span,
                });
                continue;
            }
        };
        flush_unknown(&mut pending_unknown, &mut diags);
        let text = span.slice(src);
        let kind = match raw {
            Raw::LParen => TokenKind::LParen,
            Raw::RParen => TokenKind::RParen,
            Raw::LBracket => TokenKind::LBracket,
            Raw::RBracket => TokenKind::RBracket,
            Raw::Comma => TokenKind::Comma,
            Raw::Dash => TokenKind::Dash(text.get(1..).unwrap_or("").to_string()),
            Raw::TypoDash => {
                let dash_len = text.chars().next().map_or(1, char::len_utf8);
                let word = text.get(dash_len..).unwrap_or("").to_string();
                diags.push(
                    Diagnostic::new(
                        Code::TypographicDash,
                        Span::new(span.start, span.start + dash_len),
                        format!("typographic dash in `{text}`; operators start with a plain hyphen"),
                    )
                    .with_help(format!(
                        "replace it with `-{word}` (en and em dashes come from documents and web pages, including some Microsoft examples)"
                    )),
                );
                TokenKind::Dash(word)
            }
            Raw::Word => TokenKind::Word(text.to_string()),
            Raw::Dollar => {
                let word = text.get(1..).unwrap_or("");
                if word.eq_ignore_ascii_case("null") {
                    TokenKind::Dollar(word.to_string())
                } else {
                    diags.push(
                        Diagnostic::new(
                            Code::PowerShellVariable,
                            span,
                            format!(
                                "`{text}` looks like a PowerShell variable that was never expanded"
                            ),
                        )
                        .with_help("substitute its value, in quotes, before saving the rule"),
                    );
                    TokenKind::Str(text.to_string())
                }
            }
            Raw::DStr(scan) | Raw::SStr(scan) | Raw::CurlyDStr(scan) | Raw::CurlySStr(scan) => {
                let open = text.chars().next().unwrap_or('"');
                let open_len = open.len_utf8();
                if open != '"' && open != '\'' {
                    diags.push(
                        Diagnostic::new(
                            Code::TypographicQuote,
                            Span::new(span.start, span.start + open_len),
                            "string opened with a curly quote",
                        )
                        .with_help("use straight quotes `\"…\"` (curly quotes come from word processors and web pages)"),
                    );
                }
                let base = span.start + open_len;
                for (code, s, e, msg, help) in scan.diags {
                    let d = if code == Code::UnterminatedString {
                        Diagnostic::new(
                            code,
                            Span::new(span.start, span.start + open_len),
                            "string literal is never closed",
                        )
                        .with_help("add the closing quote")
                    } else {
                        Diagnostic::new(code, Span::new(base + s, base + e), msg).with_help(help)
                    };
                    diags.push(d);
                }
                TokenKind::Str(scan.value)
            }
            Raw::Backtick => {
                diags.push(
                    Diagnostic::new(Code::StrayBacktick, span, "backtick outside a string literal")
                        .with_help("a backtick escapes a quote inside a string: to match the value \"Sales\" with its quotes write `\"`\"Sales`\"\"`"),
                );
                continue;
            }
            Raw::DateTime => TokenKind::DateTime(text.to_string()),
            Raw::Guid => TokenKind::Guid(text.to_string()),
            Raw::Number => TokenKind::Number(text.to_string()),
        };
        tokens.push(Token {
            kind,
            span,
            space_before,
        });
    }
    flush_unknown(&mut pending_unknown, &mut diags);
    (tokens, diags)
}

fn unknown_char(src: &str, span: Span) -> Diagnostic {
    let text = span.slice(src);
    let first = text.chars().next().unwrap_or(' ');
    let help = match first {
        '*' => {
            "asterisks are markdown emphasis copied from a web page (`*null*` means `null`): remove them"
        }
        '\\' => {
            "a backslash outside a string is usually a markdown escape (`\\_` means `_`): remove it"
        }
        '\u{00A0}' | '\u{2002}' | '\u{2003}' | '\u{2009}' | '\u{202F}' => {
            "a non-breaking or typographic space: replace it with a plain space"
        }
        '\u{201C}' | '\u{201D}' => "use straight quotes `\"`",
        '=' | '!' | '<' | '>' => "comparisons are written as operators: `-eq`, `-ne`, `-ge`, `-le`",
        '&' | '|' => "combine expressions with `-and` and `-or`",
        '-' => "operators are written `-name`, e.g. `-eq`",
        _ => "remove it; rule text holds only properties, operators, values, parentheses and lists",
    };
    Diagnostic::new(Code::UnknownCharacter, span, format!("unexpected `{text}`")).with_help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        lex(src).0.into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(kinds(r#""a`"b""#), vec![TokenKind::Str("a\"b".into())]);
        assert_eq!(kinds(r#""it''s""#), vec![TokenKind::Str("it's".into())]);
        assert_eq!(kinds("'it''s'"), vec![TokenKind::Str("it's".into())]);
        assert_eq!(kinds(r#""a``""#), vec![TokenKind::Str("a`".into())]);
        let (_, d) = lex(r#""abc"#);
        assert_eq!(d[0].code, Code::UnterminatedString);
    }

    #[test]
    fn json_escape_recovers() {
        let (t, d) = lex(r#""a\"b\"""#);
        assert_eq!(t[0].kind, TokenKind::Str("a\"b\"".into()));
        assert_eq!(d[0].code, Code::JsonEscape);
        let (t, d) = lex(r#""C:\" "#);
        assert_eq!(t[0].kind, TokenKind::Str("C:\\".into()));
        assert!(d.is_empty());
    }

    #[test]
    fn curly_close_recovers() {
        let (t, d) = lex("(device.displayName -eq \"Rob Iphone\u{201D})");
        assert_eq!(t[3].kind, TokenKind::Str("Rob Iphone".into()));
        assert_eq!(t[4].kind, TokenKind::RParen);
        assert_eq!(d[0].code, Code::TypographicQuote);
    }

    #[test]
    fn words_dashes_and_literals() {
        assert_eq!(
            kinds("user.department-eq\"x\""),
            vec![
                TokenKind::Word("user.department".into()),
                TokenKind::Dash("eq".into()),
                TokenKind::Str("x".into())
            ]
        );
        assert_eq!(
            kinds("2020-06-10T18:13:20Z"),
            vec![TokenKind::DateTime("2020-06-10T18:13:20Z".into())]
        );
        assert_eq!(
            kinds("76ad43c9-32c5-45e8-a272-7b58b58f596d"),
            vec![TokenKind::Guid(
                "76ad43c9-32c5-45e8-a272-7b58b58f596d".into()
            )]
        );
        let (t, d) = lex("user.mail \u{2013}ne null");
        assert_eq!(t[1].kind, TokenKind::Dash("ne".into()));
        assert_eq!(d[0].code, Code::TypographicDash);
    }

    #[test]
    fn unknown_characters_merge_and_drop() {
        let (t, d) = lex("user.employeeId -ne *null*");
        assert_eq!(t.len(), 3);
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.code == Code::UnknownCharacter));
    }
}
