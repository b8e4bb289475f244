//! The `dynrule` command line. See `README.md` for every subcommand.

use clap::{Parser, Subcommand, ValueEnum};
use dynrule::diag::{JsonDiagnostic, Report};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

#[path = "cli/engine.rs"]
mod engine;
#[path = "cli/groups.rs"]
mod groups;
#[path = "cli/recompute.rs"]
mod recompute;
#[path = "cli/whatif.rs"]
mod whatif;

/// Compile, check and evaluate Microsoft Entra ID dynamic membership rules offline.
#[derive(Parser)]
#[command(name = "dynrule", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check rules: exit 0 when every rule is valid, 1 when one is invalid, 2 on usage or I/O errors.
    Check(CheckArgs),
    /// Print a rule in canonical form (diagnostics of the input go to stderr). Exit 1 when the
    /// rule does not parse.
    Fmt {
        /// The rule text (it may begin with `-`: `-not (…)`), or use --file.
        #[arg(
            allow_hyphen_values = true,
            conflicts_with = "file",
            required_unless_present = "file"
        )]
        rule: Option<String>,
        /// Read the rule from a file (the whole file, which may span lines); `-` reads stdin.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// Evaluate rules over a users (or devices) export: members, or counts. Exit 0; 1 when a
    /// rule is invalid (the others are still evaluated); 2 on unreadable input.
    Eval(engine::EvalArgs),
    /// Explain one user's result clause by clause (Graph's evaluateDynamicMembership shape).
    Explain(engine::ExplainArgs),
    /// Write a deterministic synthetic tenant of Graph users as JSON Lines.
    GenTenant(engine::GenArgs),
    /// Recompute every group of a tenant snapshot and its group-based licensing. Exit 0 (groups
    /// that cannot be processed are reported and keep their snapshot state); 2 when the snapshot
    /// cannot be read.
    Recompute(recompute::RecomputeArgs),
    /// What a group change does before it is saved: who joins and leaves, who gains and loses
    /// which licences and service plans, seats, risks. Exit 0; 3 when a --max-* threshold is
    /// crossed; 1 when a new rule is invalid; 2 on unreadable input.
    Whatif(whatif::WhatIfArgs),
    /// List a snapshot's groups (id, name, dynamic/static/paused, members, licences, rule), to
    /// find the names and ids the other commands take. Exit 2 when the snapshot cannot be read.
    Groups(groups::GroupsArgs),
    /// Print a shell completion script (`dynrule completions bash > /etc/bash_completion.d/dynrule`;
    /// PowerShell: `dynrule completions powershell | Out-String | Invoke-Expression`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct CheckArgs {
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

#[derive(Clone, Copy, PartialEq, ValueEnum)]
/// Output format of `check` and `explain`.
pub enum Format {
    /// Human-readable.
    Text,
    /// JSON.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check(args),
        Command::Eval(args) => engine::eval(args),
        Command::Explain(args) => engine::explain(args),
        Command::GenTenant(args) => engine::gen_tenant(args),
        Command::Recompute(args) => recompute::recompute(args),
        Command::Whatif(args) => whatif::whatif(args),
        Command::Groups(args) => groups::groups(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "dynrule",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Fmt { rule, file } => {
            let (rule, name) = match rule_text(rule.as_ref(), file.as_ref()) {
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
    }
}

/// The process's peak resident memory so far, as `, peak resident N MB` (10^6 bytes) to end a
/// `timings:` line; empty where the system does not say (it is `VmHWM` in `/proc/self/status`,
/// Linux only).
fn peak_resident() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().strip_suffix("kB"))
                .and_then(|kib| kib.trim().parse::<f64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", peak resident {:.0} MB", kib * 1024.0 / 1e6)
        })
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

fn print_text(rule: &str, name: &str, diags: &[dynrule::diag::Diagnostic]) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    // No wrapping of messages and help: a suggested rewrite must copy from the terminal as
    // one line (the terminal folds long lines without inserting line breaks).
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_wrap_lines(false);
    for d in diags {
        let mut out = String::new();
        let report = Report::new(d.clone(), name, rule);
        if handler.render_report(&mut out, &report).is_err() {
            out = format!("{}: {}\n", d.code.as_str(), d.message);
        }
        eprint!("{out}");
    }
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

fn check(args: CheckArgs) -> ExitCode {
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
    use std::io::Read;
    let (text, name) = match (rule, file) {
        (Some(r), _) => return Ok((r.clone(), "rule".to_string())),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                eprintln!("error: cannot read stdin: {e}");
                return Err(ExitCode::from(2));
            }
            (text, "stdin".to_string())
        }
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => (text, path.display().to_string()),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return Err(ExitCode::from(2));
            }
        },
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

/// One input line of `--jsonl`: a JSON object with "rule", a JSON string, or the raw rule text.
fn rule_of_line(line: &str) -> Result<String, String> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('"') {
        return match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::String(s)) => Ok(s),
            Ok(serde_json::Value::Object(o)) => {
                match o.get("rule").or_else(|| o.get("membershipRule")) {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    _ => Err("object has no string field \"rule\" or \"membershipRule\"".into()),
                }
            }
            Ok(_) => Err("expected a JSON object or string".into()),
            Err(e) if trimmed.starts_with('{') => Err(format!("invalid JSON: {e}")),
            Err(_) => Ok(line.to_string()),
        };
    }
    Ok(line.to_string())
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
