//! Object id → row: [`RowIndex`].

use std::hash::BuildHasher as _;

use super::*;

/// Object id (any case, surrounding spaces ignored) → row, for one table. Rows are hashed by
/// their id's trimmed, ASCII-lower-cased bytes and compared against the table's own ids, so
/// the index holds a `u32` per row and no copy of the ids.
pub struct RowIndex {
    ids: Table,
    rows: hashbrown::HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl std::fmt::Debug for RowIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RowIndex({} rows)", self.rows.len())
    }
}

/// `id` trimmed and ASCII-lower-cased, in `buf` when it fits (GUIDs do), else allocated.
fn normalized<'b>(id: &str, buf: &'b mut [u8; 64]) -> std::borrow::Cow<'b, [u8]> {
    let t = id.trim().as_bytes();
    match buf.get_mut(..t.len()) {
        Some(b) => {
            for (d, s) in b.iter_mut().zip(t) {
                *d = s.to_ascii_lowercase();
            }
            std::borrow::Cow::Borrowed(&*b)
        }
        None => std::borrow::Cow::Owned(t.to_ascii_lowercase()),
    }
}

impl RowIndex {
    /// Indexes `table`'s object ids (first row wins for a duplicate id).
    pub fn new(table: &Table) -> RowIndex {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut rows: hashbrown::HashTable<u32> = hashbrown::HashTable::with_capacity(table.len());
        let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        let mut buf = [0u8; 64];
        if let Some(ids) = table.str_column(ColumnKey::Prop("objectId")) {
            for row in 0..table.len() {
                let Some(id) = ids.get(row) else { continue };
                let h = hasher.hash_one(&*normalized(id, &mut buf));
                let at = |r: &u32| ids.get(*r as usize).is_some_and(|x| same(x, id));
                if rows.find(h, at).is_none() {
                    rows.insert_unique(h, row as u32, |&r| {
                        let mut b = [0u8; 64];
                        hasher.hash_one(&*normalized(ids.get(r as usize).unwrap_or(""), &mut b))
                    });
                }
            }
        }
        RowIndex {
            ids: table.clone(),
            rows,
            hasher,
        }
    }

    /// The row of `id` (any case).
    pub fn get(&self, id: &str) -> Option<usize> {
        let mut buf = [0u8; 64];
        let h = self.hasher.hash_one(&*normalized(id, &mut buf));
        self.rows
            .find(h, |&r| {
                self.ids
                    .id(r as usize)
                    .is_some_and(|x| x.trim().eq_ignore_ascii_case(id.trim()))
            })
            .map(|&r| r as usize)
    }

    /// Whether this index was made for `table`'s rows (the same id column: the table itself
    /// or a variant of it with another `assignedPlans` or memberOf).
    pub fn indexes(&self, table: &Table) -> bool {
        self.ids.same_rows(table)
    }
}
