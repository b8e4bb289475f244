//! Raw-record lookups for `explain`, the what-if explanations and tests: each record read as a
//! JSON value only after the load's own check has passed it ([`record_value`]), so these
//! answer for exactly the records the table holds.

use super::*;

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
                .and_then(|o| crate::formats::get_ci(o, "id"))
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
pub(super) fn record_value(
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
        // EntraExporter writes one object a file, its `Members/` folder beside it; a file of
        // many objects (a Graph export) has no such folder, and looking for it per object was
        // a folder listing per group.
        let one = units.len() == 1;
        for (line, raw) in units {
            let v: serde_json::Value =
                serde_json::from_str(raw).map_err(|e| LoadError::json(&file, line, &e))?;
            // An EntraExporter group's `Members/` folder is its `members` (D72).
            let v = match v {
                serde_json::Value::Object(mut o)
                    if one && !o.keys().any(|k| k.eq_ignore_ascii_case("members")) =>
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
            .and_then(|o| crate::formats::get_ci(o, "id"))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| LoadError {
                file: file.clone(),
                line,
                column: 0,
                message: "the group has no `id`".to_string(),
            })?;
        let members = obj
            .and_then(|o| crate::formats::get_ci(o, "members"))
            .and_then(serde_json::Value::as_array);
        for m in members.into_iter().flatten() {
            let mid = match m {
                serde_json::Value::String(s) => Some(s.as_str()),
                serde_json::Value::Object(o) => {
                    crate::formats::get_ci(o, "id").and_then(serde_json::Value::as_str)
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
