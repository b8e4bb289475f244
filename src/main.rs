//! The `dynrule` command line. See `README.md` for every subcommand.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cli;

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
    Check(cli::check::CheckArgs),
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
    Eval(cli::eval::EvalArgs),
    /// Explain one user's result clause by clause (Graph's evaluateDynamicMembership shape).
    Explain(cli::explain::ExplainArgs),
    /// Write a deterministic synthetic tenant of Graph users as JSON Lines.
    GenTenant(cli::gen_tenant::GenArgs),
    /// Recompute every group of a tenant snapshot and its group-based licensing. Exit 0 (groups
    /// that cannot be processed are reported and keep their snapshot state); 2 when the snapshot
    /// cannot be read.
    Recompute(cli::recompute::RecomputeArgs),
    /// What a group change does before it is saved: who joins and leaves, who gains and loses
    /// which licences and service plans, seats, risks. Exit 0; 3 when a --max-* threshold is
    /// crossed; 1 when a new rule is invalid; 2 on unreadable input.
    Whatif(cli::whatif::WhatIfArgs),
    /// What-if of a groups-as-code plan: the group and group-licence changes of a Terraform
    /// plan (`terraform show -json`) or of `bicep build`'s ARM JSON, against a snapshot. Output,
    /// thresholds and exit codes are whatif's; each change names its resource address.
    Plan(cli::plan::PlanArgs),
    /// Check the rules where they live: Terraform, Bicep, ARM/Graph JSON and rule files, each
    /// diagnostic at its file, line and column; text, JSON, SARIF 2.1.0 or GitHub annotations.
    /// Exit 1 on an error (and on a warning with --deny-warnings); 2 when a file cannot be read.
    Lint(cli::lint::LintArgs),
    /// List a snapshot's groups (id, name, dynamic/static/paused, members, licences, rule), to
    /// find the names and ids the other commands take. Exit 2 when the snapshot cannot be read.
    Groups(cli::groups::GroupsArgs),
    /// Pull a tenant snapshot from Microsoft Graph: the folder `recompute` and `whatif` read,
    /// with every property the tenant's rules and licensing read, and a manifest.json. Exit 2
    /// when signing in or a request fails (the previous snapshot is left whole).
    Pull(cli::pull::PullArgs),
    /// Fuzz the rule grammar for your own tools: `fuzz gen` writes rules drawn from the grammar
    /// (valid, invalid, or mutated as admins break them) with dynrule's verdict; `fuzz diff`
    /// runs another checker over them and shrinks every disagreement.
    Fuzz(cli::fuzz::FuzzArgs),
    /// Print a shell completion script (`dynrule completions bash > /etc/bash_completion.d/dynrule`;
    /// PowerShell: `dynrule completions powershell | Out-String | Invoke-Expression`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => cli::check::check(args),
        Command::Eval(args) => cli::eval::eval(args),
        Command::Explain(args) => cli::explain::explain(args),
        Command::GenTenant(args) => cli::gen_tenant::gen_tenant(args),
        Command::Recompute(args) => cli::recompute::recompute(args),
        Command::Whatif(args) => cli::whatif::whatif(args),
        Command::Plan(args) => cli::plan::plan(args),
        Command::Lint(args) => cli::lint::lint(args),
        Command::Groups(args) => cli::groups::groups(args),
        Command::Pull(args) => cli::pull::pull(args),
        Command::Fuzz(args) => cli::fuzz::fuzz(args),
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
        Command::Fmt { rule, file } => cli::check::fmt(rule.as_ref(), file.as_ref()),
    }
}
