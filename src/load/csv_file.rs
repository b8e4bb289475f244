//! CSV: the Entra admin center's "Download users" file and its bulk-create template, or headers
//! named like the rule properties or Graph keys; delimiter sniffed, rows read as JSON objects
//! so they take the record path.

use super::*;

/// Header aliases beyond the property names and Graph keys (compared after dropping case,
/// spaces and punctuation): the Entra admin center's "Download users" columns and common
/// spreadsheet names.
pub(super) const CSV_ALIASES: &[(&str, &str)] = &[
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

pub(super) fn norm_header(h: &str) -> String {
    h.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A header's property name: the bulk-create template's "Name [displayName] Required" names
/// it in brackets; other headers are themselves.
pub(super) fn bracketed(h: &str) -> &str {
    let h = h.trim();
    match (h.find('['), h.find(']')) {
        (Some(a), Some(b)) if a < b => h.get(a + 1..b).unwrap_or(h).trim(),
        _ => h,
    }
}

/// The JSON key a CSV header stands for, if any.
pub(super) fn csv_key(header: &str, keys: &KeyMap) -> Option<String> {
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
pub(super) struct CsvShape<'b> {
    pub(super) body: &'b [u8],
    pub(super) lines_before: usize,
    pub(super) delimiter: u8,
}

pub(super) fn csv_shape(bytes: &[u8]) -> CsvShape<'_> {
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
    pub(super) fn reader(&self) -> csv::Reader<&[u8]> {
        csv::ReaderBuilder::new()
            .flexible(true)
            .delimiter(self.delimiter)
            .from_reader(self.body)
    }

    /// The 1-based file line of byte `offset` of the body (counting `\n` only, so CRLF files
    /// number as editors do).
    pub(super) fn line_at(&self, offset: u64) -> usize {
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
pub(super) fn csv_unused_headers(bytes: &[u8], object: ObjectType) -> Vec<String> {
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
pub(super) const CSV_ID_FROM_UPN: &str = "@dynrule.idFromUserPrincipalName";

/// A CSV row's line and its Graph-shaped object (or why the row is malformed).
pub(super) type CsvRow = (usize, Result<serde_json::Value, LoadError>);

/// CSV rows as Graph-shaped JSON objects, with their line numbers. Empty cells are null;
/// collection cells split on `;` (decision D31).
pub(super) fn csv_values(
    file: &Path,
    bytes: &[u8],
    keys: &KeyMap,
) -> Result<Vec<CsvRow>, LoadError> {
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
pub(super) fn swallowed_rows(
    rec: &csv::StringRecord,
    fields: usize,
    line: usize,
) -> Option<String> {
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

pub(super) fn csv_err(file: &Path, e: &csv::Error, shape: &CsvShape<'_>) -> LoadError {
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
