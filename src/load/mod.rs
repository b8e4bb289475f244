//! Loaders for the exports admins have: Microsoft Graph JSON Lines (one object a line), a JSON
//! array (`Get-MgUser -All | ConvertTo-Json`), Graph list pages (`{"value": [...],
//! "@odata.nextLink": ...}`, one file or a folder of page files), and CSV (the Entra admin
//! center's "Download users" file, or headers named like the rule properties or Graph keys).
//!
//! Mapping (`crate::schema`): each property is read from its Graph key (`mobile` ←
//! `mobilePhone`, `extensionAttribute1` ← `onPremisesExtensionAttributes.extensionAttribute1`,
//! `telephoneNumber` ← `businessPhones[0]`), else from a top-level key named like the property
//! (flattened exports). Keys match case-insensitively (PowerShell writes PascalCase). Directory
//! extensions `extension_<appId>_<name>` are kept; `manager` comes from `$expand=manager`
//! (`"manager": {"id": …}`, or a plain id) or `managerId`; `memberOf` from `$expand=memberOf`.
//!
//! Typing: a string property takes a string (a number or boolean is kept as its JSON text); a
//! boolean takes `true`/`false` or those words in any case; a date takes ISO 8601 text; a
//! collection takes an array (a lone string is one element). Anything else, a record that is not
//! an object, a record without `id`, or malformed JSON/CSV is an error naming the file, line and
//! column. By default the first error stops the load; with `skip_invalid` every bad record is
//! skipped and listed in [`Loaded::skipped`]. Nothing is dropped silently.

use crate::schema::{self, GraphKey, ObjectType, PropType};
use crate::table::{
    Cell, ColumnKey, Kind, Layout, LicenseCell, Projection, Record, Table, TableBuilder,
};
use rayon::prelude::*;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher as _;
use std::io::Read;
use std::path::{Path, PathBuf};

mod agree;
mod cache;
mod csv_file;
mod files;
mod keys;
mod parallel;
mod record;
mod records;
mod scan;

pub(crate) use crate::formats::{PowerShellText, export_date, powershell_text};
pub use files::{Format, files_of, format_of, ignored_in};
pub use records::{
    for_each_record, for_each_record_where, group_memberships, json_objects, records_by_id,
    table_from_values,
};

// The files of this folder share their crate-private items through these.
use csv_file::*;
use files::*;
use keys::*;
use parallel::*;
use record::*;
use records::*;

pub use agree::{TwoReads, check_record_paths, read_both_ways};
pub use cache::{
    AUTO_MIN_BYTES, CACHE_DIR, CacheMode, CacheUse, FORMAT as CACHE_FORMAT, cache_path,
};

/// A bad record or file: where, and what.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when the error is about the whole file).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file.display(), self.message),
            (l, 0) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            (l, c) => write!(f, "{}:{l}:{c}: {}", self.file.display(), self.message),
        }
    }
}

impl LoadError {
    /// serde_json's syntax error `e` in text that starts at line `first_line` of `file`: its
    /// message without serde_json's own "at line … column …", which the error carries as
    /// fields.
    pub(crate) fn json(file: &Path, first_line: usize, e: &serde_json::Error) -> LoadError {
        LoadError {
            file: file.to_path_buf(),
            line: first_line + e.line().saturating_sub(1),
            column: e.column(),
            message: e
                .to_string()
                .split(" at line")
                .next()
                .unwrap_or("")
                .to_string(),
        }
    }
}

impl std::error::Error for LoadError {}

/// How to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Skip bad records (listing each in [`Loaded::skipped`]) instead of stopping at the first.
    pub skip_invalid: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Bytes of a JSON Lines file parsed as one task; 0 means 4 MiB. Waves of four chunks per
    /// thread are in memory (one being read while the last is parsed); smaller values are for
    /// tests of lines split across chunks.
    pub block_bytes: usize,
    /// Keep only these columns (`None`: all). Values of other keys are skipped unparsed, so a
    /// load for a few rules is faster; skipped columns read as null.
    pub projection: Option<Projection>,
    /// The longest JSON Lines line accepted, in bytes; 0 means 256 MiB. A longer line (a JSON
    /// array saved as `.jsonl`, a file that is not JSON Lines) is an error rather than an
    /// ever-growing buffer.
    pub max_line_bytes: usize,
    /// Whether to read and write the load cache (`Off` by default; see [`CacheMode`]).
    pub cache: CacheMode,
}

/// A loaded table and what the loader noticed.
#[derive(Debug)]
pub struct Loaded {
    /// The table.
    pub table: Table,
    /// Records skipped under [`LoadOptions::skip_invalid`], in file order.
    pub skipped: Vec<LoadError>,
    /// Things kept but worth knowing: CSV columns not used, duplicate ids.
    pub warnings: Vec<String>,
    /// Bytes of export the table stands for (read now, or when the cache was written).
    pub bytes: u64,
    /// What the load cache did.
    pub cache: CacheUse,
}

/// A progress bar of `len` steps in indicatif's `template`, or a hidden one when `show` is
/// false (not a terminal).
pub fn progress_bar(show: bool, len: u64, template: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(len);
    b.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b
}

/// Loads users or devices from a file or folder, through the load cache unless `opts.cache` is
/// `Off` (a cached table is the table the export would give: decision D79).
///
/// Errors: the first bad record (file, line, column), unless `skip_invalid`; an unreadable file;
/// a UTF-16 file (PowerShell 5's `Out-File` default: re-save as UTF-8). A cache that cannot be
/// read or written is never an error (see [`CacheUse`]).
pub fn load(path: &Path, object: ObjectType, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    match opts.cache {
        CacheMode::Off => load_export(path, object, opts),
        _ => cache::load_cached(path, object, opts),
    }
}

/// The bytes of `files` together (a file that cannot be read counts 0).
fn total_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// Parses the export (no cache).
fn load_export(path: &Path, object: ObjectType, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let files = files_of(path)?;
    let total = total_bytes(&files);
    let bar = progress_bar(
        opts.progress,
        total,
        "loading {bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec} {eta}",
    );
    let mut cx = LoadCx {
        object,
        chunk_bytes: if opts.block_bytes == 0 {
            CHUNK_BYTES
        } else {
            opts.block_bytes
        },
        max_line: if opts.max_line_bytes == 0 {
            MAX_LINE_BYTES
        } else {
            opts.max_line_bytes
        },
        builder: TableBuilder::projected(object, opts.projection.as_ref()),
        keys: KeyMap::new(object, opts.projection.as_ref()),
        skip_invalid: opts.skip_invalid,
        skipped: Vec::new(),
        warnings: Vec::new(),
        bar,
        expected: None,
        records: 0,
    };
    let last = files.len().saturating_sub(1);
    for (i, f) in files.iter().enumerate() {
        cx.file(f, i == last)?;
    }
    if let Some(expected) = cx.expected.filter(|&e| e > cx.records) {
        return Err(LoadError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!(
                "a partial export: the Graph pages say @odata.count {expected} and hold {} records; save every page",
                cx.records
            ),
        });
    }
    cx.bar.finish_and_clear();
    let LoadCx {
        builder,
        skipped,
        mut warnings,
        ..
    } = cx;
    let ignored = ignored_in(path);
    if !ignored.is_empty() {
        warnings.push(format!(
            "{}: {} entr{} not read (only .json, .jsonl, .ndjson and .csv files directly in the folder are): {}",
            path.display(),
            ignored.len(),
            if ignored.len() == 1 { "y is" } else { "ies are" },
            ignored.join(", ")
        ));
    }
    let table = builder.finish().map_err(|m| LoadError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message: m,
    })?;
    if let Some(w) = duplicate_ids(&table) {
        warnings.push(w);
    }
    Ok(Loaded {
        table,
        skipped,
        warnings,
        bytes: total,
        cache: CacheUse::Off,
    })
}

fn duplicate_ids(t: &Table) -> Option<String> {
    // High-cardinality columns are not deduplicated (`table::HIGH_CARDINALITY`), so compare the
    // values themselves: hashes sorted in parallel, then equal neighbours checked.
    let c = t.str_column(ColumnKey::Prop("objectId"))?;
    let hasher = hashbrown::DefaultHashBuilder::default();
    let mut hashed: Vec<(u64, u32)> = (0..t.len())
        .into_par_iter()
        .filter_map(|row| c.get(row).map(|id| (hasher.hash_one(id), row as u32)))
        .collect();
    hashed.par_sort_unstable();
    let mut repeated: Vec<u32> = Vec::new();
    for run in hashed.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
        // Rows in file order; each is a repeat if an earlier row of the run has its id.
        for (k, &(_, row)) in run.iter().enumerate() {
            let id = c.get(row as usize);
            let earlier = run
                .get(..k)
                .unwrap_or(&[])
                .iter()
                .any(|&(_, r)| c.get(r as usize) == id);
            if earlier {
                repeated.push(row);
            }
        }
    }
    repeated.sort_unstable();
    let repeats = repeated.len();
    let examples: Vec<&str> = repeated
        .iter()
        .take(5)
        .filter_map(|&r| c.get(r as usize))
        .collect();
    (repeats > 0).then(|| {
        format!(
            "{repeats} record(s) repeat an id already loaded (each is kept as its own row), e.g. {}",
            examples.join(", ")
        )
    })
}
