//! `dynrule lint`'s outputs: compiler-style text, GitHub workflow annotations, and SARIF 2.1.0
//! for code scanning (docs.github.com "SARIF support for code scanning": a stable `ruleId` per
//! diagnostic code, relative file paths, `partialFingerprints`).

use super::{Finding, LintReport};
use crate::diag::{Code, Severity};
use serde_sarif::sarif;
use std::collections::BTreeMap;
use std::fmt::Write;

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// The report as text: `file:line:col: error DR004: message`, the source line with the span
/// underlined, the help, then skipped rules, unreadable files and a summary line.
pub fn text(report: &LintReport) -> String {
    let mut o = String::new();
    for f in &report.findings {
        let _ = writeln!(
            o,
            "{}:{}:{}: {} {}: {}",
            f.file,
            f.line,
            f.column,
            severity_word(f.severity),
            f.code.as_str(),
            f.message
        );
        let _ = writeln!(o, "  in {}", f.context);
        let line = f.source_line.as_str();
        if !line.is_empty() {
            let width = if f.end_line == f.line {
                f.end_column.saturating_sub(f.column).max(1)
            } else {
                line.chars().count().saturating_sub(f.column - 1).max(1)
            };
            let _ = writeln!(o, "   | {line}");
            let _ = writeln!(
                o,
                "   | {}{}",
                " ".repeat(f.column.saturating_sub(1)),
                "^".repeat(width)
            );
        }
        if let Some(h) = &f.help {
            let _ = writeln!(o, "  help: {h}");
        }
    }
    for s in &report.skipped {
        let _ = writeln!(
            o,
            "{}:{}:{}: skipped {}: {}",
            s.file, s.line, s.column, s.context, s.reason
        );
    }
    for e in &report.errors {
        let _ = writeln!(
            o,
            "{}:{}:{}: error: {}",
            e.file, e.line, e.column, e.message
        );
    }
    let _ = writeln!(
        o,
        "{} rule(s) in {} file(s): {} error(s), {} warning(s){}{}",
        report.rules,
        report.files,
        report.error_count(),
        report.warning_count(),
        if report.skipped.is_empty() {
            String::new()
        } else {
            format!("; {} not literal (skipped)", report.skipped.len())
        },
        if report.errors.is_empty() {
            String::new()
        } else {
            format!("; {} file(s) unreadable", report.errors.len())
        }
    );
    o
}

/// Escapes an annotation's message (GitHub's workflow commands: `%`, CR, LF).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes an annotation's property value (also `:` and `,`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The report as GitHub workflow annotations, one line each:
/// `::error file=…,line=…,col=…,endLine=…,endColumn=…,title=DR004::message` (warnings as
/// `::warning`, skipped rules as `::notice`, unreadable files as `::error`).
pub fn github(report: &LintReport) -> String {
    let mut o = String::new();
    for f in &report.findings {
        let mut msg = f.message.clone();
        if let Some(h) = &f.help {
            msg.push_str("\nhelp: ");
            msg.push_str(h);
        }
        let _ = writeln!(
            o,
            "::{} file={},line={},col={},endLine={},endColumn={},title={}::{}",
            severity_word(f.severity),
            escape_property(&f.file),
            f.line,
            f.column,
            f.end_line,
            f.end_column,
            escape_property(&format!("{} {}", f.code.as_str(), f.entra_message)),
            escape_data(&msg)
        );
    }
    for s in &report.skipped {
        let _ = writeln!(
            o,
            "::notice file={},line={},col={},title=dynrule skipped a rule::{}",
            escape_property(&s.file),
            s.line,
            s.column,
            escape_data(&format!("{}: {}", s.context, s.reason))
        );
    }
    for e in &report.errors {
        let _ = writeln!(
            o,
            "::error file={},line={},col={},title=dynrule cannot read the file::{}",
            escape_property(&e.file),
            e.line.max(1),
            e.column.max(1),
            escape_data(&e.message)
        );
    }
    o
}

fn message(text: impl Into<String>) -> sarif::Message {
    sarif::Message::builder().text(text.into()).build()
}

fn described(text: &str) -> sarif::MultiformatMessageString {
    sarif::MultiformatMessageString::builder()
        .text(text.to_string())
        .build()
}

/// The SARIF reporting descriptor of a code: `id` the code, `name` its variant,
/// `shortDescription` Entra's message, `fullDescription` what the code means.
fn descriptor(code: Code) -> sarif::ReportingDescriptor {
    let level = match code.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    sarif::ReportingDescriptor::builder()
        .id(code.as_str())
        .name(format!("{code:?}"))
        .short_description(described(code.category().entra_message()))
        .full_description(described(code.summary()))
        .default_configuration(
            sarif::ReportingConfiguration::builder()
                .level(serde_json::Value::from(level))
                .build(),
        )
        .build()
}

fn result(f: &Finding, rule_index: i64) -> sarif::Result {
    let region = sarif::Region::builder()
        .start_line(f.line as i64)
        .start_column(f.column as i64)
        .end_line(f.end_line as i64)
        .end_column(f.end_column as i64)
        .build();
    let location = sarif::Location::builder()
        .physical_location(
            sarif::PhysicalLocation::builder()
                .artifact_location(
                    sarif::ArtifactLocation::builder()
                        .uri(f.file.clone())
                        .uri_base_id("%SRCROOT%")
                        .build(),
                )
                .region(region)
                .build(),
        )
        .build();
    let mut text = format!("{} ({})", f.message, f.context);
    if let Some(h) = &f.help {
        text.push_str(". Help: ");
        text.push_str(h);
    }
    let level = match f.severity {
        Severity::Error => sarif::ResultLevel::Error,
        Severity::Warning => sarif::ResultLevel::Warning,
    };
    sarif::Result::builder()
        .rule_id(f.code.as_str())
        .rule_index(rule_index)
        .level(level)
        .message(message(text))
        .locations(vec![location])
        .partial_fingerprints(BTreeMap::from([(
            "dynruleRule/v1".to_string(),
            f.fingerprint.clone(),
        )]))
        .build()
}

/// The report as a SARIF 2.1.0 log: one run of the `dynrule` driver with a reporting
/// descriptor for each code found, one result per finding (columns in Unicode code points,
/// paths relative to `%SRCROOT%`), and the skipped rules and unreadable files as tool
/// execution notifications.
///
/// Errors: none in practice (serialising the log to JSON).
pub fn sarif(report: &LintReport) -> Result<String, serde_json::Error> {
    let mut codes: Vec<Code> = report.findings.iter().map(|f| f.code).collect();
    codes.sort_by_key(|c| c.as_str());
    codes.dedup();
    let index = |c: Code| codes.iter().position(|x| *x == c).unwrap_or(0) as i64;
    let results: Vec<sarif::Result> = report
        .findings
        .iter()
        .map(|f| result(f, index(f.code)))
        .collect();
    let notifications: Vec<sarif::Notification> = report
        .skipped
        .iter()
        .map(|s| {
            sarif::Notification::builder()
                .level(serde_json::Value::from("note"))
                .message(message(format!(
                    "{}:{}:{}: skipped {}: {}",
                    s.file, s.line, s.column, s.context, s.reason
                )))
                .build()
        })
        .chain(report.errors.iter().map(|e| {
            sarif::Notification::builder()
                .level(serde_json::Value::from("error"))
                .message(message(format!(
                    "{}:{}:{}: {}",
                    e.file, e.line, e.column, e.message
                )))
                .build()
        }))
        .collect();
    let driver = sarif::ToolComponent::builder()
        .name("dynrule")
        .version(env!("CARGO_PKG_VERSION"))
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .rules(codes.iter().map(|c| descriptor(*c)).collect::<Vec<_>>())
        .build();
    let invocation = sarif::Invocation::builder()
        .execution_successful(report.errors.is_empty())
        .tool_execution_notifications(notifications)
        .build();
    let run = sarif::Run::builder()
        .tool(sarif::Tool::builder().driver(driver).build())
        .column_kind(serde_json::Value::from("unicodeCodePoints"))
        .invocations(vec![invocation])
        .results(results)
        .build();
    let log = sarif::Sarif::builder()
        .schema(sarif::SCHEMA_URL)
        .version(serde_json::Value::from("2.1.0"))
        .runs(vec![run])
        .build();
    serde_json::to_string_pretty(&log)
}
