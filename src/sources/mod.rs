//! Rules where they live: found in Terraform (`.tf`), Bicep (`.bicep`), JSON (ARM templates,
//! Graph exports) and plain rule files, checked, and each diagnostic mapped back to the file,
//! line and column of the source — through the file's own string escapes — for `dynrule lint`.
//!
//! | file | where the rules are |
//! | --- | --- |
//! | `.tf` | `rule` in a `dynamic_membership` block, any `membership_rule` attribute, any `membershipRule` object key (`body = { … }`, `jsonencode({ … })`) |
//! | `.bicep` | `membershipRule:` properties |
//! | `.json` | `membershipRule` keys at any depth (ARM templates from `bicep build`, Graph `groups` exports) |
//! | `.rule` | the whole file is one rule |
//! | `.rules`, `.txt` | one rule per line; blank lines and `#` comments skipped |
//!
//! A rule that is not a literal (a Terraform variable or `${…}` template, an ARM expression, a
//! Bicep interpolation) cannot be checked before apply and is listed as skipped.

mod bicep;
mod hcl;
mod json;
pub mod literal;
pub mod render;

use crate::diag::{Code, Severity};
use literal::Decoded;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What kind of file a path is, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// Terraform (`.tf`).
    Terraform,
    /// Bicep (`.bicep`).
    Bicep,
    /// JSON (`.json`).
    Json,
    /// One rule (`.rule`).
    Rule,
    /// One rule a line (`.rules`, `.txt`).
    Rules,
}

impl Kind {
    /// The kind of `path`, by extension (any case); `None` for other files.
    pub fn of(path: &Path) -> Option<Kind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "tf" => Kind::Terraform,
            "bicep" => Kind::Bicep,
            "json" => Kind::Json,
            "rule" => Kind::Rule,
            "rules" | "txt" => Kind::Rules,
            _ => return None,
        })
    }
}

/// What [`locate`] finds in a file: the rules, and the ones it skips as (source byte offset,
/// context, reason).
pub type Found = (Vec<Located>, Vec<(usize, String, String)>);

/// A rule found in a file.
#[derive(Clone, Debug)]
pub struct Located {
    /// Where in the file: `azuread_group.sales › dynamic_membership › rule`, a JSON path, a
    /// line.
    pub context: String,
    /// The rule, decoded, with its map back to the file.
    pub literal: Decoded,
}

/// A rule that is not a literal, so not checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Where in the file.
    pub context: String,
    /// Why it is not checked.
    pub reason: String,
}

/// A file that could not be read or parsed (lint exits 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// One diagnostic of one rule, located in its file.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The file, as given or found under a given folder (`/` separators).
    pub file: String,
    /// 1-based line of the diagnostic's start.
    pub line: usize,
    /// 1-based column (Unicode scalar values) of its start.
    pub column: usize,
    /// 1-based line of its end.
    pub end_line: usize,
    /// 1-based column just past its end.
    pub end_column: usize,
    /// The diagnostic code (`DR004`).
    #[serde(serialize_with = "code_str")]
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Entra's message for the code's category.
    pub entra_message: &'static str,
    /// Where in the file the rule is.
    pub context: String,
    /// The rule (decoded).
    pub rule: String,
    /// A fingerprint stable while the file's rule and its place do not change, whatever lines
    /// move around it (SARIF `partialFingerprints`): SHA-256 of code, file, context and rule.
    pub fingerprint: String,
    /// The file's line the diagnostic starts on, for the text report (not serialized).
    #[serde(skip)]
    pub source_line: String,
}

fn code_str<S: serde::Serializer>(c: &Code, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.as_str())
}

/// What `lint` found over its paths.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LintReport {
    /// Files read.
    pub files: usize,
    /// Rules checked.
    pub rules: usize,
    /// Diagnostics, by file, line, column.
    pub findings: Vec<Finding>,
    /// Rules that are not literals.
    pub skipped: Vec<Skipped>,
    /// Files that could not be read or parsed.
    pub errors: Vec<FileError>,
}

impl LintReport {
    /// Findings that are errors.
    pub fn error_count(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Findings that are warnings.
    pub fn warning_count(&self) -> usize {
        self.findings.len() - self.error_count()
    }
}

/// Folders `lint` does not descend into.
const SKIP_DIRS: &[&str] = &[".git", ".terraform", "node_modules", "target", ".bicep"];

/// The files under `paths`: a file as given (its kind by extension, else a plain rule file),
/// a folder's files of a known kind, recursively (hidden folders and `.terraform`,
/// `node_modules`, `target` left out), in name order. JSON files found in folders are read
/// only when they mention `membershipRule`.
pub fn discover(paths: &[PathBuf]) -> (Vec<(PathBuf, Kind)>, Vec<FileError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out, &mut errors);
        } else if p.exists() {
            out.push((p.clone(), Kind::of(p).unwrap_or(Kind::Rule)));
        } else {
            errors.push(FileError {
                file: display(p),
                line: 0,
                column: 0,
                message: "no such file or folder".into(),
            });
        }
    }
    (out, errors)
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Kind)>, errors: &mut Vec<FileError>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            errors.push(FileError {
                file: display(dir),
                line: 0,
                column: 0,
                message: e.to_string(),
            });
            return;
        }
    };
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if !name.starts_with('.') && !SKIP_DIRS.contains(&name) {
                walk(&p, out, errors);
            }
            continue;
        }
        match Kind::of(&p) {
            Some(Kind::Json) => {
                let mentions = std::fs::read(&p).is_ok_and(|b| {
                    memchr::memmem::find(&b, b"membershipRule").is_some()
                        || memchr::memmem::find(&b, b"membershiprule").is_some()
                });
                if mentions {
                    out.push((p, Kind::Json));
                }
            }
            Some(k) => out.push((p, k)),
            None => {}
        }
    }
}

/// A path as reports show it: `/` separators, no leading `./`.
fn display(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map_or(s.clone(), str::to_string)
}

/// The rules of one file's `text`, and the ones it skips.
///
/// Errors: a file that does not parse as its kind (with line and column).
pub fn locate(kind: Kind, text: &str) -> Result<Found, (usize, String)> {
    match kind {
        Kind::Terraform => hcl::locate(text),
        Kind::Json => json::locate(text),
        Kind::Bicep => Ok(bicep::locate(text)),
        Kind::Rule => {
            let body = text.trim_start_matches('\u{feff}');
            let start = text.len() - body.len();
            let rule = body.trim_end();
            Ok((
                vec![Located {
                    context: "rule".into(),
                    literal: literal::decode(
                        text,
                        start,
                        start + rule.len(),
                        literal::Escapes::Raw,
                    )
                    .unwrap_or_else(|| Decoded::at(rule.to_string(), start)),
                }],
                Vec::new(),
            ))
        }
        Kind::Rules => {
            let mut out = Vec::new();
            let mut offset = 0;
            for (i, line) in text.split_inclusive('\n').enumerate() {
                let body = line.trim_end_matches(['\n', '\r']);
                let t = body.trim();
                if !t.is_empty() && !t.starts_with('#') {
                    let lead = body.len() - body.trim_start().len();
                    let s = offset + lead;
                    out.push(Located {
                        context: format!("line {}", i + 1),
                        literal: literal::decode(text, s, s + t.len(), literal::Escapes::Raw)
                            .unwrap_or_else(|| Decoded::at(t.to_string(), s)),
                    });
                }
                offset += line.len();
            }
            Ok((out, Vec::new()))
        }
    }
}

/// Finds and checks every rule under `paths` (see the module docs).
pub fn lint(paths: &[PathBuf]) -> LintReport {
    let (files, errors) = discover(paths);
    let mut report = LintReport {
        errors,
        ..LintReport::default()
    };
    for (path, kind) in files {
        let file = display(&path);
        let text = match std::fs::read(&path) {
            Ok(b) => match String::from_utf8(b) {
                Ok(t) => t,
                Err(e) => {
                    let (line, column) = literal::line_col(
                        &String::from_utf8_lossy(e.as_bytes()),
                        e.utf8_error().valid_up_to(),
                    );
                    report.errors.push(FileError {
                        file,
                        line,
                        column,
                        message: "not UTF-8".into(),
                    });
                    continue;
                }
            },
            Err(e) => {
                report.errors.push(FileError {
                    file,
                    line: 0,
                    column: 0,
                    message: e.to_string(),
                });
                continue;
            }
        };
        report.files += 1;
        match locate(kind, &text) {
            Ok((rules, skipped)) => {
                for (offset, context, reason) in skipped {
                    let (line, column) = literal::line_col(&text, offset);
                    report.skipped.push(Skipped {
                        file: file.clone(),
                        line,
                        column,
                        context,
                        reason,
                    });
                }
                for r in rules {
                    report.rules += 1;
                    report.findings.extend(check(&file, &text, &r));
                }
            }
            Err((offset, message)) => {
                let (line, column) = literal::line_col(&text, offset);
                report.errors.push(FileError {
                    file,
                    line,
                    column,
                    message,
                });
            }
        }
    }
    report
}

/// The diagnostics of one located rule, mapped into its file.
fn check(file: &str, text: &str, r: &Located) -> Vec<Finding> {
    use sha2::Digest;
    let checked = crate::check(&r.literal.text);
    checked
        .diagnostics
        .iter()
        .map(|d| {
            let (line, column) = literal::line_col(text, r.literal.source(d.span.start));
            let end = r.literal.source(d.span.end.min(r.literal.text.len()));
            let (end_line, mut end_column) = literal::line_col(text, end);
            if (end_line, end_column) <= (line, column) {
                end_column = column + 1;
            }
            let mut h = sha2::Sha256::new();
            for part in [d.code.as_str(), file, &r.context, &r.literal.text] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            let fingerprint = h
                .finalize()
                .iter()
                .take(16)
                .map(|b| format!("{b:02x}"))
                .collect();
            Finding {
                file: file.to_string(),
                line,
                column,
                end_line,
                end_column,
                code: d.code,
                severity: d.severity,
                message: d.message.clone(),
                help: d.help.clone(),
                entra_message: d.category.entra_message(),
                context: r.context.clone(),
                rule: r.literal.text.clone(),
                fingerprint,
                source_line: text
                    .lines()
                    .nth(line.saturating_sub(1))
                    .unwrap_or("")
                    .to_string(),
            }
        })
        .collect()
}
