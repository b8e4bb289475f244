//! Dictionaries: the distinct strings of a column, stored once, and their builder.

use super::*;

/// The distinct strings of a column, each stored once in one buffer, with their case-folded
/// (Unicode lower-case, decision D2) forms.
///
/// ASCII entries fold on the fly (ASCII lower-casing into a scratch buffer is a few
/// nanoseconds); only non-ASCII entries keep a folded copy, made once when the table is finished.
/// A high-cardinality column stops deduplicating (see [`HIGH_CARDINALITY`]), so an entry may
/// then repeat; every consumer decides per entry, which stays correct.
#[derive(Clone, Debug, Default)]
pub struct Dict {
    pub(super) text: String,
    pub(super) ends: Vec<u32>,
    /// Folded forms of the non-ASCII entries: entry → range in `unicode_text`.
    pub(super) unicode: HashMap<u32, (u32, u32)>,
    pub(super) unicode_text: String,
}

pub(super) fn slice<'a>(text: &'a str, ends: &[u32], i: usize) -> &'a str {
    let start = if i == 0 {
        0
    } else {
        ends.get(i - 1).map_or(0, |&e| e as usize)
    };
    let end = ends.get(i).map_or(start, |&e| e as usize);
    text.get(start..end).unwrap_or("")
}

impl Dict {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the column has no non-null value.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Entry `i` (0-based: code `i + 1`) as loaded.
    pub fn get(&self, i: usize) -> &str {
        slice(&self.text, &self.ends, i)
    }

    /// Entry `i` as `(original, text)` for [`crate::program::StrPred::test`]: `text` is the
    /// entry itself when ASCII (compared ASCII-case-insensitively), else its folded form.
    #[inline]
    pub fn text(&self, i: usize) -> (&str, &str) {
        let s = self.get(i);
        if s.is_ascii() {
            return (s, s);
        }
        let folded = self
            .unicode
            .get(&(i as u32))
            .and_then(|&(a, b)| self.unicode_text.get(a as usize..b as usize))
            .unwrap_or(s);
        (s, folded)
    }

    /// The concatenated text of all entries and their end offsets (entry `i` is
    /// `text[ends[i - 1]..ends[i]]`), for scans over a whole column.
    pub fn raw(&self) -> (&str, &[u32]) {
        (&self.text, &self.ends)
    }

    /// Indices of the entries that are not ASCII (they have a stored folded form).
    pub fn unicode_entries(&self) -> impl Iterator<Item = usize> + '_ {
        self.unicode.keys().map(|&i| i as usize)
    }

    /// Entry `i` folded (allocates; for lookups off the hot path).
    pub fn folded(&self, i: usize) -> String {
        match self.text(i) {
            (_, t) if t.is_ascii() => t.to_ascii_lowercase(),
            (_, folded) => folded.to_string(),
        }
    }

    /// Bytes held (text, offsets, folded non-ASCII entries).
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity()
            + self.ends.capacity() * 4
            + self.unicode_text.capacity()
            + self.unicode.capacity() * 12
    }

    pub(super) fn fold(&mut self) {
        let mut unicode = HashMap::new();
        let mut text = String::new();
        for i in 0..self.len() {
            let v = self.get(i);
            if !v.is_ascii() {
                let a = text.len() as u32;
                text.push_str(&v.to_lowercase());
                unicode.insert(i as u32, (a, text.len() as u32));
            }
        }
        self.unicode = unicode;
        self.unicode_text = text;
    }
}

/// A column whose first [`HIGH_CARDINALITY_SAMPLE`] values are more than this fraction distinct
/// stops deduplicating: ids, UPNs, mail addresses gain nothing from a dictionary, and hashing
/// them was most of the load time.
pub const HIGH_CARDINALITY: f64 = 0.5;
/// Values looked at before deciding a column is high-cardinality.
pub const HIGH_CARDINALITY_SAMPLE: usize = 16_384;

/// Byte equality for the short strings of a load (keys, ids, names): compared a word at a time
/// inline, where a call to `memcmp` costs more than the comparison. Long strings use it.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n > 64 {
        return a == b;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        if let Some(src) = s.get(at..at + 8) {
            w.copy_from_slice(src);
        }
        u64::from_ne_bytes(w)
    };
    let mut at = 0;
    while at + 8 <= n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    // The last (overlapping) word covers the tail.
    word(a, n - 8) == word(b, n - 8)
}

/// `v` without spare capacity (columns grow by doubling as parts are appended).
pub(super) fn shrunk<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

/// `map[code]`: a part's code in the merged column (0 when out of range, which cannot happen
/// for maps made by `DictBuilder::absorb`).
#[inline]
pub(super) fn remap(map: &[u32], code: u32) -> u32 {
    map.get(code as usize).copied().unwrap_or(0)
}

/// Builds a [`Dict`], interning each string once (until the column proves high-cardinality).
#[derive(Default)]
pub(super) struct DictBuilder {
    pub(super) dict: Dict,
    pub(super) index: HashTable<u32>,
    pub(super) hasher: hashbrown::DefaultHashBuilder,
    pub(super) overflow: bool,
    /// Values interned so far (rows, for a column), counted until the decision.
    pub(super) seen: usize,
    /// The high-cardinality decision has been made (`plain` says which way).
    pub(super) decided: bool,
    pub(super) plain: bool,
    /// Never switch to plain storage (keys whose codes must be unique).
    pub(super) always_dedupe: bool,
}

impl DictBuilder {
    pub(super) fn append(&mut self, s: &str) -> u32 {
        let i = self.dict.ends.len() as u32;
        self.dict.text.push_str(s);
        match u32::try_from(self.dict.text.len()) {
            Ok(end) => self.dict.ends.push(end),
            Err(_) => {
                self.overflow = true;
                self.dict.ends.push(u32::MAX);
            }
        }
        i
    }

    /// The code (`1 + index`) of `s`, adding it when new (or always, once plain).
    pub(super) fn intern(&mut self, s: &str) -> u32 {
        if !self.decided {
            self.seen += 1;
            if self.seen >= HIGH_CARDINALITY_SAMPLE {
                self.decide();
            }
        }
        if self.plain {
            return self.append(s) + 1;
        }
        self.insert(s)
    }

    /// Makes the high-cardinality decision over the values seen so far.
    pub(super) fn decide(&mut self) {
        self.decided = true;
        if !self.always_dedupe && self.dict.len() as f64 > HIGH_CARDINALITY * self.seen as f64 {
            self.plain = true;
            self.index = HashTable::new();
        }
    }

    /// The code of `s` in the deduplicating index, adding it when new.
    pub(super) fn insert(&mut self, s: &str) -> u32 {
        let hash = self.hasher.hash_one(s);
        let Self { dict, index, .. } = self;
        if let Some(&i) = index.find(hash, |&i| {
            same_bytes(
                slice(&dict.text, &dict.ends, i as usize).as_bytes(),
                s.as_bytes(),
            )
        }) {
            return i + 1;
        }
        let i = self.append(s);
        let Self {
            dict,
            index,
            hasher,
            ..
        } = self;
        index.insert_unique(hash, i, |&j| {
            hasher.hash_one(slice(&dict.text, &dict.ends, j as usize))
        });
        i + 1
    }

    /// The code of `s` when the index holds it (never for a plain dictionary).
    pub(super) fn find(&self, s: &str) -> Option<u32> {
        if self.plain {
            return None;
        }
        let hash = self.hasher.hash_one(s);
        self.index
            .find(hash, |&i| {
                same_bytes(
                    slice(&self.dict.text, &self.dict.ends, i as usize).as_bytes(),
                    s.as_bytes(),
                )
            })
            .map(|&i| i + 1)
    }

    /// An empty builder for a part of the same column, taking over its storage decision.
    pub(super) fn fork(&self) -> DictBuilder {
        DictBuilder {
            decided: self.decided,
            plain: self.plain,
            always_dedupe: self.always_dedupe,
            ..DictBuilder::default()
        }
    }

    /// Appends the values of `part` (built by a [`DictBuilder::fork`] of this one) and returns
    /// the code map: `map[local code]` is the code here (`map[0] == 0`, null).
    pub(super) fn absorb(&mut self, part: DictBuilder) -> Vec<u32> {
        let n = part.dict.len();
        let mut map = Vec::with_capacity(n + 1);
        map.push(0);
        for i in 0..n {
            let s = slice(&part.dict.text, &part.dict.ends, i);
            map.push(if self.plain {
                self.append(s) + 1
            } else {
                self.insert(s)
            });
        }
        self.overflow |= part.overflow;
        if !self.decided {
            self.seen += part.seen;
            if self.seen >= HIGH_CARDINALITY_SAMPLE {
                self.decide();
            }
        }
        map
    }

    pub(super) fn finish(self) -> Result<Dict, String> {
        if self.overflow {
            return Err("a column's distinct text exceeds 4 GiB".to_string());
        }
        let mut d = self.dict;
        d.fold();
        d.text.shrink_to_fit();
        d.ends.shrink_to_fit();
        Ok(d)
    }
}
