//! The columnar table of users (or devices) that programs evaluate over.
//!
//! One column per schema property that the data holds (a property no record has costs nothing):
//! - strings: dictionary-encoded; `codes[row]` is 0 for null, else `1 + index` into a [`Dict`]
//!   whose case-folded copy (Unicode lower case, decision D2) is made once when the table is
//!   finished. Null is code 0, so a string column's null bitmap is "code == 0".
//! - booleans: a value bitmap and a validity (non-null) bitmap;
//! - dates: [`jiff::Timestamp`]s and a validity bitmap;
//! - string collections (`proxyAddresses`, `otherMails`, `memberOf`, …): offsets + codes into
//!   one dictionary for all elements;
//! - `assignedPlans`: each row's plans reduced to the three fields rules can read
//!   (`servicePlanId`, `service`, `capabilityStatus`), sorted, and the list deduplicated into a
//!   plan set; rows hold a plan-set code, and the sets are stored as struct-of-arrays. Rules
//!   decide once per distinct plan set, and a tenant has few.
//!
//! Built by [`TableBuilder`] from [`Record`]s (see `crate::load`), a batch at a time, one column
//! per rayon task.

use crate::bitmap::Bitmap;
use crate::schema::{self, GraphKey, ObjectType, PropType};
use hashbrown::HashTable;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

/// The distinct strings of a column, each stored once in one buffer, with their case-folded
/// (Unicode lower-case, decision D2) forms.
///
/// ASCII entries fold on the fly (ASCII lower-casing into a scratch buffer is a few
/// nanoseconds); only non-ASCII entries keep a folded copy, made once when the table is finished.
/// A high-cardinality column stops deduplicating (see [`HIGH_CARDINALITY`]), so an entry may
/// then repeat; every consumer decides per entry, which stays correct.
#[derive(Clone, Debug, Default)]
pub struct Dict {
    text: String,
    ends: Vec<u32>,
    /// Folded forms of the non-ASCII entries: entry → range in `unicode_text`.
    unicode: HashMap<u32, (u32, u32)>,
    unicode_text: String,
}

fn slice<'a>(text: &'a str, ends: &[u32], i: usize) -> &'a str {
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

    fn fold(&mut self) {
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
fn shrunk<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

/// `map[code]`: a part's code in the merged column (0 when out of range, which cannot happen
/// for maps made by `DictBuilder::absorb`).
#[inline]
fn remap(map: &[u32], code: u32) -> u32 {
    map.get(code as usize).copied().unwrap_or(0)
}

/// Builds a [`Dict`], interning each string once (until the column proves high-cardinality).
#[derive(Default)]
struct DictBuilder {
    dict: Dict,
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    overflow: bool,
    /// Values interned so far (rows, for a column), counted until the decision.
    seen: usize,
    /// The high-cardinality decision has been made (`plain` says which way).
    decided: bool,
    plain: bool,
    /// Never switch to plain storage (keys whose codes must be unique).
    always_dedupe: bool,
}

impl DictBuilder {
    fn append(&mut self, s: &str) -> u32 {
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
    fn intern(&mut self, s: &str) -> u32 {
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
    fn decide(&mut self) {
        self.decided = true;
        if !self.always_dedupe && self.dict.len() as f64 > HIGH_CARDINALITY * self.seen as f64 {
            self.plain = true;
            self.index = HashTable::new();
        }
    }

    /// The code of `s` in the deduplicating index, adding it when new.
    fn insert(&mut self, s: &str) -> u32 {
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
    fn find(&self, s: &str) -> Option<u32> {
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
    fn fork(&self) -> DictBuilder {
        DictBuilder {
            decided: self.decided,
            plain: self.plain,
            always_dedupe: self.always_dedupe,
            ..DictBuilder::default()
        }
    }

    /// Appends the values of `part` (built by a [`DictBuilder::fork`] of this one) and returns
    /// the code map: `map[local code]` is the code here (`map[0] == 0`, null).
    fn absorb(&mut self, part: DictBuilder) -> Vec<u32> {
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

    fn finish(self) -> Result<Dict, String> {
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

/// A dictionary-encoded string column.
#[derive(Clone, Debug, Default)]
pub struct StrColumn {
    /// Per row: 0 for null, else `1 + index` into `dict`. Empty when every row is null.
    pub codes: Vec<u32>,
    /// Distinct values.
    pub dict: Dict,
    /// True when some row is null.
    pub has_null: bool,
}

impl StrColumn {
    /// Row `row`'s value as loaded (`None` when null).
    pub fn get(&self, row: usize) -> Option<&str> {
        match self.codes.get(row) {
            Some(&c) if c > 0 => Some(self.dict.get(c as usize - 1)),
            _ => None,
        }
    }
}

#[derive(Default)]
struct StrBuilder {
    codes: Vec<u32>,
    dict: DictBuilder,
    rows: usize,
    has_null: bool,
}

impl StrBuilder {
    fn push(&mut self, v: Option<&str>) {
        match v {
            None => {
                self.has_null = true;
                if !self.codes.is_empty() {
                    self.codes.push(0);
                }
            }
            Some(s) => {
                if self.codes.is_empty() && self.rows > 0 {
                    self.codes.resize(self.rows, 0);
                }
                let c = self.dict.intern(s);
                self.codes.push(c);
            }
        }
        self.rows += 1;
    }

    /// An empty builder for a part of this column.
    fn fork(&self) -> StrBuilder {
        StrBuilder {
            dict: self.dict.fork(),
            ..StrBuilder::default()
        }
    }

    /// Pads to `rows` rows with nulls (a column first seen after its first rows).
    fn pad_to(&mut self, rows: usize) {
        if self.rows < rows {
            self.has_null = true;
            if !self.codes.is_empty() {
                self.codes.resize(rows, 0);
            }
            self.rows = rows;
        }
    }

    /// Appends the rows of `part` (from [`StrBuilder::fork`]).
    fn append(&mut self, part: StrBuilder) {
        let map = self.dict.absorb(part.dict);
        if part.codes.is_empty() {
            // Every row of the part is null.
            self.pad_to(self.rows + part.rows);
            return;
        }
        if self.codes.is_empty() && self.rows > 0 {
            self.codes.resize(self.rows, 0);
        }
        self.codes
            .extend(part.codes.iter().map(|&c| remap(&map, c)));
        self.has_null |= part.has_null;
        self.rows += part.rows;
    }

    fn finish(self) -> Result<StrColumn, String> {
        Ok(StrColumn {
            codes: shrunk(self.codes),
            dict: self.dict.finish()?,
            has_null: self.has_null,
        })
    }
}

/// A boolean column.
#[derive(Clone, Debug, Default)]
pub struct BoolColumn {
    /// Bit set when the value is `true`.
    pub value: Bitmap,
    /// Bit set when the value is not null.
    pub valid: Bitmap,
}

/// A date-time column.
#[derive(Clone, Debug, Default)]
pub struct DateColumn {
    /// Per row; the Unix epoch where null.
    pub value: Vec<jiff::Timestamp>,
    /// Bit set when the value is not null.
    pub valid: Bitmap,
}

/// A string-collection column: row `r`'s elements are `values[offsets[r]..offsets[r + 1]]`,
/// codes into `dict` as in [`StrColumn`] (0 for a null element).
#[derive(Clone, Debug, Default)]
pub struct ListColumn {
    /// `rows + 1` offsets into `values`.
    pub offsets: Vec<u32>,
    /// Element codes.
    pub values: Vec<u32>,
    /// Distinct element values.
    pub dict: Dict,
}

impl ListColumn {
    /// The value of element code `code` (`None` for 0, a null element).
    pub fn value(&self, code: u32) -> Option<&str> {
        (code > 0).then(|| self.dict.get(code as usize - 1))
    }

    /// Row `row`'s element codes.
    pub fn codes(&self, row: usize) -> &[u32] {
        let a = self.offsets.get(row).copied().unwrap_or(0) as usize;
        let b = self.offsets.get(row + 1).copied().unwrap_or(0) as usize;
        self.values.get(a..b).unwrap_or(&[])
    }

    /// Row `row`'s elements (`None` for a null element).
    pub fn get(&self, row: usize) -> Vec<Option<&str>> {
        let (a, b) = (
            self.offsets.get(row).copied().unwrap_or(0) as usize,
            self.offsets.get(row + 1).copied().unwrap_or(0) as usize,
        );
        self.values
            .get(a..b)
            .unwrap_or(&[])
            .iter()
            .map(|&c| (c > 0).then(|| self.dict.get(c as usize - 1)))
            .collect()
    }
}

#[derive(Default)]
struct ListBuilder {
    offsets: Vec<u32>,
    values: Vec<u32>,
    dict: DictBuilder,
    overflow: bool,
}

impl ListBuilder {
    fn push(&mut self, items: &[Option<Cow<'_, str>>]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        for it in items {
            let c = it.as_deref().map_or(0, |s| self.dict.intern(s));
            self.values.push(c);
        }
        match u32::try_from(self.values.len()) {
            Ok(n) => self.offsets.push(n),
            Err(_) => {
                self.overflow = true;
                self.offsets.push(u32::MAX);
            }
        }
    }

    fn fork(&self) -> ListBuilder {
        ListBuilder {
            dict: self.dict.fork(),
            ..ListBuilder::default()
        }
    }

    /// Appends the rows of `part` (from [`ListBuilder::fork`]).
    fn append(&mut self, part: ListBuilder) {
        let map = self.dict.absorb(part.dict);
        if part.offsets.len() < 2 {
            return;
        }
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        let base = self.values.len();
        self.values
            .extend(part.values.iter().map(|&c| remap(&map, c)));
        for &o in part.offsets.iter().skip(1) {
            match u32::try_from(base + o as usize) {
                Ok(n) if !part.overflow => self.offsets.push(n),
                _ => {
                    self.overflow = true;
                    self.offsets.push(u32::MAX);
                }
            }
        }
    }

    fn finish(mut self) -> Result<ListColumn, String> {
        if self.overflow {
            return Err("a collection column holds more than 4 billion elements".to_string());
        }
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        Ok(ListColumn {
            offsets: shrunk(self.offsets),
            values: shrunk(self.values),
            dict: self.dict.finish()?,
        })
    }
}

/// Distinct `assignedPlans` lists, struct-of-arrays: set `s` is plans
/// `offsets[s]..offsets[s + 1]`, each plan's fields codes into the three dictionaries (0 null).
/// Set 0 is the empty set (no plans, or a null `assignedPlans`).
#[derive(Clone, Debug, Default)]
pub struct PlanSets {
    /// `sets + 1` offsets.
    pub offsets: Vec<u32>,
    /// `assignedPlan.servicePlanId` codes.
    pub service_plan_id: Vec<u32>,
    /// `assignedPlan.service` codes.
    pub service: Vec<u32>,
    /// `assignedPlan.capabilityStatus` codes.
    pub capability_status: Vec<u32>,
    /// Dictionaries of the three fields, in that order.
    pub dicts: [Dict; 3],
}

impl PlanSets {
    /// Number of distinct sets (the empty set included).
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when there is no set at all (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plans of set `s` as codes `[servicePlanId, service, capabilityStatus]`.
    pub fn plans(&self, s: usize) -> impl Iterator<Item = [u32; 3]> + '_ {
        let a = self.offsets.get(s).copied().unwrap_or(0) as usize;
        let b = self.offsets.get(s + 1).copied().unwrap_or(0) as usize;
        (a..b).map(move |i| {
            [
                self.service_plan_id.get(i).copied().unwrap_or(0),
                self.service.get(i).copied().unwrap_or(0),
                self.capability_status.get(i).copied().unwrap_or(0),
            ]
        })
    }
}

/// The `assignedPlans` column: a plan-set code per row.
#[derive(Clone, Debug, Default)]
pub struct PlanColumn {
    /// Per row, an index into `sets`.
    pub set_codes: Vec<u32>,
    /// The distinct sets.
    pub sets: PlanSets,
}

struct PlanBuilder {
    set_codes: Vec<u32>,
    /// Plan set (sorted triple codes) → set code.
    index: hashbrown::HashMap<Vec<u32>, u32>,
    sets: Vec<Vec<u32>>,
    /// Whole plans `(servicePlanId, service, capabilityStatus)`, interned as one key each (one
    /// hash per plan instead of three).
    triples: DictBuilder,
    /// Triple code − 1 → its field codes.
    triple_fields: Vec<[u32; 3]>,
    dicts: [DictBuilder; 3],
    scratch: String,
    /// Rows' plan lists as written (their plans' keys concatenated, in order) → set code: a
    /// list seen before costs one lookup instead of one per plan. At most [`MAX_PLAN_LISTS`].
    lists: DictBuilder,
    /// List code − 1 → set code.
    list_sets: Vec<u32>,
}

/// Distinct plan lists a [`PlanBuilder`] remembers.
const MAX_PLAN_LISTS: usize = 16_384;

/// Appends plan `p`'s key: each field length-prefixed, so no field content can make two plans,
/// or two lists of plans, look alike. The prefix is one character: U+0000 for null, the
/// character `len + 1` for lengths below 0xD000, else U+E000 and the length in decimal and `:`
/// (a string that long is rare enough for `to_string`).
fn push_plan_key(out: &mut String, p: &[Option<Cow<'_, str>>; 3]) {
    for f in p {
        match f {
            Some(v) => {
                match u32::try_from(v.len())
                    .ok()
                    .filter(|&n| n < 0xD000)
                    .and_then(|n| char::from_u32(n + 1))
                {
                    Some(c) => out.push(c),
                    None => {
                        out.push('\u{E000}');
                        out.push_str(&v.len().to_string());
                        out.push(':');
                    }
                }
                out.push_str(v);
            }
            None => out.push('\0'),
        }
    }
}

impl Default for PlanBuilder {
    fn default() -> Self {
        let mut index = hashbrown::HashMap::new();
        index.insert(Vec::new(), 0);
        PlanBuilder {
            set_codes: Vec::new(),
            index,
            sets: vec![Vec::new()],
            triples: DictBuilder {
                always_dedupe: true,
                ..DictBuilder::default()
            },
            triple_fields: Vec::new(),
            dicts: Default::default(),
            scratch: String::new(),
            lists: DictBuilder {
                always_dedupe: true,
                ..DictBuilder::default()
            },
            list_sets: Vec::new(),
        }
    }
}

/// One field of a plan given to [`PlanColumn::derive`]: null, a code of the column's own
/// dictionary for that field, or new text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlanField<'a> {
    /// Null.
    Null,
    /// A code (`1 + index`) of this column's dictionary for the field.
    Code(u32),
    /// Text, interned into the new column's dictionary.
    Text(&'a str),
}

impl PlanColumn {
    /// A new column over the same rows from plan lists given mostly as codes of this column
    /// (`[servicePlanId, service, capabilityStatus]`), without going through text for values
    /// it already has: `lists[set_codes[row]]` is row `row`'s plans.
    ///
    /// Errors: more than 4 billion plans, or 4 GiB of distinct text.
    pub fn derive(
        &self,
        lists: &[Vec<[PlanField<'_>; 3]>],
        set_codes: &[u32],
    ) -> Result<PlanColumn, String> {
        let mut dicts: [DictBuilder; 3] = Default::default();
        let mut remap: [Vec<u32>; 3] = Default::default();
        for ((b, r), d) in dicts.iter_mut().zip(remap.iter_mut()).zip(&self.sets.dicts) {
            b.always_dedupe = true;
            r.push(0);
            for i in 0..d.len() {
                r.push(b.intern(d.get(i)));
            }
        }
        let mut sets = PlanSets {
            offsets: vec![0, 0],
            ..PlanSets::default()
        };
        let mut index: hashbrown::HashMap<Vec<[u32; 3]>, u32> = hashbrown::HashMap::new();
        index.insert(Vec::new(), 0);
        let mut list_sets = Vec::with_capacity(lists.len());
        for l in lists {
            let mut key: Vec<[u32; 3]> = l
                .iter()
                .map(|p| {
                    let mut out = [0u32; 3];
                    for (f, v) in p.iter().enumerate() {
                        let code = match v {
                            PlanField::Null => 0,
                            PlanField::Code(c) => remap
                                .get(f)
                                .and_then(|r| r.get(*c as usize))
                                .copied()
                                .unwrap_or(0),
                            PlanField::Text(t) => dicts.get_mut(f).map_or(0, |b| b.intern(t)),
                        };
                        if let Some(o) = out.get_mut(f) {
                            *o = code;
                        }
                    }
                    out
                })
                .collect();
            key.sort_unstable();
            key.dedup();
            let next = index.len() as u32;
            let code = match index.get(&key) {
                Some(&c) => c,
                None => {
                    for [a, b, c] in &key {
                        sets.service_plan_id.push(*a);
                        sets.service.push(*b);
                        sets.capability_status.push(*c);
                    }
                    sets.offsets.push(
                        u32::try_from(sets.service.len())
                            .map_err(|_| "too many assigned plans".to_string())?,
                    );
                    index.insert(key, next);
                    next
                }
            };
            list_sets.push(code);
        }
        let [a, b, c] = dicts;
        sets.dicts = [a.finish()?, b.finish()?, c.finish()?];
        Ok(PlanColumn {
            set_codes: set_codes
                .iter()
                .map(|&l| list_sets.get(l as usize).copied().unwrap_or(0))
                .collect(),
            sets,
        })
    }
}

impl PlanBuilder {
    fn push(&mut self, plans: &[[Option<Cow<'_, str>>; 3]]) {
        let mut list = std::mem::take(&mut self.scratch);
        list.clear();
        for p in plans {
            push_plan_key(&mut list, p);
        }
        let known = self
            .lists
            .find(&list)
            .and_then(|c| self.list_sets.get(c as usize - 1).copied());
        if let Some(code) = known {
            self.set_codes.push(code);
            self.scratch = list;
            return;
        }
        let code = self.intern_set(plans);
        if self.lists.dict.len() < MAX_PLAN_LISTS {
            self.lists.insert(&list);
            self.list_sets.push(code);
        }
        self.scratch = list;
        self.set_codes.push(code);
    }

    /// The set code of `plans`, interning each plan and the set.
    fn intern_set(&mut self, plans: &[[Option<Cow<'_, str>>; 3]]) -> u32 {
        let mut key: Vec<u32> = Vec::with_capacity(plans.len());
        let mut one = String::new();
        for p in plans {
            one.clear();
            push_plan_key(&mut one, p);
            let t = self.triples.intern(&one);
            if t as usize > self.triple_fields.len() {
                let [a, b, c] = p;
                let [da, db, dc] = &mut self.dicts;
                self.triple_fields.push([
                    a.as_deref().map_or(0, |s| da.intern(s)),
                    b.as_deref().map_or(0, |s| db.intern(s)),
                    c.as_deref().map_or(0, |s| dc.intern(s)),
                ]);
            }
            key.push(t);
        }
        key.sort_unstable();
        self.set_code(key)
    }

    /// The code of plan set `key` (sorted triple codes), adding it when new.
    fn set_code(&mut self, key: Vec<u32>) -> u32 {
        let next = self.sets.len() as u32;
        match self.index.get(&key) {
            Some(&c) => c,
            None => {
                self.index.insert(key.clone(), next);
                self.sets.push(key);
                next
            }
        }
    }

    fn fork(&self) -> PlanBuilder {
        let [a, b, c] = &self.dicts;
        PlanBuilder {
            triples: self.triples.fork(),
            dicts: [a.fork(), b.fork(), c.fork()],
            ..PlanBuilder::default()
        }
    }

    /// Appends the rows of `part` (from [`PlanBuilder::fork`]): its field values, plans and
    /// plan sets are interned here, and its rows' set codes mapped.
    fn append(&mut self, part: PlanBuilder) {
        let PlanBuilder {
            set_codes,
            sets,
            triples,
            triple_fields,
            dicts: [pa, pb, pc],
            ..
        } = part;
        let [da, db, dc] = &mut self.dicts;
        let fields = [da.absorb(pa), db.absorb(pb), dc.absorb(pc)];
        let mut triple_map = Vec::with_capacity(triples.dict.len() + 1);
        triple_map.push(0);
        for (i, f) in triple_fields.iter().enumerate() {
            let t = self
                .triples
                .intern(slice(&triples.dict.text, &triples.dict.ends, i));
            if t as usize > self.triple_fields.len() {
                let [fa, fb, fc] = &fields;
                self.triple_fields
                    .push([remap(fa, f[0]), remap(fb, f[1]), remap(fc, f[2])]);
            }
            triple_map.push(t);
        }
        let set_map: Vec<u32> = sets
            .into_iter()
            .map(|set| {
                let mut key: Vec<u32> = set.iter().map(|&t| remap(&triple_map, t)).collect();
                key.sort_unstable();
                self.set_code(key)
            })
            .collect();
        self.set_codes
            .extend(set_codes.iter().map(|&c| remap(&set_map, c)));
    }

    fn finish(self) -> Result<PlanColumn, String> {
        let mut s = PlanSets {
            offsets: vec![0],
            ..Default::default()
        };
        for set in &self.sets {
            for &t in set {
                let [a, b, c] = self
                    .triple_fields
                    .get((t as usize).wrapping_sub(1))
                    .copied()
                    .unwrap_or([0; 3]);
                s.service_plan_id.push(a);
                s.service.push(b);
                s.capability_status.push(c);
            }
            s.offsets.push(
                u32::try_from(s.service.len())
                    .map_err(|_| "too many assigned plans".to_string())?,
            );
        }
        let [a, b, c] = self.dicts;
        s.dicts = [a.finish()?, b.finish()?, c.finish()?];
        Ok(PlanColumn {
            set_codes: shrunk(self.set_codes),
            sets: s,
        })
    }
}

/// One licence entry of a user: an `assignedLicense` (`skuId`, `disabledPlans`) or a
/// `licenseAssignmentState` (those two plus `assignedByGroup`, `state`, `error`), as Graph's
/// user resource returns them. GUIDs are lower-cased, `disabledPlans` sorted and deduplicated,
/// and an `error` of `"None"` (what Microsoft's own examples write on success) is read as `None`
/// like Graph's documented `null`. `lastUpdatedDateTime` is not kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LicenseEntry {
    /// `skuId`.
    pub sku_id: String,
    /// `disabledPlans`: service-plan ids turned off in this assignment.
    pub disabled_plans: Vec<String>,
    /// `assignedByGroup`: the group the licence is inherited from; `None` for a direct
    /// assignment (and for `assignedLicenses`, which do not say).
    pub assigned_by_group: Option<String>,
    /// `state`: `Active`, `ActiveWithError`, `Disabled` or `Error` (`None` for `assignedLicenses`).
    pub state: Option<String>,
    /// `error`: `CountViolation`, `MutuallyExclusiveViolation`, …; `None` when there is none.
    pub error: Option<String>,
}

/// A licence entry as the loaders read it, borrowing from the input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LicenseCell<'a> {
    /// `skuId`.
    pub sku_id: Option<Cow<'a, str>>,
    /// `disabledPlans`.
    pub disabled_plans: Vec<Cow<'a, str>>,
    /// `assignedByGroup`.
    pub assigned_by_group: Option<Cow<'a, str>>,
    /// `state`.
    pub state: Option<Cow<'a, str>>,
    /// `error`.
    pub error: Option<Cow<'a, str>>,
}

impl LicenseCell<'_> {
    fn entry(&self) -> LicenseEntry {
        let lower = |s: &Cow<'_, str>| s.trim().to_ascii_lowercase();
        let mut disabled: Vec<String> = self.disabled_plans.iter().map(lower).collect();
        disabled.sort_unstable();
        disabled.dedup();
        LicenseEntry {
            sku_id: self.sku_id.as_ref().map(lower).unwrap_or_default(),
            disabled_plans: disabled,
            assigned_by_group: self
                .assigned_by_group
                .as_ref()
                .map(lower)
                .filter(|g| !g.is_empty()),
            state: self.state.as_ref().map(|s| s.trim().to_string()),
            error: self
                .error
                .as_ref()
                .map(|s| s.trim().to_string())
                .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("none")),
        }
    }
}

/// `assignedLicenses` or `licenseAssignmentStates`: per row a code into `sets`. Set 0 is "no
/// value" (the key was missing or null), so an export without the field can be told from a
/// user with no licences (an empty set, code 1 or above).
#[derive(Clone, Debug, Default)]
pub struct LicenseColumn {
    /// Per row, an index into `sets`.
    pub set_codes: Vec<u32>,
    /// The distinct entry lists, each sorted.
    pub sets: Vec<Vec<LicenseEntry>>,
}

impl LicenseColumn {
    /// The entries of `row`; `None` when the row had no value.
    pub fn get(&self, row: usize) -> Option<&[LicenseEntry]> {
        match self.set_codes.get(row).copied().unwrap_or(0) {
            0 => None,
            c => self.sets.get(c as usize).map(Vec::as_slice),
        }
    }

    /// The position of row `row`'s list in [`LicenseColumn::lists`]; `None` when the row had no
    /// value. Rows with equal lists share one position.
    pub fn list_code(&self, row: usize) -> Option<usize> {
        match self.set_codes.get(row).copied().unwrap_or(0) {
            0 => None,
            c => Some(c as usize),
        }
    }

    /// The distinct entry lists, each sorted (position 0, no value, is empty).
    pub fn lists(&self) -> &[Vec<LicenseEntry>] {
        &self.sets
    }
}

#[derive(Default)]
struct LicenseBuilder {
    set_codes: Vec<u32>,
    index: hashbrown::HashMap<Vec<LicenseEntry>, u32>,
    sets: Vec<Vec<LicenseEntry>>,
}

impl LicenseBuilder {
    fn push(&mut self, cell: Option<&[LicenseCell<'_>]>) {
        let Some(cells) = cell else {
            self.set_codes.push(0);
            return;
        };
        let mut key: Vec<LicenseEntry> = cells.iter().map(LicenseCell::entry).collect();
        key.sort_unstable();
        let code = self.set_code(key);
        self.set_codes.push(code);
    }

    /// The code (1 or above) of entry list `key` (sorted), adding it when new.
    fn set_code(&mut self, key: Vec<LicenseEntry>) -> u32 {
        if self.sets.is_empty() {
            // Set 0: no value.
            self.sets.push(Vec::new());
        }
        let next = self.sets.len() as u32;
        *self.index.entry(key).or_insert_with_key(|k| {
            self.sets.push(k.clone());
            next
        })
    }

    /// Appends the rows of `part`, interning its entry lists here.
    fn append(&mut self, part: LicenseBuilder) {
        let mut map = Vec::with_capacity(part.sets.len().max(1));
        map.push(0);
        for key in part.sets.into_iter().skip(1) {
            map.push(self.set_code(key));
        }
        self.set_codes
            .extend(part.set_codes.iter().map(|&c| remap(&map, c)));
    }

    fn finish(mut self) -> LicenseColumn {
        if self.sets.is_empty() {
            self.sets.push(Vec::new());
        }
        LicenseColumn {
            set_codes: shrunk(self.set_codes),
            sets: self.sets,
        }
    }
}

/// One column of a table.
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per column, a few dozen per table"
)]
pub enum Column {
    /// Single strings.
    Str(StrColumn),
    /// Booleans.
    Bool(BoolColumn),
    /// Date-times.
    Date(DateColumn),
    /// String collections.
    List(ListColumn),
    /// `assignedPlans`.
    Plans(PlanColumn),
    /// `assignedLicenses` or `licenseAssignmentStates`.
    Licenses(LicenseColumn),
}

/// What a column holds, beside the schema's properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColumnKey {
    /// A schema property, by canonical name (`department`, `objectId`).
    Prop(&'static str),
    /// The manager's object id (`manager.id` from `$expand=manager`, or `managerId`).
    Manager,
    /// Direct group memberships (`memberOf` ids from `$expand=memberOf`, or a tenant's groups).
    MemberOf,
    /// A user's `assignedLicenses` (direct and inherited, not told apart).
    AssignedLicenses,
    /// A user's `licenseAssignmentStates` (one entry per source and SKU).
    LicenseStates,
}

/// How a column is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`StrColumn`]
    Str,
    /// [`BoolColumn`]
    Bool,
    /// [`DateColumn`]
    Date,
    /// [`ListColumn`]
    List,
    /// [`PlanColumn`]
    Plans,
    /// [`LicenseColumn`]
    Licenses,
}

/// The fixed columns of a user or device table, in order.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Users or devices.
    pub object: ObjectType,
    /// Column keys and kinds; [`Record::cells`] follow this order.
    pub columns: Vec<(ColumnKey, Kind)>,
    index: HashMap<ColumnKey, usize>,
}

impl Layout {
    /// The layout for `object`: every schema property read from the object itself, then the
    /// manager and memberOf columns.
    pub fn new(object: ObjectType) -> Layout {
        let mut columns: Vec<(ColumnKey, Kind)> = schema::PROPERTIES
            .iter()
            .filter(|p| p.object == object && p.graph != GraphKey::Derived)
            .filter_map(|p| {
                let kind = match p.ty {
                    PropType::Bool => Kind::Bool,
                    PropType::String => Kind::Str,
                    PropType::StringCollection => Kind::List,
                    PropType::DateTime => Kind::Date,
                    PropType::AssignedPlans => Kind::Plans,
                    PropType::MemberOf => return None,
                };
                Some((ColumnKey::Prop(p.name), kind))
            })
            .collect();
        columns.push((ColumnKey::Manager, Kind::Str));
        columns.push((ColumnKey::MemberOf, Kind::List));
        if object == ObjectType::User {
            columns.push((ColumnKey::AssignedLicenses, Kind::Licenses));
            columns.push((ColumnKey::LicenseStates, Kind::Licenses));
        }
        let index = columns
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (*k, i))
            .collect();
        Layout {
            object,
            columns,
            index,
        }
    }

    /// Position of a column.
    pub fn position(&self, key: ColumnKey) -> Option<usize> {
        self.index.get(&key).copied()
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Never true: every layout has the manager and memberOf columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

/// One value of a record, typed for its column.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Cell<'a> {
    /// Missing or JSON null.
    #[default]
    Null,
    /// A string (numbers and booleans read into a string column are kept as their JSON text).
    Str(Cow<'a, str>),
    /// A boolean.
    Bool(bool),
    /// A date-time.
    Date(jiff::Timestamp),
    /// A string collection (`None` for a null element).
    List(Vec<Option<Cow<'a, str>>>),
    /// `assignedPlans`: `[servicePlanId, service, capabilityStatus]` per plan.
    Plans(Vec<[Option<Cow<'a, str>>; 3]>),
    /// `assignedLicenses` or `licenseAssignmentStates`.
    Licenses(Vec<LicenseCell<'a>>),
}

/// One user or device, as the loaders read it, ready to append to a table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record<'a> {
    /// One cell per [`Layout`] column.
    pub cells: Vec<Cell<'a>>,
    /// Directory extensions `extension_<appId>_<name>`, names lower-cased.
    pub extensions: Vec<(String, Option<Cow<'a, str>>)>,
}

enum Builder {
    Str(StrBuilder),
    Bool(BoolColumn),
    Date(DateColumn),
    List(ListBuilder),
    Plans(Box<PlanBuilder>),
    Licenses(LicenseBuilder),
    /// A column outside the projection: nothing is stored, every row reads as null.
    Skip(Kind),
}

impl Builder {
    fn new(kind: Kind) -> Builder {
        match kind {
            Kind::Str => Builder::Str(StrBuilder::default()),
            Kind::Bool => Builder::Bool(BoolColumn::default()),
            Kind::Date => Builder::Date(DateColumn::default()),
            Kind::List => Builder::List(ListBuilder::default()),
            Kind::Plans => Builder::Plans(Box::default()),
            Kind::Licenses => Builder::Licenses(LicenseBuilder::default()),
        }
    }

    /// Appends a cell; the loaders only produce cells of the column's kind, and anything else
    /// is stored as null.
    fn push(&mut self, cell: Option<&Cell<'_>>) {
        match self {
            Builder::Str(b) => b.push(match cell {
                Some(Cell::Str(s)) => Some(s),
                _ => None,
            }),
            Builder::Bool(b) => {
                let v = match cell {
                    Some(Cell::Bool(v)) => Some(*v),
                    _ => None,
                };
                b.value.push(v == Some(true));
                b.valid.push(v.is_some());
            }
            Builder::Date(b) => {
                let v = match cell {
                    Some(Cell::Date(t)) => Some(*t),
                    _ => None,
                };
                b.value.push(v.unwrap_or(jiff::Timestamp::UNIX_EPOCH));
                b.valid.push(v.is_some());
            }
            Builder::List(b) => b.push(match cell {
                Some(Cell::List(xs)) => xs,
                _ => &[],
            }),
            Builder::Plans(b) => b.push(match cell {
                Some(Cell::Plans(xs)) => xs,
                _ => &[],
            }),
            Builder::Licenses(b) => b.push(match cell {
                Some(Cell::Licenses(xs)) => Some(xs),
                _ => None,
            }),
            Builder::Skip(_) => {}
        }
    }

    /// An empty builder for a part of this column (same kind, same storage decisions).
    fn fork(&self) -> Builder {
        match self {
            Builder::Str(b) => Builder::Str(b.fork()),
            Builder::Bool(_) => Builder::Bool(BoolColumn::default()),
            Builder::Date(_) => Builder::Date(DateColumn::default()),
            Builder::List(b) => Builder::List(b.fork()),
            Builder::Plans(b) => Builder::Plans(Box::new(b.fork())),
            Builder::Licenses(_) => Builder::Licenses(LicenseBuilder::default()),
            Builder::Skip(k) => Builder::Skip(*k),
        }
    }

    /// Appends the rows of `part`, a [`Builder::fork`] of this one.
    fn append(&mut self, part: Builder) {
        match (self, part) {
            (Builder::Str(a), Builder::Str(b)) => a.append(b),
            (Builder::Bool(a), Builder::Bool(b)) => {
                a.value.extend(&b.value);
                a.valid.extend(&b.valid);
            }
            (Builder::Date(a), Builder::Date(b)) => {
                a.value.extend_from_slice(&b.value);
                a.valid.extend(&b.valid);
            }
            (Builder::List(a), Builder::List(b)) => a.append(b),
            (Builder::Plans(a), Builder::Plans(b)) => a.append(*b),
            (Builder::Licenses(a), Builder::Licenses(b)) => a.append(b),
            // Forks have their parent's kind; nothing else reaches here.
            _ => {}
        }
    }

    fn finish(self) -> Result<Column, String> {
        Ok(match self {
            Builder::Str(b) => Column::Str(b.finish()?),
            Builder::Bool(b) => Column::Bool(b),
            Builder::Date(b) => Column::Date(DateColumn {
                value: shrunk(b.value),
                valid: b.valid,
            }),
            Builder::List(b) => Column::List(b.finish()?),
            Builder::Plans(b) => Column::Plans(b.finish()?),
            Builder::Licenses(b) => Column::Licenses(b.finish()),
            Builder::Skip(kind) => match kind {
                Kind::Str => Column::Str(StrColumn::default()),
                Kind::Bool => Column::Bool(BoolColumn::default()),
                Kind::Date => Column::Date(DateColumn::default()),
                Kind::List => Column::List(ListColumn::default()),
                Kind::Plans => Column::Plans(PlanColumn::default()),
                Kind::Licenses => Column::Licenses(LicenseColumn::default()),
            },
        })
    }
}

/// The columns a load keeps (a projection): the others are skipped while parsing and read as
/// null. `eval` loads only what its rules read (plus ids and names for output); `recompute`
/// and `whatif` load everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projection {
    /// Columns kept.
    pub columns: HashSet<ColumnKey>,
    /// Directory extensions kept, names lower-cased.
    pub extensions: HashSet<String>,
}

/// Accumulates records into a [`Table`].
pub struct TableBuilder {
    layout: Layout,
    columns: Vec<Builder>,
    /// Directory extension columns by lower-cased name (foldhash: looked up once per record).
    extensions: hashbrown::HashMap<String, StrBuilder>,
    rows: usize,
}

impl TableBuilder {
    /// An empty builder for `object`.
    pub fn new(object: ObjectType) -> TableBuilder {
        TableBuilder::projected(object, None)
    }

    /// An empty builder that stores only the projection's columns (all when `None`).
    pub fn projected(object: ObjectType, projection: Option<&Projection>) -> TableBuilder {
        let layout = Layout::new(object);
        let columns = layout
            .columns
            .iter()
            .map(|(key, k)| match projection {
                Some(p) if !p.columns.contains(key) => Builder::Skip(*k),
                _ => Builder::new(*k),
            })
            .collect();
        TableBuilder {
            layout,
            columns,
            extensions: hashbrown::HashMap::new(),
            rows: 0,
        }
    }

    /// The layout records must follow.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True before the first row.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends records. Columns are split into tasks, one rayon task each: every collection or
    /// `assignedPlans` column alone (they cost the most), the other columns six at a time. A task
    /// walks the records in order (row-major, as they sit in memory) appending to its own
    /// columns.
    pub fn push_batch(&mut self, records: &[Record<'_>]) {
        const GROUP: usize = 6;
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        let mut start = 0;
        for (i, (_, kind)) in self.layout.columns.iter().enumerate() {
            let heavy = matches!(kind, Kind::List | Kind::Plans | Kind::Licenses);
            if heavy || i - start == GROUP {
                if start < i {
                    ranges.push(start..i);
                }
                start = i;
            }
            if heavy {
                ranges.push(i..i + 1);
                start = i + 1;
            }
        }
        if start < self.columns.len() {
            ranges.push(start..self.columns.len());
        }
        let mut tasks: Vec<(usize, &mut [Builder])> = Vec::with_capacity(ranges.len());
        let mut rest: &mut [Builder] = &mut self.columns;
        let mut at = 0;
        for r in ranges {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(r.end - at);
            tasks.push((at, head));
            at = r.end;
            rest = tail;
        }
        tasks.into_par_iter().for_each(|(base, builders)| {
            for r in records {
                for (j, b) in builders.iter_mut().enumerate() {
                    b.push(r.cells.get(base + j));
                }
            }
        });
        for (i, r) in records.iter().enumerate() {
            self.push_extensions(self.rows + i, r);
        }
        self.rows += records.len();
    }

    /// Indices of the columns stored (outside a projection, none is).
    pub fn stored_columns(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, b)| !matches!(b, Builder::Skip(_)))
            .map(|(i, _)| i)
            .collect()
    }

    /// Appends one record, row-major (for a part built on one thread; see
    /// [`TableBuilder::fork`]).
    pub fn push_row(&mut self, record: &Record<'_>) {
        for (b, cell) in self.columns.iter_mut().zip(&record.cells) {
            // Checked here, not only in `push`: most of a projected table's columns are
            // skipped, and a call per skipped column per row was a visible cost.
            if !matches!(b, Builder::Skip(_)) {
                b.push(Some(cell));
            }
        }
        self.push_extensions(self.rows, record);
        self.rows += 1;
    }

    /// Stores `record`'s directory extensions as row `row`.
    fn push_extensions(&mut self, row: usize, record: &Record<'_>) {
        for (name, v) in &record.extensions {
            // One lookup; the name is cloned only for a column not seen before.
            let b = self.extensions.entry_ref(name.as_str()).or_default();
            // A column first seen now is null for every earlier row.
            b.pad_to(row);
            // A key repeated within a record keeps its first value.
            if b.rows == row {
                b.push(v.as_deref());
            }
        }
    }

    /// An empty builder for a part of this table (a chunk of a file parsed on its own thread),
    /// to be added back with [`TableBuilder::append`]. It keeps the projection and the columns'
    /// storage decisions (a high-cardinality column stays undeduplicated).
    pub fn fork(&self) -> TableBuilder {
        TableBuilder {
            layout: self.layout.clone(),
            columns: self.columns.iter().map(Builder::fork).collect(),
            extensions: hashbrown::HashMap::new(),
            rows: 0,
        }
    }

    /// Appends the rows of `part` (a [`TableBuilder::fork`] of this builder) after this
    /// builder's rows, one rayon task per column: each part's dictionary values are interned
    /// here once and its codes remapped.
    pub fn append(&mut self, part: TableBuilder) {
        let TableBuilder {
            columns,
            extensions,
            rows,
            ..
        } = part;
        self.columns
            .par_iter_mut()
            .zip(columns.into_par_iter())
            .for_each(|(a, b)| a.append(b));
        // Each extension column is appended on its own; their order does not matter.
        for (name, mut b) in extensions {
            b.pad_to(rows);
            let g = self.extensions.entry(name).or_default();
            g.pad_to(self.rows);
            g.append(b);
        }
        self.rows += rows;
    }

    /// Finishes the columns (folding each dictionary once, in parallel).
    ///
    /// Errors when a column outgrows its 32-bit offsets (4 GiB of distinct text).
    pub fn finish(self) -> Result<Table, String> {
        let rows = self.rows;
        let columns = self
            .columns
            .into_par_iter()
            .map(Builder::finish)
            .collect::<Result<Vec<_>, _>>()?;
        let extensions = self
            .extensions
            .into_iter()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(k, mut b)| {
                b.pad_to(rows);
                b.finish().map(|c| (k, c))
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(Table {
            layout: self.layout,
            len: rows,
            columns: columns.into_iter().map(Arc::new).collect(),
            extensions: Arc::new(extensions),
            member_of_override: None,
        })
    }
}

/// A loaded table of users or devices. Columns are shared: a clone costs a few pointers, and
/// [`Table::with_assigned_plans`] and [`Table::with_member_of`] make a variant with one column
/// replaced without touching the original (what-if sides, the `assignedPlans` fixpoint,
/// memberOf rules over computed memberships).
#[derive(Clone, Debug)]
pub struct Table {
    layout: Layout,
    len: usize,
    columns: Vec<Arc<Column>>,
    extensions: Arc<HashMap<String, StrColumn>>,
    member_of_override: Option<Arc<ListColumn>>,
}

impl Table {
    /// Users or devices.
    pub fn object(&self) -> ObjectType {
        self.layout.object
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A fixed column (for `MemberOf`, the memberships set by [`Table::set_member_of`] when
    /// there are any).
    pub fn column(&self, key: ColumnKey) -> Option<&Column> {
        self.layout
            .position(key)
            .and_then(|i| self.columns.get(i))
            .map(|c| &**c)
    }

    /// The memberOf column: memberships given by [`Table::set_member_of`], else the records'
    /// own `memberOf`.
    pub fn member_of(&self) -> Option<&ListColumn> {
        if let Some(m) = &self.member_of_override {
            return Some(&**m);
        }
        match self.column(ColumnKey::MemberOf) {
            Some(Column::List(l)) => Some(l),
            _ => None,
        }
    }

    /// A string column by key.
    pub fn str_column(&self, key: ColumnKey) -> Option<&StrColumn> {
        match self.column(key) {
            Some(Column::Str(c)) => Some(c),
            _ => None,
        }
    }

    /// A directory extension's column, by name (any case).
    pub fn extension(&self, name: &str) -> Option<&StrColumn> {
        self.extensions.get(&name.to_ascii_lowercase())
    }

    /// Row `row`'s object id.
    pub fn id(&self, row: usize) -> Option<&str> {
        self.str_column(ColumnKey::Prop("objectId"))
            .and_then(|c| c.get(row))
    }

    /// Row `row`'s `userPrincipalName` (users) or `displayName` (devices).
    pub fn name(&self, row: usize) -> Option<&str> {
        let key = match self.object() {
            ObjectType::User => "userPrincipalName",
            ObjectType::Device => "displayName",
        };
        self.str_column(ColumnKey::Prop(key))
            .and_then(|c| c.get(row))
    }

    /// This table with its `assignedPlans` column replaced (the other columns shared).
    #[must_use]
    pub fn with_assigned_plans(&self, col: PlanColumn) -> Table {
        let mut out = self.clone();
        if let Some(slot) = self
            .layout
            .position(ColumnKey::Prop("assignedPlans"))
            .and_then(|i| out.columns.get_mut(i))
        {
            *slot = Arc::new(Column::Plans(col));
        }
        out
    }

    /// This table with memberOf replaced: row `row`'s direct memberships are what
    /// `groups_of(row, &mut out)` pushes (group ids). The other columns are shared.
    #[must_use]
    pub fn with_member_of(&self, mut groups_of: impl FnMut(usize, &mut Vec<String>)) -> Table {
        let mut b = ListBuilder::default();
        let mut ids: Vec<String> = Vec::new();
        for row in 0..self.len {
            ids.clear();
            groups_of(row, &mut ids);
            let cells: Vec<Option<Cow<'_, str>>> = ids
                .iter()
                .map(|g| Some(Cow::Borrowed(g.as_str())))
                .collect();
            b.push(&cells);
        }
        let mut out = self.clone();
        out.member_of_override = b.finish().ok().map(Arc::new);
        out
    }

    /// The records' own `memberOf` column (`$expand=memberOf`), whatever
    /// [`Table::set_member_of`] or [`Table::with_member_of`] put over it.
    pub fn own_member_of(&self) -> Option<&ListColumn> {
        match self.column(ColumnKey::MemberOf) {
            Some(Column::List(l)) => Some(l),
            _ => None,
        }
    }

    /// How many rows have a value in column `key`: a non-null string, boolean or date, a
    /// non-empty collection, plan list or licence list (for the property coverage check). A
    /// column no record had, or one the projection left out, counts 0.
    pub fn rows_with_value(&self, key: ColumnKey) -> usize {
        match self.column(key) {
            None => 0,
            Some(Column::Str(c)) => c.codes.iter().filter(|&&c| c != 0).count(),
            Some(Column::Bool(b)) => b.valid.count_ones(),
            Some(Column::Date(d)) => d.valid.count_ones(),
            Some(Column::List(l)) => l
                .offsets
                .windows(2)
                .filter(|w| matches!(w, [a, b] if b > a))
                .count(),
            Some(Column::Plans(p)) => {
                let nonempty: Vec<bool> = (0..p.sets.len())
                    .map(|s| p.sets.plans(s).next().is_some())
                    .collect();
                p.set_codes
                    .iter()
                    .filter(|&&c| nonempty.get(c as usize).copied().unwrap_or(false))
                    .count()
            }
            Some(Column::Licenses(l)) => l
                .set_codes
                .iter()
                .filter(|&&c| l.sets.get(c as usize).is_some_and(|s| !s.is_empty()))
                .count(),
        }
    }

    /// How many rows have a value for the directory extension `name`.
    pub fn rows_with_extension(&self, name: &str) -> usize {
        self.extension(name)
            .map_or(0, |c| c.codes.iter().filter(|&&c| c != 0).count())
    }

    /// The `assignedPlans` column.
    pub fn assigned_plans(&self) -> Option<&PlanColumn> {
        match self.column(ColumnKey::Prop("assignedPlans")) {
            Some(Column::Plans(p)) => Some(p),
            _ => None,
        }
    }

    /// The `assignedLicenses` (or `licenseAssignmentStates`) column of a user table.
    pub fn licenses(&self, key: ColumnKey) -> Option<&LicenseColumn> {
        match self.column(key) {
            Some(Column::Licenses(l)) => Some(l),
            _ => None,
        }
    }

    /// Replaces memberOf with the given direct memberships (object id, lower case → group ids),
    /// as a tenant's groups give them. An empty map changes nothing (the records' own `memberOf`
    /// stays), as in the oracle's `Context::member_of`.
    pub fn set_member_of(&mut self, memberships: &HashMap<String, Vec<String>>) {
        if memberships.is_empty() {
            return;
        }
        let mut b = ListBuilder::default();
        for row in 0..self.len {
            let groups: Vec<Option<Cow<'_, str>>> = self
                .id(row)
                .and_then(|id| memberships.get(&id.to_lowercase()))
                .map(|gs| gs.iter().map(|g| Some(Cow::Borrowed(g.as_str()))).collect())
                .unwrap_or_default();
            b.push(&groups);
        }
        self.member_of_override = b.finish().ok().map(Arc::new);
    }

    /// Approximate heap bytes held by the columns.
    pub fn heap_bytes(&self) -> usize {
        let col = |c: &Column| match c {
            Column::Str(s) => s.codes.capacity() * 4 + s.dict.heap_bytes(),
            Column::Bool(b) => b.value.words().len() * 16,
            Column::Date(d) => d.value.capacity() * 16 + d.valid.words().len() * 8,
            Column::List(l) => {
                (l.offsets.capacity() + l.values.capacity()) * 4 + l.dict.heap_bytes()
            }
            Column::Plans(p) => {
                p.set_codes.capacity() * 4
                    + p.sets.service.len() * 12
                    + p.sets.dicts.iter().map(Dict::heap_bytes).sum::<usize>()
            }
            Column::Licenses(l) => {
                l.set_codes.capacity() * 4
                    + l.sets
                        .iter()
                        .flatten()
                        .map(|e| 64 + e.disabled_plans.len() * 60)
                        .sum::<usize>()
            }
        };
        self.columns.iter().map(|c| col(c)).sum::<usize>()
            + self
                .extensions
                .values()
                .map(|s| s.codes.capacity() * 4 + s.dict.heap_bytes())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_and_nulls() {
        let mut b = TableBuilder::new(ObjectType::User);
        let dept = b
            .layout()
            .position(ColumnKey::Prop("department"))
            .unwrap_or(0);
        let n = b.layout().len();
        let rec = |v: Option<&'static str>| {
            let mut cells = vec![Cell::Null; n];
            if let (Some(v), Some(c)) = (v, cells.get_mut(dept)) {
                *c = Cell::Str(Cow::Borrowed(v));
            }
            Record {
                cells,
                extensions: vec![],
            }
        };
        b.push_batch(&[
            rec(None),
            rec(Some("Sales")),
            rec(Some("SALES")),
            rec(Some("Sales")),
        ]);
        let t = b.finish().ok();
        let t = t.as_ref();
        let col = t.and_then(|t| t.str_column(ColumnKey::Prop("department")));
        assert_eq!(col.map(|c| c.codes.clone()), Some(vec![0, 1, 2, 1]));
        assert_eq!(
            col.map(|c| c.dict.folded(1).to_string()).as_deref(),
            Some("sales")
        );
        assert_eq!(col.and_then(|c| c.get(2)), Some("SALES"));
        // A column no record has costs nothing.
        let city = t.and_then(|t| t.str_column(ColumnKey::Prop("city")));
        assert_eq!(city.map(|c| c.codes.len()), Some(0));
    }
}
