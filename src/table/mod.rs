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

mod build;
mod dict;
pub(crate) mod dump;
mod licenses;
mod plans;
mod rows;
mod strings;

pub use build::{Cell, Record, TableBuilder};
pub(crate) use dict::same_bytes;
pub use dict::{Dict, HIGH_CARDINALITY, HIGH_CARDINALITY_SAMPLE};
pub use licenses::{LicenseCell, LicenseColumn, LicenseEntry};
pub use plans::{PlanColumn, PlanList, PlanSets};
pub use rows::RowIndex;
pub use strings::{BoolColumn, DateColumn, ListColumn, StrColumn};

// The files of this folder share their crate-private items through these.
use dict::*;
use licenses::*;
use plans::*;
use strings::*;

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

impl Column {
    /// An empty column of `kind`: every row reads as null (a column a projection left out, or
    /// that no record had).
    pub fn empty(kind: Kind) -> Column {
        match kind {
            Kind::Str => Column::Str(StrColumn::default()),
            Kind::Bool => Column::Bool(BoolColumn::default()),
            Kind::Date => Column::Date(DateColumn::default()),
            Kind::List => Column::List(ListColumn::default()),
            Kind::Plans => Column::Plans(PlanColumn::default()),
            Kind::Licenses => Column::Licenses(LicenseColumn::default()),
        }
    }
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
    /// Column key → position (foldhash: looked up per row by some callers).
    index: hashbrown::HashMap<ColumnKey, usize>,
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

    /// Whether `other` has this table's rows: the same object id column (this table, or a
    /// variant of it from [`Table::with_assigned_plans`] or [`Table::with_member_of`]).
    pub fn same_rows(&self, other: &Table) -> bool {
        let at = self.layout.position(ColumnKey::Prop("objectId"));
        self.len == other.len
            && match (
                at.and_then(|i| self.columns.get(i)),
                at.and_then(|i| other.columns.get(i)),
            ) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
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
