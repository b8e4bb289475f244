//! `dynrule eval`, `dynrule explain` and `dynrule gen-tenant`.

use dynrule::load::{self, LoadOptions, Loaded};
use dynrule::oracle::{self, Context};
use dynrule::program::{CompileOptions, Program};
use dynrule::schema::ObjectType;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Output formats of `eval`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    /// One object id a line.
    Ids,
    /// One JSON object a member: id, userPrincipalName (devices: deviceId), displayName.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Users export: Graph JSON Lines, JSON array or pages, CSV, or a folder of them.
    #[arg(long, conflicts_with = "devices", required_unless_present = "devices")]
    users: Option<PathBuf>,
    /// Devices export (same formats), for device rules.
    #[arg(long)]
    devices: Option<PathBuf>,
    /// The rule text (or use --rules); it may begin with `-` (`-not (…)`).
    #[arg(
        conflicts_with = "rules",
        required_unless_present = "rules",
        allow_hyphen_values = true
    )]
    rule: Option<String>,
    /// Many rules, one a line (rule text, a JSON string, or an object with "rule" or
    /// "membershipRule"); blank lines and lines starting with # are skipped.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Output format for members.
    #[arg(long, value_enum, default_value_t = EvalFormat::Ids)]
    format: EvalFormat,
    /// Print one line per rule, {"rule": …, "count": N}, instead of the members.
    #[arg(long)]
    count: bool,
    /// Print load, compile and evaluate milliseconds to stderr.
    #[arg(long)]
    timings: bool,
    /// The instant `system.now` stands for (RFC 3339), for reproducible results; default: now.
    #[arg(long)]
    now: Option<jiff::Timestamp>,
    /// Skip records that cannot be read (each is reported on stderr) instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
    /// Groups export with `members` (`GET /groups?$expand=members`), for memberOf rules; without
    /// it, memberOf is read from the users' own `memberOf` (`$expand=memberOf`).
    #[arg(long)]
    groups: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// Users export (as for `eval`).
    #[arg(long, conflicts_with = "devices", required_unless_present = "devices")]
    users: Option<PathBuf>,
    /// Devices export, for device rules.
    #[arg(long)]
    devices: Option<PathBuf>,
    /// The user (object id or userPrincipalName) or device (object id, deviceId or
    /// displayName), any case.
    #[arg(long, alias = "device")]
    user: String,
    /// The rule text (it may begin with `-`).
    #[arg(allow_hyphen_values = true)]
    rule: String,
    /// Output: a readable tree, or Graph's evaluateDynamicMembership result as JSON.
    #[arg(long, value_enum, default_value_t = super::Format::Text)]
    format: super::Format,
    /// The instant `system.now` stands for (RFC 3339); default: now.
    #[arg(long)]
    now: Option<jiff::Timestamp>,
    /// Groups export with `members`, for memberOf rules (as for `eval`).
    #[arg(long)]
    groups: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct GenArgs {
    /// Number of users.
    #[arg(long)]
    users: usize,
    /// Seed: the same seed and count give the same file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file (`-` for stdout) for the users as JSON Lines.
    #[arg(
        long,
        required_unless_present = "snapshot",
        conflicts_with = "snapshot"
    )]
    out: Option<PathBuf>,
    /// Write a whole tenant snapshot folder instead (users.jsonl, groups.json with a few
    /// hundred groups, subscribedSkus.json, organization.json), for `recompute`.
    #[arg(long)]
    snapshot: Option<PathBuf>,
}

/// The export and object type from `--users` / `--devices` (clap makes exactly one present).
fn input<'a>(
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
fn memberships(
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

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A rule read from `--rules`, with its line.
struct RuleLine {
    line: usize,
    text: String,
}

fn read_rules(path: &Path) -> Result<Vec<RuleLine>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let rule =
            super::rule_of_line(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        out.push(RuleLine {
            line: i + 1,
            text: rule,
        });
    }
    Ok(out)
}

fn load_table(
    path: &Path,
    object: ObjectType,
    skip_invalid: bool,
    projection: Option<dynrule::table::Projection>,
) -> Result<Loaded, ExitCode> {
    let opts = LoadOptions {
        skip_invalid,
        progress: std::io::stderr().is_terminal(),
        projection,
        ..LoadOptions::default()
    };
    match load::load(path, object, &opts) {
        Ok(l) => {
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

pub fn eval(args: EvalArgs) -> ExitCode {
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
    let opts = CompileOptions { now };
    let t_compile = Instant::now();
    let rules: Vec<RuleLine> = match (&args.rule, &args.rules) {
        (Some(r), _) => vec![RuleLine {
            line: 0,
            text: r.clone(),
        }],
        (None, Some(path)) => match read_rules(path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => return ExitCode::from(2),
    };
    let source = args
        .rules
        .as_ref()
        .map_or("rule".to_string(), |p| p.display().to_string());
    // Compile every rule; invalid ones are reported and left out.
    let mut compiled: Vec<(usize, Program)> = Vec::new();
    let mut errors: Vec<(usize, String)> = Vec::new();
    let mut warned = 0usize;
    for (i, r) in rules.iter().enumerate() {
        let checked = dynrule::check(&r.text);
        let name = if r.line > 0 {
            format!("{source}:{}", r.line)
        } else {
            source.clone()
        };
        match (&checked.hir, checked.is_valid()) {
            (Some(hir), true) => match Program::compile(hir, &opts) {
                Ok(p) => {
                    // The warnings `check` shows (DR305 `-and`/`-or` without parentheses,
                    // contradictions…): for one rule in full, for a file as a count.
                    if !checked.diagnostics.is_empty() {
                        if args.rules.is_none() {
                            super::print_text(&r.text, &name, &checked.diagnostics);
                        } else {
                            warned += 1;
                        }
                    }
                    compiled.push((i, p));
                }
                Err(e) => errors.push((i, e.to_string())),
            },
            _ => {
                super::print_text(&r.text, &name, &checked.diagnostics);
                let msg = checked
                    .errors()
                    .map(|d| format!("{}: {}", d.code.as_str(), d.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                errors.push((i, msg));
            }
        }
    }
    if warned > 0 {
        eprintln!(
            "warning: {warned} rule(s) of {source} have warnings (`dynrule check --jsonl {source}` lists them)"
        );
    }
    let compile_ms = ms(t_compile);
    let Some((path, object)) = input(&args.users, &args.devices) else {
        return ExitCode::from(2);
    };
    let wrong_kind: Vec<usize> = compiled
        .iter()
        .filter(|(_, p)| p.object != object)
        .map(|(i, _)| *i)
        .collect();
    for &i in &wrong_kind {
        let want = if object == ObjectType::User {
            "--devices"
        } else {
            "--users"
        };
        errors.push((
            i,
            format!(
                "a {} rule needs {want}",
                if object == ObjectType::User {
                    "device"
                } else {
                    "user"
                }
            ),
        ));
    }
    compiled.retain(|(i, _)| !wrong_kind.contains(i));
    // Load only what the rules read, plus ids and names for the output.
    let projection = eval_projection(compiled.iter().map(|(_, p)| p));
    let t_load = Instant::now();
    let mut loaded = match load_table(path, object, args.skip_invalid, Some(projection)) {
        Ok(l) => l,
        Err(code) => return code,
    };
    match memberships(&args.groups) {
        Ok(Some(m)) => loaded.table.set_member_of(&m),
        Ok(None) => {}
        Err(code) => return code,
    }
    let load_ms = ms(t_load);
    let table = &loaded.table;
    let programs: Vec<Program> = compiled.iter().map(|(_, p)| p.clone()).collect();
    for m in dynrule::trust::missing_properties(table, &programs) {
        eprintln!("warning: {}: {m}", path.display());
    }
    let t_eval = Instant::now();
    let (members, stats) = dynrule::vm::evaluate_with_stats(&programs, table);
    let eval_ms = ms(t_eval);
    // Values a `-match` could not decide (D63): the count is printed, and the exit is 4.
    let mut undecided = 0;
    for ((i, _), n) in compiled.iter().zip(dynrule::vm::undecided(&programs)) {
        if n > 0 {
            undecided += 1;
            let which = if args.rules.is_some() {
                format!("rule {}: ", i + 1)
            } else {
                String::new()
            };
            eprintln!(
                "warning: {which}{}",
                dynrule::recompute::undecided_message(n)
            );
        }
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let many = args.rules.is_some();
    let mut result: Vec<(usize, Result<&dynrule::bitmap::Bitmap, &str>)> = compiled
        .iter()
        .zip(&members)
        .map(|((i, _), m)| (*i, Ok(m)))
        .chain(errors.iter().map(|(i, e)| (*i, Err(e.as_str()))))
        .collect();
    result.sort_by_key(|(i, _)| *i);
    let written = (|| -> std::io::Result<()> {
        let mut csv = (args.format == EvalFormat::Csv && !args.count)
            .then(|| csv::Writer::from_writer(std::io::stdout()));
        if let Some(w) = csv.as_mut() {
            let mut header = vec!["id", "userPrincipalName", "displayName"];
            if object == ObjectType::Device {
                header = vec!["id", "deviceId", "displayName"];
            }
            if many {
                header.insert(0, "rule");
            }
            w.write_record(&header)?;
        }
        for (i, r) in &result {
            let rule = rules.get(*i).map_or("", |r| r.text.as_str());
            let m = match r {
                Err(e) => {
                    if args.count || args.format == EvalFormat::Jsonl {
                        writeln!(out, "{}", serde_json::json!({"rule": rule, "error": e}))?;
                    }
                    continue;
                }
                Ok(m) => m,
            };
            if args.count {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"rule": rule, "count": m.count_ones()})
                )?;
                continue;
            }
            for row in m.ones_iter() {
                let id = table.id(row).unwrap_or("");
                let second = match object {
                    ObjectType::User => table.name(row),
                    ObjectType::Device => table
                        .str_column(dynrule::table::ColumnKey::Prop("deviceId"))
                        .and_then(|c| c.get(row)),
                };
                let display = table
                    .str_column(dynrule::table::ColumnKey::Prop("displayName"))
                    .and_then(|c| c.get(row));
                match args.format {
                    EvalFormat::Ids if many => {
                        writeln!(out, "{}\t{id}", rules.get(*i).map_or(0, |r| r.line))?
                    }
                    EvalFormat::Ids => writeln!(out, "{id}")?,
                    EvalFormat::Jsonl => {
                        let key = if object == ObjectType::User {
                            "userPrincipalName"
                        } else {
                            "deviceId"
                        };
                        let mut o = serde_json::Map::new();
                        if many {
                            o.insert("rule".into(), rule.into());
                        }
                        o.insert("id".into(), id.into());
                        o.insert(key.into(), second.into());
                        o.insert("displayName".into(), display.into());
                        writeln!(out, "{}", serde_json::Value::Object(o))?;
                    }
                    EvalFormat::Csv => {
                        if let Some(w) = csv.as_mut() {
                            let mut rec = vec![id, second.unwrap_or(""), display.unwrap_or("")];
                            if many {
                                rec.insert(0, rule);
                            }
                            w.write_record(
                                rec.iter()
                                    .map(|c| dynrule::report::csv_cell(c).into_owned()),
                            )?;
                        }
                    }
                }
            }
        }
        if let Some(w) = csv.as_mut() {
            w.flush()?;
        }
        out.flush()
    })();
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    if args.timings {
        eprintln!(
            "timings: load {load_ms:.1} ms ({} {}s, {:.1} MB read, table {:.1} MB), compile {compile_ms:.2} ms ({} rule{}), evaluate {eval_ms:.1} ms (decide {:.1} ms + run {:.1} ms; {} distinct leaves, {} constant on this table){}",
            table.len(),
            object.as_str(),
            loaded.bytes as f64 / 1e6,
            table.heap_bytes() as f64 / 1e6,
            rules.len(),
            if rules.len() == 1 { "" } else { "s" },
            stats.bind_ms,
            stats.run_ms,
            stats.leaves,
            stats.folded,
            super::peak_resident(),
        );
    }
    if !errors.is_empty() {
        ExitCode::from(1)
    } else if undecided > 0 {
        eprintln!("{undecided} rule(s) rest on undecided values: exit 4");
        ExitCode::from(4)
    } else {
        ExitCode::SUCCESS
    }
}

/// The columns `eval` loads for `programs`: what they read, plus the ids and names its output
/// prints. `explain` checks records against the same projection, so it refuses exactly the
/// records `eval` would.
fn eval_projection<'p>(programs: impl Iterator<Item = &'p Program>) -> dynrule::table::Projection {
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

pub fn explain(args: ExplainArgs) -> ExitCode {
    let checked = dynrule::check(&args.rule);
    let Some(hir) = checked.hir.as_ref().filter(|_| checked.is_valid()) else {
        super::print_text(&args.rule, "rule", &checked.diagnostics);
        return ExitCode::from(1);
    };
    let Some((path, object)) = input(&args.users, &args.devices) else {
        return ExitCode::from(2);
    };
    if hir.object != object {
        eprintln!(
            "error: this is a {} rule; give --{}s",
            hir.object.as_str(),
            hir.object.as_str()
        );
        return ExitCode::from(2);
    }
    let want = args.user.to_lowercase();
    let keys: &[&str] = match object {
        ObjectType::User => &["id", "userPrincipalName"],
        ObjectType::Device => &["id", "deviceId", "displayName"],
    };
    // Records are checked as `eval` of this rule loads them: what it reads, plus the keys.
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
    let program = Program::compile(hir, &CompileOptions { now }).ok();
    let projection = eval_projection(program.iter());
    let mut found: Option<(serde_json::Value, String)> = None;
    let mut malformed: Option<load::LoadError> = None;
    // First only the records whose text contains the key; then, if that finds nothing (the key
    // written with JSON escapes), every record.
    for needle in [args.user.as_str(), ""] {
        let res =
            load::for_each_record(path, object, Some(&projection), needle, |v, file, line| {
                let v = match v {
                    Ok(v) => v,
                    Err(e) => {
                        // Remembered in case no readable record is the one asked for.
                        if !needle.is_empty() && malformed.is_none() {
                            malformed = Some(e);
                        }
                        return true;
                    }
                };
                let obj = v.as_object();
                let hit = keys.iter().any(|k| {
                    obj.and_then(|o| dynrule::formats::get_ci(o, k))
                        .and_then(|x| x.as_str())
                        .is_some_and(|s| s.to_lowercase() == want)
                });
                if hit {
                    found = Some((v.clone(), format!("{}:{line}", file.display())));
                }
                !hit
            });
        if let Err(e) = res {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        if found.is_some() {
            break;
        }
    }
    let Some((record, at)) = found else {
        if let Some(e) = malformed {
            eprintln!(
                "error: {e}\n  (a record that names {:?} is malformed, so no engine reads it)",
                args.user
            );
            return ExitCode::from(2);
        }
        eprintln!(
            "error: no {} {:?} in {}",
            object.as_str(),
            args.user,
            path.display()
        );
        return ExitCode::from(2);
    };
    let mut cx = Context::at(now);
    match memberships(&args.groups) {
        Ok(Some(m)) => cx.member_of = m,
        Ok(None) => {}
        Err(code) => return code,
    }
    let result = oracle::explain(hir, &args.rule, &record, &cx);
    // Cross-check: the columnar engine on this one record must agree with the oracle.
    if let (Ok(mut table), Some(p)) = (
        load::table_from_values(std::slice::from_ref(&record), object),
        program.as_ref(),
    ) {
        if args.groups.is_some() {
            table.set_member_of(&cx.member_of);
        }
        let vm = dynrule::vm::evaluate(std::slice::from_ref(p), &table);
        if vm.first().map(|m| m.get(0)) != Some(result.membership_rule_evaluation_result) {
            eprintln!(
                "warning: the columnar engine disagrees with the reference evaluator on this record; please report it"
            );
        }
    }
    match args.format {
        super::Format::Json => match serde_json::to_string_pretty(&result) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        super::Format::Text => {
            println!("{} {} ({at})", object.as_str(), args.user);
            println!(
                "{}",
                if result.membership_rule_evaluation_result {
                    "member: yes"
                } else {
                    "member: no"
                }
            );
            let mut text = String::new();
            oracle::render_tree(&result.membership_rule_evaluation_details, 0, &mut text);
            print!("{text}");
        }
    }
    ExitCode::SUCCESS
}

pub fn gen_tenant(args: GenArgs) -> ExitCode {
    if let Some(dir) = &args.snapshot {
        return match dynrule::synth::write_snapshot(args.users, args.seed, dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}: {e}", dir.display());
                ExitCode::from(2)
            }
        };
    }
    let Some(out) = &args.out else {
        return ExitCode::from(2);
    };
    let result = if out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::new(stdout.lock());
        dynrule::synth::write_tenant(args.users, args.seed, &mut w).and_then(|()| w.flush())
    } else {
        dynrule::output::write_file(out, |w| {
            dynrule::synth::write_tenant(args.users, args.seed, &mut { w })
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", out.display());
            ExitCode::from(2)
        }
    }
}
