//! Whole-dictionary passes: `-contains`, `-startsWith` and `-endsWith` with an ASCII literal
//! decided for every entry of a dictionary at once, over its concatenated text
//! ([`Dict::raw`]), instead of a call per value.
//!
//! Comparisons here are ASCII-case-insensitive on the raw bytes. That is exact for ASCII
//! entries; non-ASCII entries (which compare by their Unicode-folded form) are fixed up by the
//! caller from [`Dict::unicode_entries`]. Bit 0 (null) of every result is clear.

use crate::bitmap::Bitmap;
use crate::table::Dict;
use rayon::prelude::*;

/// Text per parallel segment of [`decide`] (256 KiB; rounded to whole 64-code words, at least one).
const SEGMENT_BYTES: usize = 1 << 18;

/// Eight bytes with their ASCII capitals lower-cased, every other byte unchanged (SWAR: a byte
/// is a capital when its low seven bits are in `A..=Z` and its high bit is clear).
#[inline]
fn fold8(x: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = x & !HIGH;
    // The high bit of each byte is set where `low7 >= 'A'`, resp. `low7 > 'Z'` (no carry
    // crosses bytes: 0x7f + 0x3f < 0x100).
    let ge_a = low7 + ONES * u64::from(0x80 - b'A');
    let gt_z = low7 + ONES * u64::from(0x80 - b'Z' - 1);
    let capital = ge_a & !gt_z & !x & HIGH;
    x | (capital >> 2)
}

#[inline]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(bytes) {
        *d = *s;
    }
    u64::from_le_bytes(w)
}

/// A needle lower-cased and cut into little-endian words, compared against text eight bytes
/// at a time with [`fold8`].
struct Folded {
    bytes: Vec<u8>,
    words: Vec<u64>,
    /// The bytes of the last word that belong to the needle.
    last_mask: u64,
}

impl Folded {
    fn new(needle: &str) -> Folded {
        let bytes = needle.as_bytes().to_ascii_lowercase();
        let words = bytes.chunks(8).map(word).collect();
        let rem = bytes.len() % 8;
        let last_mask = if rem == 0 {
            u64::MAX
        } else {
            (1u64 << (8 * rem)) - 1
        };
        Folded {
            bytes,
            words,
            last_mask,
        }
    }

    /// True when `hay[p..p + len]` equals the needle ignoring ASCII case. Reads whole words
    /// (past the needle's end, masked) while the text lasts, then bytes.
    #[inline]
    fn matches_at(&self, hay: &[u8], p: usize) -> bool {
        let full = self.words.len() * 8;
        match hay.get(p..p + full) {
            Some(w) => {
                let last = self.words.len().saturating_sub(1);
                w.chunks_exact(8)
                    .zip(&self.words)
                    .enumerate()
                    .all(|(i, (c, &nw))| {
                        let mask = if i == last { self.last_mask } else { u64::MAX };
                        (fold8(word(c)) ^ nw) & mask == 0
                    })
            }
            None => hay.get(p..p + self.bytes.len()).is_some_and(|w| {
                w.iter()
                    .zip(&self.bytes)
                    .all(|(a, b)| a.to_ascii_lowercase() == *b)
            }),
        }
    }
}

/// A test one pass over a dictionary's text decides for every entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bulk {
    /// The entry contains the literal.
    Contains,
    /// The entry starts with the literal.
    StartsWith,
    /// The entry ends with the literal.
    EndsWith,
}

/// Decides `tests` (each a kind and an ASCII literal) for every entry of `dict` in one pass:
/// one bitmap per test over the codes (bit `e + 1` for entry `e`, bit 0 clear).
///
/// The dictionary is cut into segments of whole 64-code words and about [`SEGMENT_BYTES`] of
/// text, decided in parallel. A `-contains` needle with a rare byte that case cannot change
/// ([`Search::Anchor`]) is found by `memchr` for that byte in the text as it is, then compared
/// whole; any other is searched with `memchr`'s SIMD `memmem` in the segment's text lower-cased
/// once into a scratch buffer (it stays in cache). A match counts only inside one entry, and
/// the search goes on at the next entry after a match, or after one crossing an entry's end
/// (every later start in that entry crosses it too). The affixes are one comparison per entry
/// in place, eight bytes at a time.
pub(super) fn decide(dict: &Dict, tests: &[(Bulk, &str)]) -> Vec<Bitmap> {
    decide_segmented(dict, tests, SEGMENT_BYTES)
}

/// Word ranges `a..b` (codes `64a..64b`) of about `bytes` of text each, one word at least.
fn segments(ends: &[u32], bytes: usize) -> Vec<(usize, usize)> {
    let words = (ends.len() + 1).div_ceil(64);
    let mut out = Vec::new();
    let mut a = 0usize;
    while a < words {
        let base = entry_start(ends, (a * 64).saturating_sub(1));
        let target = base.saturating_add(bytes);
        // Entries before `fit` end within the target; codes below `64b` are entries below
        // `64b - 1`.
        let fit = ends.partition_point(|&e| (e as usize) <= target);
        let b = (fit + 1).div_euclid(64).clamp(a + 1, words);
        out.push((a, b));
        a = b;
    }
    out
}

/// Where entry `e` starts in the text (the end of the one before it).
#[inline]
fn entry_start(ends: &[u32], e: usize) -> usize {
    e.checked_sub(1)
        .and_then(|p| ends.get(p))
        .map_or(0, |&x| x as usize)
}

/// How a `-contains` test finds its candidates.
enum Search {
    /// The needle has a byte no case changes and few values hold (`#`, `-`, …): at `.0` in
    /// the needle, searched for with `memchr` in the text as it is, each hit then compared
    /// whole. No lower-casing.
    Anchor(usize, u8),
    /// Otherwise `memmem` on the lower-cased text.
    Lowered(Box<memchr::memmem::Finder<'static>>),
}

/// What one test does over a segment.
enum Pass {
    Contains(Search),
    Affix { prefix: bool },
}

/// A test ready to run: its needle folded, and how it runs.
struct Prepared {
    folded: Folded,
    pass: Pass,
}

impl Prepared {
    fn new(kind: Bulk, needle: &str) -> Prepared {
        let folded = Folded::new(needle);
        let pass = match kind {
            Bulk::Contains => {
                let anchor = folded
                    .bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| anchor_rank(**b) > 0)
                    .max_by_key(|(i, b)| (anchor_rank(**b), std::cmp::Reverse(*i)));
                Pass::Contains(match anchor {
                    Some((at, &byte)) => Search::Anchor(at, byte),
                    None => Search::Lowered(Box::new(
                        memchr::memmem::Finder::new(&folded.bytes).into_owned(),
                    )),
                })
            }
            Bulk::StartsWith => Pass::Affix { prefix: true },
            Bulk::EndsWith => Pass::Affix { prefix: false },
        };
        Prepared { folded, pass }
    }
}

/// How well an ASCII byte anchors a search in directory values (0: not at all). Letters change
/// with case; digits, and the punctuation of names and addresses (`.`, `@`, `:`, `;`, `,`,
/// space, `'`), are in most values. Other punctuation is rare; `-` and `_` less so.
fn anchor_rank(b: u8) -> u8 {
    match b {
        b'-' | b'_' => 1,
        b'.' | b'@' | b':' | b';' | b',' | b' ' | b'\'' => 0,
        b if b.is_ascii_punctuation() => 2,
        _ => 0,
    }
}

/// One segment: codes `64a..64b`, entries `first..end`, their text `start..stop`.
struct Segment<'d> {
    a: usize,
    b: usize,
    first: usize,
    end: usize,
    start: usize,
    stop: usize,
    hay: &'d [u8],
    ends: &'d [u32],
}

impl Segment<'_> {
    /// Sets entry `e`'s bit in the segment's words.
    fn set(&self, words: &mut [u64], e: usize) {
        let c = e + 1 - self.a * 64;
        if let Some(w) = words.get_mut(c / 64) {
            *w |= 1 << (c % 64);
        }
    }

    /// Moves `entry` on to the entry holding text byte `p` (ends increase; empty entries hold
    /// nothing) and returns where that entry ends.
    fn holding(&self, entry: &mut usize, p: usize) -> usize {
        while self.ends.get(*entry).is_some_and(|&z| (z as usize) <= p) && *entry < self.end {
            *entry += 1;
        }
        self.ends.get(*entry).map_or(self.stop, |&z| z as usize)
    }

    /// `-contains` by `memmem` over `lowered` (the segment's text lower-cased). After any
    /// match the search goes on at the next entry: a match crossing an entry's end means every
    /// later one starting in it does too.
    fn contains_lowered(
        &self,
        t: &Prepared,
        finder: &memchr::memmem::Finder<'_>,
        lowered: &[u8],
    ) -> Vec<u64> {
        let mut words = vec![0u64; self.b - self.a];
        let mut entry = self.first;
        let mut from = self.start;
        while let Some(off) = lowered
            .get(from - self.start..)
            .and_then(|x| finder.find(x))
        {
            let p = from + off;
            let entry_end = self.holding(&mut entry, p);
            if p + t.folded.bytes.len() <= entry_end {
                self.set(&mut words, entry);
            }
            from = entry_end.max(p + 1);
        }
        words
    }

    /// `-contains` by `memchr` for the anchor byte at `at` of the needle, in the text as it
    /// is, then a folded compare of the whole needle.
    fn contains_anchored(&self, t: &Prepared, at: usize, byte: u8) -> Vec<u64> {
        let mut words = vec![0u64; self.b - self.a];
        let mut entry = self.first;
        let mut from = self.start + at;
        while let Some(off) = self
            .hay
            .get(from..self.stop)
            .and_then(|x| memchr::memchr(byte, x))
        {
            let p = from + off - at;
            let entry_end = self.holding(&mut entry, p);
            if p + t.folded.bytes.len() > entry_end {
                // Crosses the entry's end, as every later start in it.
                from = (entry_end + at).max(from + off + 1);
            } else if t.folded.matches_at(self.hay, p) {
                self.set(&mut words, entry);
                from = (entry_end + at).max(from + off + 1);
            } else {
                from += off + 1;
            }
        }
        words
    }

    /// `-startsWith` (`prefix`) or `-endsWith`: one folded compare per entry in place (cheaper
    /// than lower-casing the segment for one comparison each), a word's bits gathered in a
    /// register.
    fn affix(&self, t: &Prepared, prefix: bool) -> Vec<u64> {
        let len = t.folded.bytes.len();
        let mut words = vec![0u64; self.b - self.a];
        let mut s = self.start;
        // Codes `64w..64w + 64` are entries `64w - 1..64w + 63`.
        for (i, out) in words.iter_mut().enumerate() {
            let code0 = (self.a + i) * 64;
            let mut m = 0u64;
            for bit in usize::from(code0 == 0)..64 {
                let e = code0 + bit - 1;
                if e >= self.end {
                    break;
                }
                let z = self.ends.get(e).map_or(s, |&x| x as usize);
                if z - s >= len {
                    let p = if prefix { s } else { z - len };
                    m |= u64::from(t.folded.matches_at(self.hay, p)) << bit;
                }
                s = z;
            }
            *out = m;
        }
        words
    }
}

fn decide_segmented(dict: &Dict, tests: &[(Bulk, &str)], segment_bytes: usize) -> Vec<Bitmap> {
    let (text, ends) = dict.raw();
    let hay = text.as_bytes();
    let n = dict.len();
    let prepared: Vec<Prepared> = tests
        .iter()
        .map(|&(kind, needle)| Prepared::new(kind, needle))
        .collect();
    let lower = prepared
        .iter()
        .any(|t| matches!(t.pass, Pass::Contains(Search::Lowered(_))));
    let parts: Vec<Vec<Vec<u64>>> = segments(ends, segment_bytes)
        .into_par_iter()
        .map_init(Vec::new, |lowered: &mut Vec<u8>, (a, b)| {
            let (first, end) = ((a * 64).saturating_sub(1), (b * 64 - 1).min(n));
            let start = entry_start(ends, first);
            let stop = entry_start(ends, end).max(start);
            let seg = Segment {
                a,
                b,
                first,
                end,
                start,
                stop,
                hay,
                ends,
            };
            lowered.clear();
            if lower {
                lowered.extend(
                    hay.get(start..stop)
                        .unwrap_or(&[])
                        .iter()
                        .map(u8::to_ascii_lowercase),
                );
            }
            prepared
                .iter()
                .map(|t| match &t.pass {
                    Pass::Contains(Search::Lowered(finder)) => {
                        seg.contains_lowered(t, finder, lowered)
                    }
                    Pass::Contains(Search::Anchor(at, byte)) => {
                        seg.contains_anchored(t, *at, *byte)
                    }
                    Pass::Affix { prefix } => seg.affix(t, *prefix),
                })
                .collect()
        })
        .collect();
    (0..tests.len())
        .map(|t| {
            let mut words = Vec::with_capacity((n + 1).div_ceil(64));
            for part in &parts {
                if let Some(w) = part.get(t) {
                    words.extend_from_slice(w);
                }
            }
            Bitmap::from_words(words, n + 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold8_lowers_capitals_only() {
        let all: Vec<u8> = (0..=255u8).collect();
        for c in all.chunks(8) {
            let want: Vec<u8> = c.iter().map(u8::to_ascii_lowercase).collect();
            assert_eq!(fold8(word(c)), word(&want), "{c:?}");
        }
    }

    fn dict(values: &[&str]) -> Dict {
        let users: Vec<serde_json::Value> = values
            .iter()
            .enumerate()
            .map(|(i, v)| serde_json::json!({"id": format!("u{i}"), "department": v}))
            .collect();
        let table =
            crate::load::table_from_values(&users, crate::schema::ObjectType::User).expect("table");
        table
            .str_column(crate::table::ColumnKey::Prop("department"))
            .expect("column")
            .dict
            .clone()
    }

    /// Every segment size, from one word a segment up, gives what one segment gives, and
    /// what testing each value does; needles of every length up to 17 cut from the values
    /// and across their boundaries, in both cases, and words read past the text's end.
    #[test]
    fn passes_agree_with_per_value_tests() {
        let values = [
            "abcdefghijklmnopq",
            "ABCDEFGH",
            "",
            "aba",
            "xab",
            "aba",
            "Smtp:Adele.Vance@Contoso.com",
            "[@`{",
            "a-b-c#d#e",
            "z",
        ];
        // Distinct entries enough for several words, so segments split.
        let many: Vec<String> = (0..300)
            .map(|i| match i {
                i if i < values.len() => values[i].to_string(),
                i if i % 2 == 0 => format!("{}{i}", values[i % values.len()]),
                i => format!("{i}{}", values[i % values.len()].to_ascii_uppercase()),
            })
            .collect();
        let d = dict(&many.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(d.len() > 256, "{} entries", d.len());
        let joined: String = values.concat();
        let mut needles: Vec<String> = Vec::new();
        for i in 0..joined.len() {
            for j in i + 1..=(i + 17).min(joined.len()) {
                if let Some(n) = joined.get(i..j) {
                    needles.push(n.to_string());
                    needles.push(n.to_ascii_uppercase());
                }
            }
        }
        for needle in &needles {
            let low = needle.to_ascii_lowercase();
            let tests = [
                (Bulk::Contains, needle.as_str()),
                (Bulk::StartsWith, needle.as_str()),
                (Bulk::EndsWith, needle.as_str()),
            ];
            let all = decide_segmented(&d, &tests, usize::MAX);
            for seg in [0, 1, 3, 8, 20, 700] {
                assert_eq!(decide_segmented(&d, &tests, seg), all, "{needle} / {seg}");
            }
            let [whole, starts, ends] = &all[..] else {
                panic!("three results")
            };
            for i in 0..d.len() {
                let v = d.get(i).to_ascii_lowercase();
                assert_eq!(whole.get(i + 1), v.contains(&low), "{needle} in {v}");
                assert_eq!(
                    starts.get(i + 1),
                    v.starts_with(&low),
                    "{v} starts {needle}"
                );
                assert_eq!(ends.get(i + 1), v.ends_with(&low), "{v} ends {needle}");
            }
            assert!(!whole.get(0) && !starts.get(0) && !ends.get(0));
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn dict(values: &[String]) -> Dict {
        let users: Vec<serde_json::Value> = values
            .iter()
            .enumerate()
            .map(|(i, v)| serde_json::json!({"id": format!("u{i}"), "department": v}))
            .collect();
        crate::load::table_from_values(&users, crate::schema::ObjectType::User)
            .ok()
            .and_then(|t| {
                t.str_column(crate::table::ColumnKey::Prop("department"))
                    .map(|c| c.dict.clone())
            })
            .unwrap_or_default()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// Random dictionaries (both cases, anchor bytes, address punctuation, non-ASCII
        /// letters, empty values), random needles and segment sizes: every pass gives, for
        /// every entry, what an ASCII-case-insensitive test of its bytes gives.
        #[test]
        fn passes_agree_on_random_dictionaries(
            values in proptest::collection::vec("[abAB#\\-.@1é\u{212A}]{0,10}", 1..300),
            needles in proptest::collection::vec("[abAB#\\-.@1]{1,5}", 1..5),
            segment in 0usize..600,
        ) {
            let d = dict(&values);
            let mut tests = Vec::new();
            for n in &needles {
                for kind in [Bulk::Contains, Bulk::StartsWith, Bulk::EndsWith] {
                    tests.push((kind, n.as_str()));
                }
            }
            let got = decide_segmented(&d, &tests, segment);
            prop_assert_eq!(got.len(), tests.len());
            for (bits, (kind, needle)) in got.iter().zip(&tests) {
                let low = needle.to_ascii_lowercase();
                prop_assert!(!bits.get(0), "null never matches");
                for e in 0..d.len() {
                    let v = d.get(e).to_ascii_lowercase();
                    let want = match kind {
                        Bulk::Contains => v.contains(&low),
                        Bulk::StartsWith => v.starts_with(&low),
                        Bulk::EndsWith => v.ends_with(&low),
                    };
                    prop_assert_eq!(bits.get(e + 1), want, "{:?} {:?} on {:?}", kind, needle, v);
                }
            }
        }
    }
}
