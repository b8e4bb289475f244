//! Building a table: records of cells, one builder per column, appended part by part.

use super::*;

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

pub(super) enum Builder {
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
    pub(super) fn new(kind: Kind) -> Builder {
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
    pub(super) fn push(&mut self, cell: Option<&Cell<'_>>) {
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
    pub(super) fn fork(&self) -> Builder {
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
    pub(super) fn append(&mut self, part: Builder) {
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

    pub(super) fn finish(self) -> Result<Column, String> {
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
            Builder::Skip(kind) => Column::empty(kind),
        })
    }
}

/// Accumulates records into a [`Table`].
pub struct TableBuilder {
    pub(super) layout: Layout,
    pub(super) columns: Vec<Builder>,
    /// Directory extension columns by lower-cased name (foldhash: looked up once per record).
    pub(super) extensions: hashbrown::HashMap<String, StrBuilder>,
    pub(super) rows: usize,
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
    pub(super) fn push_extensions(&mut self, row: usize, record: &Record<'_>) {
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
