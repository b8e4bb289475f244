//! `dynrule lint`: the rules of Terraform, Bicep, JSON and rule files, checked where they live.

use dynrule::sources::{self, render};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output formats of `lint`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    /// `file:line:col: error DR004: …` with the source line.
    Text,
    /// The findings as JSON.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning (`github/codeql-action/upload-sarif`).
    Sarif,
    /// GitHub workflow annotations (`::error file=…,line=…::…`).
    Github,
}

#[derive(clap::Args)]
pub struct LintArgs {
    /// Files or folders: `.tf`, `.bicep`, `.json` (ARM, Graph exports), `.rule` (one rule),
    /// `.rules`/`.txt` (one a line); folders are searched recursively.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    format: LintFormat,
    /// Exit 1 on a warning too.
    #[arg(long)]
    deny_warnings: bool,
}

pub fn lint(args: LintArgs) -> ExitCode {
    let report = sources::lint(&args.paths);
    let out = match args.format {
        LintFormat::Text => Ok(render::text(&report)),
        LintFormat::Json => serde_json::to_string_pretty(&report).map(|s| s + "\n"),
        LintFormat::Sarif => render::sarif(&report).map(|s| s + "\n"),
        LintFormat::Github => Ok(render::github(&report)),
    };
    let Ok(out) = out else {
        return ExitCode::from(2);
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(2);
    }
    if args.format != LintFormat::Text {
        eprintln!(
            "{} rule(s) in {} file(s): {} error(s), {} warning(s), {} skipped, {} unreadable file(s)",
            report.rules,
            report.files,
            report.error_count(),
            report.warning_count(),
            report.skipped.len(),
            report.errors.len()
        );
    }
    if !report.errors.is_empty() {
        ExitCode::from(2)
    } else if report.error_count() > 0 || (args.deny_warnings && report.warning_count() > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
