//! `dynrule whatif`.

use dynrule::report;
use dynrule::tenant::Tenant;
use dynrule::whatif::{self, Change, Threshold, WhatIfOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output formats of `whatif`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WhatIfFormat {
    /// The readable report.
    Text,
    /// The whole result as JSON (schema in the README).
    Json,
    /// One CSV row per affected user.
    Csv,
    /// Markdown for a pull-request comment or $GITHUB_STEP_SUMMARY: the verdict first, then
    /// tables.
    Markdown,
    /// One self-contained HTML file (the JSON embedded, tables to search and sort, a print
    /// style) for a change board.
    Html,
}

#[derive(clap::Args)]
pub struct WhatIfArgs {
    /// The tenant snapshot folder, or `sample` (the default) for the built-in sample tenant.
    #[arg(long, default_value = "sample")]
    tenant: String,
    /// The group to change (id or displayName), with --rule (and/or --licenses, --paused/--on).
    #[arg(long, conflicts_with = "changes", required_unless_present = "changes")]
    group: Option<String>,
    /// The new membershipRule for --group (it may begin with `-`: `--rule '-not (…)'`).
    #[arg(long, requires = "group", allow_hyphen_values = true)]
    rule: Option<String>,
    /// New assignedLicenses for --group: SKUs by skuPartNumber or skuId, each optionally with
    /// disabled plans after a colon: `ENTERPRISEPACK:YAMMER_ENTERPRISE+SWAY,EMS`.
    #[arg(long, requires = "group")]
    licenses: Option<String>,
    /// Pause the group's rule processing (membershipRuleProcessingState Paused).
    #[arg(long, requires = "group", conflicts_with = "on")]
    paused: bool,
    /// Turn the group's rule processing on.
    #[arg(long, requires = "group")]
    on: bool,
    /// A JSON list of changes: [{"group", "membershipRule"?, "assignedLicenses"?,
    /// "membershipRuleProcessingState"?}].
    #[arg(long)]
    changes: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What `whatif` and `plan` share: the test group, thresholds, trust, output and snapshot
/// options.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Apply the changes only to this group's members (id or displayName) and explain every
    /// member whose result changes.
    #[arg(long)]
    test_group: Option<String>,
    /// Exit 3 when more members than this leave any group: a count, or a percentage of the
    /// group's members (`5%`).
    #[arg(long)]
    max_removals: Option<Threshold>,
    /// Exit 3 when more users than this lose a plan that holds data (0: any).
    #[arg(long)]
    max_data_loss: Option<u64>,
    /// Exit 3 when the change leaves more seats short than this, summed over the SKUs it
    /// affects (a shortage that exists before the change does not count).
    #[arg(long)]
    max_shortfall: Option<u64>,
    /// Exit 3 when more licence errors than this appear (CountViolation,
    /// MutuallyExclusiveViolation, …; 0: any).
    #[arg(long)]
    max_new_errors: Option<u64>,
    /// Compute the after side in full rather than from the before side (the changed groups and
    /// the rules reading assignedPlans evaluated again): the same answer, slower; for checking.
    #[arg(long)]
    full: bool,
    #[command(flatten)]
    trust: super::recompute::TrustArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = WhatIfFormat::Text)]
    format: WhatIfFormat,
    /// How many users and members the text report lists per section.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[command(flatten)]
    pub snapshot: super::recompute::SnapshotArgs,
}

fn parse_licenses(
    tenant: &Tenant,
    text: &str,
) -> Result<Vec<dynrule::tenant::GroupLicense>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (sku, plans) = item.split_once(':').unwrap_or((item, ""));
            let disabled: Vec<String> = plans
                .split('+')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            whatif::license(tenant, sku, &disabled)
        })
        .collect()
}

/// The new rules of the request (`--rule`, and `membershipRule`s of a changes file), so the
/// snapshot load keeps the columns they read. An unreadable changes file is reported later.
fn new_rules(args: &WhatIfArgs) -> Vec<String> {
    let mut out: Vec<String> = args.rule.iter().cloned().collect();
    if let Some(text) = args
        .changes
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
    {
        if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&text) {
            out.extend(
                items
                    .iter()
                    .filter_map(|c| c.get("membershipRule")?.as_str().map(str::to_string)),
            );
        }
    }
    out
}

pub fn whatif(args: WhatIfArgs) -> ExitCode {
    let tenant = match super::recompute::tenant_or_sample(
        &args.tenant,
        &args.run.snapshot.options(new_rules(&args)),
    ) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let changes: Vec<Change> = if let Some(path) = &args.changes {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        match whatif::parse_changes(&text, &tenant) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    } else {
        let Some(group) = &args.group else {
            return ExitCode::from(2);
        };
        let g = match tenant.find_group(group) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let licences = match args.licenses.as_deref().map(|l| parse_licenses(&tenant, l)) {
            None => None,
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                eprintln!("error: --licenses: {e}");
                return ExitCode::from(2);
            }
        };
        let state = if args.paused {
            Some("Paused".to_string())
        } else if args.on {
            Some("On".to_string())
        } else {
            None
        };
        if args.rule.is_none() && licences.is_none() && state.is_none() {
            eprintln!("error: give --rule, --licenses, --paused or --on for --group");
            return ExitCode::from(2);
        }
        vec![Change {
            group: g,
            membership_rule: args.rule.clone(),
            assigned_licenses: licences,
            membership_rule_processing_state: state,
            ..Change::default()
        }]
    };
    run(&tenant, &changes, &args.run, Vec::new(), "dynrule what-if")
}

/// Runs a what-if of `changes` on `tenant` with the shared options, adds `notes` (a plan's) to
/// its issues, writes the report (an HTML one titled `title`) and returns the exit code
/// ([`report_and_exit`]).
pub fn run(
    tenant: &Tenant,
    changes: &[Change],
    args: &RunArgs,
    notes: Vec<dynrule::tenant::TenantIssue>,
    title: &str,
) -> ExitCode {
    if let Err(code) = new_rules_valid(tenant, changes) {
        return code;
    }
    let test_group = match args.test_group.as_deref().map(|g| tenant.find_group(g)) {
        None => None,
        Some(Ok(g)) => Some(g),
        Some(Err(e)) => {
            eprintln!("error: --test-group: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = WhatIfOptions {
        now: args.snapshot.now.unwrap_or_else(jiff::Timestamp::now),
        test_group,
        max_removals: args.max_removals,
        max_data_loss: args.max_data_loss,
        max_shortfall: args.max_shortfall,
        max_new_errors: args.max_new_errors,
        baseline_tolerance: args.trust.baseline_tolerance,
        full: args.full,
    };
    let mut result = match whatif::run(tenant, changes, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    dynrule::plan::add_notes(&mut result, notes);
    report_and_exit(
        &result,
        title,
        args.format,
        args.limit,
        args.trust.allow_untrusted,
    )
}

/// A new rule must be valid: Entra would refuse to save it. Prints each invalid rule's
/// diagnostics.
///
/// Errors: exit 1 when a rule is invalid.
pub fn new_rules_valid(tenant: &Tenant, changes: &[Change]) -> Result<(), ExitCode> {
    let mut invalid = false;
    for c in changes {
        if let Some(rule) = &c.membership_rule {
            let checked = dynrule::check(rule);
            if !checked.is_valid() {
                let name = c
                    .display_name
                    .as_deref()
                    .or_else(|| tenant.groups.get(c.group).map(|g| g.display_name.as_str()))
                    .unwrap_or("rule");
                super::print_text(rule, name, &checked.diagnostics);
                invalid = true;
            }
        }
    }
    if invalid {
        eprintln!("error: the new rule is invalid; Entra would not save it");
        return Err(ExitCode::from(1));
    }
    Ok(())
}

/// Writes a what-if's report in `format` and returns its exit code: 4 when the answer cannot
/// be trusted (unless `allow_untrusted`), 3 when a threshold is crossed, 2 when stdout fails,
/// else 0.
pub fn report_and_exit(
    result: &whatif::WhatIf,
    title: &str,
    format: WhatIfFormat,
    limit: usize,
    allow_untrusted: bool,
) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    let written = match format {
        WhatIfFormat::Text => stdout.write_all(report::whatif_text(result, limit).as_bytes()),
        WhatIfFormat::Json => serde_json::to_writer_pretty(&mut stdout, result)
            .map_err(std::io::Error::from)
            .and_then(|()| stdout.write_all(b"\n")),
        WhatIfFormat::Csv => report::whatif_csv(result, &mut stdout),
        WhatIfFormat::Markdown => {
            stdout.write_all(report::whatif_markdown(result, limit).as_bytes())
        }
        WhatIfFormat::Html => match dynrule::html::whatif(result, title) {
            Ok(page) => stdout.write_all(page.as_bytes()),
            Err(e) => {
                eprintln!("error: the HTML report: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if written.and_then(|()| stdout.flush()).is_err() {
        return ExitCode::from(2);
    }
    drop(stdout);
    let t = &result.timings;
    eprintln!(
        "timings: load {:.0} ms, before {:.0} ms, after {:.0} ms, diff {:.0} ms{}",
        t.get("loadMs").copied().unwrap_or(0.0),
        t.get("beforeMs").copied().unwrap_or(0.0),
        t.get("afterMs").copied().unwrap_or(0.0),
        t.get("diffMs").copied().unwrap_or(0.0),
        super::peak_resident()
    );
    if !result.trust.trusted {
        if allow_untrusted {
            eprintln!(
                "warning: the answer cannot be trusted ({} issue(s) under Trust); exit 4 turned off by --allow-untrusted",
                result.trust.undermined_by.len()
            );
        } else {
            eprintln!(
                "the answer cannot be trusted ({} issue(s) under Trust): exit 4",
                result.trust.undermined_by.len()
            );
            return ExitCode::from(4);
        }
    }
    if result.risks.breaches.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("threshold crossed: exit 3");
        ExitCode::from(3)
    }
}
