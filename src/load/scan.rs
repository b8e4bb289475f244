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

use super::{KeyMap, Target, set};
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
    /// A column's key.
    Target(&'k Target),
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
pub(super) struct KeyCache<'k> {
    slots: Vec<(Vec<u8>, Resolved<'k>)>,
    /// Every key seen (up to [`MAX_CACHED_KEYS`]), by its raw bytes.
    seen: hashbrown::HashMap<Vec<u8>, Resolved<'k>>,
}

/// Distinct raw keys remembered per part (a file with ever-new keys stays bounded).
const MAX_CACHED_KEYS: usize = 4_096;

/// Reads the record at the scanner's cursor (after optional whitespace) into `rec`, leaving
/// the cursor after its closing brace. `rec`'s cells must be null and its extensions empty;
/// `primary` must be all false and as long as the cells.
///
/// Errors: [`Bail`] for anything the serde path must decide; `rec` is then in an unspecified
/// state and must be reset.
pub(super) fn record<'a, 'k>(
    keys: &'k KeyMap,
    s: &mut Scanner<'a>,
    rec: &mut Record<'a>,
    primary: &mut [bool],
    cache: &mut KeyCache<'k>,
) -> Scan<()> {
    s.ws();
    s.expect(b'{')?;
    s.ws();
    if !s.eat(b'}') {
        let mut at = 0usize;
        loop {
            let resolved = s.top_key(keys, cache, at)?;
            at += 1;
            s.ws();
            s.expect(b':')?;
            s.ws();
            s.field(resolved, rec, primary)?;
            s.ws();
            if s.eat(b',') {
                s.ws();
                continue;
            }
            s.expect(b'}')?;
            break;
        }
    }
    if matches!(rec.cells.get(keys.id_col), None | Some(Cell::Null)) {
        return Err(Bail);
    }
    Ok(())
}

/// A cursor over JSON text.
pub(super) struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    pub(super) i: usize,
    /// JSON Lines: a line end is not whitespace, so a record never runs past its line.
    single_line: bool,
    /// The current extension key, lower-cased.
    extension: String,
}

impl<'a> Scanner<'a> {
    /// A cursor at byte `at` of `text`.
    pub(super) fn new(text: &'a str, at: usize, single_line: bool) -> Scanner<'a> {
        Scanner {
            text,
            b: text.as_bytes(),
            i: at,
            single_line,
            extension: String::new(),
        }
    }

    /// Skips whitespace (but, single-line, not a line end) and tells whether the cursor is
    /// then at the end of the text or of the line.
    pub(super) fn at_line_end(&mut self) -> bool {
        self.ws();
        matches!(self.peek_byte(), None | Some(b'\n'))
    }

    /// `text[start..end]` (the bounds are at ASCII bytes, so always character boundaries).
    fn str_at(&self, start: usize, end: usize) -> Scan<&'a str> {
        self.text.get(start..end).ok_or(Bail)
    }

    /// The top-level key at the cursor (the `at`-th of its record), resolved through the
    /// cache.
    fn top_key<'k>(
        &mut self,
        keys: &'k KeyMap,
        cache: &mut KeyCache<'k>,
        at: usize,
    ) -> Scan<Resolved<'k>> {
        let start = self.i + 1;
        let key = self.string()?;
        let raw = self.b.get(start..self.i - 1).ok_or(Bail)?;
        let hit = match cache.slots.get(at) {
            Some((k, r)) if k.as_slice() == raw => Some(*r),
            _ => cache.seen.get(raw).copied(),
        };
        if let Some(r) = hit {
            if let Resolved::Extension = r {
                self.extension.clear();
                self.extension.push_str(&key);
                self.extension.make_ascii_lowercase();
            }
            if let Some(slot) = cache.slots.get_mut(at) {
                if slot.0.as_slice() != raw {
                    slot.0.clear();
                    slot.0.extend_from_slice(raw);
                    slot.1 = r;
                }
            } else {
                cache.slots.push((raw.to_vec(), r));
            }
            return Ok(r);
        }
        let r = match keys.get(&key) {
            Some(t) => Resolved::Target(t),
            None if key.len() > 10
                && key
                    .get(..10)
                    .is_some_and(|p| p.eq_ignore_ascii_case("extension_")) =>
            {
                let lower = key.to_ascii_lowercase();
                if keys.extensions.as_ref().is_none_or(|e| e.contains(&lower)) {
                    self.extension = lower;
                    Resolved::Extension
                } else {
                    Resolved::Skip
                }
            }
            None => Resolved::Skip,
        };
        if cache.seen.len() < MAX_CACHED_KEYS {
            cache.seen.insert(raw.to_vec(), r);
        }
        let slot = (raw.to_vec(), r);
        match cache.slots.get_mut(at) {
            Some(s) => *s = slot,
            None => cache.slots.push(slot),
        }
        Ok(r)
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

impl<'a> Scanner<'a> {
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

    /// Walks an object at the cursor, handing each key to `f` with the cursor at its value
    /// (which `f` must consume).
    fn object(&mut self, mut f: impl FnMut(&mut Self, Cow<'a, str>) -> Scan<()>) -> Scan<()> {
        self.expect(b'{')?;
        self.ws();
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            f(self, key)?;
            self.ws();
            if self.eat(b',') {
                self.ws();
                continue;
            }
            return self.expect(b'}');
        }
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
            Peek::Str => self.string().map(Cell::Str),
            Peek::Null => self.literal(b"null").map(|()| Cell::Null),
            Peek::Object => {
                let mut id = Cell::Null;
                self.object(|s, k| {
                    if k.eq_ignore_ascii_case("id") {
                        id = s.loose()?.map_or(Cell::Null, Cell::Str);
                        Ok(())
                    } else {
                        s.skip()
                    }
                })?;
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
            Resolved::Target(t) => t,
            Resolved::Extension => {
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
                let cell = match self.cell(Kind::List)? {
                    Cell::List(xs) => xs
                        .into_iter()
                        .next()
                        .flatten()
                        .map_or(Cell::Null, Cell::Str),
                    other => other,
                };
                set(rec, primary, col, cell, true);
            }
            Target::Nested(inner) => match self.peek() {
                Peek::Null => self.literal(b"null")?,
                Peek::Object => self.object(|s, k| {
                    let col = inner
                        .get(k.as_ref())
                        .or_else(|| inner.get(&k.to_ascii_lowercase()));
                    match col {
                        Some(&col) => {
                            let cell = s.cell(Kind::Str)?;
                            set(rec, primary, col, cell, true);
                            Ok(())
                        }
                        None => s.skip(),
                    }
                })?,
                _ => return Err(Bail),
            },
            &Target::Manager(col) => {
                let cell = self.id()?;
                set(rec, primary, col, cell, true);
            }
            &Target::MemberOf(col) => {
                let cell = match self.peek() {
                    Peek::Null => self.literal(b"null").map(|()| Cell::Null)?,
                    Peek::Array => {
                        let mut out = Vec::new();
                        self.array(|s| {
                            if let Cell::Str(id) = s.id()? {
                                out.push(Some(id));
                            }
                            Ok(())
                        })?;
                        Cell::List(out)
                    }
                    _ => return Err(Bail),
                };
                set(rec, primary, col, cell, true);
            }
            &Target::Plans(col) => {
                let cell = match self.peek() {
                    Peek::Null => self.literal(b"null").map(|()| Cell::Null)?,
                    Peek::Array => {
                        let mut out = Vec::new();
                        self.array(|s| {
                            out.push(s.plan()?);
                            Ok(())
                        })?;
                        Cell::Plans(out)
                    }
                    _ => return Err(Bail),
                };
                set(rec, primary, col, cell, true);
            }
            &Target::Licenses(col) => {
                let cell = match self.peek() {
                    Peek::Null => self.literal(b"null").map(|()| Cell::Null)?,
                    Peek::Array => {
                        let mut out = Vec::new();
                        self.array(|s| {
                            let l = s.license()?;
                            if l.sku_id.is_none() {
                                return Err(Bail);
                            }
                            out.push(l);
                            Ok(())
                        })?;
                        Cell::Licenses(out)
                    }
                    _ => return Err(Bail),
                };
                set(rec, primary, col, cell, true);
            }
        }
        Ok(())
    }

    /// `PlanSeed`: `[servicePlanId, service, capabilityStatus]` of one `assignedPlan` object.
    fn plan(&mut self) -> Scan<[Option<Cow<'a, str>>; 3]> {
        if !matches!(self.peek(), Peek::Object) {
            return Err(Bail);
        }
        let mut out: [Option<Cow<'a, str>>; 3] = [None, None, None];
        self.object(|s, k| {
            const FIELDS: [&str; 3] = ["servicePlanId", "service", "capabilityStatus"];
            let slot = FIELDS
                .iter()
                .position(|f| *f == k)
                .or_else(|| FIELDS.iter().position(|f| f.eq_ignore_ascii_case(&k)));
            match slot.and_then(|i| out.get_mut(i)) {
                Some(slot) => {
                    *slot = s.loose()?;
                    Ok(())
                }
                None => s.skip(),
            }
        })?;
        Ok(out)
    }

    /// `LicenseSeed`: one `assignedLicense` or `licenseAssignmentState` object.
    fn license(&mut self) -> Scan<LicenseCell<'a>> {
        if !matches!(self.peek(), Peek::Object) {
            return Err(Bail);
        }
        let mut out = LicenseCell::default();
        self.object(|s, k| {
            if k.eq_ignore_ascii_case("skuId") {
                out.sku_id = s.loose()?;
            } else if k.eq_ignore_ascii_case("disabledPlans") {
                if let Cell::List(xs) = s.cell(Kind::List)? {
                    out.disabled_plans = xs.into_iter().flatten().collect();
                }
            } else if k.eq_ignore_ascii_case("assignedByGroup") {
                out.assigned_by_group = s.loose()?;
            } else if k.eq_ignore_ascii_case("state") {
                out.state = s.loose()?;
            } else if k.eq_ignore_ascii_case("error") {
                out.error = s.loose()?;
            } else {
                s.skip()?;
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// `CellSeed::text`: a string read into a column of `kind`.
fn text_cell(kind: Kind, s: Cow<'_, str>) -> Scan<Cell<'_>> {
    match kind {
        Kind::Str => Ok(Cell::Str(s)),
        Kind::List => Ok(Cell::List(vec![Some(s)])),
        Kind::Bool => {
            if s.eq_ignore_ascii_case("true") {
                Ok(Cell::Bool(true))
            } else if s.eq_ignore_ascii_case("false") {
                Ok(Cell::Bool(false))
            } else if s.trim().is_empty() {
                Ok(Cell::Null)
            } else {
                Err(Bail)
            }
        }
        Kind::Date => {
            if s.trim().is_empty() {
                return Ok(Cell::Null);
            }
            crate::check::parse_date(&s)
                .map(|(t, _)| Cell::Date(t))
                .ok_or(Bail)
        }
        Kind::Plans | Kind::Licenses => Err(Bail),
    }
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
