//! The two record paths and the two evaluators held to one answer per record, for the fuzz
//! targets and property tests: the byte scanner against the serde visitors
//! ([`check_record_paths`]), and the columnar engine over a loaded table against the reference
//! oracle over the same raw records ([`differential`]).

use super::{KeyMap, Part, Source, parse_part, parse_record, record_value, scan};
use crate::program::{CompileOptions, Program};
use crate::schema::ObjectType;
use crate::table::{Cell, ColumnKey, Layout, Projection, Record, TableBuilder};
use std::path::Path;

/// Reads one JSON record with both record paths — the byte scanner and the serde visitors —
/// with and without a projection, and says whether they agree: the scanner may decline a
/// record (serde then decides), but whatever it reads must equal what serde reads. For the
/// `load` fuzz target (arbitrary bytes) and tests.
///
/// Errors: a description of the first disagreement.
#[doc(hidden)]
pub fn check_record_paths(text: &[u8], object: ObjectType) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(text) else {
        // Not UTF-8: as a JSON Lines file, every line that is not is malformed (D66), and no
        // line of it may become a row.
        let keys = KeyMap::new(object, None);
        let template = TableBuilder::projected(object, None);
        let part = parse_part(&keys, &template, Path::new("-"), Source::Lines(text), true);
        let bad_lines = text
            .split(|&c| c == b'\n')
            .filter(|l| std::str::from_utf8(l).is_err())
            .count();
        let utf8_errors = part
            .errors
            .iter()
            .filter(|e| e.message.starts_with("invalid UTF-8"))
            .count();
        if utf8_errors != bad_lines {
            return Err(format!(
                "{bad_lines} line(s) are not UTF-8 but the load reports {utf8_errors}"
            ));
        }
        return Ok(());
    };
    let mut projection = Projection::default();
    let layout = Layout::new(object);
    // Every other column: a projection that splits nested objects and plain keys alike.
    for (i, (key, _)) in layout.columns.iter().enumerate() {
        if i % 2 == 0 || *key == ColumnKey::Prop("objectId") {
            projection.columns.insert(*key);
        }
    }
    record_paths_agree(text, object, &[None, Some(projection)]).map(|_| ())
}

/// [`check_record_paths`] over the given projections: each one-line and multi-line, and each
/// twice through one scanner (the second read goes through the key caches the first filled).
/// Returns how many of those reads the scanner made (the rest it declined).
///
/// Errors: a description of the first disagreement.
pub(super) fn record_paths_agree(
    text: &str,
    object: ObjectType,
    projections: &[Option<Projection>],
) -> Result<usize, String> {
    let mut read = 0;
    for projection in projections {
        let keys = KeyMap::new(object, projection.as_ref());
        for single_line in [true, false] {
            let mut s = scan::Scanner::new(text, single_line);
            for _ in 0..2 {
                s.reset(text, 0);
                let mut rec = Record {
                    cells: vec![Cell::Null; keys.layout_len],
                    extensions: Vec::new(),
                };
                let mut primary = vec![false; keys.layout_len];
                let fast = scan::record(&keys, &mut s, &mut rec, &mut primary).is_ok()
                    && s.at_line_end()
                    && s.i >= text.trim_end().len();
                if !fast {
                    continue;
                }
                read += 1;
                match parse_record(&keys, text.as_bytes(), Path::new("-"), 1) {
                    Ok(slow) if slow == rec => {}
                    Ok(slow) => {
                        return Err(format!(
                            "the scanner read {rec:?}, serde {slow:?} (projected: {})",
                            projection.is_some()
                        ));
                    }
                    Err(e) => return Err(format!("the scanner read a record serde rejects: {e}")),
                }
            }
        }
    }
    Ok(read)
}

/// Runs `rule` over JSON Lines `text` both ways and says whether they agree: the records as
/// `eval` loads them (the chunk parser, byte scanner and serde visitors; with the rule's
/// projection and without) evaluated by the compiled program on the VM, and each line as
/// `explain` reads it (the same record check, then a JSON object) evaluated by the oracle. The
/// two must accept the same lines, read the same ids, and select the same records. `now` is
/// `system.now`. An invalid rule is no comparison (`Ok(0)`).
///
/// Returns how many records were compared.
///
/// Errors: a description of the first disagreement.
#[doc(hidden)]
pub fn differential(rule: &str, text: &[u8], now: jiff::Timestamp) -> Result<usize, String> {
    let checked = crate::check(rule);
    let Some(hir) = checked.hir.as_ref().filter(|_| checked.is_valid()) else {
        return Ok(0);
    };
    let object = hir.object;
    let Ok(program) = Program::compile(hir, &CompileOptions { now }) else {
        return Ok(0);
    };
    let file = Path::new("-");
    let cx = crate::oracle::Context::at(now);
    let mut projection = Projection::default();
    program.add_reads(&mut projection);
    projection.columns.insert(ColumnKey::Prop("objectId"));
    let mut compared = 0;
    for projection in [None, Some(projection)] {
        let projected = projection.is_some();
        let keys = KeyMap::new(object, projection.as_ref());
        // The oracle's side: every non-blank line, read as `explain` reads it.
        let mut lines: Vec<(usize, serde_json::Value)> = Vec::new();
        for (i, bytes) in text.split(|&c| c == b'\n').enumerate() {
            let Ok(line) = std::str::from_utf8(bytes) else {
                continue;
            };
            let line = line.trim_start_matches('\u{feff}');
            if line.trim().is_empty() {
                continue;
            }
            if let Ok(v) = record_value(&keys, line, file, i + 1) {
                lines.push((i + 1, v));
            }
        }
        // The engine's side: the lines as `eval` loads them.
        let template = TableBuilder::projected(object, projection.as_ref());
        let Part {
            builder, errors, ..
        } = parse_part(&keys, &template, file, Source::Lines(text), true);
        let mut table = template;
        table.append(builder);
        let table = table.finish()?;
        let rejected: std::collections::HashSet<usize> = errors.iter().map(|e| e.line).collect();
        if let Some((l, _)) = lines.iter().find(|(l, _)| rejected.contains(l)) {
            let e = errors
                .iter()
                .find(|e| e.line == *l)
                .map(ToString::to_string);
            return Err(format!(
                "the load rejects line {l}, which the oracle reads (projected: {projected}): {}",
                e.unwrap_or_default()
            ));
        }
        if table.len() != lines.len() {
            return Err(format!(
                "the load holds {} records, the oracle reads {} lines (projected: {projected})",
                table.len(),
                lines.len()
            ));
        }
        let members = crate::vm::evaluate(std::slice::from_ref(&program), &table);
        for (row, (line, v)) in lines.iter().enumerate() {
            let id = table.id(row);
            // An id as the oracle reads it: a string, or a number or boolean as its JSON text.
            let want_id =
                crate::oracle::text_of(v.as_object().and_then(|o| crate::oracle::get_ci(o, "id")));
            let want_id = want_id.as_deref();
            if id != want_id {
                return Err(format!(
                    "line {line}: the load read id {id:?}, the oracle {want_id:?} (projected: {projected})"
                ));
            }
            let want = crate::oracle::evaluate(hir, v, &cx);
            let got = members.first().is_some_and(|m| m.get(row));
            if got != want {
                return Err(format!(
                    "line {line}: the engine says {got}, the oracle {want} (projected: {projected}) for {rule:?} on {v}"
                ));
            }
        }
        compared += lines.len();
    }
    Ok(compared)
}
