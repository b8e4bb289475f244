//! `dynrule recompute`.

use dynrule::licensing;
use dynrule::recompute::{self, RecomputeOptions};
use dynrule::report::{self, RecomputeReport, Timings};
use dynrule::tenant::{IssueKind, Severity, Tenant, TenantOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct RecomputeArgs {
    /// The tenant snapshot folder (users.*, groups.json, subscribedSkus.json,
    /// organization.json, devices.*, licensingRules.json; see the README).
    #[arg(long)]
    tenant: PathBuf,
    /// Write memberships.jsonl (per group its counts, who joined and who left), licenses.jsonl,
    /// differences.jsonl and summary.json into this folder (created if missing).
    #[arg(long)]
    out: Option<PathBuf>,
    /// With --out, also write members.jsonl: every member of every group (large: one object id
    /// per membership, about 40 bytes each).
    #[arg(long, requires = "out")]
    members: bool,
    /// Summary on stdout: a readable table, or the summary JSON.
    #[arg(long, value_enum, default_value_t = RecomputeFormat::Text)]
    format: RecomputeFormat,
    #[command(flatten)]
    snapshot: SnapshotArgs,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Options of the trust checks (property coverage, the baseline), shared by `recompute` and
/// `whatif`.
#[derive(clap::Args)]
pub struct TrustArgs {
    /// Differences tolerated per group between the computed membership and what the snapshot
    /// records (exported members, or users whose licenseAssignmentStates name the group): a
    /// count, or a percentage of the group (`2%`, the default).
    #[arg(long, default_value_t = dynrule::trust::Tolerance::default())]
    pub baseline_tolerance: dynrule::trust::Tolerance,
    /// Report an untrusted answer as warnings and exit as if it were trusted, instead of exit 4
    /// (for exploring an incomplete export).
    #[arg(long)]
    pub allow_untrusted: bool,
}

/// Options shared by the commands that read a tenant snapshot.
#[derive(clap::Args)]
pub struct SnapshotArgs {
    /// Licensing rules to use instead of the snapshot's licensingRules.json.
    #[arg(long)]
    pub licensing_rules: Option<PathBuf>,
    /// The instant `system.now` stands for (RFC 3339); default: now.
    #[arg(long)]
    pub now: Option<jiff::Timestamp>,
    /// Skip user or device records that cannot be read (each is reported) instead of stopping.
    #[arg(long)]
    pub skip_invalid: bool,
    #[command(flatten)]
    pub cache: super::CacheArgs,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// The built-in sample tenant when `arg` is `sample` (any case), else the snapshot folder
/// `arg` as [`load_tenant`] loads it; prints the error on failure (exit 2).
pub fn tenant_or_sample(arg: &str, opts: &TenantOptions) -> Result<Tenant, ExitCode> {
    if arg.eq_ignore_ascii_case("sample") {
        return dynrule::synth::sample_tenant().map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        });
    }
    load_tenant(std::path::Path::new(arg), opts)
}

impl SnapshotArgs {
    /// How to load the snapshot: projected to the columns the groups' rules, `extra_rules` and
    /// licensing read, with a progress bar on a terminal.
    pub fn options(&self, extra_rules: Vec<String>) -> TenantOptions {
        TenantOptions {
            skip_invalid: self.skip_invalid,
            progress: std::io::stderr().is_terminal(),
            licensing_rules: self.licensing_rules.clone(),
            project: true,
            extra_rules,
            cache: self.cache.mode(),
        }
    }
}

/// The options of a command that loads a snapshot for its own use (`fuzz`, `groups`): bad
/// records skipped, the cache in its default mode.
pub fn quiet_options() -> TenantOptions {
    TenantOptions {
        skip_invalid: true,
        project: true,
        cache: dynrule::load::CacheMode::Auto,
        ..TenantOptions::default()
    }
}

/// Loads a snapshot as `opts` say; prints the error on failure (exit 2), and a cache that
/// could not be written as a warning.
pub fn load_tenant(dir: &std::path::Path, opts: &TenantOptions) -> Result<Tenant, ExitCode> {
    let t = Tenant::load(dir, opts).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    for c in &t.cache {
        super::warn_cache(c);
    }
    Ok(t)
}

/// Output formats of `recompute`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecomputeFormat {
    /// The readable report.
    Text,
    /// The report as JSON (the same as `summary.json`).
    Json,
    /// One self-contained HTML file: groups, seats, issues.
    Html,
}

pub fn recompute(args: RecomputeArgs) -> ExitCode {
    let t0 = Instant::now();
    let tenant = match load_tenant(&args.tenant, &args.snapshot.options(Vec::new())) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let load_ms = ms(t0);
    let opts = RecomputeOptions {
        now: args.snapshot.now.unwrap_or_else(jiff::Timestamp::now),
    };
    let recomputed = recompute::run(&tenant, &recompute::Overlay::default(), &opts);
    let (m, a) = (&recomputed.memberships, &recomputed.assignments);
    let mut all = tenant.issues.clone();
    all.extend(recomputed.issues.iter().cloned());
    all.extend(dynrule::trust::property_issues(
        &tenant,
        &tenant.groups,
        None,
    ));
    all.extend(dynrule::trust::baseline_issues(
        &tenant,
        &tenant.groups,
        &recomputed,
        None,
        args.trust.baseline_tolerance,
    ));
    let mut timings = Timings {
        load_ms,
        compile_ms: m.compile_ms,
        evaluate_ms: m.evaluate_ms,
        licensing_ms: a.ms,
        write_ms: 0.0,
    };
    let t1 = Instant::now();
    // Every file is staged, then all renamed into place with `summary.json` last: the folder
    // holds one run's complete set, or the last one's without its summary.
    let staged = match &args.out {
        None => None,
        Some(dir) => match stage_outputs(dir, &tenant, m, a, args.members) {
            Ok(o) => Some((dir, o)),
            Err(e) => {
                eprintln!("error: {}: {e}", dir.display());
                return ExitCode::from(2);
            }
        },
    };
    timings.write_ms = ms(t1);
    let report = RecomputeReport::new(&tenant, m, a, all, timings);
    if let Some((dir, mut out)) = staged {
        let written = out
            .stage("summary.json", |w| {
                serde_json::to_writer_pretty(&mut *w, &report)?;
                w.write_all(b"\n")
            })
            .and_then(|()| out.commit());
        if let Err(e) = written {
            eprintln!("error: {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    let mut stdout = std::io::stdout().lock();
    let printed = match args.format {
        RecomputeFormat::Text => stdout.write_all(report.text().as_bytes()),
        RecomputeFormat::Json => serde_json::to_writer_pretty(&mut stdout, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| stdout.write_all(b"\n")),
        RecomputeFormat::Html => match dynrule::html::recompute(&report) {
            Ok(page) => stdout.write_all(page.as_bytes()),
            Err(e) => {
                eprintln!("error: the HTML report: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if printed.is_err() {
        return ExitCode::from(2);
    }
    eprintln!(
        "timings: load {:.0} ms{}, compile {:.1} ms, evaluate {:.1} ms, licensing {:.0} ms, write {:.0} ms{}",
        timings.load_ms,
        super::cache_note(&tenant.cache),
        timings.compile_ms,
        timings.evaluate_ms,
        timings.licensing_ms,
        timings.write_ms,
        super::peak_resident()
    );
    if let Some(dir) = &args.out {
        eprintln!(
            "wrote {}, {}, {}, {}",
            dir.join("memberships.jsonl").display(),
            dir.join("licenses.jsonl").display(),
            dir.join("differences.jsonl").display(),
            dir.join("summary.json").display()
        );
    }
    if report.issues.iter().any(|i| i.severity == Severity::Error) {
        eprintln!("note: some groups could not be processed (see Issues); the rest were");
    }
    // Exit 4: a result that passes for the tenant's and is not (D58). Groups kept at their
    // snapshot (rules dynrule cannot compile) are reported, not untrusted: they say so.
    let untrusted = report
        .issues
        .iter()
        .filter(|i| {
            matches!(
                i.kind,
                IssueKind::BaselineMismatch
                    | IssueKind::PropertyNotExported
                    | IssueKind::PropertyAllNull
                    | IssueKind::PropertyNotInGraph
                    | IssueKind::PatternUndecided
            )
        })
        .count();
    if untrusted > 0 {
        if args.trust.allow_untrusted {
            eprintln!(
                "warning: {untrusted} group result(s) cannot be trusted (see Issues); exit 4 turned off by --allow-untrusted"
            );
        } else {
            eprintln!("{untrusted} group result(s) cannot be trusted (see Issues): exit 4");
            return ExitCode::from(4);
        }
    }
    ExitCode::SUCCESS
}

fn stage_outputs(
    dir: &std::path::Path,
    tenant: &Tenant,
    m: &recompute::Memberships,
    a: &licensing::Assignments,
    members: bool,
) -> std::io::Result<dynrule::output::OutputDir> {
    let mut out = dynrule::output::OutputDir::open(dir, Some("summary.json"))?;
    out.stage("memberships.jsonl", |mut w| {
        report::write_memberships(&mut w, tenant, m)
    })?;
    if members {
        out.stage("members.jsonl", |mut w| {
            report::write_members(&mut w, tenant, m)
        })?;
    }
    let bar = dynrule::load::progress_bar(
        std::io::stderr().is_terminal(),
        tenant.users.len() as u64,
        "writing licenses.jsonl {pos}/{len} users [{wide_bar}] {eta}",
    );
    out.stage("licenses.jsonl", |mut w| {
        report::write_licenses(&mut w, tenant, a, |done| bar.set_position(done as u64))
    })?;
    bar.finish_and_clear();
    out.stage("differences.jsonl", |mut w| {
        report::write_differences(&mut w, tenant, a).map(drop)
    })?;
    Ok(out)
}
