//! The fast path for JSON records: a byte scanner that reads one user or device object straight
//! into a [`Record`], looking only at the keys the load keeps and skipping (while still
//! validating) everything else.
//!
//! It is an optimisation of the serde visitors in `load.rs`, which stay the definition of the
//! mapping: the scanner handles the shapes Graph and PowerShell write (strings, booleans, nulls,
//! arrays and objects; escapes; any key case) and gives up on anything else — a number where a
//! rule property is read, a type mismatch, malformed JSON, a record without `id`, nesting deeper
//! than [`MAX_DEPTH`]. Giving up ([`Bail`]) sends the record to the serde path, which then either
//! reads it or reports the error with its line and column. So the two paths cannot disagree on
//! what is an error or on its message; `tests` check they build the same records.

use super::{KeyMap, LICENSE_FIELDS, PLAN_FIELDS, Target, first_of, first_sight, set};
use crate::table::{Cell, Kind, LicenseCell, Record};
use std::borrow::Cow;

/// The scanner declined the record: read it with serde instead.
#[derive(Debug)]
pub(super) struct Bail;

type Scan<T> = Result<T, Bail>;

/// Nesting the scanner follows in a skipped value (the bit stack's width); deeper records go to
/// serde (whose own limit is 128).
const MAX_DEPTH: usize = 63;

/// How a top-level key resolved, remembered per key position (see [`KeyCache`]).
#[derive(Clone, Copy)]
enum Resolved<'k> {
    /// A column's key, with its slot (see `KeyMap`).
    Target(u16, &'k Target),
    /// A directory extension the load keeps.
    Extension,
    /// A key whose value is skipped.
    Skip,
}

/// The keys of the last record, by position, with how each resolved. Exports write every
/// record's keys in the same order, so a key is usually a byte comparison with the key at its
/// position in the previous record instead of a hash lookup (and, for a skipped camelCase
/// key, a second lookup lower-cased).
#[derive(Default)]
struct KeyCache<'k> {
    slots: Vec<(Vec<u8>, Resolved<'k>)>,
    /// Every key seen (up to [`MAX_CACHED_KEYS`]), by its raw bytes.
    seen: hashbrown::HashMap<Vec<u8>, Resolved<'k>>,
}

/// Distinct raw keys remembered per part (a file with ever-new keys stays bounded).
const MAX_CACHED_KEYS: usize = 4_096;

/// Remembers `raw` (a key without escapes) and what it resolved to as the key at position `at`
/// of its object (a position past the end of what is remembered is not kept).
fn remember<R>(slots: &mut Vec<(Vec<u8>, R)>, at: usize, raw: &[u8], r: R) {
    if at == slots.len() {
        slots.push((raw.to_vec(), r));
    } else if let Some(slot) = slots.get_mut(at) {
        if slot.0 != raw {
            slot.0.clear();
            slot.0.extend_from_slice(raw);
        }
        slot.1 = r;
    }
}

/// The keys of the last object of one kind (plans, licences, extension attributes) by
/// position, each with the field it names (`None`: skipped). Like [`KeyCache`], a key that
/// sits where it sat last time is one byte comparison.
#[derive(Default)]
struct FieldCache {
    slots: Vec<(Vec<u8>, Option<usize>)>,
}

/// Reads the record at the scanner's cursor (after optional whitespace) into `rec`, leaving
/// the cursor after its closing brace. `rec`'s cells must be null and its extensions empty;
/// `primary` must be all false and as long as the cells.
///
/// Errors: [`Bail`] for anything the serde path must decide; `rec` is then in an unspecified
/// state and must be reset.
pub(super) fn record<'a, 'k>(
    keys: &'k KeyMap,
    s: &mut Scanner<'a, 'k>,
    rec: &mut Record<'a>,
    primary: &mut [bool],
) -> Scan<()> {
    s.ws();
    s.seen.clear();
    s.seen.resize(keys.slots / 64 + 1, 0);
    s.members(
        |s, at| s.top_key(keys, at),
        |s, resolved| s.field(resolved, rec, primary),
    )?;
    if matches!(rec.cells.get(keys.id_col), None | Some(Cell::Null)) {
        return Err(Bail);
    }
    Ok(())
}

/// A cursor over JSON text, with what it learnt of the keys of earlier records.
pub(super) struct Scanner<'a, 'k> {
    text: &'a str,
    b: &'a [u8],
    pub(super) i: usize,
    /// JSON Lines: a line end is not whitespace, so a record never runs past its line.
    single_line: bool,
    /// The current extension key, lower-cased.
    extension: String,
    keys: KeyCache<'k>,
    plans: FieldCache,
    licenses: FieldCache,
    /// Per nested-object target (by address), its keys.
    nested: Vec<(usize, FieldCache)>,
    /// The slots of the current record's keys (see `KeyMap`).
    seen: Vec<u64>,
}

impl<'a, 'k> Scanner<'a, 'k> {
    /// A cursor at the start of `text`.
    pub(super) fn new(text: &'a str, single_line: bool) -> Scanner<'a, 'k> {
        Scanner {
            text,
            b: text.as_bytes(),
            i: 0,
            single_line,
            extension: String::new(),
            keys: KeyCache::default(),
            plans: FieldCache::default(),
            licenses: FieldCache::default(),
            nested: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Moves the cursor to byte `at` of `text` (keeping what it learnt of keys).
    pub(super) fn reset(&mut self, text: &'a str, at: usize) {
        self.text = text;
        self.b = text.as_bytes();
        self.i = at;
    }

    /// Skips whitespace (but, single-line, not a line end) and tells whether the cursor is
    /// then at the end of the text or of the line.
    pub(super) fn at_line_end(&mut self) -> bool {
        self.ws();
        matches!(self.peek_byte(), None | Some(b'\n'))
    }

    /// Makes `key` (an `extension_…` key) the current extension's name, lower-cased, reusing
    /// the buffer.
    fn name_extension(&mut self, key: &str) {
        self.extension.clear();
        self.extension.push_str(key);
        self.extension.make_ascii_lowercase();
    }

    /// `text[start..end]` (the bounds are at ASCII bytes, so always character boundaries).
    fn str_at(&self, start: usize, end: usize) -> Scan<&'a str> {
        self.text.get(start..end).ok_or(Bail)
    }

    /// The top-level key at the cursor (the `at`-th of its record), resolved through the
    /// cache.
    fn top_key(&mut self, keys: &'k KeyMap, at: usize) -> Scan<Resolved<'k>> {
        if let Some((raw, r)) = self.keys.slots.get(at) {
            let r = *r;
            let key_start = self.i + 1;
            if predicted(self.b, &mut self.i, raw) {
                if let Resolved::Extension = r {
                    let key = self.str_at(key_start, self.i - 1)?;
                    self.name_extension(key);
                }
                return Ok(r);
            }
        }
        let start = self.i + 1;
        let key = self.string()?;
        let raw = self.b.get(start..self.i - 1).ok_or(Bail)?;
        let cache = &mut self.keys;
        // Only keys without escapes are remembered (their raw bytes are their text).
        let plain = raw == key.as_bytes();
        let hit = if plain {
            cache.seen.get(raw).copied()
        } else {
            None
        };
        if let Some(r) = hit {
            if let Resolved::Extension = r {
                self.name_extension(&key);
            }
            remember(&mut self.keys.slots, at, raw, r);
            return Ok(r);
        }
        let r = match keys.get(&key) {
            Some((slot, t)) => Resolved::Target(*slot, t),
            None if keys.keeps_extension(&key) => {
                self.name_extension(&key);
                Resolved::Extension
            }
            None => Resolved::Skip,
        };
        if !plain {
            return Ok(r);
        }
        let cache = &mut self.keys;
        if cache.seen.len() < MAX_CACHED_KEYS {
            cache.seen.insert(raw.to_vec(), r);
        }
        remember(&mut cache.slots, at, raw, r);
        Ok(r)
    }
}

/// When the string at `b[*i..]` is exactly `raw` (a key seen before, which holds no quote,
/// backslash or control character), steps `i` over it and says so.
#[inline(always)]
fn predicted(b: &[u8], i: &mut usize, raw: &[u8]) -> bool {
    let end = *i + 1 + raw.len();
    if b.get(*i) == Some(&b'"')
        && b.get(end) == Some(&b'"')
        && b.get(*i + 1..end)
            .is_some_and(|k| crate::table::same_bytes(k, raw))
    {
        *i = end + 1;
        true
    } else {
        false
    }
}

/// A JSON value's first byte, classified.
enum Peek {
    Str,
    True,
    False,
    Null,
    Array,
    Object,
    Other,
}

impl<'a> Scanner<'a, '_> {
    fn peek_byte(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        loop {
            match self.peek_byte() {
                Some(b' ' | b'\r' | b'\t') => self.i += 1,
                Some(b'\n') if !self.single_line => self.i += 1,
                _ => return,
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek_byte() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Scan<()> {
        if self.eat(c) { Ok(()) } else { Err(Bail) }
    }

    fn peek(&self) -> Peek {
        match self.peek_byte() {
            Some(b'"') => Peek::Str,
            Some(b't') => Peek::True,
            Some(b'f') => Peek::False,
            Some(b'n') => Peek::Null,
            Some(b'[') => Peek::Array,
            Some(b'{') => Peek::Object,
            _ => Peek::Other,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        let end = self.i + word.len();
        if self.b.get(self.i..end) == Some(word) {
            self.i = end;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// A string at the cursor (which must be at its opening quote), borrowed when it has no
    /// escapes.
    fn string(&mut self) -> Scan<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.i;
        let end = start + string_stop(self.b.get(start..).ok_or(Bail)?).ok_or(Bail)?;
        match self.b.get(end) {
            Some(b'"') => {
                self.i = end + 1;
                return self.str_at(start, end).map(Cow::Borrowed);
            }
            Some(b'\\') => {}
            _ => return Err(Bail),
        }
        // Escapes: decode from the first backslash on.
        let mut out = String::with_capacity(end - start + 16);
        out.push_str(self.str_at(start, end)?);
        self.i = end;
        loop {
            match self.peek_byte() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.i += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => {
                    let n = string_stop(self.b.get(self.i..).ok_or(Bail)?).ok_or(Bail)?;
                    if n == 0 {
                        return Err(Bail);
                    }
                    out.push_str(self.str_at(self.i, self.i + n)?);
                    self.i += n;
                }
                None => return Err(Bail),
            }
        }
    }

    /// One escape after its backslash.
    fn escape(&mut self, out: &mut String) -> Scan<()> {
        let c = self.peek_byte().ok_or(Bail)?;
        self.i += 1;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    // A surrogate pair: `\uD83D\uDE00`; a lone half is left to serde.
                    self.literal(b"\\u")?;
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(Bail);
                    }
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                char::from_u32(code).ok_or(Bail)?
            }
            _ => return Err(Bail),
        };
        out.push(ch);
        Ok(())
    }

    fn hex4(&mut self) -> Scan<u32> {
        let digits = self.b.get(self.i..self.i + 4).ok_or(Bail)?;
        let mut v = 0u32;
        for &d in digits {
            v = v * 16 + char::from(d).to_digit(16).ok_or(Bail)?;
        }
        self.i += 4;
        Ok(v)
    }

    /// Skips a string without decoding it (but checking it as serde would).
    fn skip_string(&mut self) -> Scan<()> {
        self.expect(b'"')?;
        loop {
            let n = string_stop(self.b.get(self.i..).ok_or(Bail)?).ok_or(Bail)?;
            self.i += n;
            match self.peek_byte() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => self.i += 1,
                _ => return Err(Bail),
            }
            // After a backslash: a simple escape or \uXXXX.
            match self.peek_byte() {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                Some(b'u') => {
                    self.i += 1;
                    self.hex4()?;
                }
                _ => return Err(Bail),
            }
        }
    }

    /// Skips a JSON number, checking its grammar.
    fn skip_number(&mut self) -> Scan<()> {
        self.eat(b'-');
        match self.peek_byte() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Bail),
        }
        if self.eat(b'.') {
            if !matches!(self.peek_byte(), Some(b'0'..=b'9')) {
                return Err(Bail);
            }
            self.digits();
        }
        if matches!(self.peek_byte(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek_byte(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !matches!(self.peek_byte(), Some(b'0'..=b'9')) {
                return Err(Bail);
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek_byte() {
            self.i += 1;
        }
    }

    /// Skips any value, checking its syntax as serde would: one loop over the tokens with the
    /// open containers as a bit stack (1 = object), not a call per value.
    fn skip(&mut self) -> Scan<()> {
        let mut stack: u64 = 0;
        let mut depth = 0usize;
        'value: loop {
            match self.peek() {
                Peek::Str => self.skip_string()?,
                Peek::True => self.literal(b"true")?,
                Peek::False => self.literal(b"false")?,
                Peek::Null => self.literal(b"null")?,
                Peek::Other => self.skip_number()?,
                Peek::Object | Peek::Array => {
                    let object = matches!(self.peek(), Peek::Object);
                    self.i += 1;
                    self.ws();
                    if !self.eat(if object { b'}' } else { b']' }) {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Err(Bail);
                        }
                        stack = (stack << 1) | u64::from(object);
                        if object {
                            self.key()?;
                        }
                        continue 'value;
                    }
                }
            }
            // A value is complete: close containers until a separator.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.ws();
                let object = stack & 1 == 1;
                match self.peek_byte() {
                    Some(b',') => {
                        self.i += 1;
                        self.ws();
                        if object {
                            self.key()?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ => return Err(Bail),
                }
                self.i += 1;
                depth -= 1;
                stack >>= 1;
            }
        }
    }

    /// A key to skip and its colon, leaving the cursor at the value.
    fn key(&mut self) -> Scan<()> {
        self.skip_string()?;
        self.ws();
        self.expect(b':')?;
        self.ws();
        Ok(())
    }

    /// Walks an object at the cursor: `key` reads each key (the cursor at its opening quote,
    /// told the key's position in the object) and `value` then its value.
    fn members<K>(
        &mut self,
        mut key: impl FnMut(&mut Self, usize) -> Scan<K>,
        mut value: impl FnMut(&mut Self, K) -> Scan<()>,
    ) -> Scan<()> {
        self.expect(b'{')?;
        self.ws();
        if self.eat(b'}') {
            return Ok(());
        }
        let mut at = 0usize;
        loop {
            let k = key(self, at)?;
            at += 1;
            self.ws();
            self.expect(b':')?;
            self.ws();
            value(self, k)?;
            self.ws();
            if self.eat(b',') {
                self.ws();
                continue;
            }
            return self.expect(b'}');
        }
    }

    /// Walks an object at the cursor whose keys name fields through `resolve` (`None`:
    /// skipped), calling `f` with each field and the cursor at its value. Keys are remembered
    /// by position in `cache`.
    fn fields(
        &mut self,
        cache: &mut FieldCache,
        resolve: impl Fn(&str) -> Option<usize>,
        mut f: impl FnMut(&mut Self, usize) -> Scan<()>,
    ) -> Scan<()> {
        // Fields already read in this object (a repeated one goes to serde, which rejects it).
        let mut seen: Vec<usize> = Vec::new();
        self.members(
            |s, at| {
                if let Some((raw, r)) = cache.slots.get(at) {
                    if predicted(s.b, &mut s.i, raw) {
                        return Ok(*r);
                    }
                }
                let start = s.i + 1;
                let key = s.string()?;
                let raw = s.b.get(start..s.i - 1).ok_or(Bail)?;
                let r = resolve(&key);
                // Only keys without escapes are remembered (their raw bytes are their text).
                if raw == key.as_bytes() {
                    remember(&mut cache.slots, at, raw, r);
                }
                Ok(r)
            },
            |s, field| match field {
                Some(i) if seen.contains(&i) => Err(Bail),
                Some(i) => {
                    seen.push(i);
                    f(s, i)
                }
                None => s.skip(),
            },
        )
    }

    /// Walks an array at the cursor, calling `f` with the cursor at each element.
    fn array(&mut self, mut f: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        self.expect(b'[')?;
        self.ws();
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            f(self)?;
            self.ws();
            if self.eat(b',') {
                self.ws();
                continue;
            }
            return self.expect(b']');
        }
    }

    /// `LooseSeed`: a string or boolean as text; null, arrays and objects as `None`; numbers to
    /// serde (their text form is serde_json's).
    fn loose(&mut self) -> Scan<Option<Cow<'a, str>>> {
        match self.peek() {
            Peek::Str => self.string().map(Some),
            Peek::True => self.literal(b"true").map(|()| Some(Cow::Borrowed("true"))),
            Peek::False => self
                .literal(b"false")
                .map(|()| Some(Cow::Borrowed("false"))),
            Peek::Null => self.literal(b"null").map(|()| None),
            Peek::Array | Peek::Object => self.skip().map(|()| None),
            Peek::Other => Err(Bail),
        }
    }

    /// `CellSeed`: one value for a column of `kind`.
    fn cell(&mut self, kind: Kind) -> Scan<Cell<'a>> {
        match self.peek() {
            Peek::Str => {
                let s = self.string()?;
                text_cell(kind, s)
            }
            Peek::True | Peek::False => {
                let v = self.peek_byte() == Some(b't');
                self.literal(if v { b"true" } else { b"false" })?;
                match kind {
                    Kind::Bool => Ok(Cell::Bool(v)),
                    Kind::Str | Kind::List => {
                        text_cell(kind, Cow::Borrowed(if v { "true" } else { "false" }))
                    }
                    _ => Err(Bail),
                }
            }
            Peek::Null => self.literal(b"null").map(|()| Cell::Null),
            Peek::Array if kind == Kind::List => {
                let mut out = Vec::new();
                self.array(|s| {
                    // An array or object element is serde's error to report (D31).
                    if matches!(s.peek(), Peek::Array | Peek::Object) {
                        return Err(Bail);
                    }
                    out.push(s.loose()?);
                    Ok(())
                })?;
                Ok(Cell::List(out))
            }
            Peek::Array | Peek::Object | Peek::Other => Err(Bail),
        }
    }

    /// `IdSeed`: `{"id": …}`, an id, or null.
    fn id(&mut self) -> Scan<Cell<'a>> {
        match self.peek() {
            Peek::Str => {
                let s = self.string()?;
                // PowerShell's text for an object is serde's error to report.
                if super::powershell_text(&s).is_some() {
                    return Err(Bail);
                }
                Ok(Cell::Str(s))
            }
            Peek::Null => self.literal(b"null").map(|()| Cell::Null),
            Peek::Object => {
                let mut id = Cell::Null;
                let mut seen = false;
                self.members(
                    |s, _| s.string().map(|k| k.eq_ignore_ascii_case("id")),
                    |s, is_id| {
                        if is_id {
                            if std::mem::replace(&mut seen, true) {
                                return Err(Bail);
                            }
                            id = s.loose()?.map_or(Cell::Null, Cell::Str);
                            Ok(())
                        } else {
                            s.skip()
                        }
                    },
                )?;
                Ok(id)
            }
            _ => Err(Bail),
        }
    }

    /// The value of a top-level key.
    fn field(
        &mut self,
        resolved: Resolved<'_>,
        rec: &mut Record<'a>,
        primary: &mut [bool],
    ) -> Scan<()> {
        let target = match resolved {
            Resolved::Target(slot, t) => {
                if !first_sight(&mut self.seen, slot) {
                    return Err(Bail);
                }
                t
            }
            Resolved::Extension => {
                if rec.extensions.iter().any(|(k, _)| *k == self.extension) {
                    return Err(Bail);
                }
                let v = self.loose()?;
                rec.extensions.push((self.extension.clone(), v));
                return Ok(());
            }
            Resolved::Skip => return self.skip(),
        };
        match target {
            &Target::Scalar {
                col,
                kind,
                primary: is_primary,
            } => {
                let cell = self.cell(kind)?;
                set(rec, primary, col, cell, is_primary);
            }
            &Target::First(col) => {
                let cell = first_of(self.cell(Kind::List)?);
                set(rec, primary, col, cell, true);
            }
            Target::Nested(inner) => match self.peek() {
                Peek::Null => self.literal(b"null")?,
                Peek::Object => {
                    let id = std::ptr::from_ref(inner) as usize;
                    let at = match self.nested.iter().position(|(t, _)| *t == id) {
                        Some(p) => p,
                        None => {
                            self.nested.push((id, FieldCache::default()));
                            self.nested.len() - 1
                        }
                    };
                    let mut cache = self
                        .nested
                        .get_mut(at)
                        .map(|c| std::mem::take(&mut c.1))
                        .unwrap_or_default();
                    let walked = self.fields(
                        &mut cache,
                        |k| {
                            inner
                                .get(k)
                                .or_else(|| inner.get(&k.to_ascii_lowercase()))
                                .copied()
                        },
                        |s, col| {
                            let cell = s.cell(Kind::Str)?;
                            set(rec, primary, col, cell, true);
                            Ok(())
                        },
                    );
                    if let Some(c) = self.nested.get_mut(at) {
                        c.1 = cache;
                    }
                    walked?;
                }
                _ => return Err(Bail),
            },
            &Target::Manager(col) => {
                let cell = self.id()?;
                set(rec, primary, col, cell, true);
            }
            &Target::MemberOf(col) => {
                let ids = self.list_of(|s| {
                    Ok(match s.id()? {
                        Cell::Str(id) => Some(Some(id)),
                        _ => None,
                    })
                })?;
                set(rec, primary, col, ids.map_or(Cell::Null, Cell::List), true);
            }
            &Target::Plans(col) => {
                let plans = self.list_of(|s| s.plan().map(Some))?;
                set(
                    rec,
                    primary,
                    col,
                    plans.map_or(Cell::Null, Cell::Plans),
                    true,
                );
            }
            // Graph PowerShell's `AdditionalProperties`: the serde path reads it.
            Target::Additional => return Err(Bail),
            &Target::Licenses(col) => {
                let licences = self.list_of(|s| {
                    let l = s.license()?;
                    if l.sku_id.is_none() {
                        return Err(Bail);
                    }
                    Ok(Some(l))
                })?;
                set(
                    rec,
                    primary,
                    col,
                    licences.map_or(Cell::Null, Cell::Licenses),
                    true,
                );
            }
        }
        Ok(())
    }

    /// `null` (`None`) or an array whose elements `item` reads (`None` from it: left out).
    fn list_of<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Scan<Option<T>>,
    ) -> Scan<Option<Vec<T>>> {
        match self.peek() {
            Peek::Null => self.literal(b"null").map(|()| None),
            Peek::Array => {
                let mut out = Vec::new();
                self.array(|s| {
                    out.extend(item(s)?);
                    Ok(())
                })?;
                Ok(Some(out))
            }
            _ => Err(Bail),
        }
    }

    /// `PlanSeed`: `[servicePlanId, service, capabilityStatus]` of one `assignedPlan` object.
    fn plan(&mut self) -> Scan<[Option<Cow<'a, str>>; 3]> {
        if !matches!(self.peek(), Peek::Object) {
            return Err(Bail);
        }
        let mut out: [Option<Cow<'a, str>>; 3] = [None, None, None];
        let mut cache = std::mem::take(&mut self.plans);
        let walked = self.fields(
            &mut cache,
            |k| PLAN_FIELDS.iter().position(|f| f.eq_ignore_ascii_case(k)),
            |s, i| {
                if let Some(slot) = out.get_mut(i) {
                    *slot = s.loose()?;
                }
                Ok(())
            },
        );
        self.plans = cache;
        walked?;
        Ok(out)
    }

    /// `LicenseSeed`: one `assignedLicense` or `licenseAssignmentState` object.
    fn license(&mut self) -> Scan<LicenseCell<'a>> {
        if !matches!(self.peek(), Peek::Object) {
            return Err(Bail);
        }
        let mut out = LicenseCell::default();
        let mut cache = std::mem::take(&mut self.licenses);
        let walked = self.fields(
            &mut cache,
            |k| {
                LICENSE_FIELDS
                    .iter()
                    .position(|f| f.eq_ignore_ascii_case(k))
            },
            |s, i| {
                match i {
                    0 => out.sku_id = s.loose()?,
                    1 => {
                        if let Cell::List(xs) = s.cell(Kind::List)? {
                            out.disabled_plans = xs.into_iter().flatten().collect();
                        }
                    }
                    2 => out.assigned_by_group = s.loose()?,
                    3 => out.state = s.loose()?,
                    _ => out.error = s.loose()?,
                }
                Ok(())
            },
        );
        self.licenses = cache;
        walked?;
        Ok(out)
    }
}

/// [`super::text_cell`], declining what it rejects.
fn text_cell(kind: Kind, s: Cow<'_, str>) -> Scan<Cell<'_>> {
    super::text_cell(kind, s).map_err(|_| Bail)
}

/// The index of the first byte of `b` that ends a run of plain string text: a quote, a
/// backslash or a control character (which JSON strings may not hold unescaped). Eight bytes
/// at a time (SWAR): strings here are short (ids, dates, names), where a SIMD search's setup
/// costs more than it saves.
fn string_stop(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    let mut at = 0usize;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let w = u64::from_le_bytes(w);
        let q = w ^ (ONES * u64::from(b'"'));
        let s = w ^ (ONES * u64::from(b'\\'));
        // A byte is flagged when zero after the xor (a quote or backslash) or below 0x20; the
        // lowest flag is exact (borrows only run upwards).
        let m = ((q.wrapping_sub(ONES) & !q)
            | (s.wrapping_sub(ONES) & !s)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGH;
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| at + p)
}

#[cfg(test)]
mod tests {
    //! The scanner against the serde path: whatever the scanner reads, serde reads the same.
    #![allow(
        clippy::expect_used,
        clippy::unwrap_used,
        clippy::indexing_slicing,
        reason = "tests"
    )]

    use super::*;
    use crate::schema::ObjectType;
    use crate::table::{ColumnKey, Projection};
    use proptest::prelude::*;

    /// Keys the generator draws from: Graph's, other spellings, unknown ones, extensions.
    const KEYS: &[&str] = &[
        "id",
        "ID",
        "objectId",
        "displayName",
        "DisplayName",
        "department",
        "accountEnabled",
        "AccountEnabled",
        "employeeHireDate",
        "mobilePhone",
        "mobile",
        "businessPhones",
        "proxyAddresses",
        "otherMails",
        "onPremisesExtensionAttributes",
        "OnPremisesExtensionAttributes",
        "extensionAttribute3",
        "manager",
        "managerId",
        "memberOf",
        "assignedPlans",
        "assignedLicenses",
        "licenseAssignmentStates",
        "userPrincipalName",
        "extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter",
        "Extension_B7D8E5FA0A1B4C0FB1E4C2F0A2B3C4D5_Other",
        "unrelated",
        "dépt\u{e9}",
        "a\\\"b",
        "state\\u0041",
    ];

    const INNER: &[&str] = &[
        "extensionAttribute1",
        "ExtensionAttribute2",
        "extensionattribute3",
        "servicePlanId",
        "service",
        "Service",
        "capabilityStatus",
        "assignedDateTime",
        "skuId",
        "SkuID",
        "disabledPlans",
        "assignedByGroup",
        "state",
        "error",
        "id",
        "Id",
        "other",
    ];

    const STRINGS: &[&str] = &[
        "",
        " ",
        "Sales",
        "true",
        "FALSE",
        "2024-03-01T10:00:00Z",
        "2024-03-01",
        "not a date",
        "efb87545-963c-4e0d-99df-69c6916d9eb0",
        "M\u{fc}nchen",
        "line\\nbreak",
        "quote\\\"d",
        "\\u00e9t\\u00E9",
        "\\ud83d\\ude00",
        "\\ud83d",
        "\\x",
        "tab\there",
        "Sales",
        "Contoso",
        "a@contoso.com",
        "E3;EMS",
        "Enabled",
    ];

    fn string() -> impl Strategy<Value = String> {
        proptest::sample::select(STRINGS).prop_map(|s| format!("\"{s}\""))
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            12 => string(),
            1 => Just("true".to_string()),
            1 => Just("false".to_string()),
            2 => Just("null".to_string()),
            1 => proptest::sample::select(&["0", "-1", "1.5", "1e3", "01", "-", "1.", "12345678901234567890"][..])
                .prop_map(str::to_string),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![3 => scalar(), 1 => nested()]
    }

    fn nested() -> impl Strategy<Value = String> {
        scalar().prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5)
                    .prop_map(|xs| format!("[{}]", xs.join(","))),
                proptest::collection::vec((proptest::sample::select(INNER), inner), 0..5).prop_map(
                    |kv| {
                        let body: Vec<String> =
                            kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                        format!("{{{}}}", body.join(","))
                    }
                ),
            ]
        })
    }

    /// Whitespace as exports (and hand edits) have it, line ends included.
    fn ws() -> impl Strategy<Value = &'static str> {
        proptest::sample::select(&["", "", "", " ", "\n", "\t", "\r\n "][..])
    }

    fn graph_record() -> impl Strategy<Value = String> {
        (
            string(),
            proptest::collection::vec((proptest::sample::select(KEYS), value(), ws()), 0..6),
            ws(),
            proptest::option::weighted(0.05, any::<(prop::sample::Index, u8)>()),
        )
            .prop_map(|(id, fields, w, damage)| {
                let mut body = vec![format!("{w}\"id\"{w}:{w}{id}")];
                body.extend(fields.iter().map(|(k, v, w)| format!("\"{k}\"{w}:{v}")));
                let mut text = format!("{{{}}}{w}", body.join(","));
                if let Some((at, byte)) = damage {
                    let i = at.index(text.len());
                    if text.is_char_boundary(i) && byte.is_ascii() {
                        text.insert(i, char::from(byte));
                    }
                }
                text
            })
    }

    fn projections() -> Vec<Option<Projection>> {
        let mut p = Projection::default();
        for key in [
            "displayName",
            "accountEnabled",
            "mobile",
            "extensionAttribute1",
        ] {
            p.columns.insert(ColumnKey::Prop(key));
        }
        p.columns.insert(ColumnKey::Prop("objectId"));
        p.columns.insert(ColumnKey::Prop("assignedPlans"));
        p.extensions
            .insert("extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costcenter".into());
        vec![None, Some(p)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn scanner_agrees_with_serde(text in graph_record()) {
            // One-line and multi-line, each twice through one scanner (the key caches).
            let agree = super::super::agree::record_paths_agree(&text, ObjectType::User, &projections());
            prop_assert!(agree.is_ok(), "{}: {:?}", text, agree);
        }
    }

    /// The generator gives the scanner records it reads, not only ones it declines (else the
    /// property above would hold vacuously).
    #[test]
    fn generated_records_are_mostly_scanned() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let keys = KeyMap::new(ObjectType::User, None);
        let (mut read, n) = (0, 2_000);
        for _ in 0..n {
            let text = graph_record()
                .new_tree(&mut runner)
                .expect("tree")
                .current();
            let mut rec = Record {
                cells: vec![Cell::Null; keys.layout_len],
                extensions: Vec::new(),
            };
            let mut primary = vec![false; keys.layout_len];
            let mut s = Scanner::new(&text, false);
            if record(&keys, &mut s, &mut rec, &mut primary).is_ok() && s.at_line_end() {
                read += 1;
            }
        }
        assert!(read * 5 > n, "the scanner read only {read} of {n}");
    }

    /// The scanner reads the records Graph writes (the test above would pass if it declined
    /// everything): every read of the record, one-line and multi-line, with and without a
    /// projection, the second through the key caches, equals serde's.
    #[test]
    fn scanner_reads_graph_records() {
        let text = r#"{"accountEnabled":true,"assignedPlans":[{"assignedDateTime":"2024-03-01T10:00:00Z","capabilityStatus":"Enabled","service":"exchange","servicePlanId":"efb87545-963c-4e0d-99df-69c6916d9eb0"}],"businessPhones":["+1 425 555 0100"],"department":"Sales","employeeHireDate":"2024-01-02T00:00:00Z","extension_b7d8e5fa0a1b4c0fb1e4c2f0a2b3c4d5_costCenter":"CC-1","id":"2b0159d3-2e9b-493a-2865-533423d743bb","licenseAssignmentStates":[{"assignedByGroup":null,"disabledPlans":["43de0ff5-c92c-492b-9116-175376d08c38"],"error":"None","skuId":"05e9a617-0261-4cee-bb44-138d3ef5d965","state":"Active"}],"manager":{"id":"m1","displayName":"Boss"},"onPremisesExtensionAttributes":{"extensionAttribute1":"E3;","extensionAttribute2":null},"proxyAddresses":["SMTP:a@contoso.com","smtp:b\u00e9@contoso.com"],"userPrincipalName":"a@contoso.com"}"#;
        let projections = projections();
        assert_eq!(
            super::super::agree::record_paths_agree(text, ObjectType::User, &projections),
            Ok(projections.len() * 2 * 2)
        );
    }
}
