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
mod scan;

pub use agree::{check_record_paths, differential};

/// A bad record or file: where, and what.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
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
    /// Bytes read.
    pub bytes: u64,
}

/// Input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object a line (`.jsonl`, `.ndjson`).
    JsonLines,
    /// A JSON array, a Graph page `{"value": [...]}`, or one object (`.json`).
    Json,
    /// CSV with a header row (`.csv`).
    Csv,
}

/// The format of `path` from its extension; `.json` files holding several top-level objects are
/// read as JSON Lines.
pub fn format_of(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "jsonl" | "ndjson" => Some(Format::JsonLines),
        "json" => Some(Format::Json),
        "csv" => Some(Format::Csv),
        _ => None,
    }
}

/// The files a path stands for: itself, or a folder's `.json`/`.jsonl`/`.ndjson`/`.csv` files in
/// name order (Graph page files `users-001.json`, `users-002.json`, …). What else a folder
/// holds is named by [`ignored_in`].
///
/// Errors: no such path; a path (or a folder entry with an export's extension) that is not a
/// regular file (a device such as `/dev/zero`, a FIFO, a socket: reading one would never end
/// or never start); a folder without exports.
pub fn files_of(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let whole = |m: String| LoadError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message: m,
    };
    let regular = |p: &Path| -> Result<(), LoadError> {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(LoadError {
                file: p.to_path_buf(),
                line: 0,
                column: 0,
                message: "not a regular file (a device, FIFO or socket): give an export file, or a folder of them".to_string(),
            }),
            Err(e) => Err(io_err(p, &e)),
        }
    };
    if !path.is_dir() {
        if !path.exists() {
            return Err(whole("no such file or folder".to_string()));
        }
        regular(path)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| whole(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.is_dir() && format_of(p).is_some())
        .collect();
    if files.is_empty() {
        files = entraexporter_files(path);
    }
    files.sort();
    for f in &files {
        regular(f)?;
    }
    if files.is_empty() {
        return Err(whole(
            "the folder has no .json, .jsonl, .ndjson or .csv files (nor EntraExporter's <id>/<id>.json sub-folders)".to_string(),
        ));
    }
    Ok(files)
}

/// Microsoft's EntraExporter layout (`Export-Entra`): one object per file, each in a sub-folder
/// named after it, `Users/<id>/<id>.json` (and `Groups/<id>/<id>.json` with `Members/`
/// beside it). The `<name>/<name>.json` file of every sub-folder of `dir` that has one (D72).
fn entraexporter_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|sub| {
            let name = sub.file_name()?.to_str()?.to_string();
            let file = sub.join(format!("{name}.json"));
            file.exists().then_some(file)
        })
        .collect()
}

/// EntraExporter writes a group's members beside it: `Groups/<id>/Members/<memberId>/<memberId>.json`.
/// Their ids and `@odata.type`s, as `$expand=members` would give them, when that folder exists.
fn entraexporter_members(object_file: &Path) -> Option<serde_json::Value> {
    let dir = object_file.parent()?;
    let members = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.eq_ignore_ascii_case("members"))
        })?;
    let mut out = Vec::new();
    for file in entraexporter_files(&members) {
        let text = std::fs::read(&file).ok()?;
        let text = text.strip_prefix(BOM).unwrap_or(&text);
        let v: serde_json::Value = serde_json::from_slice(text).ok()?;
        let o = v.as_object()?;
        let mut m = serde_json::Map::new();
        for key in ["id", "@odata.type"] {
            if let Some(x) = crate::oracle::get_ci(o, key) {
                m.insert(key.to_string(), x.clone());
            }
        }
        out.push(serde_json::Value::Object(m));
    }
    Some(serde_json::Value::Array(out))
}

/// The entries of folder `path` that [`files_of`] does not read (sub-folders, files of other
/// types), by name, sorted; empty for a file. A loader names them in a warning, so a page or a
/// sub-folder of exports left out is not left out silently.
pub fn ignored_in(path: &Path) -> Vec<String> {
    if !path.is_dir() {
        return Vec::new();
    }
    let mut out: Vec<String> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() || format_of(p).is_none())
        // EntraExporter's `<id>/<id>.json` sub-folders are read when the folder has no files.
        .filter(|p| {
            !(p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| p.join(format!("{n}.json")).exists()))
        })
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            // Hidden files (`.DS_Store`) and notes are expected in a folder of exports.
            (!name.starts_with('.')).then(|| if p.is_dir() { name + "/" } else { name })
        })
        .collect();
    out.sort();
    out
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

/// Loads users or devices from a file or folder.
///
/// Errors: the first bad record (file, line, column), unless `skip_invalid`; an unreadable file;
/// a UTF-16 file (PowerShell 5's `Out-File` default: re-save as UTF-8).
pub fn load(path: &Path, object: ObjectType, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let files = files_of(path)?;
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
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

/// Reads the records of a file or folder, in order, as Graph-shaped JSON objects with their
/// location (for `explain`, which runs the reference oracle on the raw record), until `f`
/// returns false. Only records whose text contains `needle` (ASCII case-insensitively; pass
/// `""` for all) are parsed, and JSON Lines files are streamed, so finding one user in a
/// multi-gigabyte export takes one pass and little memory. Each record is first read as
/// [`load`] reads it (the same record paths), and one `load` would reject — malformed JSON, a
/// wrong type, a key given twice (D62) — reaches `f` as its error, so the oracle never answers
/// for a record the engine does not hold.
///
/// Errors: unreadable files, malformed JSON or CSV structure.
pub fn for_each_record(
    path: &Path,
    object: ObjectType,
    projection: Option<&Projection>,
    needle: &str,
    f: impl FnMut(Result<&serde_json::Value, LoadError>, &Path, usize) -> bool,
) -> Result<(), LoadError> {
    let needle = needle.to_ascii_lowercase();
    for_each_record_where(
        path,
        object,
        projection,
        |raw| needle.is_empty() || raw.to_ascii_lowercase().contains(&needle),
        f,
    )
}

/// The records of `path` whose object id is in `ids` (lower case), by id. Records are found by
/// a multi-string scan for the ids (ASCII case-insensitive) before any JSON is parsed, so a
/// few records come out of a large export at scan speed.
///
/// Errors: unreadable files.
pub fn records_by_id(
    path: &Path,
    object: ObjectType,
    ids: &std::collections::HashSet<String>,
) -> Result<HashMap<String, serde_json::Value>, LoadError> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let ac = aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(ids.iter())
        .map_err(|e| LoadError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: e.to_string(),
        })?;
    for_each_record_where(
        path,
        object,
        None,
        |raw| ac.is_match(raw),
        |v, _, _| {
            // A record the load rejects is in no group: it has nothing to explain.
            let Ok(v) = v else {
                return true;
            };
            if let Some(id) = v
                .as_object()
                .and_then(|o| crate::oracle::get_ci(o, "id"))
                .and_then(serde_json::Value::as_str)
            {
                let id = id.trim().to_ascii_lowercase();
                if ids.contains(&id) {
                    out.insert(id, v.clone());
                }
            }
            out.len() < ids.len()
        },
    )?;
    Ok(out)
}

/// Calls `f` on every record whose raw text passes `hit`, until `f` returns false: with the
/// record as a JSON object, or with the error [`load`] with `projection` would report for it.
///
/// Errors: unreadable files.
pub fn for_each_record_where(
    path: &Path,
    object: ObjectType,
    projection: Option<&Projection>,
    hit: impl Fn(&str) -> bool,
    mut f: impl FnMut(Result<&serde_json::Value, LoadError>, &Path, usize) -> bool,
) -> Result<(), LoadError> {
    let keys = KeyMap::new(object, projection);
    let read = |raw: &str, file: &Path, line: usize| record_value(&keys, raw, file, line);
    for file in files_of(path)? {
        let fmt = format_of(&file).unwrap_or(Format::Json);
        if fmt == Format::JsonLines {
            use std::io::BufRead;
            let reader =
                std::io::BufReader::new(std::fs::File::open(&file).map_err(|e| io_err(&file, &e))?);
            for (i, line) in reader.split(b'\n').enumerate() {
                let line = line.map_err(|e| LoadError {
                    line: i + 1,
                    ..io_err(&file, &e)
                })?;
                // A line that is not UTF-8 is a malformed record, as `load` has it.
                let line = match String::from_utf8(line) {
                    Ok(l) => l,
                    Err(e) => {
                        if !hit(&String::from_utf8_lossy(e.as_bytes())) {
                            continue;
                        }
                        let err = utf8_error(&file, i + 1, e.utf8_error().valid_up_to() + 1);
                        if !f(Err(err), &file, i + 1) {
                            return Ok(());
                        }
                        continue;
                    }
                };
                let line = line.trim_start_matches('\u{feff}');
                if !hit(line) || line.trim().is_empty() {
                    continue;
                }
                let v = read(line, &file, i + 1);
                if !f(v.as_ref().map_err(Clone::clone), &file, i + 1) {
                    return Ok(());
                }
            }
            continue;
        }
        let bytes = read_utf8(&file)?;
        if fmt == Format::Csv {
            for (line, v) in csv_values(&file, &bytes, &keys)? {
                let v = v.and_then(|v| {
                    RecordSeed { keys: &keys }
                        .deserialize(&v)
                        .map_err(|e| LoadError {
                            file: file.clone(),
                            line,
                            column: 0,
                            message: e.to_string(),
                        })?;
                    Ok(v)
                });
                let text = v.as_ref().map(ToString::to_string).unwrap_or_default();
                if hit(&text) && !f(v.as_ref().map_err(Clone::clone), &file, line) {
                    return Ok(());
                }
            }
            continue;
        }
        let (bytes, bad) = utf8_marked(bytes);
        for (line, raw) in json_units(&file, &bytes, fmt)?.0 {
            if !hit(raw) {
                continue;
            }
            let v = match first_marked(raw, &bad) {
                Some((l, column)) => Err(utf8_error(&file, line + l, column)),
                None => read(raw, &file, line),
            };
            if !f(v.as_ref().map_err(Clone::clone), &file, line) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One JSON record as `load` reads it (through the serde record path, which rejects what the
/// load rejects), then as a JSON object for the oracle.
///
/// Errors: the error `load` reports for the record.
fn record_value(
    keys: &KeyMap,
    raw: &str,
    file: &Path,
    line: usize,
) -> Result<serde_json::Value, LoadError> {
    parse_record(keys, raw.as_bytes(), file, line)?;
    let mut v = serde_json::from_str::<serde_json::Value>(raw).map_err(|e| LoadError {
        file: file.to_path_buf(),
        line,
        column: e.column(),
        message: e.to_string(),
    })?;
    // Graph PowerShell's `AdditionalProperties` hold the record's own keys (D70), as the load
    // reads them: lifted to the top level (the load refuses one given in both places).
    if let Some(o) = v.as_object_mut() {
        let nested: Vec<String> = o
            .keys()
            .filter(|k| k.eq_ignore_ascii_case("AdditionalProperties"))
            .cloned()
            .collect();
        for k in nested {
            if let Some(serde_json::Value::Object(inner)) = o.remove(&k) {
                for (ik, iv) in inner {
                    o.entry(ik).or_insert(iv);
                }
            }
        }
    }
    Ok(v)
}

struct LoadCx {
    object: ObjectType,
    chunk_bytes: usize,
    max_line: usize,
    builder: TableBuilder,
    keys: KeyMap,
    skip_invalid: bool,
    skipped: Vec<LoadError>,
    warnings: Vec<String>,
    bar: indicatif::ProgressBar,
    /// `@odata.count` of the first Graph page that has one.
    expected: Option<u64>,
    /// Records in the Graph page and array files read.
    records: u64,
}

/// Bytes of a JSON Lines file parsed as one task (a part of the table built on one thread).
const CHUNK_BYTES: usize = 4 << 20;

/// Records of a JSON array or page file parsed as one task.
const CHUNK_RECORDS: usize = 2_048;

/// Records parsed into a builder of their own (a [`TableBuilder::fork`]), to be appended in
/// file order.
struct Part {
    builder: TableBuilder,
    /// Bad records, in order; a part stops at its first unless skipping.
    errors: Vec<LoadError>,
    /// Lines the part's text held (JSON Lines chunks: how far the next chunk's lines start).
    lines: usize,
}

/// What kind of Graph objects the start of an export holds, from what Graph writes into it:
/// a page's `@odata.context` (`…/$metadata#devices`), the records' `@odata.type`
/// (`#microsoft.graph.device`; a user's nested `memberOf` groups say `#microsoft.graph.group`,
/// so a group type counts only without a user's), or a group's `groupTypes` key beside no
/// `userPrincipalName`. `None` when it does not say.
fn sniffed_kind(head: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(head);
    let t = text.as_ref();
    for (tag, kind) in [
        ("$metadata#users", "users"),
        ("$metadata#devices", "devices"),
        ("$metadata#groups", "groups"),
    ] {
        if t.contains(tag) {
            return Some(kind);
        }
    }
    // The first user or device type: a record's own `@odata.type` is its first key, before any
    // expanded object (a device's registeredOwners are users).
    let at = |ty: &str| t.find(&format!("\"#microsoft.graph.{ty}\""));
    match (at("user"), at("device")) {
        (Some(u), Some(d)) => return Some(if u < d { "users" } else { "devices" }),
        (Some(_), None) => return Some("users"),
        (None, Some(_)) => return Some("devices"),
        (None, None) => {}
    }
    let key = |k: &str| t.contains(&format!("\"{k}\""));
    if key("groupTypes") && !key("userPrincipalName") {
        return Some("groups");
    }
    None
}

/// Refuses an export of another kind of object than `object` (a devices export given as
/// `--users`, a groups page as `--devices`), judged from its first 64 KiB (D69).
///
/// Errors: the kind it holds and the option to give it to.
fn check_kind(file: &Path, object: ObjectType) -> Result<(), LoadError> {
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(file) {
        let _ = f.take(64 << 10).read_to_end(&mut head);
    }
    let want = match object {
        ObjectType::User => "users",
        ObjectType::Device => "devices",
    };
    match sniffed_kind(&head) {
        Some(kind) if kind != want => Err(LoadError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!(
                "this is a {kind} export (Graph's @odata.context or @odata.type says so), not {want}: {}",
                match kind {
                    "devices" => "give it as --devices (or name it devices.json in a snapshot)",
                    "users" => "give it as --users (or name it users.json in a snapshot)",
                    _ => "give groups as a snapshot's groups.json (recompute/whatif --tenant)",
                }
            ),
        }),
        _ => Ok(()),
    }
}

impl LoadCx {
    fn file(&mut self, file: &Path, is_last: bool) -> Result<(), LoadError> {
        let fmt = format_of(file).unwrap_or(Format::Json);
        if fmt != Format::Csv {
            check_kind(file, self.object)?;
        }
        match fmt {
            Format::JsonLines => self.json_lines(file),
            Format::Json => {
                let (bytes, bad) = utf8_marked(read_utf8(file)?);
                let (units, page) = json_units(file, &bytes, Format::Json)?;
                check_not_partial(file, &page, is_last)?;
                if let Some(c) = page.count {
                    self.expected.get_or_insert(c);
                }
                self.records += units.len() as u64;
                self.bar.inc(bytes.len() as u64);
                let (keys, template, skip) = (&self.keys, &self.builder, self.skip_invalid);
                let parts: Vec<Part> = units
                    .par_chunks(CHUNK_RECORDS)
                    .map(|c| parse_part(keys, template, file, Source::Units(c, &bad), skip))
                    .collect();
                for part in parts {
                    Self::absorb(&mut self.builder, &mut self.skipped, skip, part, 0)?;
                }
                Ok(())
            }
            Format::Csv => {
                let bytes = read_utf8(file)?;
                let rows = csv_values(file, &bytes, &self.keys)?;
                self.bar.inc(bytes.len() as u64);
                let unused = csv_unused_headers(&bytes, self.object);
                if rows
                    .iter()
                    .any(|(_, r)| r.as_ref().is_ok_and(|v| v.get(CSV_ID_FROM_UPN).is_some()))
                {
                    self.warnings.push(format!(
                        "{}: no id column: rows are identified by userPrincipalName (the portal's bulk-create template lists users not created yet)",
                        file.display()
                    ));
                }
                if !unused.is_empty() {
                    self.warnings.push(format!(
                        "{}: columns that name no property dynrule reads (ignored): {}",
                        file.display(),
                        unused.join(", ")
                    ));
                }
                let keys = &self.keys;
                let parsed: Vec<Result<Record<'_>, LoadError>> = rows
                    .par_iter()
                    .map(|(line, v)| match v {
                        Ok(v) => RecordSeed { keys }.deserialize(v).map_err(|e| LoadError {
                            file: file.to_path_buf(),
                            line: *line,
                            column: 0,
                            message: e.to_string(),
                        }),
                        Err(e) => Err(e.clone()),
                    })
                    .collect();
                let mut ok = Vec::with_capacity(parsed.len());
                for r in parsed {
                    match r {
                        Ok(rec) => ok.push(rec),
                        Err(e) if self.skip_invalid => self.skipped.push(e),
                        Err(e) => return Err(e),
                    }
                }
                self.builder.push_batch(&ok);
                Ok(())
            }
        }
    }

    /// Streams a JSON Lines file: chunks (cut at line ends) are read a wave at a time, and each
    /// wave's chunks are parsed in parallel, one part each, while the next wave is read; the
    /// parts are then appended in file order.
    fn json_lines(&mut self, file: &Path) -> Result<(), LoadError> {
        let f = std::fs::File::open(file).map_err(|e| io_err(file, &e))?;
        let mut reader = ChunkReader {
            file: f,
            path: file,
            chunk_bytes: self.chunk_bytes,
            carry: Vec::new(),
            eof: false,
            first: true,
            spare: Vec::new(),
            bar: &self.bar,
            offset: 0,
            max_line: self.max_line,
        };
        let per_wave = 4 * rayon::current_num_threads().max(1);
        let LoadCx {
            builder,
            keys,
            skip_invalid,
            skipped,
            ..
        } = self;
        let skip = *skip_invalid;
        let mut wave = reader.wave(per_wave)?;
        let mut line_base = 0usize;
        // Three things at once: the next wave is read, this wave parsed (against a template of
        // the table's storage decisions, a wave behind), and the last wave's parts appended.
        let mut parsed: Vec<Part> = Vec::new();
        while !wave.is_empty() || !parsed.is_empty() {
            let template = builder.fork();
            let ((next, merged), parts) = rayon::join(
                || {
                    rayon::join(
                        || reader.wave(per_wave),
                        || -> Result<(), LoadError> {
                            for part in parsed.drain(..) {
                                let lines = part.lines;
                                Self::absorb(builder, skipped, skip, part, line_base)?;
                                line_base += lines;
                            }
                            Ok(())
                        },
                    )
                },
                || -> Vec<Part> {
                    wave.par_iter()
                        .map(|chunk| parse_part(keys, &template, file, Source::Lines(chunk), skip))
                        .collect()
                },
            );
            merged?;
            parsed = parts;
            reader.spare.append(&mut wave);
            wave = next?;
        }
        Ok(())
    }

    /// Appends a part's rows and takes its errors (their lines shifted by `line_base`): the
    /// first one ends the load unless skipping.
    fn absorb(
        builder: &mut TableBuilder,
        skipped: &mut Vec<LoadError>,
        skip: bool,
        part: Part,
        line_base: usize,
    ) -> Result<(), LoadError> {
        for mut e in part.errors {
            e.line += line_base;
            if !skip {
                return Err(e);
            }
            skipped.push(e);
        }
        builder.append(part.builder);
        Ok(())
    }
}

/// The longest JSON Lines line read (a user record is a few KiB; Graph's largest, with
/// hundreds of `assignedPlans`, well under 1 MiB).
const MAX_LINE_BYTES: usize = 256 << 20;

/// UTF-8's byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a file in chunks that end at a line end (or the file's end).
struct ChunkReader<'a> {
    file: std::fs::File,
    path: &'a Path,
    chunk_bytes: usize,
    /// The start of a line the last chunk cut off.
    carry: Vec<u8>,
    eof: bool,
    first: bool,
    /// Buffers of parsed chunks, reused.
    spare: Vec<Vec<u8>>,
    bar: &'a indicatif::ProgressBar,
    /// Bytes of the file before the current chunk.
    offset: usize,
    /// See [`LoadOptions::max_line_bytes`].
    max_line: usize,
}

impl ChunkReader<'_> {
    /// Up to `n` chunks (none at the end of the file).
    fn wave(&mut self, n: usize) -> Result<Vec<Vec<u8>>, LoadError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.chunk()? {
                Some(c) => out.push(c),
                None => break,
            }
        }
        Ok(out)
    }

    fn chunk(&mut self) -> Result<Option<Vec<u8>>, LoadError> {
        if self.eof && self.carry.is_empty() {
            return Ok(None);
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.append(&mut self.carry);
        // Bytes already searched for a line end (a line longer than a chunk reads on, in
        // doubling steps, searching only what is new).
        let mut searched = 0usize;
        loop {
            if !self.eof {
                let want = if searched == 0 {
                    self.chunk_bytes
                        .max(1)
                        .saturating_sub(buf.len())
                        .max(1 << 12)
                } else {
                    buf.len().max(self.chunk_bytes).max(1 << 12)
                };
                buf.reserve(want);
                let got = (&mut self.file)
                    .take(want as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| io_err(self.path, &e))?;
                self.bar.inc(got as u64);
                if got < want {
                    self.eof = true;
                }
            }
            if self.first {
                check_encoding(self.path, &buf)?;
                if buf.starts_with(b"\xEF\xBB\xBF") {
                    buf.drain(..3);
                }
                self.first = false;
            }
            if self.eof {
                break;
            }
            if searched > self.max_line {
                return Err(LoadError {
                    file: self.path.to_path_buf(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "a line longer than {} MiB (starting at byte {} of the file): a JSON Lines record is one object per line; if the file is one JSON array, name it .json",
                        self.max_line as f64 / f64::from(1u32 << 20),
                        self.offset
                    ),
                });
            }
            // Cut after the last line end.
            if let Some(i) = memchr::memrchr(b'\n', buf.get(searched..).unwrap_or(&[])) {
                let i = searched + i;
                self.carry
                    .extend_from_slice(buf.get(i + 1..).unwrap_or(&[]));
                buf.truncate(i + 1);
                break;
            }
            searched = buf.len();
        }
        self.offset += buf.len();
        Ok(Some(buf))
    }
}

/// What a part parses.
#[derive(Clone, Copy)]
enum Source<'b> {
    /// A chunk of a JSON Lines file (whole lines; numbered from 1 within the chunk).
    Lines(&'b [u8]),
    /// Records of a JSON array or page, each with its first line, and the addresses of the
    /// bytes [`utf8_marked`] replaced (a record holding one is malformed).
    Units(&'b [(usize, &'b str)], &'b [usize]),
}

/// `bytes` made valid UTF-8 by replacing each byte of an invalid sequence with `?` (so every
/// offset stays), and the addresses of the replaced bytes in the returned buffer, sorted. A
/// JSON array or page holding a record with invalid UTF-8 is then still split into records,
/// and that record alone is malformed (D66).
fn utf8_marked(mut bytes: Vec<u8>) -> (Vec<u8>, Vec<usize>) {
    let mut bad = Vec::new();
    let mut at = 0usize;
    loop {
        let rest = bytes.get(at..).unwrap_or(&[]);
        match std::str::from_utf8(rest) {
            Ok(_) => break,
            Err(e) => {
                let start = at + e.valid_up_to();
                let len = e.error_len().unwrap_or(rest.len() - e.valid_up_to());
                for i in start..start + len {
                    if let Some(b) = bytes.get_mut(i) {
                        *b = b'?';
                        bad.push(i);
                    }
                }
                at = start + len;
            }
        }
    }
    let base = bytes.as_ptr() as usize;
    let bad = bad.into_iter().map(|i| base + i).collect();
    (bytes, bad)
}

/// The error for a record holding invalid UTF-8 (its first bad byte at `column` of `line`).
fn utf8_error(file: &Path, line: usize, column: usize) -> LoadError {
    LoadError {
        file: file.to_path_buf(),
        line,
        column,
        message: "invalid UTF-8 in the record (JSON text is UTF-8): re-save the file as UTF-8"
            .to_string(),
    }
}

/// Where in `text` (a record of a file marked by [`utf8_marked`]) the first replaced byte is,
/// as (line offset, column), if it holds one.
fn first_marked(text: &str, bad: &[usize]) -> Option<(usize, usize)> {
    let start = text.as_ptr() as usize;
    let i = bad.partition_point(|&a| a < start);
    let a = *bad.get(i).filter(|&&a| a < start + text.len())?;
    let (line, column) = position(text.as_bytes(), a - start);
    Some((line - 1, column))
}

/// Parses records into a part: the fast scanner first, serde for what it declines (and for
/// the error message).
fn parse_part(
    keys: &KeyMap,
    template: &TableBuilder,
    file: &Path,
    source: Source<'_>,
    skip_invalid: bool,
) -> Part {
    let mut p = PartParser {
        keys,
        file,
        skip_invalid,
        stored: template.stored_columns(),
        part: Part {
            builder: template.fork(),
            errors: Vec::new(),
            lines: 0,
        },
    };
    match source {
        Source::Lines(chunk) => p.lines(chunk),
        Source::Units(units, bad) => {
            let mut rec = p.empty_record();
            let mut primary = vec![false; keys.layout_len];
            let mut s = scan::Scanner::new("", false);
            for &(line, text) in units {
                if let Some((l, column)) = first_marked(text, bad) {
                    p.part.errors.push(utf8_error(file, line + l, column));
                    if !skip_invalid {
                        break;
                    }
                    continue;
                }
                s.reset(text, 0);
                if !p.fast(&mut s, &mut rec, &mut primary) && !p.slow(text.as_bytes(), line) {
                    break;
                }
            }
        }
    }
    p.part
}

struct PartParser<'k, 'f> {
    keys: &'k KeyMap,
    file: &'f Path,
    skip_invalid: bool,
    /// Columns the table stores (the only cells a projected scan sets).
    stored: Vec<usize>,
    part: Part,
}

impl<'k> PartParser<'k, '_> {
    fn empty_record<'a>(&self) -> Record<'a> {
        Record {
            cells: vec![Cell::Null; self.keys.layout_len],
            extensions: Vec::new(),
        }
    }

    /// A JSON Lines chunk, record by record straight from the buffer (no pass to find the
    /// lines first). The chunk is checked as UTF-8 once; a chunk that is not valid goes line
    /// by line (serde then reads the lines that are not, as it would any record).
    fn lines(&mut self, chunk: &[u8]) {
        let Ok(text) = std::str::from_utf8(chunk) else {
            return self.lines_unchecked(chunk);
        };
        let mut rec = self.empty_record();
        let mut primary = vec![false; self.keys.layout_len];
        let mut pos = 0usize;
        let mut line = 0usize;
        let mut s = scan::Scanner::new(text, true);
        while pos < chunk.len() {
            let rest = chunk.get(pos..).unwrap_or(&[]);
            let blank = rest
                .iter()
                .position(|c| !matches!(c, b' ' | b'\t' | b'\r'))
                .unwrap_or(rest.len());
            match rest.get(blank) {
                None => break,
                Some(b'\n') => {
                    line += 1;
                    pos += blank + 1;
                    continue;
                }
                _ => {}
            }
            line += 1;
            // A byte-order mark opening a line (files joined with `cat`, each saved by
            // PowerShell with one) is not part of the record (D62).
            if rest.get(blank..).is_some_and(|r| r.starts_with(BOM)) {
                pos += blank + BOM.len();
            }
            s.reset(text, pos);
            if self.fast(&mut s, &mut rec, &mut primary) {
                pos = s.i + 1;
                continue;
            }
            let rest = chunk.get(pos..).unwrap_or(&[]);
            let end = memchr::memchr(b'\n', rest).map_or(chunk.len(), |k| pos + k);
            let text = chunk.get(pos..end).unwrap_or(&[]);
            pos = end + 1;
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if !self.slow(text, line) {
                break;
            }
        }
        self.part.lines = line;
    }

    /// [`PartParser::lines`] for a chunk with invalid UTF-8 somewhere: each line checked on
    /// its own.
    fn lines_unchecked(&mut self, chunk: &[u8]) {
        let mut rec = self.empty_record();
        let mut primary = vec![false; self.keys.layout_len];
        let mut line = 0usize;
        let mut s = scan::Scanner::new("", true);
        for bytes in chunk.split(|&c| c == b'\n') {
            line += 1;
            let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let fast = match std::str::from_utf8(bytes) {
                Ok(t) => {
                    s.reset(t, 0);
                    self.fast(&mut s, &mut rec, &mut primary)
                }
                Err(e) => {
                    // Invalid UTF-8 anywhere in the record, read or not, makes it malformed.
                    self.part
                        .errors
                        .push(utf8_error(self.file, line, e.valid_up_to() + 1));
                    if !self.skip_invalid {
                        break;
                    }
                    continue;
                }
            };
            if !fast && !self.slow(bytes, line) {
                break;
            }
        }
        // `split` yields one piece past a final line end.
        self.part.lines = if chunk.ends_with(b"\n") {
            line - 1
        } else {
            line
        };
    }

    /// The fast path for the record at the scanner: true when it was read and stored (the
    /// scanner then at the end of its line or text).
    fn fast<'a>(
        &mut self,
        s: &mut scan::Scanner<'a, 'k>,
        rec: &mut Record<'a>,
        primary: &mut [bool],
    ) -> bool {
        let ok = scan::record(self.keys, s, rec, primary).is_ok() && s.at_line_end();
        if ok {
            self.part.builder.push_row(rec);
        }
        for &c in &self.stored {
            if let Some(cell) = rec.cells.get_mut(c) {
                *cell = Cell::Null;
            }
            if let Some(p) = primary.get_mut(c) {
                *p = false;
            }
        }
        rec.extensions.clear();
        ok
    }

    /// The serde path for one record's text; false when the part must stop (an error, not
    /// skipping).
    fn slow(&mut self, text: &[u8], line: usize) -> bool {
        match parse_record(self.keys, text, self.file, line) {
            Ok(r) => {
                self.part.builder.push_row(&r);
                true
            }
            Err(e) => {
                self.part.errors.push(e);
                self.skip_invalid
            }
        }
    }
}

fn io_err(file: &Path, e: &std::io::Error) -> LoadError {
    LoadError {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        message: e.to_string(),
    }
}

fn check_encoding(file: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(LoadError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: "the file is UTF-16 (PowerShell 5's Out-File default); re-save it as UTF-8, \
                      e.g. `Out-File -Encoding utf8`"
                .to_string(),
        });
    }
    Ok(())
}

fn read_utf8(file: &Path) -> Result<Vec<u8>, LoadError> {
    let mut bytes = std::fs::read(file).map_err(|e| io_err(file, &e))?;
    check_encoding(file, &bytes)?;
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    Ok(bytes)
}

/// 1-based line and column of byte `offset`.
fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = bytes.get(..offset).unwrap_or(bytes);
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let col = offset - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// What a saved Graph list page says about the rest of the collection.
#[derive(Clone, Debug, Default)]
struct PageInfo {
    /// `@odata.nextLink`: more pages follow.
    next_link: Option<String>,
    /// `@odata.count` (`$count=true`): the size of the whole collection.
    count: Option<u64>,
}

/// Records of a JSON file (raw text with its starting line) and, for a Graph page, what it
/// says about the rest of the collection.
type Units<'b> = (Vec<(usize, &'b str)>, PageInfo);

/// Fails when the last file of an export is a Graph page with `@odata.nextLink`: the pages
/// after it were not saved, and a partial export must not pass for the whole tenant.
fn check_not_partial(file: &Path, page: &PageInfo, is_last: bool) -> Result<(), LoadError> {
    match &page.next_link {
        Some(link) if is_last => Err(LoadError {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message: format!(
                "a partial export: this Graph page has @odata.nextLink ({}) and no page follows it; follow every @odata.nextLink and save each page in the folder (or concatenate their `value` arrays), or export with `Get-MgUser -All`",
                link.chars().take(120).collect::<String>()
            ),
        }),
        _ => Ok(()),
    }
}

/// Splits a JSON file into records (raw text with its starting line). A `.json` file whose first
/// value is followed by more values is JSON Lines.
fn json_units<'b>(file: &Path, bytes: &'b [u8], fmt: Format) -> Result<Units<'b>, LoadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = position(bytes, e.valid_up_to());
        LoadError {
            file: file.to_path_buf(),
            line,
            column,
            message: "the file is not valid UTF-8".to_string(),
        }
    })?;
    let lines = || -> Vec<(usize, &'b str)> {
        text.split('\n')
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, l))
            .collect()
    };
    if fmt == Format::JsonLines {
        return Ok((lines(), PageInfo::default()));
    }
    let syntax = |e: serde_json::Error| LoadError {
        file: file.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e
            .to_string()
            .split(" at line")
            .next()
            .unwrap_or("")
            .to_string(),
    };
    // One parse of the whole file: an array, a page (or a single object), or, when more
    // values follow the first, JSON Lines.
    let trailing = |e: &serde_json::Error| e.to_string().starts_with("trailing characters");
    // Records come in file order: each one's line counts on from the last (counting from the
    // start for each record made a large array file quadratic).
    let mut last = (0usize, 1usize);
    let mut at = |raw: &'b RawValue| {
        let offset = (raw.get().as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        if offset < last.0 {
            last = (0, 1);
        }
        let between = bytes.get(last.0..offset).unwrap_or(&[]);
        last = (offset, last.1 + memchr::memchr_iter(b'\n', between).count());
        (last.1, raw.get())
    };
    match text.trim_start().as_bytes().first() {
        Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => Ok((
                items.into_iter().map(&mut at).collect(),
                PageInfo::default(),
            )),
            Err(e) if trailing(&e) => Ok((lines(), PageInfo::default())),
            Err(e) => Err(syntax(e)),
        },
        Some(b'{') => {
            #[derive(serde::Deserialize)]
            struct Page<'a> {
                #[serde(borrow)]
                value: Option<Vec<&'a RawValue>>,
                #[serde(rename = "@odata.nextLink")]
                next_link: Option<String>,
                #[serde(rename = "@odata.count")]
                count: Option<u64>,
            }
            match serde_json::from_str::<Page<'_>>(text) {
                Ok(Page {
                    value: Some(items),
                    next_link,
                    count,
                }) => Ok((
                    items.into_iter().map(&mut at).collect(),
                    PageInfo { next_link, count },
                )),
                // A single object: the record is the whole text.
                Ok(Page { value: None, .. }) => {
                    let top: &RawValue = serde_json::from_str(text).map_err(syntax)?;
                    Ok((vec![at(top)], PageInfo::default()))
                }
                Err(e) if trailing(&e) => Ok((lines(), PageInfo::default())),
                Err(e) => Err(syntax(e)),
            }
        }
        // Not an array or object: serde_json's own error when it is not JSON at all (or
        // empty), else ours.
        _ => match serde_json::from_str::<&RawValue>(text) {
            Err(e) => Err(syntax(e)),
            Ok(_) => Err(LoadError {
                file: file.to_path_buf(),
                line: 1,
                column: 1,
                message: "expected a JSON array, a Graph page {\"value\": [...]}, or objects"
                    .to_string(),
            }),
        },
    }
}

fn parse_record<'b>(
    keys: &KeyMap,
    bytes: &'b [u8],
    file: &Path,
    line: usize,
) -> Result<Record<'b>, LoadError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let rec = RecordSeed { keys }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r));
    rec.map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        LoadError {
            file: file.to_path_buf(),
            line: line + e.line().saturating_sub(1),
            column: e.column(),
            message: msg,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Key mapping

#[derive(Clone, Debug)]
enum Target {
    /// A column's value: `primary` (the Graph key) wins over a fallback (the property's name).
    Scalar {
        col: usize,
        kind: Kind,
        primary: bool,
    },
    /// `businessPhones`: the first element.
    First(usize),
    /// `onPremisesExtensionAttributes` / device `extensionAttributes`: nested key → column.
    Nested(hashbrown::HashMap<String, usize>),
    /// `manager`: `{"id": …}` or an id.
    Manager(usize),
    /// `memberOf`: ids or `{"id": …}` objects.
    MemberOf(usize),
    /// `assignedPlans`.
    Plans(usize),
    /// `assignedLicenses` or `licenseAssignmentStates`.
    Licenses(usize),
    /// Graph PowerShell's `AdditionalProperties`: an object whose keys are the record's own.
    Additional,
}

/// Graph key (lower case, and Graph's own spelling) → where its value goes, with the key's
/// *slot*: one number per key ignoring ASCII case, so a record that holds a key twice (`department`
/// and `Department`, or `department` twice) is caught by either record path (D62).
struct KeyMap {
    /// Directory extensions kept (lower case); `None`: all.
    extensions: Option<std::collections::HashSet<String>>,
    layout_len: usize,
    id_col: usize,
    map: hashbrown::HashMap<String, (u16, Target)>,
    /// How many slots there are.
    slots: usize,
}

impl KeyMap {
    fn new(object: ObjectType, projection: Option<&Projection>) -> KeyMap {
        let layout = Layout::new(object);
        let mut map: hashbrown::HashMap<String, Target> = hashbrown::HashMap::new();
        let mut fallbacks = Vec::new();
        for p in schema::PROPERTIES.iter().filter(|p| p.object == object) {
            let Some(col) = layout.position(ColumnKey::Prop(p.name)) else {
                continue;
            };
            let kind = layout.columns.get(col).map_or(Kind::Str, |c| c.1);
            match p.graph {
                GraphKey::Field(k) => {
                    let t = if p.ty == PropType::AssignedPlans {
                        Target::Plans(col)
                    } else {
                        Target::Scalar {
                            col,
                            kind,
                            primary: true,
                        }
                    };
                    map.insert(k.to_ascii_lowercase(), t);
                }
                GraphKey::Nested(outer, inner) => {
                    let e = map
                        .entry(outer.to_ascii_lowercase())
                        .or_insert_with(|| Target::Nested(hashbrown::HashMap::new()));
                    if let Target::Nested(m) = e {
                        m.insert(inner.to_ascii_lowercase(), col);
                    }
                }
                GraphKey::First(k) => {
                    map.insert(k.to_ascii_lowercase(), Target::First(col));
                }
                GraphKey::Derived => continue,
            }
            fallbacks.push((p.name.to_ascii_lowercase(), col, kind));
        }
        for (name, col, kind) in fallbacks {
            map.entry(name).or_insert(Target::Scalar {
                col,
                kind,
                primary: false,
            });
        }
        let manager = layout.position(ColumnKey::Manager).unwrap_or(0);
        map.insert("manager".into(), Target::Manager(manager));
        map.insert(
            "managerid".into(),
            Target::Scalar {
                col: manager,
                kind: Kind::Str,
                primary: false,
            },
        );
        let member_of = layout.position(ColumnKey::MemberOf).unwrap_or(0);
        map.insert("memberof".into(), Target::MemberOf(member_of));
        map.insert("additionalproperties".into(), Target::Additional);
        for (key, col) in [
            ("assignedLicenses", ColumnKey::AssignedLicenses),
            ("licenseAssignmentStates", ColumnKey::LicenseStates),
        ] {
            if let Some(c) = layout.position(col) {
                map.insert(key.to_ascii_lowercase(), Target::Licenses(c));
                map.insert(key.into(), Target::Licenses(c));
            }
        }
        // The spellings Graph itself writes (`accountEnabled`, `onPremisesExtensionAttributes`,
        // `extensionAttribute1`) hit on the first lookup, without lower-casing the key.
        let mut canonical: Vec<(String, Target)> = Vec::new();
        for p in schema::PROPERTIES.iter().filter(|p| p.object == object) {
            let names = match p.graph {
                GraphKey::Field(k) | GraphKey::First(k) | GraphKey::Nested(k, _) => [k, p.name],
                GraphKey::Derived => continue,
            };
            for n in names {
                if let Some(t) = map.get(&n.to_ascii_lowercase()) {
                    canonical.push((n.to_string(), t.clone()));
                }
            }
        }
        for n in ["managerId", "memberOf", "AdditionalProperties"] {
            if let Some(t) = map.get(&n.to_ascii_lowercase()) {
                canonical.push((n.to_string(), t.clone()));
            }
        }
        for (k, t) in canonical {
            map.entry(k).or_insert(t);
        }
        // Nested targets reached by their lower-case key get the canonical spellings too.
        for t in map.values_mut() {
            if let Target::Nested(inner) = t {
                let extra: Vec<(String, usize)> = inner
                    .iter()
                    .filter_map(|(lower, col)| {
                        (1..=15)
                            .map(|i| format!("extensionAttribute{i}"))
                            .find(|n| n.to_ascii_lowercase() == *lower)
                            .map(|n| (n, *col))
                    })
                    .collect();
                inner.extend(extra);
            }
        }
        // A projection drops the keys of other columns: their values are skipped unparsed.
        if let Some(p) = projection {
            let keep = |col: &usize| {
                layout
                    .columns
                    .get(*col)
                    .is_some_and(|(key, _)| p.columns.contains(key))
            };
            map.retain(|_, t| match t {
                Target::Scalar { col, .. }
                | Target::First(col)
                | Target::Manager(col)
                | Target::MemberOf(col)
                | Target::Plans(col)
                | Target::Licenses(col) => keep(col),
                Target::Additional => true,
                Target::Nested(inner) => {
                    inner.retain(|_, c| keep(c));
                    !inner.is_empty()
                }
            });
        }
        let mut lower: Vec<String> = map.keys().map(|k| k.to_ascii_lowercase()).collect();
        lower.sort_unstable();
        lower.dedup();
        let map = map
            .into_iter()
            .map(|(k, t)| {
                let slot = lower
                    .binary_search(&k.to_ascii_lowercase())
                    .map_or(0, |i| u16::try_from(i).unwrap_or(u16::MAX));
                (k, (slot, t))
            })
            .collect();
        KeyMap {
            extensions: projection.map(|p| p.extensions.clone()),
            layout_len: layout.len(),
            id_col: layout.position(ColumnKey::Prop("objectId")).unwrap_or(0),
            map,
            slots: lower.len(),
        }
    }

    /// A record's "seen" set of slots, all clear.
    fn seen_set(&self) -> Vec<u64> {
        vec![0; self.slots / 64 + 1]
    }
}

/// Marks `slot` in `seen`; false when it was already marked (the record repeats a key).
#[inline]
fn first_sight(seen: &mut [u64], slot: u16) -> bool {
    let (word, bit) = (usize::from(slot) / 64, 1u64 << (slot % 64));
    match seen.get_mut(word) {
        Some(w) if *w & bit != 0 => false,
        Some(w) => {
            *w |= bit;
            true
        }
        None => true,
    }
}

/// The error for a key a record (or one of its objects) holds twice, ignoring case (D62).
fn repeated_key(key: &str) -> String {
    format!(
        "the key `{key}` appears twice in one object (keys match ignoring case; Graph writes each once, so the record is malformed): keep one"
    )
}

impl KeyMap {
    /// Whether `key` is a directory extension this load keeps (`key` as written).
    fn keeps_extension(&self, key: &str) -> bool {
        key.len() > 10
            && key
                .get(..10)
                .is_some_and(|p| p.eq_ignore_ascii_case("extension_"))
            && self
                .extensions
                .as_ref()
                .is_none_or(|e| e.contains(&key.to_ascii_lowercase()))
    }

    /// The target of a key: its exact spelling first (Graph's camelCase is in the map), then
    /// lower-cased (PascalCase exports), without allocating for short keys.
    fn get(&self, key: &str) -> Option<&(u16, Target)> {
        if let Some(t) = self.map.get(key) {
            return Some(t);
        }
        if !key.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut buf = [0u8; 64];
        match buf.get_mut(..key.len()) {
            Some(dst) => {
                dst.copy_from_slice(key.as_bytes());
                dst.make_ascii_lowercase();
                std::str::from_utf8(dst).ok().and_then(|k| self.map.get(k))
            }
            None => self.map.get(&key.to_ascii_lowercase()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Record deserialization straight into cells, borrowing strings from the input where it can.

struct RecordSeed<'k> {
    keys: &'k KeyMap,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Record<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Record<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Record<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a user or device object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Record<'de>, A::Error> {
        let mut st = RecordState {
            rec: Record {
                cells: vec![Cell::Null; self.keys.layout_len],
                extensions: Vec::new(),
            },
            primary: vec![false; self.keys.layout_len],
            seen: self.keys.seen_set(),
        };
        while let Some(key) = m.next_key::<Text<'de>>()? {
            let key = key.0;
            refuse_number(&key, "a record must be an object")?;
            st.entry(self.keys, &mut m, key)?;
        }
        if matches!(st.rec.cells.get(self.keys.id_col), None | Some(Cell::Null)) {
            return Err(de::Error::custom("the record has no `id`"));
        }
        Ok(st.rec)
    }
}

/// A record being read by the serde path: its cells, which hold a Graph key's value (which a
/// fallback must not replace), and the slots of the keys seen (D62).
struct RecordState<'de> {
    rec: Record<'de>,
    primary: Vec<bool>,
    seen: Vec<u64>,
}

impl<'de> RecordState<'de> {
    /// Reads the value of `key` (the map's next value) into the record.
    fn entry<A: MapAccess<'de>>(
        &mut self,
        keys: &KeyMap,
        m: &mut A,
        key: Cow<'de, str>,
    ) -> Result<(), A::Error> {
        let entry = keys.get(&key);
        if let Some((slot, _)) = entry {
            if !first_sight(&mut self.seen, *slot) {
                return Err(de::Error::custom(repeated_key(&key)));
            }
        }
        let (rec, primary) = (&mut self.rec, &mut self.primary);
        match entry.map(|e| &e.1) {
            Some(Target::Scalar {
                col,
                kind,
                primary: is_primary,
            }) => {
                let cell = m.next_value_seed(CellSeed {
                    kind: *kind,
                    name: &key,
                })?;
                set(rec, primary, *col, cell, *is_primary);
            }
            Some(Target::First(col)) => {
                let cell = first_of(m.next_value_seed(CellSeed {
                    kind: Kind::List,
                    name: &key,
                })?);
                set(rec, primary, *col, cell, true);
            }
            Some(Target::Nested(inner)) => {
                let pairs = m.next_value_seed(NestedSeed { inner })?;
                for (col, cell) in pairs {
                    set(rec, primary, col, cell, true);
                }
            }
            Some(Target::Manager(col)) => {
                let cell = m.next_value_seed(IdSeed { name: "manager" })?;
                set(rec, primary, *col, cell, true);
            }
            Some(Target::MemberOf(col)) => {
                let cell = m.next_value_seed(IdListSeed)?;
                set(rec, primary, *col, cell, true);
            }
            Some(Target::Plans(col)) => {
                let cell = m.next_value_seed(PlansSeed)?;
                set(rec, primary, *col, cell, true);
            }
            Some(Target::Licenses(col)) => {
                let cell = m.next_value_seed(LicensesSeed { name: &key })?;
                set(rec, primary, *col, cell, true);
            }
            Some(Target::Additional) => {
                m.next_value_seed(AdditionalSeed { keys, state: self })?;
            }
            None if keys.keeps_extension(&key) => {
                let name = key.to_ascii_lowercase();
                if rec.extensions.iter().any(|(k, _)| *k == name) {
                    return Err(de::Error::custom(repeated_key(&key)));
                }
                let v = m.next_value_seed(LooseSeed)?;
                rec.extensions.push((name, v));
            }
            None => {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Graph PowerShell's `AdditionalProperties` (`Get-MgUser | ConvertTo-Json`): the properties
/// its typed model lacks — directory extensions above all — read as if they stood at the top
/// level of the record (null is none; D70).
struct AdditionalSeed<'s, 'de> {
    keys: &'s KeyMap,
    state: &'s mut RecordState<'de>,
}

impl<'de> DeserializeSeed<'de> for AdditionalSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AdditionalSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`AdditionalProperties` as an object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(key) = m.next_key::<Text<'de>>()? {
            refuse_number(&key.0, "`AdditionalProperties` must be an object")?;
            self.state.entry(self.keys, &mut m, key.0)?;
        }
        Ok(())
    }
}

/// `businessPhones` → `telephoneNumber`: a list's first element (null when empty or null).
fn first_of(cell: Cell<'_>) -> Cell<'_> {
    match cell {
        Cell::List(xs) => xs
            .into_iter()
            .next()
            .flatten()
            .map_or(Cell::Null, Cell::Str),
        other => other,
    }
}

#[inline]
fn set<'de>(
    rec: &mut Record<'de>,
    primary: &mut [bool],
    col: usize,
    cell: Cell<'de>,
    is_primary: bool,
) {
    let Some(slot) = rec.cells.get_mut(col) else {
        return;
    };
    let was_primary = primary.get(col).copied().unwrap_or(false);
    let null = matches!(cell, Cell::Null);
    let fill = !null && (is_primary || !was_primary);
    if fill {
        *slot = cell;
        if is_primary {
            if let Some(p) = primary.get_mut(col) {
                *p = true;
            }
        }
    }
}

/// A string that borrows from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads one value for a column of `kind`.
struct CellSeed<'n> {
    kind: Kind,
    name: &'n str,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_> {
    type Value = Cell<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cell<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl CellSeed<'_> {
    fn text<'de, E: de::Error>(&self, s: Cow<'de, str>) -> Result<Cell<'de>, E> {
        let name = self.name;
        text_cell(self.kind, s).map_err(|(want, s)| {
            E::custom(match want {
                TextWant::Bool => format!("`{name}` must be true or false, not {s:?}"),
                TextWant::Date => format!("`{name}` must be an ISO 8601 date-time, not {s:?}"),
                TextWant::Array => format!("`{name}` must be an array"),
                TextWant::PowerShell(p) => powershell_error(name, p, &s),
            })
        })
    }

    fn wrong<E: de::Error>(&self, found: &str) -> E {
        let want = match self.kind {
            Kind::Str => "a string",
            Kind::Bool => "true or false",
            Kind::Date => "a date-time string",
            Kind::List => "an array of strings",
            Kind::Plans => "an array of assignedPlan objects",
            Kind::Licenses => "an array of licence objects",
        };
        E::custom(format!("`{}` must be {want}, not {found}", self.name))
    }
}

/// What a string could not be read as (see [`text_cell`]).
enum TextWant {
    Bool,
    Date,
    Array,
    /// PowerShell's text for an object or a collection (see [`powershell_text`]).
    PowerShell(PowerShellText),
}

/// Text PowerShell writes in place of a value it did not serialise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PowerShellText {
    /// `ConvertTo-Json` past its depth (default 2): `"@{id=…}"`, `"class AssignedPlan {…"`,
    /// `"Microsoft.Graph.PowerShell.Models.MicrosoftGraphAssignedPlan"`,
    /// `"System.Collections.Hashtable"`.
    Depth,
    /// `Export-Csv` of a collection: `System.String[]`, `System.Object[]`.
    TypeName,
}

/// Whether `s` is PowerShell's text for an object or collection rather than a value, and which.
pub(crate) fn powershell_text(s: &str) -> Option<PowerShellText> {
    let t = s.trim();
    if t.starts_with("System.") && t.ends_with("[]") && !t.contains(' ') {
        return Some(PowerShellText::TypeName);
    }
    let class = t
        .strip_prefix("class ")
        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()) && r.contains(" {"));
    if (t.starts_with("@{") && t.ends_with('}'))
        || class
        || t.starts_with("Microsoft.Graph.PowerShell.Models.")
        || t.starts_with("System.Collections.")
    {
        return Some(PowerShellText::Depth);
    }
    None
}

/// The error for PowerShell's text in `name` (D68).
fn powershell_error(name: &str, kind: PowerShellText, s: &str) -> String {
    let shown: String = s.trim().chars().take(40).collect();
    match kind {
        PowerShellText::Depth => format!(
            "`{name}` holds PowerShell's text for an object ({shown:?}…), not the object: ConvertTo-Json stopped at its default -Depth of 2. Re-export with `ConvertTo-Json -Depth 10`"
        ),
        PowerShellText::TypeName => format!(
            "`{name}` holds {shown:?}, the type name Export-Csv writes for a collection, not its values: export with a calculated property (`@{{n='{name}';e={{$_.{name} -join ';'}}}}`) or as JSON (`ConvertTo-Json -Depth 10`)"
        ),
    }
}

/// A date-time as exports write it: ISO 8601, or Windows PowerShell 5.1's
/// `"\/Date(1700000000000)\/"` (milliseconds since 1970, UTC; decoded from JSON it reads
/// `/Date(1700000000000)/`). Both engines read dates through it (D68).
pub fn export_date(s: &str) -> Option<jiff::Timestamp> {
    if let Some(ms) = s
        .trim()
        .strip_prefix("/Date(")
        .and_then(|r| r.strip_suffix(")/"))
    {
        // `/Date(ms+hhmm)/` (a DateTimeOffset) carries an offset for display only: the
        // milliseconds are UTC either way.
        let digits = ms
            .char_indices()
            .find(|&(i, c)| i > 0 && (c == '+' || c == '-'))
            .map_or(ms, |(i, _)| ms.get(..i).unwrap_or(ms));
        return digits
            .parse::<i64>()
            .ok()
            .and_then(|n| jiff::Timestamp::from_millisecond(n).ok());
    }
    crate::check::parse_date(s).map(|(t, _)| t)
}

/// A string read into a column of `kind` (both record paths use it): as itself, a one-element
/// list, `true`/`false` in any case, or an ISO 8601 date-time; blank is null for a boolean or
/// date.
///
/// Errors: what the column wanted, with the string.
fn text_cell(kind: Kind, s: Cow<'_, str>) -> Result<Cell<'_>, (TextWant, Cow<'_, str>)> {
    match (kind, powershell_text(&s)) {
        // A type name is never a string property's value either; `@{…}` might be.
        (_, Some(PowerShellText::TypeName)) => {
            return Err((TextWant::PowerShell(PowerShellText::TypeName), s));
        }
        (Kind::List | Kind::Plans | Kind::Licenses, Some(p)) => {
            return Err((TextWant::PowerShell(p), s));
        }
        _ => {}
    }
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
                Err((TextWant::Bool, s))
            }
        }
        Kind::Date => {
            if s.trim().is_empty() {
                return Ok(Cell::Null);
            }
            match export_date(&s) {
                Some(t) => Ok(Cell::Date(t)),
                None => Err((TextWant::Date, s)),
            }
        }
        Kind::Plans | Kind::Licenses => Err((TextWant::Array, s)),
    }
}

impl<'de> Visitor<'de> for CellSeed<'_> {
    type Value = Cell<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value for `{}`", self.name)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cell<'de>, E> {
        self.text(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        self.text(Cow::Owned(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Cell<'de>, E> {
        self.text(Cow::Owned(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Cell<'de>, E> {
        match self.kind {
            Kind::Bool => Ok(Cell::Bool(v)),
            Kind::Str | Kind::List => self.text(Cow::Owned(v.to_string())),
            _ => Err(self.wrong("a boolean")),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell<'de>, E> {
        self.number(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell<'de>, E> {
        self.number(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell<'de>, E> {
        let text = serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string());
        self.number(text)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Cell<'de>, A::Error> {
        if self.kind != Kind::List {
            return Err(self.wrong("an array"));
        }
        let mut out = Vec::new();
        while let Some(v) = s.next_element_seed(ElementSeed { name: self.name })? {
            out.push(v);
        }
        Ok(Cell::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Cell<'de>, A::Error> {
        match number_text(m)? {
            Some(text) => self.number(text),
            None => Err(self.wrong("an object")),
        }
    }
}

/// serde_json (with `arbitrary_precision`) hands a number that does not fit `u64`/`i64`
/// (`1e2`, `10.0`, `2e400`, `123456789012345678901234`) to `visit_map` as a one-entry map
/// under this key, with the number's JSON text as its value.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Refuses a number where an object is read: with `arbitrary_precision`, serde_json hands such
/// a number to `visit_map` as the key [`NUMBER_TOKEN`]. `expected` says what belongs there
/// ("a licence entry must be an object").
///
/// Errors: `"{expected}, not a number"` when `key` is the token.
fn refuse_number<E: de::Error>(key: &str, expected: &str) -> Result<(), E> {
    if key == NUMBER_TOKEN {
        Err(E::custom(format!("{expected}, not a number")))
    } else {
        Ok(())
    }
}

/// The JSON text of a number given as a map (see [`NUMBER_TOKEN`]), or `None` for a real
/// object (whose entries are then left unread: the caller rejects or ignores the object).
fn number_text<'de, A: MapAccess<'de>>(mut m: A) -> Result<Option<String>, A::Error> {
    match m.next_key::<Text<'de>>()? {
        Some(k) if k.0 == NUMBER_TOKEN => Ok(Some(m.next_value::<String>()?)),
        Some(_) => {
            m.next_value::<IgnoredAny>()?;
            while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        None => Ok(None),
    }
}

impl CellSeed<'_> {
    fn number<'de, E: de::Error>(&self, text: String) -> Result<Cell<'de>, E> {
        match self.kind {
            Kind::Str | Kind::List => self.text(Cow::Owned(text)),
            _ => Err(self.wrong("a number")),
        }
    }
}

/// `DeserializeSeed` for seeds that are their own `Visitor` and accept any JSON value.
macro_rules! seed_via_any {
    ($($seed:ty),*) => {$(
        impl<'de> DeserializeSeed<'de> for $seed {
            type Value = <$seed as Visitor<'de>>::Value;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
    )*};
}

seed_via_any!(
    LooseSeed,
    IdSeed,
    IdListSeed,
    PlansSeed,
    PlanSeed,
    LicenseSeed
);

/// The `visit_*` methods of a visitor whose value is `Option<Cow<str>>`: a string as itself, a
/// boolean or number as its text, null as `None` ([`LooseSeed`], [`ElementSeed`]; they differ in
/// arrays and objects).
macro_rules! scalar_as_text {
    () => {
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(
                serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()),
            )))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
}

/// A scalar as text (strings, numbers, booleans); null, arrays and objects are `None`. Used for
/// collection elements and directory extensions.
struct LooseSeed;

impl<'de> Visitor<'de> for LooseSeed {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    scalar_as_text!();
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
        Ok(number_text(m)?.map(Cow::Owned))
    }
}

/// One element of a string collection (`proxyAddresses`, `otherMails`, `disabledPlans`): a
/// string, or a number or boolean as its JSON text; null is a null element. An array or
/// object is an error, as it is for a single-valued property (D31).
struct ElementSeed<'n> {
    name: &'n str,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_> {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl ElementSeed<'_> {
    fn wrong<E: de::Error>(&self, found: &str) -> E {
        E::custom(format!(
            "`{}` must be an array of strings, not an array holding {found}",
            self.name
        ))
    }
}

impl<'de> Visitor<'de> for ElementSeed<'_> {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string in `{}`", self.name)
    }
    scalar_as_text!();
    fn visit_seq<A: SeqAccess<'de>>(self, _s: A) -> Result<Self::Value, A::Error> {
        Err(self.wrong("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
        match number_text(m)? {
            Some(text) => Ok(Some(Cow::Owned(text))),
            None => Err(self.wrong("an object")),
        }
    }
}

/// `onPremisesExtensionAttributes`: `{"extensionAttribute1": …, …}`.
struct NestedSeed<'m> {
    inner: &'m hashbrown::HashMap<String, usize>,
}

impl<'de> DeserializeSeed<'de> for NestedSeed<'_> {
    type Value = Vec<(usize, Cell<'de>)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NestedSeed<'_> {
    type Value = Vec<(usize, Cell<'de>)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of extension attributes")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match powershell_text(v) {
            Some(p) => Err(E::custom(powershell_error(
                "onPremisesExtensionAttributes",
                p,
                v,
            ))),
            None => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(usize, Cell<'de>)> = Vec::new();
        while let Some(k) = m.next_key::<Text<'de>>()? {
            refuse_number(&k.0, "`onPremisesExtensionAttributes` must be an object")?;
            let col = self
                .inner
                .get(k.0.as_ref())
                .or_else(|| self.inner.get(&k.0.to_ascii_lowercase()));
            match col {
                Some(&col) => {
                    if out.iter().any(|(c, _)| *c == col) {
                        return Err(de::Error::custom(repeated_key(&k.0)));
                    }
                    let cell = m.next_value_seed(CellSeed {
                        kind: Kind::Str,
                        name: &k.0,
                    })?;
                    out.push((col, cell));
                }
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// `manager`: `{"id": "…", …}`, a plain id, or null.
/// `name`: the key being read, for errors.
struct IdSeed {
    name: &'static str,
}

impl<'de> Visitor<'de> for IdSeed {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a directory object {\"id\": …} or an id")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cell<'de>, E> {
        if let Some(p) = powershell_text(v) {
            return Err(E::custom(powershell_error(self.name, p, v)));
        }
        Ok(Cell::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        if let Some(p) = powershell_text(v) {
            return Err(E::custom(powershell_error(self.name, p, v)));
        }
        Ok(Cell::Str(Cow::Owned(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Cell<'de>, A::Error> {
        let mut id = Cell::Null;
        let mut seen = false;
        while let Some(k) = m.next_key::<Text<'de>>()? {
            refuse_number(&k.0, "a directory object must be {\"id\": …} or an id")?;
            if k.0.eq_ignore_ascii_case("id") {
                if std::mem::replace(&mut seen, true) {
                    return Err(de::Error::custom(repeated_key(&k.0)));
                }
                id = m.next_value_seed(LooseSeed)?.map_or(Cell::Null, Cell::Str);
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(id)
    }
}

/// `memberOf`: an array of ids or of `{"id": …}` objects.
struct IdListSeed;

impl<'de> Visitor<'de> for IdListSeed {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of group ids or objects")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        match powershell_text(v) {
            Some(p) => Err(E::custom(powershell_error("memberOf", p, v))),
            None => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Cell<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(c) = s.next_element_seed(IdSeed { name: "memberOf" })? {
            if let Cell::Str(id) = c {
                out.push(Some(id));
            }
        }
        Ok(Cell::List(out))
    }
}

/// `assignedPlans`: objects with `servicePlanId`, `service`, `capabilityStatus` (other fields,
/// such as `assignedDateTime`, are not readable by rules and are not kept).
struct PlansSeed;

impl<'de> Visitor<'de> for PlansSeed {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of assignedPlan objects")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        match powershell_text(v) {
            Some(p) => Err(E::custom(powershell_error("assignedPlans", p, v))),
            None => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Cell<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = s.next_element_seed(PlanSeed)? {
            out.push(p);
        }
        Ok(Cell::Plans(out))
    }
}

struct PlanSeed;

/// The fields of an `assignedPlan` object the load reads, in [`PlanSeed`]'s order.
const PLAN_FIELDS: [&str; 3] = ["servicePlanId", "service", "capabilityStatus"];

/// The fields of an `assignedLicense` or `licenseAssignmentState` the load reads.
const LICENSE_FIELDS: [&str; 5] = [
    "skuId",
    "disabledPlans",
    "assignedByGroup",
    "state",
    "error",
];

impl<'de> Visitor<'de> for PlanSeed {
    type Value = [Option<Cow<'de, str>>; 3];
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an assignedPlan object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut out: [Option<Cow<'de, str>>; 3] = [None, None, None];
        let mut seen = 0u8;
        while let Some(k) = m.next_key::<Text<'de>>()? {
            refuse_number(&k.0, "an `assignedPlans` entry must be an object")?;
            let slot = PLAN_FIELDS
                .iter()
                .position(|f| f.eq_ignore_ascii_case(&k.0));
            if let Some(i) = slot {
                if seen & (1 << i) != 0 {
                    return Err(de::Error::custom(repeated_key(&k.0)));
                }
                seen |= 1 << i;
            }
            match slot.and_then(|i| out.get_mut(i)) {
                Some(s) => *s = m.next_value_seed(LooseSeed)?,
                None => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// `assignedLicenses` (`{skuId, disabledPlans}`) or `licenseAssignmentStates` (plus
/// `assignedByGroup`, `state`, `error`); other fields are skipped. An entry without `skuId` is
/// an error: a licence cannot be attributed without it.
struct LicensesSeed<'n> {
    name: &'n str,
}

impl<'de> Visitor<'de> for LicensesSeed<'_> {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` as an array of objects with `skuId`", self.name)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell<'de>, E> {
        match powershell_text(v) {
            Some(p) => Err(E::custom(powershell_error(self.name, p, v))),
            None => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Cell<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = s.next_element_seed(LicenseSeed)? {
            if p.sku_id.is_none() {
                return Err(de::Error::custom(format!(
                    "an entry of `{}` has no `skuId`",
                    self.name
                )));
            }
            out.push(p);
        }
        Ok(Cell::Licenses(out))
    }
}

impl<'de> DeserializeSeed<'de> for LicensesSeed<'_> {
    type Value = Cell<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cell<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

struct LicenseSeed;

impl<'de> Visitor<'de> for LicenseSeed {
    type Value = LicenseCell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a licence object with `skuId`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut out = LicenseCell::default();
        let mut seen = 0u8;
        while let Some(k) = m.next_key::<Text<'de>>()? {
            refuse_number(&k.0, "a licence entry must be an object")?;
            let k = k.0;
            if let Some(i) = LICENSE_FIELDS
                .iter()
                .position(|f| f.eq_ignore_ascii_case(&k))
            {
                if seen & (1 << i) != 0 {
                    return Err(de::Error::custom(repeated_key(&k)));
                }
                seen |= 1 << i;
            }
            if k.eq_ignore_ascii_case("skuId") {
                out.sku_id = m.next_value_seed(LooseSeed)?;
            } else if k.eq_ignore_ascii_case("disabledPlans") {
                if let Cell::List(xs) = m.next_value_seed(CellSeed {
                    kind: Kind::List,
                    name: "disabledPlans",
                })? {
                    out.disabled_plans = xs.into_iter().flatten().collect();
                }
            } else if k.eq_ignore_ascii_case("assignedByGroup") {
                out.assigned_by_group = m.next_value_seed(LooseSeed)?;
            } else if k.eq_ignore_ascii_case("state") {
                out.state = m.next_value_seed(LooseSeed)?;
            } else if k.eq_ignore_ascii_case("error") {
                out.error = m.next_value_seed(LooseSeed)?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

/// Header aliases beyond the property names and Graph keys (compared after dropping case,
/// spaces and punctuation): the Entra admin center's "Download users" columns and common
/// spreadsheet names.
const CSV_ALIASES: &[(&str, &str)] = &[
    ("firstname", "givenName"),
    ("lastname", "surname"),
    ("jobtitle", "jobTitle"),
    ("office", "officeLocation"),
    ("officephone", "businessPhones"),
    ("phone", "businessPhones"),
    ("businessphone", "businessPhones"),
    ("stateorprovince", "state"),
    ("countryorregion", "country"),
    ("ziporpostalcode", "postalCode"),
    ("directorysynced", "onPremisesSyncEnabled"),
    ("alternateemailaddress", "otherMails"),
    ("alternateemailaddresses", "otherMails"),
    ("alias", "mailNickname"),
    ("managerid", "managerId"),
    ("manager", "managerId"),
    ("memberof", "memberOf"),
];

fn norm_header(h: &str) -> String {
    h.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A header's property name: the bulk-create template's "Name [displayName] Required" names
/// it in brackets; other headers are themselves.
fn bracketed(h: &str) -> &str {
    let h = h.trim();
    match (h.find('['), h.find(']')) {
        (Some(a), Some(b)) if a < b => h.get(a + 1..b).unwrap_or(h).trim(),
        _ => h,
    }
}

/// The JSON key a CSV header stands for, if any.
fn csv_key(header: &str, keys: &KeyMap) -> Option<String> {
    let h = header.trim();
    let h = bracketed(h);
    if h.len() > 10
        && h.get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("extension_"))
    {
        return Some(h.to_string());
    }
    let n = norm_header(h);
    if let Some((_, k)) = CSV_ALIASES.iter().find(|(a, _)| *a == n) {
        return Some((*k).to_string());
    }
    if n == "objectid" || n == "id" {
        return Some("id".to_string());
    }
    keys.map
        .keys()
        .find(|k| norm_header(k) == n)
        .cloned()
        .or_else(|| {
            // Nested keys (extensionAttributeN) are read by their property name.
            keys.map.values().find_map(|(_, t)| match t {
                Target::Nested(m) => m.keys().find(|k| norm_header(k) == n).cloned(),
                _ => None,
            })
        })
}

/// How a CSV file is laid out: the bytes from its header row on, how many lines come before
/// it, and its delimiter. The portal's bulk-create template opens with a `version:v1.0` line,
/// which is skipped; the delimiter is the one of `,`, `;` (Excel in most European locales)
/// and tab that the header row holds most of, outside quotes (D71).
struct CsvShape<'b> {
    body: &'b [u8],
    lines_before: usize,
    delimiter: u8,
}

fn csv_shape(bytes: &[u8]) -> CsvShape<'_> {
    let first_end = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |i| i + 1);
    let first = bytes.get(..first_end).unwrap_or(&[]);
    let version = first
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"version:"));
    let (body, lines_before) = if version {
        (bytes.get(first_end..).unwrap_or(&[]), 1)
    } else {
        (bytes, 0)
    };
    let header_end = memchr::memchr(b'\n', body).map_or(body.len(), |i| i + 1);
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in body.get(..header_end).unwrap_or(&[]) {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let delimiter = match counts {
        [c, s, t] if s > c && s >= t => b';',
        [c, s, t] if t > c && t > s => b'\t',
        _ => b',',
    };
    CsvShape {
        body,
        lines_before,
        delimiter,
    }
}

impl CsvShape<'_> {
    /// A reader of the body. Rows may be shorter than the header (their missing trailing cells
    /// are empty, as in Microsoft's own bulk-create example); a longer row is an error, checked
    /// by the caller.
    fn reader(&self) -> csv::Reader<&[u8]> {
        csv::ReaderBuilder::new()
            .flexible(true)
            .delimiter(self.delimiter)
            .from_reader(self.body)
    }

    /// The 1-based file line of byte `offset` of the body (counting `\n` only, so CRLF files
    /// number as editors do).
    fn line_at(&self, offset: u64) -> usize {
        let mut at = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.body.len());
        // A record's position can be the line end before it (the `\n` of a CRLF).
        while matches!(self.body.get(at), Some(b'\r' | b'\n')) {
            at += 1;
        }
        position(self.body, at).0 + self.lines_before
    }
}

/// The headers of a CSV that name no property dynrule reads (judged against every property,
/// whatever the rules at hand read).
fn csv_unused_headers(bytes: &[u8], object: ObjectType) -> Vec<String> {
    let keys = KeyMap::new(object, None);
    let keys = &keys;
    let shape = csv_shape(bytes);
    let mut r = shape.reader();
    r.headers()
        .map(|h| {
            h.iter()
                .filter(|h| csv_key(h, keys).is_none())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A key no export has, set on a CSV row whose id was taken from its userPrincipalName.
const CSV_ID_FROM_UPN: &str = "@dynrule.idFromUserPrincipalName";

/// A CSV row's line and its Graph-shaped object (or why the row is malformed).
type CsvRow = (usize, Result<serde_json::Value, LoadError>);

/// CSV rows as Graph-shaped JSON objects, with their line numbers. Empty cells are null;
/// collection cells split on `;` (decision D31).
fn csv_values(file: &Path, bytes: &[u8], keys: &KeyMap) -> Result<Vec<CsvRow>, LoadError> {
    let shape = csv_shape(bytes);
    let mut r = shape.reader();
    let headers = r.headers().map_err(|e| csv_err(file, &e, &shape))?.clone();
    // The bulk-create template's "Block sign in (Yes/No) [accountEnabled]" means the opposite
    // of accountEnabled: "No" is enabled.
    let inverted: Vec<bool> = headers
        .iter()
        .map(|h| h.to_ascii_lowercase().contains("block sign in"))
        .collect();
    let mapped: Vec<Option<(String, bool)>> = headers
        .iter()
        .map(|h| {
            csv_key(h, keys).map(|k| {
                let list = matches!(
                    keys.get(&k).map(|e| &e.1),
                    Some(
                        Target::Scalar {
                            kind: Kind::List,
                            ..
                        } | Target::MemberOf(_)
                            | Target::First(_)
                    )
                );
                (k, list)
            })
        })
        .collect();
    let has_id = mapped.iter().flatten().any(|(k, _)| k == "id");
    // The userPrincipalName column, whether or not the load keeps it.
    let upn_col = headers
        .iter()
        .position(|h| norm_header(bracketed(h)) == "userprincipalname");
    let mut out = Vec::new();
    for rec in r.records() {
        match rec {
            Err(e) => {
                let err = csv_err(file, &e, &shape);
                out.push((err.line, Err(err)));
            }
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| shape.line_at(p.byte()));
                // Why the row is malformed, if it is: longer than the header, a quote that
                // swallowed rows, or a read column holding a collection's type name (D68).
                let problem = if rec.len() > headers.len() {
                    Some(format!(
                        "the row has {} fields, the header {}{}",
                        rec.len(),
                        headers.len(),
                        if shape.delimiter == b',' {
                            ""
                        } else {
                            " (the file's delimiter was taken to be `;` or a tab, from its header row)"
                        }
                    ))
                } else {
                    swallowed_rows(&rec, headers.len(), line).or_else(|| {
                        rec.iter()
                            .zip(headers.iter())
                            .zip(&mapped)
                            .find(|((cell, _), m)| {
                                m.is_some()
                                    && powershell_text(cell) == Some(PowerShellText::TypeName)
                            })
                            .map(|((cell, header), _)| {
                                powershell_error(header, PowerShellText::TypeName, cell)
                            })
                    })
                };
                if let Some(message) = problem {
                    let column = 0;
                    let file = file.to_path_buf();
                    out.push((
                        line,
                        Err(LoadError {
                            file,
                            line,
                            column,
                            message,
                        }),
                    ));
                    continue;
                }
                let mut obj = serde_json::Map::new();
                for ((cell, m), inverted) in rec.iter().zip(&mapped).zip(&inverted) {
                    let Some((key, list)) = m else { continue };
                    let mut cell = cell.trim();
                    if *inverted {
                        if cell.eq_ignore_ascii_case("yes") {
                            cell = "false";
                        } else if cell.eq_ignore_ascii_case("no") {
                            cell = "true";
                        }
                    }
                    let v = if cell.is_empty() {
                        serde_json::Value::Null
                    } else if *list {
                        cell.split(';')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|s| serde_json::Value::String(s.to_string()))
                            .collect()
                    } else {
                        serde_json::Value::String(cell.to_string())
                    };
                    obj.insert(key.clone(), v);
                }
                // No id column (the bulk-create template: users not created yet): the UPN
                // identifies the row, and a marker key tells the loader to say so (D71).
                if !has_id {
                    let upn = upn_col
                        .and_then(|i| rec.get(i))
                        .map(str::trim)
                        .filter(|u| !u.is_empty())
                        .map(|u| serde_json::Value::String(u.to_string()));
                    if let Some(upn) = upn {
                        obj.insert("id".to_string(), upn);
                        obj.insert(CSV_ID_FROM_UPN.to_string(), serde_json::Value::Bool(true));
                    }
                }
                out.push((line, Ok(serde_json::Value::Object(obj))));
            }
        }
    }
    Ok(out)
}

/// Why a record is malformed when one of its quoted values spans lines that look like rows of
/// their own (each with a field per header): a stray or unclosed `"` merged them into one
/// value, and the rows would vanish. Legitimate multi-line values (an address with a line
/// break) hold no such line.
fn swallowed_rows(rec: &csv::StringRecord, fields: usize, line: usize) -> Option<String> {
    if fields < 2 {
        return None;
    }
    let rows: usize = rec
        .iter()
        .map(|cell| {
            cell.split('\n')
                .skip(1)
                .filter(|l| l.matches(',').count() + 1 >= fields)
                .count()
        })
        .sum();
    if rows == 0 {
        return None;
    }
    let span: usize = rec.iter().map(|c| c.matches('\n').count()).sum();
    Some(format!(
        "a quoted value starting in this row runs over lines {line}–{} and holds {rows} line(s) that look like rows of their own: a stray or unclosed `\"` in line {line}? Fix the quote; until then those rows are not read",
        line + span
    ))
}

fn csv_err(file: &Path, e: &csv::Error, shape: &CsvShape<'_>) -> LoadError {
    let line = e.position().map_or(0, |p| shape.line_at(p.byte()));
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("the row has {len} fields, the header {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_string(),
        _ => e.to_string(),
    };
    LoadError {
        file: file.to_path_buf(),
        line,
        column: 0,
        message,
    }
}

/// Builds a table from Graph-shaped JSON objects already in memory (tests, `explain`'s
/// cross-check). Errors name the record by its 1-based position as the "line" of `<memory>`.
pub fn table_from_values(
    values: &[serde_json::Value],
    object: ObjectType,
) -> Result<Table, LoadError> {
    let keys = KeyMap::new(object, None);
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            RecordSeed { keys: &keys }
                .deserialize(v)
                .map_err(|e| LoadError {
                    file: PathBuf::from("<memory>"),
                    line: i + 1,
                    column: 0,
                    message: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut b = TableBuilder::new(object);
    b.push_batch(&records);
    b.finish().map_err(|m| LoadError {
        file: PathBuf::from("<memory>"),
        line: 0,
        column: 0,
        message: m,
    })
}

/// Every object of a Graph JSON export (a JSON array, Graph pages `{"value": [...]}`, a single
/// object, JSON Lines, or a folder of them), each with its file and 1-based line, in file order.
/// `what` names the objects in errors ("groups", "subscribed SKUs").
///
/// Errors: unreadable files, a CSV file, malformed JSON (file, line, column).
pub fn json_objects(
    path: &Path,
    what: &str,
) -> Result<Vec<(PathBuf, usize, serde_json::Value)>, LoadError> {
    let mut out = Vec::new();
    let files = files_of(path)?;
    let last = files.len().saturating_sub(1);
    for (i, file) in files.into_iter().enumerate() {
        let bytes = read_utf8(&file)?;
        let fmt = format_of(&file).unwrap_or(Format::Json);
        if fmt == Format::Csv {
            return Err(LoadError {
                file: file.clone(),
                line: 0,
                column: 0,
                message: format!("{what} must be Graph JSON, not CSV"),
            });
        }
        let (units, page) = json_units(&file, &bytes, fmt)?;
        check_not_partial(&file, &page, i == last)?;
        for (line, raw) in units {
            let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| LoadError {
                file: file.clone(),
                line: line + e.line().saturating_sub(1),
                column: e.column(),
                message: e
                    .to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or("")
                    .to_string(),
            })?;
            // An EntraExporter group's `Members/` folder is its `members` (D72).
            let v = match v {
                serde_json::Value::Object(mut o)
                    if !o.keys().any(|k| k.eq_ignore_ascii_case("members")) =>
                {
                    if let Some(m) = entraexporter_members(&file) {
                        o.insert("members".to_string(), m);
                    }
                    serde_json::Value::Object(o)
                }
                other => other,
            };
            out.push((file.clone(), line, v));
        }
    }
    Ok(out)
}

/// Direct memberships from a Graph groups export (`GET /groups?$expand=members($select=id)`: a
/// JSON array, Graph pages, JSON Lines, or a folder of them): member object id (lower case) →
/// the ids of the groups that list it in `members`, in file order. Groups without `members`
/// (dynamic groups exported without `$expand`) contribute nothing; nested groups are not
/// expanded, as memberOf rules read direct membership (Microsoft Learn, "memberOf attribute").
///
/// Errors: unreadable files, malformed JSON, a group without `id` (file, line, column).
pub fn group_memberships(path: &Path) -> Result<HashMap<String, Vec<String>>, LoadError> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (file, line, v) in json_objects(path, "groups")? {
        let obj = v.as_object();
        let id = obj
            .and_then(|o| crate::oracle::get_ci(o, "id"))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| LoadError {
                file: file.clone(),
                line,
                column: 0,
                message: "the group has no `id`".to_string(),
            })?;
        let members = obj
            .and_then(|o| crate::oracle::get_ci(o, "members"))
            .and_then(serde_json::Value::as_array);
        for m in members.into_iter().flatten() {
            let mid = match m {
                serde_json::Value::String(s) => Some(s.as_str()),
                serde_json::Value::Object(o) => {
                    crate::oracle::get_ci(o, "id").and_then(serde_json::Value::as_str)
                }
                _ => None,
            };
            if let Some(mid) = mid {
                let groups = out.entry(mid.to_lowercase()).or_default();
                if !groups.iter().any(|g| g.eq_ignore_ascii_case(id)) {
                    groups.push(id.to_string());
                }
            }
        }
    }
    Ok(out)
}
