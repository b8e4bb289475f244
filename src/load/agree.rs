//! The load's two record paths held to one answer per record, for the fuzz targets and
//! property tests: the byte scanner against the serde visitors ([`check_record_paths`]), and
//! the records as `eval` loads them against the records as `explain` reads them
//! ([`read_both_ways`], compared by [`crate::harness::differential`]).

use super::{KeyMap, Part, Source, parse_part, parse_record, record_value, scan};
use crate::schema::ObjectType;
use crate::table::{Cell, ColumnKey, Layout, Projection, Record, Table, TableBuilder};
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

/// JSON Lines `text` read the two ways the CLI reads records: as `eval` loads them (the
/// chunk parser, byte scanner and serde visitors) into a table, and line by line as `explain`
/// reads them (the same record check, then a JSON object). For the differential harness
/// ([`crate::harness::differential`]).
#[doc(hidden)]
pub struct TwoReads {
    /// The lines `explain` reads: (line number, the record as JSON).
    pub values: Vec<(usize, serde_json::Value)>,
    /// The table `eval` loads.
    pub table: Table,
    /// The lines the load refused.
    pub rejected: Vec<super::LoadError>,
}

/// Reads JSON Lines `text` both ways, holding `object` records with `projection` (`None`: every
/// column).
///
/// Errors: the table cannot be built (a description).
#[doc(hidden)]
pub fn read_both_ways(
    text: &[u8],
    object: ObjectType,
    projection: Option<&Projection>,
) -> Result<TwoReads, String> {
    let file = Path::new("-");
    let keys = KeyMap::new(object, projection);
    let mut values: Vec<(usize, serde_json::Value)> = Vec::new();
    for (i, bytes) in text.split(|&c| c == b'\n').enumerate() {
        let Ok(line) = std::str::from_utf8(bytes) else {
            continue;
        };
        let line = line.trim_start_matches('\u{feff}');
        if line.trim().is_empty() {
            continue;
        }
        if let Ok(v) = record_value(&keys, line, file, i + 1) {
            values.push((i + 1, v));
        }
    }
    let template = TableBuilder::projected(object, projection);
    let Part {
        builder, errors, ..
    } = parse_part(&keys, &template, file, Source::Lines(text), true);
    let mut table = template;
    table.append(builder);
    Ok(TwoReads {
        values,
        table: table.finish()?,
        rejected: errors,
    })
}
