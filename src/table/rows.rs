//! Object id → row: [`RowIndex`].

use std::hash::BuildHasher as _;

use super::*;

/// Object id (any case, surrounding spaces ignored) → row, for one table: every row's hash
/// (of its id's trimmed, ASCII-lower-cased bytes) and row, sorted, so that it is built in
/// parallel (hashing and sorting 10M ids on the pool) and a lookup is a binary search that
/// compares the table's own ids. It holds 12 bytes per row and no copy of the ids.
pub struct RowIndex {
    ids: Table,
    rows: Vec<(u64, u32)>,
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
        let mut rows: Vec<(u64, u32)> = match table.str_column(ColumnKey::Prop("objectId")) {
            None => Vec::new(),
            Some(ids) => (0..table.len())
                .into_par_iter()
                .filter_map(|row| {
                    let id = ids.get(row)?;
                    let mut buf = [0u8; 64];
                    Some((hasher.hash_one(&*normalized(id, &mut buf)), row as u32))
                })
                .collect(),
        };
        // By hash, then row: among equal ids the first row comes first.
        rows.par_sort_unstable();
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
        let from = self.rows.partition_point(|&(x, _)| x < h);
        self.rows
            .get(from..)
            .unwrap_or(&[])
            .iter()
            .take_while(|&&(x, _)| x == h)
            .find(|&&(_, r)| {
                self.ids
                    .id(r as usize)
                    .is_some_and(|x| x.trim().eq_ignore_ascii_case(id.trim()))
            })
            .map(|&(_, r)| r as usize)
    }

    /// Whether this index was made for `table`'s rows (the same id column: the table itself
    /// or a variant of it with another `assignedPlans` or memberOf).
    pub fn indexes(&self, table: &Table) -> bool {
        self.ids.same_rows(table)
    }
}
