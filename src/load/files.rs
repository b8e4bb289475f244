//! Files and their framing: which files a path names ([`files_of`], EntraExporter's layout),
//! the format of each, encodings and invalid UTF-8, the object type a file holds, and a JSON
//! file's records (a JSON Lines file's lines, an array's elements, a Graph page's `value`).

use super::*;

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
pub(super) fn entraexporter_files(dir: &Path) -> Vec<PathBuf> {
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
pub(super) fn entraexporter_members(object_file: &Path) -> Option<serde_json::Value> {
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
            if let Some(x) = crate::formats::get_ci(o, key) {
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

/// What kind of Graph objects the start of an export holds, from what Graph writes into it:
/// a page's `@odata.context` (`…/$metadata#devices`), the records' `@odata.type`
/// (`#microsoft.graph.device`; a user's nested `memberOf` groups say `#microsoft.graph.group`,
/// so a group type counts only without a user's), or a group's `groupTypes` key beside no
/// `userPrincipalName`. `None` when it does not say.
pub(super) fn sniffed_kind(head: &[u8]) -> Option<&'static str> {
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
pub(super) fn check_kind(file: &Path, object: ObjectType) -> Result<(), LoadError> {
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

/// UTF-8's byte-order mark.
pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` made valid UTF-8 by replacing each byte of an invalid sequence with `?` (so every
/// offset stays), and the addresses of the replaced bytes in the returned buffer, sorted. A
/// JSON array or page holding a record with invalid UTF-8 is then still split into records,
/// and that record alone is malformed (D66).
pub(super) fn utf8_marked(mut bytes: Vec<u8>) -> (Vec<u8>, Vec<usize>) {
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
pub(super) fn utf8_error(file: &Path, line: usize, column: usize) -> LoadError {
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
pub(super) fn first_marked(text: &str, bad: &[usize]) -> Option<(usize, usize)> {
    let start = text.as_ptr() as usize;
    let i = bad.partition_point(|&a| a < start);
    let a = *bad.get(i).filter(|&&a| a < start + text.len())?;
    let (line, column) = position(text.as_bytes(), a - start);
    Some((line - 1, column))
}

pub(super) fn io_err(file: &Path, e: &std::io::Error) -> LoadError {
    LoadError {
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        message: e.to_string(),
    }
}

pub(super) fn check_encoding(file: &Path, bytes: &[u8]) -> Result<(), LoadError> {
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

pub(super) fn read_utf8(file: &Path) -> Result<Vec<u8>, LoadError> {
    let mut bytes = std::fs::read(file).map_err(|e| io_err(file, &e))?;
    check_encoding(file, &bytes)?;
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    Ok(bytes)
}

/// 1-based line and column of byte `offset`.
pub(super) fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = bytes.get(..offset).unwrap_or(bytes);
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let col = offset - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// What a saved Graph list page says about the rest of the collection.
#[derive(Clone, Debug, Default)]
pub(super) struct PageInfo {
    /// `@odata.nextLink`: more pages follow.
    pub(super) next_link: Option<String>,
    /// `@odata.count` (`$count=true`): the size of the whole collection.
    pub(super) count: Option<u64>,
}

/// Records of a JSON file (raw text with its starting line) and, for a Graph page, what it
/// says about the rest of the collection.
pub(super) type Units<'b> = (Vec<(usize, &'b str)>, PageInfo);

/// Fails when the last file of an export is a Graph page with `@odata.nextLink`: the pages
/// after it were not saved, and a partial export must not pass for the whole tenant.
pub(super) fn check_not_partial(
    file: &Path,
    page: &PageInfo,
    is_last: bool,
) -> Result<(), LoadError> {
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
pub(super) fn json_units<'b>(
    file: &Path,
    bytes: &'b [u8],
    fmt: Format,
) -> Result<Units<'b>, LoadError> {
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
    let syntax = |e: serde_json::Error| LoadError::json(file, 1, &e);
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
