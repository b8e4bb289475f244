//! The load cache (decision D79): the first load of a large export writes its table's columns
//! to `.dynrule-cache/<export name>.<users|devices>.table` beside the export, and later loads
//! read the columns they need from there instead of parsing the export again.
//!
//! # File format (version [`FORMAT`])
//! `DYNRULE\0`, then one section per column ([`crate::table`]'s plain column dump), then the
//! header as JSON, then a 24-byte footer: the header's length (`u64`), its CRC-32 (`u32`), the
//! format version (`u32`) and `DYNRULE\0` again, all little-endian. The header names, per
//! section, its column, offset, length and CRC-32 (checked before the section is decoded),
//! and holds what the export looked like when the cache was written:
//! - per export file: its path below the export, size, modification time, and a SHA-256 of
//!   blocks sampled across it (the first and last, and evenly spaced ones between);
//! - the entries of an export folder that are not read (their warning is part of the load);
//! - dynrule's version, so a new parser never reuses an old table;
//! - which columns and directory extensions the table kept (a projected load keeps few), the
//!   records skipped and the loader's warnings.
//!
//! A cache whose export changed, that lacks a column the load needs, that was written by
//! another version, or that is truncated, corrupt or not a cache at all is not used: the
//! export is parsed as without a cache and the cache written again (for a missing column,
//! with the columns it had as well, so two commands with different rules do not take turns
//! rewriting it). A cache that cannot be written (a read-only folder) leaves the load as it
//! is and says why in [`CacheUse::NotWritten`].

use super::*;
use crate::table::{Column, ColumnKey, Kind};
use std::collections::{HashMap, HashSet};
use std::io::{Seek, SeekFrom, Write};

/// The cache file format's version; a file of another version is not read.
pub const FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"DYNRULE\0";
const FOOTER: usize = 24;
/// The largest header read (a header names a few dozen sections and the files of an export).
const MAX_HEADER: u64 = 64 << 20;
/// Below this many bytes of export, [`CacheMode::Auto`] does not cache: parsing is as fast as
/// reading a cache, and a folder of small fixtures stays as it is.
pub const AUTO_MIN_BYTES: u64 = 32 << 20;
/// The folder, beside an export, that holds its cache.
pub const CACHE_DIR: &str = ".dynrule-cache";

/// Whether a load uses the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheMode {
    /// No cache: parse the export, write nothing (the library's default).
    #[default]
    Off,
    /// Cache exports of [`AUTO_MIN_BYTES`] or more (the command line's default).
    Auto,
    /// Cache every export, whatever its size.
    On,
}

/// What the cache did for a load.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "cache")]
pub enum CacheUse {
    /// The cache was off.
    Off,
    /// The export is below [`AUTO_MIN_BYTES`] and the mode is `auto`.
    Small,
    /// The table was read from this cache file.
    Hit {
        /// The cache file.
        path: PathBuf,
    },
    /// The export was parsed (for `reason`) and the cache written.
    Written {
        /// The cache file.
        path: PathBuf,
        /// Why the cache could not be used: none yet, the export changed, a column missing, …
        reason: String,
    },
    /// The export was parsed (for `reason`); writing the cache failed (`error`).
    NotWritten {
        /// The cache file.
        path: PathBuf,
        /// Why the cache could not be used.
        reason: String,
        /// Why it could not be written.
        error: String,
    },
}

impl CacheUse {
    /// One line for a command's stderr timings: `cache hit`, `cache written (…)`, ….
    pub fn describe(&self) -> String {
        match self {
            CacheUse::Off => "no cache".into(),
            CacheUse::Small => "no cache (a small export)".into(),
            CacheUse::Hit { path } => format!("cache hit ({})", path.display()),
            CacheUse::Written { path, reason } => {
                format!("cache written to {} ({reason})", path.display())
            }
            CacheUse::NotWritten {
                path,
                reason,
                error,
            } => format!(
                "cache not written to {} ({reason}): {error}",
                path.display()
            ),
        }
    }
}

/// One file of an export as the cache saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Source {
    /// The path below the export (the file's name for a one-file export).
    name: String,
    len: u64,
    /// Modification time, nanoseconds since the Unix epoch (0 when the system has none).
    modified_ns: u128,
    /// SHA-256 of the sampled blocks, hex.
    sample: String,
}

/// A column's bytes in the file.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Section {
    /// [`key_name`] of a fixed column, or `ext:<name>` for a directory extension.
    key: String,
    offset: u64,
    len: u64,
    crc: u32,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Header {
    dynrule: String,
    object: String,
    sources: Vec<Source>,
    ignored: Vec<String>,
    rows: usize,
    bytes: u64,
    /// Every column kept (no projection); else `columns` and `extensions` name those kept.
    all: bool,
    columns: Vec<String>,
    extensions: Vec<String>,
    sections: Vec<Section>,
    skipped: Vec<LoadError>,
    warnings: Vec<String>,
}

fn key_name(key: ColumnKey) -> String {
    match key {
        ColumnKey::Prop(p) => p.to_string(),
        ColumnKey::Manager => "@manager".into(),
        ColumnKey::MemberOf => "@memberOf".into(),
        ColumnKey::AssignedLicenses => "@assignedLicenses".into(),
        ColumnKey::LicenseStates => "@licenseAssignmentStates".into(),
    }
}

/// The cache file for the export at `path` holding `object`s.
pub fn cache_path(path: &Path, object: ObjectType) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("export");
    let kind = match object {
        ObjectType::User => "users",
        ObjectType::Device => "devices",
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.join(CACHE_DIR).join(format!("{name}.{kind}.table"))
}

/// SHA-256 of `blocks` blocks of `size` bytes spread evenly over the file (all of it when
/// smaller), hex.
fn sample(file: &Path, len: u64, blocks: u64, size: u64) -> std::io::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(file)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; size as usize];
    let span = len.saturating_sub(size);
    let mut last = None;
    for k in 0..blocks {
        let at = span * k / (blocks - 1).max(1);
        if last == Some(at) {
            continue;
        }
        last = Some(at);
        f.seek(SeekFrom::Start(at))?;
        let n = size.min(len - at.min(len)) as usize;
        let b = buf.get_mut(..n).unwrap_or_default();
        f.read_exact(b)?;
        h.update(&*b);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// The export's files as they are now.
fn sources(path: &Path, files: &[PathBuf]) -> std::io::Result<Vec<Source>> {
    // A single file is sampled at 16 × 64 KiB; a folder of many pages more thinly, so the
    // fingerprint stays a few milliseconds.
    let (blocks, size) = if files.len() <= 16 {
        (16, 64 << 10)
    } else {
        (4, 4 << 10)
    };
    files
        .par_iter()
        .map(|f| {
            let m = std::fs::metadata(f)?;
            let modified_ns = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let name = f
                .strip_prefix(path)
                .ok()
                .filter(|r| !r.as_os_str().is_empty())
                .or_else(|| f.file_name().map(Path::new))
                .map_or_else(String::new, |p| p.to_string_lossy().into_owned());
            Ok(Source {
                name,
                len: m.len(),
                modified_ns,
                sample: sample(f, m.len(), blocks, size)?,
            })
        })
        .collect()
}

fn object_name(object: ObjectType) -> &'static str {
    match object {
        ObjectType::User => "user",
        ObjectType::Device => "device",
    }
}

/// Why a cache was not used, and the columns it had when only columns were missing (to be
/// loaded as well, so the cache written next keeps them).
struct Miss {
    reason: String,
    also: Option<Projection>,
}

impl Miss {
    fn new(reason: impl Into<String>) -> Miss {
        Miss {
            reason: reason.into(),
            also: None,
        }
    }
}

fn read_header(file: &mut std::fs::File) -> Result<Header, Miss> {
    let corrupt = |what: &str| Miss::new(format!("the cache file is {what}"));
    let len = file
        .metadata()
        .map_err(|e| Miss::new(format!("cannot read the cache: {e}")))?
        .len();
    if len < (MAGIC.len() + FOOTER) as u64 {
        return Err(corrupt("truncated"));
    }
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic)
        .map_err(|_| corrupt("unreadable"))?;
    if &magic != MAGIC {
        return Err(corrupt("not a dynrule cache"));
    }
    let mut footer = [0u8; FOOTER];
    file.seek(SeekFrom::Start(len - FOOTER as u64))
        .and_then(|_| file.read_exact(&mut footer))
        .map_err(|_| corrupt("unreadable"))?;
    let (head_len, rest) = footer.split_at(8);
    let (crc, rest) = rest.split_at(4);
    let (format, magic2) = rest.split_at(4);
    let word = |b: &[u8]| {
        b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
    };
    if magic2 != MAGIC {
        return Err(corrupt("truncated"));
    }
    if word(format) != u64::from(FORMAT) {
        return Err(Miss::new(format!(
            "the cache is format {} (this dynrule writes {FORMAT})",
            word(format)
        )));
    }
    let head_len = word(head_len);
    let body = len - FOOTER as u64;
    if head_len > MAX_HEADER || head_len + MAGIC.len() as u64 > body {
        return Err(corrupt("corrupt (header length)"));
    }
    let mut head = vec![0u8; head_len as usize];
    file.seek(SeekFrom::Start(body - head_len))
        .and_then(|_| file.read_exact(&mut head))
        .map_err(|_| corrupt("unreadable"))?;
    if u64::from(crc32fast::hash(&head)) != word(crc) {
        return Err(corrupt("corrupt (header checksum)"));
    }
    let header: Header = serde_json::from_slice(&head).map_err(|_| corrupt("corrupt (header)"))?;
    if header
        .sections
        .iter()
        .any(|s| s.offset < MAGIC.len() as u64 || s.offset.saturating_add(s.len) > body - head_len)
    {
        return Err(corrupt("corrupt (section bounds)"));
    }
    Ok(header)
}

/// Whether the cached table kept everything `want` needs (`None`: every column).
fn covers(h: &Header, want: Option<&Projection>) -> bool {
    if h.all {
        return true;
    }
    let Some(want) = want else { return false };
    let cols: HashSet<&str> = h.columns.iter().map(String::as_str).collect();
    let exts: HashSet<&str> = h.extensions.iter().map(String::as_str).collect();
    want.columns
        .iter()
        .all(|k| cols.contains(key_name(*k).as_str()))
        && want.extensions.iter().all(|e| exts.contains(e.as_str()))
}

/// A decoded section: its layout position (fixed columns) or name (directory extensions), and
/// the column.
type Decoded<'h> = Result<(Option<usize>, Option<&'h str>, Column), String>;

/// The cached table, or why not.
fn read(
    cache: &Path,
    object: ObjectType,
    opts: &LoadOptions,
    now: &[Source],
    ignored: &[String],
) -> Result<Loaded, Miss> {
    let mut file = match std::fs::File::open(cache) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Miss::new("no cache yet"));
        }
        Err(e) => return Err(Miss::new(format!("cannot read the cache: {e}"))),
    };
    let h = read_header(&mut file)?;
    if h.dynrule != env!("CARGO_PKG_VERSION") {
        return Err(Miss::new(format!("written by dynrule {}", h.dynrule)));
    }
    if h.object != object_name(object) {
        return Err(Miss::new("the cache holds other objects"));
    }
    if h.sources != now || h.ignored != ignored {
        return Err(Miss::new("the export changed"));
    }
    if !h.skipped.is_empty() && !opts.skip_invalid {
        return Err(Miss::new("the export has invalid records"));
    }
    if !covers(&h, opts.projection.as_ref()) {
        let mut also = Projection::default();
        let layout = crate::table::Layout::new(object);
        also.columns.extend(
            layout
                .columns
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| h.columns.contains(&key_name(*k))),
        );
        also.extensions.extend(h.extensions.iter().cloned());
        return Err(Miss {
            reason: "columns missing from the cache".into(),
            also: Some(also),
        });
    }
    let layout = crate::table::Layout::new(object);
    let wanted = |key: ColumnKey| {
        opts.projection
            .as_ref()
            .is_none_or(|p| p.columns.contains(&key))
    };
    let by_key: HashMap<&str, &Section> = h.sections.iter().map(|s| (s.key.as_str(), s)).collect();
    // (layout index or extension name, kind, section) for every section to read.
    let mut jobs: Vec<(Option<usize>, Option<&str>, Kind, &Section)> = Vec::new();
    for (i, (key, kind)) in layout.columns.iter().enumerate() {
        if let (true, Some(s)) = (wanted(*key), by_key.get(key_name(*key).as_str())) {
            jobs.push((Some(i), None, *kind, s));
        }
    }
    for s in &h.sections {
        if let Some(name) = s.key.strip_prefix("ext:") {
            let keep = opts
                .projection
                .as_ref()
                .is_none_or(|p| p.extensions.contains(name));
            if keep {
                jobs.push((None, Some(name), Kind::Str, s));
            }
        }
    }
    let rows = h.rows;
    let decoded: Vec<Decoded<'_>> = jobs
        .par_iter()
        .map(|&(i, ext, kind, s)| {
            let mut f = std::fs::File::open(cache).map_err(|e| e.to_string())?;
            let mut bytes = vec![0u8; usize::try_from(s.len).map_err(|e| e.to_string())?];
            f.seek(SeekFrom::Start(s.offset))
                .and_then(|_| f.read_exact(&mut bytes))
                .map_err(|e| e.to_string())?;
            if crc32fast::hash(&bytes) != s.crc {
                return Err(format!("the cache file is corrupt (column {})", s.key));
            }
            let mut r = crate::table::dump::Reader::new(&bytes);
            let c = match ext {
                Some(_) => Column::Str(r.extension(rows)?),
                None => r.column(kind, rows)?,
            };
            Ok((i, ext, c))
        })
        .collect();
    let mut columns: Vec<Option<Column>> = (0..layout.len()).map(|_| None).collect();
    let mut extensions = HashMap::new();
    for d in decoded {
        match d.map_err(Miss::new)? {
            (Some(i), _, c) => {
                if let Some(slot) = columns.get_mut(i) {
                    *slot = Some(c);
                }
            }
            (None, Some(name), Column::Str(c)) => {
                extensions.insert(name.to_string(), c);
            }
            _ => {}
        }
    }
    Ok(Loaded {
        table: crate::table::Table::from_columns(object, rows, columns, extensions),
        skipped: h.skipped,
        warnings: h.warnings,
        bytes: h.bytes,
        cache: CacheUse::Hit {
            path: cache.to_path_buf(),
        },
    })
}

/// Writes `loaded`'s table to `cache`, through a temporary file renamed into place (a reader
/// never sees half a cache; the file is readable by its owner only, as it holds the export's
/// data).
fn write(
    cache: &Path,
    object: ObjectType,
    loaded: &Loaded,
    projection: Option<&Projection>,
    sources: Vec<Source>,
    ignored: Vec<String>,
) -> std::io::Result<()> {
    let dir = cache.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
    out.write_all(MAGIC)?;
    let mut offset = MAGIC.len() as u64;
    let mut sections = Vec::new();
    let mut put = |key: String, bytes: Vec<u8>, out: &mut dyn Write| -> std::io::Result<()> {
        out.write_all(&bytes)?;
        sections.push(Section {
            key,
            offset,
            len: bytes.len() as u64,
            crc: crc32fast::hash(&bytes),
        });
        offset += bytes.len() as u64;
        Ok(())
    };
    let t = &loaded.table;
    for (key, _, column) in t.columns_with_keys() {
        if projection.is_some_and(|p| !p.columns.contains(&key)) {
            continue;
        }
        let mut w = crate::table::dump::Writer::default();
        w.column(column);
        put(key_name(key), w.out, &mut out)?;
    }
    let mut names: Vec<&String> = t.extension_columns().keys().collect();
    names.sort();
    for name in names {
        if let Some(c) = t.extension_columns().get(name) {
            let mut w = crate::table::dump::Writer::default();
            w.extension(c);
            put(format!("ext:{name}"), w.out, &mut out)?;
        }
    }
    let mut columns: Vec<String> = projection
        .map(|p| p.columns.iter().map(|k| key_name(*k)).collect())
        .unwrap_or_default();
    columns.sort();
    let mut extensions: Vec<String> = projection
        .map(|p| p.extensions.iter().cloned().collect())
        .unwrap_or_default();
    extensions.sort();
    let header = Header {
        dynrule: env!("CARGO_PKG_VERSION").to_string(),
        object: object_name(object).to_string(),
        sources,
        ignored,
        rows: t.len(),
        bytes: loaded.bytes,
        all: projection.is_none(),
        columns,
        extensions,
        sections,
        skipped: loaded.skipped.clone(),
        warnings: loaded.warnings.clone(),
    };
    let head = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    out.write_all(&head)?;
    out.write_all(&(head.len() as u64).to_le_bytes())?;
    out.write_all(&crc32fast::hash(&head).to_le_bytes())?;
    out.write_all(&FORMAT.to_le_bytes())?;
    out.write_all(MAGIC)?;
    out.flush()?;
    drop(out);
    tmp.persist(cache).map_err(|e| e.error)?;
    Ok(())
}

/// [`load`] through the cache (`opts.cache` is not `Off`): the cached table when it is
/// current and has the columns, else the export parsed and the cache written.
pub(super) fn load_cached(
    path: &Path,
    object: ObjectType,
    opts: &LoadOptions,
) -> Result<Loaded, LoadError> {
    let parse = |opts: &LoadOptions| load_export(path, object, opts);
    let files = files_of(path)?;
    let total = total_bytes(&files);
    if opts.cache == CacheMode::Auto && total < AUTO_MIN_BYTES {
        return parse(opts).map(|l| Loaded {
            cache: CacheUse::Small,
            ..l
        });
    }
    let cache = cache_path(path, object);
    let ignored = ignored_in(path);
    let now = sources(path, &files).map_err(|e| io_err(path, &e))?;
    let miss = match read(&cache, object, opts, &now, &ignored) {
        Ok(l) => return Ok(l),
        Err(m) => m,
    };
    // Load what was asked and what the cache had, so the cache written keeps both.
    let projection = match (&opts.projection, miss.also) {
        (Some(p), Some(also)) => {
            let mut p = p.clone();
            p.columns.extend(also.columns);
            p.extensions.extend(also.extensions);
            Some(p)
        }
        (p, _) => p.clone(),
    };
    let widened = LoadOptions {
        projection,
        ..opts.clone()
    };
    let loaded = parse(&widened)?;
    let cache_use = match write(
        &cache,
        object,
        &loaded,
        widened.projection.as_ref(),
        now,
        ignored,
    ) {
        Ok(()) => CacheUse::Written {
            path: cache,
            reason: miss.reason,
        },
        Err(e) => CacheUse::NotWritten {
            path: cache,
            reason: miss.reason,
            error: e.to_string(),
        },
    };
    Ok(Loaded {
        cache: cache_use,
        ..loaded
    })
}
