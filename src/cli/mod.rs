//! The subcommands, one module each (the README's CLI section follows the same order), and
//! what they share: the output format, diagnostics on stderr, rule lines, the eval/explain
//! loading helpers.

pub mod check;
pub mod eval;
pub mod explain;
pub mod fuzz;
pub mod gen_tenant;
pub mod groups;
pub mod lint;
pub mod plan;
pub mod pull;
pub mod recompute;
pub mod whatif;

use dynrule::diag::Report;
use dynrule::load::{self, CacheMode, CacheUse, LoadOptions, Loaded};
use dynrule::program::Program;
use dynrule::schema::ObjectType;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
/// Output format of `check` and `explain`.
pub enum Format {
    /// Human-readable.
    Text,
    /// JSON.
    Json,
}

/// The process's peak resident memory so far, as `, peak resident N MB` (10^6 bytes) to end a
/// `timings:` line; empty where the system does not say (it is `VmHWM` in `/proc/self/status`,
/// Linux only).
pub(super) fn peak_resident() -> String {
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

/// Diagnostics of `rule` (named `name`) rendered on stderr, in colour on a terminal unless
/// `NO_COLOR` is set.
pub(super) fn print_text(rule: &str, name: &str, diags: &[dynrule::diag::Diagnostic]) {
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

/// One input line of `--jsonl`: a JSON object with "rule", a JSON string, or the raw rule text.
pub(super) fn rule_of_line(line: &str) -> Result<String, String> {
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

/// The export and object type from `--users` / `--devices` (clap makes exactly one present).
pub(super) fn input<'a>(
    users: &'a Option<PathBuf>,
    devices: &'a Option<PathBuf>,
) -> Option<(&'a Path, ObjectType)> {
    match (users, devices) {
        (_, Some(d)) => Some((d, ObjectType::Device)),
        (Some(u), None) => Some((u, ObjectType::User)),
        (None, None) => None,
    }
}

/// Direct memberships from `--groups`, when given; the error is printed here.
pub(super) fn memberships(
    groups: &Option<PathBuf>,
) -> Result<Option<std::collections::HashMap<String, Vec<String>>>, ExitCode> {
    let Some(g) = groups else {
        return Ok(None);
    };
    load::group_memberships(g).map(Some).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// The whole text of `path`, or of stdin for `-`.
///
/// Errors: exit 2 after printing why the input cannot be read.
pub(super) fn read_text(path: &Path) -> Result<String, ExitCode> {
    use std::io::Read;
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map(|()| text).map_err(|e| {
        let name = if path.as_os_str() == "-" {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        eprintln!("error: cannot read {name}: {e}");
        ExitCode::from(2)
    })
}

pub(super) fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A rule read from `--rules`, with its line.
pub(super) struct RuleLine {
    pub(super) line: usize,
    pub(super) text: String,
}

pub(super) fn read_rules(path: &Path) -> Result<Vec<RuleLine>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let rule = rule_of_line(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        out.push(RuleLine {
            line: i + 1,
            text: rule,
        });
    }
    Ok(out)
}

/// The load cache's options, shared by every command that loads an export.
#[derive(clap::Args, Clone, Copy)]
pub struct CacheArgs {
    /// The load cache (`.dynrule-cache/` beside the export): `auto` caches exports of 32 MiB
    /// or more, `on` every export, `off` none. A cache is used only while the export files are
    /// unchanged (size, modification time, sampled content)
    #[arg(long, value_enum, default_value_t = CacheMode::Auto)]
    cache: CacheMode,
    /// The same as `--cache off`: parse the export, read and write no cache.
    #[arg(long, conflicts_with = "cache")]
    no_cache: bool,
}

impl CacheArgs {
    /// The mode asked for.
    pub fn mode(self) -> CacheMode {
        if self.no_cache {
            CacheMode::Off
        } else {
            self.cache
        }
    }
}

/// ` (cache hit)`, ` (cache written)` or nothing, for a timings line: what the cache did for
/// the first (users) export.
pub(super) fn cache_note(uses: &[CacheUse]) -> &'static str {
    match uses.first() {
        Some(CacheUse::Hit { .. }) => " (cache hit)",
        Some(CacheUse::Written { .. }) => " (cache written)",
        Some(CacheUse::NotWritten { .. }) => " (cache not written)",
        _ => "",
    }
}

/// Prints a warning when the load cache could not be written (the load itself succeeded).
pub(super) fn warn_cache(c: &CacheUse) {
    if let CacheUse::NotWritten { .. } = c {
        eprintln!("warning: {}", c.describe());
    }
}

pub(super) fn load_table(
    path: &Path,
    object: ObjectType,
    skip_invalid: bool,
    projection: Option<dynrule::table::Projection>,
    cache: CacheMode,
) -> Result<Loaded, ExitCode> {
    let opts = LoadOptions {
        skip_invalid,
        progress: std::io::stderr().is_terminal(),
        projection,
        cache,
        ..LoadOptions::default()
    };
    match load::load(path, object, &opts) {
        Ok(l) => {
            warn_cache(&l.cache);
            for w in &l.warnings {
                eprintln!("warning: {w}");
            }
            if !l.skipped.is_empty() {
                eprintln!("warning: skipped {} invalid record(s):", l.skipped.len());
                for e in &l.skipped {
                    eprintln!("  {e}");
                }
            }
            Ok(l)
        }
        Err(e) => {
            eprintln!("error: {e}");
            if !skip_invalid {
                eprintln!("  (use --skip-invalid to skip bad records and report each)");
            }
            Err(ExitCode::from(2))
        }
    }
}

/// The columns `eval` loads for `programs`: what they read, plus the ids and names its output
/// prints. `explain` checks records against the same projection, so it refuses exactly the
/// records `eval` would.
pub(super) fn eval_projection<'p>(
    programs: impl Iterator<Item = &'p Program>,
) -> dynrule::table::Projection {
    let mut projection = dynrule::table::Projection::default();
    for p in programs {
        p.add_reads(&mut projection);
    }
    for name in ["objectId", "userPrincipalName", "displayName", "deviceId"] {
        projection
            .columns
            .insert(dynrule::table::ColumnKey::Prop(name));
    }
    projection
}
