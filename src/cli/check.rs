//! `dynrule check` and `dynrule fmt`.

use super::{Format, print_text, rule_of_line};
use dynrule::diag::JsonDiagnostic;
use std::io::{BufRead, Write};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The rule text (or use --file / --jsonl). A rule may begin with `-` (`-not (…)`).
    #[arg(
        conflicts_with_all = ["file", "jsonl"],
        required_unless_present_any = ["file", "jsonl"],
        allow_hyphen_values = true
    )]
    rule: Option<String>,
    /// Read one rule from a file (the whole file, which may span lines); `-` reads stdin.
    #[arg(long, conflicts_with = "jsonl")]
    file: Option<std::path::PathBuf>,
    /// Read many rules, one per line: a rule, a JSON string, or a JSON object with a "rule" field.
    /// Writes one JSON line per input line.
    #[arg(long)]
    jsonl: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit 1 when a rule has warnings too (for CI gates), not only errors.
    #[arg(long)]
    deny_warnings: bool,
}

fn json_line(rule: &str, checked: &dynrule::Checked) -> serde_json::Value {
    let diags: Vec<JsonDiagnostic> = checked
        .diagnostics
        .iter()
        .map(JsonDiagnostic::from)
        .collect();
    serde_json::json!({
        "rule": rule,
        "valid": checked.is_valid(),
        "kind": checked.object,
        "diagnostics": diags,
    })
}

fn summary(checked: &dynrule::Checked) -> String {
    let errors = checked.errors().count();
    let warnings = checked.diagnostics.len() - errors;
    let kind = checked.object.map_or("", |o| o.as_str());
    if checked.is_valid() {
        format!(
            "valid {kind} rule ({warnings} warning{})",
            if warnings == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "invalid: {errors} error{}, {warnings} warning{}",
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" }
        )
    }
}

/// `dynrule check`: exit 0 when every rule passes, 1 when one does not, 2 on I/O errors.
pub fn check(args: CheckArgs) -> ExitCode {
    if let Some(path) = &args.jsonl {
        return check_jsonl(path, args.deny_warnings);
    }
    let (rule, name) = match rule_text(args.rule.as_ref(), args.file.as_ref()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let checked = dynrule::check(&rule);
    match args.format {
        Format::Json => println!("{}", json_line(&rule, &checked)),
        Format::Text => {
            print_text(&rule, &name, &checked.diagnostics);
            println!("{}", summary(&checked));
        }
    }
    if passes(&checked, args.deny_warnings) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The rule of `check`/`fmt` and the name its diagnostics show: the argument, or the whole of
/// `--file` (`-`: stdin; a UTF-8 BOM and one final line end dropped).
///
/// Errors: exit 2 after printing why (unreadable file, neither given).
fn rule_text(
    rule: Option<&String>,
    file: Option<&std::path::PathBuf>,
) -> Result<(String, String), ExitCode> {
    let (text, name) = match (rule, file) {
        (Some(r), _) => return Ok((r.clone(), "rule".to_string())),
        (None, Some(path)) => (
            super::read_text(path)?,
            if path.as_os_str() == "-" {
                "stdin".to_string()
            } else {
                path.display().to_string()
            },
        ),
        (None, None) => {
            eprintln!("error: give a rule or --file");
            return Err(ExitCode::from(2));
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    Ok((text.to_string(), name))
}

/// Whether a checked rule passes `check`: valid, and with `--deny-warnings` without warnings.
fn passes(checked: &dynrule::Checked, deny_warnings: bool) -> bool {
    checked.is_valid() && (!deny_warnings || checked.diagnostics.is_empty())
}

fn check_jsonl(path: &std::path::Path, deny_warnings: bool) -> ExitCode {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(path) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut invalid, mut bad_lines) = (0usize, 0usize);
    for (n, line) in reader.split(b'\n').enumerate() {
        let bytes = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {}:{}: {e}", path.display(), n + 1);
                return ExitCode::from(2);
            }
        };
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
        // A line that is not UTF-8 still gets its output line, as an error.
        let line = std::str::from_utf8(bytes).map_err(|e| {
            format!(
                "invalid UTF-8 at byte {} of the line: save the file as UTF-8",
                e.valid_up_to() + 1
            )
        });
        let line = line.map(|l| {
            if n == 0 {
                l.trim_start_matches('\u{feff}')
            } else {
                l
            }
        });
        if line.as_ref().is_ok_and(|l| l.trim().is_empty()) {
            continue;
        }
        let value = match line.and_then(rule_of_line) {
            Ok(rule) => {
                let checked = dynrule::check(&rule);
                if !passes(&checked, deny_warnings) {
                    invalid += 1;
                }
                json_line(&rule, &checked)
            }
            Err(e) => {
                bad_lines += 1;
                eprintln!("error: {}:{}: {e}", path.display(), n + 1);
                serde_json::json!({ "line": n + 1, "valid": false, "kind": null, "error": e, "diagnostics": [] })
            }
        };
        if writeln!(out, "{value}").is_err() {
            return ExitCode::from(2);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(2);
    }
    if bad_lines > 0 {
        ExitCode::from(2)
    } else if invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `dynrule fmt`: the rule in canonical form on stdout, diagnostics of the input on stderr.
/// Exit 1 when the rule does not parse.
pub fn fmt(rule: Option<&String>, file: Option<&std::path::PathBuf>) -> ExitCode {
    let (rule, name) = match rule_text(rule, file) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // One pass: the diagnostics say what formatting repaired or left alone (typographic
    // dashes, unknown properties), so the printed rule is never mistaken for a checked one.
    let checked = dynrule::check(&rule);
    print_text(&rule, &name, &checked.diagnostics);
    match &checked.ast {
        Some(ast) => {
            println!(
                "{}",
                dynrule::syntax::print::print(&dynrule::syntax::print::canonicalize(ast))
            );
            ExitCode::SUCCESS
        }
        None => ExitCode::from(1),
    }
}
