//! String literals of the files rules live in, decoded with a map from every byte of the
//! decoded text back to the byte of the source it came from, so a diagnostic's span in a rule
//! lands on the right line and column of the file, escapes included.

/// The escape language of a literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escapes {
    /// JSON (RFC 8259 §7): `\" \\ \/ \b \f \n \r \t \uXXXX`, surrogate pairs joined.
    Json,
    /// HCL native syntax quoted strings: `\n \r \t \" \\ \uXXXX \UXXXXXXXX`, and `$${` / `%%{`
    /// for a literal `${` / `%{`.
    Hcl,
    /// HCL heredocs: no backslash escapes, only `$${` and `%%{`.
    HclHeredoc,
    /// Bicep single-quoted strings: `\\ \' \n \r \t \$ \u{X…}`.
    Bicep,
    /// None (plain rule files, Bicep's `'''` strings).
    Raw,
}

/// A decoded literal: its text and, per byte of the text plus one past the end, the source
/// byte offset it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The literal's value.
    pub text: String,
    /// `map[i]` is the source offset of the text's byte `i`; `map[text.len()]` is the offset
    /// just past the literal's body.
    pub map: Vec<usize>,
}

impl Decoded {
    /// The source offset of text byte `i` (the end of the literal past the text).
    pub fn source(&self, i: usize) -> usize {
        self.map.get(i).or(self.map.last()).copied().unwrap_or(0)
    }

    /// A literal whose every byte maps to `at` (when the body could not be decoded the way the
    /// parser did, the whole literal is the best location).
    pub fn at(text: String, at: usize) -> Decoded {
        let map = vec![at; text.len() + 1];
        Decoded { text, map }
    }
}

/// Decodes `src[start..end]`, the body of a literal (without its quotes), with `escapes`.
/// `None` when an escape is malformed (the caller falls back to [`Decoded::at`]).
pub fn decode(src: &str, start: usize, end: usize, escapes: Escapes) -> Option<Decoded> {
    let body = src.get(start..end)?;
    let mut text = String::with_capacity(body.len());
    let mut map = Vec::with_capacity(body.len() + 1);
    let mut it = body.char_indices().peekable();
    let push = |text: &mut String, map: &mut Vec<usize>, c: char, at: usize| {
        text.push(c);
        map.extend(std::iter::repeat_n(start + at, c.len_utf8()));
    };
    while let Some((i, c)) = it.next() {
        let rest = body.get(i..).unwrap_or("");
        // `$${` and `%%{` in HCL stand for `${` and `%{`.
        if matches!(escapes, Escapes::Hcl | Escapes::HclHeredoc)
            && (rest.starts_with("$${") || rest.starts_with("%%{"))
        {
            it.next();
            push(&mut text, &mut map, c, i);
            continue;
        }
        if c != '\\' || escapes == Escapes::Raw || escapes == Escapes::HclHeredoc {
            // Each byte of a plain character maps to its own byte.
            text.push(c);
            map.extend((0..c.len_utf8()).map(|k| start + i + k));
            continue;
        }
        let (_, e) = it.next()?;
        let decoded = match (escapes, e) {
            (_, 'n') => '\n',
            (_, 'r') => '\r',
            (_, 't') => '\t',
            (_, '\\') => '\\',
            (Escapes::Json | Escapes::Hcl, '"') => '"',
            (Escapes::Json, '/') => '/',
            (Escapes::Json, 'b') => '\u{8}',
            (Escapes::Json, 'f') => '\u{c}',
            (Escapes::Bicep, '\'') => '\'',
            (Escapes::Bicep, '$') => '$',
            (Escapes::Json | Escapes::Hcl, 'u') => {
                let code = hex(&mut it, 4)?;
                if (0xD800..0xDC00).contains(&code) && escapes == Escapes::Json {
                    // A surrogate pair: `\uD83D\uDE00`.
                    let (_, b) = it.next()?;
                    let (_, u) = it.next()?;
                    if b != '\\' || u != 'u' {
                        return None;
                    }
                    let low = hex(&mut it, 4)?;
                    char::from_u32(0x10000 + ((code - 0xD800) << 10) + (low.checked_sub(0xDC00)?))?
                } else {
                    char::from_u32(code)?
                }
            }
            (Escapes::Hcl, 'U') => char::from_u32(hex(&mut it, 8)?)?,
            (Escapes::Bicep, 'u') => {
                if it.next()?.1 != '{' {
                    return None;
                }
                let mut code = 0u32;
                loop {
                    let (_, h) = it.next()?;
                    if h == '}' {
                        break;
                    }
                    code = code.checked_mul(16)?.checked_add(h.to_digit(16)?)?;
                }
                char::from_u32(code)?
            }
            _ => return None,
        };
        push(&mut text, &mut map, decoded, i);
    }
    map.push(end);
    Some(Decoded { text, map })
}

fn hex(it: &mut std::iter::Peekable<std::str::CharIndices<'_>>, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for _ in 0..n {
        v = v * 16 + it.next()?.1.to_digit(16)?;
    }
    Some(v)
}

/// 1-based line and column (in Unicode scalar values) of byte `offset` of `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_map_to_their_source_bytes() {
        // `\"` is two source bytes for one decoded byte.
        let src = r#"x = "user.department -eq \"Sales\"""#;
        let start = src.find('"').unwrap_or(0) + 1;
        let end = src.len() - 1;
        let d = decode(src, start, end, Escapes::Hcl).expect("decodes");
        assert_eq!(d.text, r#"user.department -eq "Sales""#);
        let q = d.text.find('"').unwrap_or(0);
        assert_eq!(&src[d.source(q)..d.source(q) + 2], "\\\"");
        assert_eq!(&src[d.source(q + 1)..d.source(q + 1) + 5], "Sales");
        assert_eq!(d.source(d.text.len()), end);
    }

    #[test]
    fn json_surrogates_and_bicep_unicode() {
        let d = decode(r#"a\uD83D\uDE00b"#, 0, 14, Escapes::Json).expect("decodes");
        assert_eq!(d.text, "a😀b");
        assert_eq!(d.source(5), 13);
        let d = decode(r"it\'s \u{1F600}", 0, 15, Escapes::Bicep).expect("decodes");
        assert_eq!(d.text, "it's 😀");
        assert_eq!(decode(r"\q", 0, 2, Escapes::Json), None);
    }

    #[test]
    fn lines_and_columns_count_characters() {
        assert_eq!(line_col("ab\nçd", 5), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }
}
