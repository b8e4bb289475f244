//! A column as bytes and back: the plain column dump behind the load cache
//! (`crate::load::cache`, decision D79).
//!
//! A column's bytes are its vectors one after another, each a little-endian `u64` element count
//! then the elements little-endian (`u32` codes and offsets, `u64` bitmap words, `i128`
//! nanoseconds for dates, UTF-8 bytes for text). Decoding checks every invariant the column's
//! readers rely on (lengths against the row count, offsets that rise and end inside their
//! buffer, codes inside their dictionary, text on character boundaries), so bytes that pass the
//! cache's checksum but were not written by this code are an error, never a wrong table.

use super::*;

/// Appends a column's vectors to a byte buffer.
#[derive(Default)]
pub(crate) struct Writer {
    /// The bytes written so far.
    pub(crate) out: Vec<u8>,
}

impl Writer {
    fn len(&mut self, n: usize) {
        self.out.extend_from_slice(&(n as u64).to_le_bytes());
    }

    fn u32s(&mut self, v: &[u32]) {
        self.len(v.len());
        self.out.reserve(v.len() * 4);
        for x in v {
            self.out.extend_from_slice(&x.to_le_bytes());
        }
    }

    fn u64s(&mut self, v: &[u64]) {
        self.len(v.len());
        self.out.reserve(v.len() * 8);
        for x in v {
            self.out.extend_from_slice(&x.to_le_bytes());
        }
    }

    fn text(&mut self, s: &str) {
        self.len(s.len());
        self.out.extend_from_slice(s.as_bytes());
    }

    fn opt_text(&mut self, s: Option<&str>) {
        match s {
            None => self.out.push(0),
            Some(s) => {
                self.out.push(1);
                self.text(s);
            }
        }
    }

    fn bitmap(&mut self, b: &Bitmap) {
        self.len(b.len());
        self.u64s(b.words());
    }

    fn dict(&mut self, d: &Dict) {
        self.text(&d.text);
        self.u32s(&d.ends);
        let mut unicode: Vec<(u32, (u32, u32))> = d.unicode.iter().map(|(&k, &v)| (k, v)).collect();
        unicode.sort_unstable();
        let flat: Vec<u32> = unicode.iter().flat_map(|&(k, (a, b))| [k, a, b]).collect();
        self.u32s(&flat);
        self.text(&d.unicode_text);
    }

    fn str_column(&mut self, c: &StrColumn) {
        self.out.push(u8::from(c.has_null));
        self.u32s(&c.codes);
        self.dict(&c.dict);
    }

    /// Appends `column`.
    pub(crate) fn column(&mut self, column: &Column) {
        match column {
            Column::Str(c) => self.str_column(c),
            Column::Bool(c) => {
                self.bitmap(&c.value);
                self.bitmap(&c.valid);
            }
            Column::Date(c) => {
                self.len(c.value.len());
                for t in &c.value {
                    self.out.extend_from_slice(&t.as_nanosecond().to_le_bytes());
                }
                self.bitmap(&c.valid);
            }
            Column::List(c) => {
                self.u32s(&c.offsets);
                self.u32s(&c.values);
                self.dict(&c.dict);
            }
            Column::Plans(c) => {
                self.u32s(&c.set_codes);
                self.u32s(&c.sets.offsets);
                self.u32s(&c.sets.service_plan_id);
                self.u32s(&c.sets.service);
                self.u32s(&c.sets.capability_status);
                for d in &c.sets.dicts {
                    self.dict(d);
                }
            }
            Column::Licenses(c) => {
                self.u32s(&c.set_codes);
                self.len(c.sets.len());
                for set in &c.sets {
                    self.len(set.len());
                    for e in set {
                        self.text(&e.sku_id);
                        self.len(e.disabled_plans.len());
                        for p in &e.disabled_plans {
                            self.text(p);
                        }
                        self.opt_text(e.assigned_by_group.as_deref());
                        self.opt_text(e.state.as_deref());
                        self.opt_text(e.error.as_deref());
                    }
                }
            }
        }
    }

    /// Appends a directory extension's column.
    pub(crate) fn extension(&mut self, c: &StrColumn) {
        self.str_column(c);
    }
}

/// Reads a column's vectors back from bytes [`Writer`] wrote.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn bad(what: &str) -> String {
    format!("a cached column is malformed ({what})")
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).ok_or_else(|| bad("length"))?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| bad("truncated"))?;
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn len(&mut self) -> Result<usize, String> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.take(8)?);
        usize::try_from(u64::from_le_bytes(w)).map_err(|_| bad("length"))
    }

    /// `n` elements of `size` bytes, the count checked against the bytes left first (a
    /// corrupt count must not become a huge allocation).
    fn elements(&mut self, size: usize) -> Result<&'a [u8], String> {
        let n = self.len()?;
        let bytes = n.checked_mul(size).ok_or_else(|| bad("length"))?;
        self.take(bytes)
    }

    fn u32s(&mut self) -> Result<Vec<u32>, String> {
        Ok(self
            .elements(4)?
            .chunks_exact(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w.copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect())
    }

    fn u64s(&mut self) -> Result<Vec<u64>, String> {
        Ok(self
            .elements(8)?
            .chunks_exact(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect())
    }

    fn text(&mut self) -> Result<String, String> {
        let b = self.elements(1)?;
        String::from_utf8(b.to_vec()).map_err(|_| bad("text is not UTF-8"))
    }

    fn opt_text(&mut self) -> Result<Option<String>, String> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.text().map(Some),
            _ => Err(bad("flag")),
        }
    }

    fn bitmap(&mut self, rows: usize) -> Result<Bitmap, String> {
        let len = self.len()?;
        let words = self.u64s()?;
        if (len != 0 && len != rows) || words.len() != len.div_ceil(64) {
            return Err(bad("bitmap length"));
        }
        Ok(Bitmap::from_words(words, len))
    }

    fn dict(&mut self) -> Result<Dict, String> {
        let text = self.text()?;
        let ends = self.u32s()?;
        let mut last = 0;
        for &e in &ends {
            if e < last || !text.is_char_boundary(e as usize) {
                return Err(bad("dictionary offsets"));
            }
            last = e;
        }
        let flat = self.u32s()?;
        let unicode_text = self.text()?;
        let mut unicode = HashMap::with_capacity(flat.len() / 3);
        for t in flat.chunks_exact(3) {
            let &[k, a, b] = t else { continue };
            if a > b || unicode_text.get(a as usize..b as usize).is_none() {
                return Err(bad("folded text offsets"));
            }
            unicode.insert(k, (a, b));
        }
        Ok(Dict {
            text,
            ends,
            unicode,
            unicode_text,
        })
    }

    fn codes(codes: &[u32], limit: usize, what: &str) -> Result<(), String> {
        match codes.iter().max() {
            Some(&m) if m as usize > limit => Err(bad(what)),
            _ => Ok(()),
        }
    }

    fn offsets(offsets: &[u32], rows: Option<usize>, end: usize) -> Result<(), String> {
        if rows.is_some_and(|r| offsets.len() != r + 1) {
            return Err(bad("offset count"));
        }
        if offsets.windows(2).any(|w| matches!(w, [a, b] if a > b))
            || offsets.last().is_some_and(|&e| e as usize > end)
        {
            return Err(bad("offsets"));
        }
        Ok(())
    }

    fn str_column(&mut self, rows: usize) -> Result<StrColumn, String> {
        let has_null = self.byte()? != 0;
        let codes = self.u32s()?;
        let dict = self.dict()?;
        if !codes.is_empty() && codes.len() != rows {
            return Err(bad("row count"));
        }
        Self::codes(&codes, dict.len(), "string code")?;
        Ok(StrColumn {
            codes,
            dict,
            has_null,
        })
    }

    /// A column of `kind` over `rows` rows; errors when the bytes are not a whole, consistent
    /// column.
    pub(crate) fn column(&mut self, kind: Kind, rows: usize) -> Result<Column, String> {
        let column = match kind {
            Kind::Str => Column::Str(self.str_column(rows)?),
            Kind::Bool => Column::Bool(BoolColumn {
                value: self.bitmap(rows)?,
                valid: self.bitmap(rows)?,
            }),
            Kind::Date => {
                let raw = self.elements(16)?;
                let mut value = Vec::with_capacity(raw.len() / 16);
                for c in raw.chunks_exact(16) {
                    let mut w = [0u8; 16];
                    w.copy_from_slice(c);
                    let t = jiff::Timestamp::from_nanosecond(i128::from_le_bytes(w))
                        .map_err(|_| bad("date"))?;
                    value.push(t);
                }
                let valid = self.bitmap(rows)?;
                if value.len() != valid.len() {
                    return Err(bad("row count"));
                }
                Column::Date(DateColumn { value, valid })
            }
            Kind::List => {
                let offsets = self.u32s()?;
                let values = self.u32s()?;
                let dict = self.dict()?;
                let rows = (offsets.len() > 1).then_some(rows);
                Self::offsets(&offsets, rows, values.len())?;
                Self::codes(&values, dict.len(), "element code")?;
                Column::List(ListColumn {
                    offsets,
                    values,
                    dict,
                })
            }
            Kind::Plans => {
                let set_codes = self.u32s()?;
                let offsets = self.u32s()?;
                let service_plan_id = self.u32s()?;
                let service = self.u32s()?;
                let capability_status = self.u32s()?;
                let dicts = [self.dict()?, self.dict()?, self.dict()?];
                let n = service_plan_id.len();
                if service.len() != n || capability_status.len() != n {
                    return Err(bad("plan fields"));
                }
                if !set_codes.is_empty() && set_codes.len() != rows {
                    return Err(bad("row count"));
                }
                Self::offsets(&offsets, None, n)?;
                Self::codes(&set_codes, offsets.len().saturating_sub(2), "plan set")?;
                let [a, b, c] = &dicts;
                Self::codes(&service_plan_id, a.len(), "plan code")?;
                Self::codes(&service, b.len(), "plan code")?;
                Self::codes(&capability_status, c.len(), "plan code")?;
                Column::Plans(PlanColumn {
                    set_codes,
                    sets: PlanSets {
                        offsets,
                        service_plan_id,
                        service,
                        capability_status,
                        dicts,
                    },
                })
            }
            Kind::Licenses => {
                let set_codes = self.u32s()?;
                let n = self.len()?;
                let mut sets = Vec::new();
                for _ in 0..n {
                    let m = self.len()?;
                    let mut set = Vec::new();
                    for _ in 0..m {
                        let sku_id = self.text()?;
                        let k = self.len()?;
                        let mut disabled_plans = Vec::new();
                        for _ in 0..k {
                            disabled_plans.push(self.text()?);
                        }
                        set.push(LicenseEntry {
                            sku_id,
                            disabled_plans,
                            assigned_by_group: self.opt_text()?,
                            state: self.opt_text()?,
                            error: self.opt_text()?,
                        });
                    }
                    sets.push(set);
                }
                if !set_codes.is_empty() && set_codes.len() != rows {
                    return Err(bad("row count"));
                }
                Self::codes(&set_codes, sets.len().saturating_sub(1), "licence set")?;
                Column::Licenses(LicenseColumn { set_codes, sets })
            }
        };
        if self.at != self.bytes.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(column)
    }

    /// A directory extension's column over `rows` rows.
    pub(crate) fn extension(&mut self, rows: usize) -> Result<StrColumn, String> {
        let c = self.str_column(rows)?;
        if self.at != self.bytes.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(c)
    }
}

impl Table {
    /// The fixed columns in layout order, with their keys and kinds (for the cache).
    pub(crate) fn columns_with_keys(&self) -> impl Iterator<Item = (ColumnKey, Kind, &Column)> {
        self.layout
            .columns
            .iter()
            .zip(&self.columns)
            .map(|(&(key, kind), c)| (key, kind, &**c))
    }

    /// The directory extension columns, by lower-cased name.
    pub(crate) fn extension_columns(&self) -> &HashMap<String, StrColumn> {
        &self.extensions
    }

    /// A table of `rows` rows from columns read back: `columns[i]` is the layout's column `i`
    /// (`None`: not loaded, null for every row, as a projection leaves it).
    pub(crate) fn from_columns(
        object: ObjectType,
        rows: usize,
        columns: Vec<Option<Column>>,
        extensions: HashMap<String, StrColumn>,
    ) -> Table {
        let layout = Layout::new(object);
        let mut given = columns.into_iter();
        let columns = layout
            .columns
            .iter()
            .map(|&(_, kind)| {
                Arc::new(
                    given
                        .next()
                        .flatten()
                        .unwrap_or_else(|| Column::empty(kind)),
                )
            })
            .collect();
        Table {
            layout,
            len: rows,
            columns,
            extensions: Arc::new(extensions),
            member_of_override: None,
        }
    }
}
