//! String, string-collection, boolean and date columns, and their builders.

use super::*;

/// A dictionary-encoded string column.
#[derive(Clone, Debug, Default)]
pub struct StrColumn {
    /// Per row: 0 for null, else `1 + index` into `dict`. Empty when every row is null.
    pub(crate) codes: Vec<u32>,
    /// Distinct values.
    pub(crate) dict: Dict,
    /// True when some row is null.
    pub(crate) has_null: bool,
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
pub(super) struct StrBuilder {
    pub(super) codes: Vec<u32>,
    pub(super) dict: DictBuilder,
    pub(super) rows: usize,
    pub(super) has_null: bool,
}

impl StrBuilder {
    pub(super) fn push(&mut self, v: Option<&str>) {
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
    pub(super) fn fork(&self) -> StrBuilder {
        StrBuilder {
            dict: self.dict.fork(),
            ..StrBuilder::default()
        }
    }

    /// Pads to `rows` rows with nulls (a column first seen after its first rows).
    pub(super) fn pad_to(&mut self, rows: usize) {
        if self.rows < rows {
            self.has_null = true;
            if !self.codes.is_empty() {
                self.codes.resize(rows, 0);
            }
            self.rows = rows;
        }
    }

    /// Appends the rows of `part` (from [`StrBuilder::fork`]).
    pub(super) fn append(&mut self, part: StrBuilder) {
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

    pub(super) fn finish(self) -> Result<StrColumn, String> {
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
    pub(crate) value: Bitmap,
    /// Bit set when the value is not null.
    pub(crate) valid: Bitmap,
}

impl BoolColumn {
    /// Row `row`'s value (`None` when null).
    pub fn get(&self, row: usize) -> Option<bool> {
        (row < self.valid.len() && self.valid.get(row)).then(|| self.value.get(row))
    }
}

/// A date-time column.
#[derive(Clone, Debug, Default)]
pub struct DateColumn {
    /// Per row; the Unix epoch where null.
    pub(crate) value: Vec<jiff::Timestamp>,
    /// Bit set when the value is not null.
    pub(crate) valid: Bitmap,
}

impl DateColumn {
    /// Row `row`'s value (`None` when null).
    pub fn get(&self, row: usize) -> Option<jiff::Timestamp> {
        if row < self.valid.len() && self.valid.get(row) {
            self.value.get(row).copied()
        } else {
            None
        }
    }
}

/// A string-collection column: row `r`'s elements are `values[offsets[r]..offsets[r + 1]]`,
/// codes into `dict` as in [`StrColumn`] (0 for a null element).
#[derive(Clone, Debug, Default)]
pub struct ListColumn {
    /// `rows + 1` offsets into `values`.
    pub(crate) offsets: Vec<u32>,
    /// Element codes.
    pub(crate) values: Vec<u32>,
    /// Distinct element values.
    pub(crate) dict: Dict,
}

impl ListColumn {
    /// The distinct element values (element code `c > 0` is entry `c - 1`).
    pub fn dict(&self) -> &Dict {
        &self.dict
    }

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
pub(super) struct ListBuilder {
    pub(super) offsets: Vec<u32>,
    pub(super) values: Vec<u32>,
    pub(super) dict: DictBuilder,
    pub(super) overflow: bool,
}

impl ListBuilder {
    pub(super) fn push(&mut self, items: &[Option<Cow<'_, str>>]) {
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

    pub(super) fn fork(&self) -> ListBuilder {
        ListBuilder {
            dict: self.dict.fork(),
            ..ListBuilder::default()
        }
    }

    /// Appends the rows of `part` (from [`ListBuilder::fork`]).
    pub(super) fn append(&mut self, part: ListBuilder) {
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

    pub(super) fn finish(mut self) -> Result<ListColumn, String> {
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
