//! `dynrule eval`: members (or counts) of rules over a users or devices export.

use super::{
    RuleLine, eval_projection, input, load_table, memberships, ms, print_text, read_rules,
};
use dynrule::program::{CompileOptions, Program};
use dynrule::schema::ObjectType;
use std::io::Write;
use std::path::PathBuf;
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

/// Arguments of `dynrule eval`.
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
    #[command(flatten)]
    cache: super::CacheArgs,
    /// Groups export with `members` (`GET /groups?$expand=members`), for memberOf rules; without
    /// it, memberOf is read from the users' own `memberOf` (`$expand=memberOf`).
    #[arg(long)]
    groups: Option<PathBuf>,
}

/// `dynrule eval`: exit 0; 1 when a rule is invalid (the others are still evaluated); 2 on
/// unreadable input; 4 when a `-match` left values undecided (D63).
pub fn eval(args: EvalArgs) -> ExitCode {
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
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
    let mut compiled = compile_rules(&args, &rules, &CompileOptions { now });
    let compile_ms = ms(t_compile);
    let Some((path, object)) = input(&args.users, &args.devices) else {
        return ExitCode::from(2);
    };
    compiled.refuse_other_object(object);
    // Load only what the rules read, plus ids and names for the output.
    let projection = eval_projection(compiled.programs.iter().map(|(_, p)| p));
    let t_load = Instant::now();
    let mut loaded = match load_table(
        path,
        object,
        args.skip_invalid,
        Some(projection),
        args.cache.mode(),
    ) {
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
    let programs: Vec<Program> = compiled.programs.iter().map(|(_, p)| p.clone()).collect();
    for m in dynrule::trust::missing_properties(table, &programs) {
        eprintln!("warning: {}: {m}", path.display());
    }
    let t_eval = Instant::now();
    let (members, stats) = dynrule::vm::evaluate_with_stats(&programs, table);
    let eval_ms = ms(t_eval);
    let undecided = report_undecided(&args, &compiled, &programs);
    let mut result: Vec<(usize, Result<&dynrule::bitmap::Bitmap, &str>)> = compiled
        .programs
        .iter()
        .zip(&members)
        .map(|((i, _), m)| (*i, Ok(m)))
        .chain(compiled.errors.iter().map(|(i, e)| (*i, Err(e.as_str()))))
        .collect();
    result.sort_by_key(|(i, _)| *i);
    if let Err(e) = write_members(&args, &rules, &result, table, object) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    if args.timings {
        eprintln!(
            "timings: load {load_ms:.1} ms{} ({} {}s, {:.1} MB read, table {:.1} MB), compile {compile_ms:.2} ms ({} rule{}), evaluate {eval_ms:.1} ms (decide {:.1} ms + run {:.1} ms; {} distinct leaves, {} constant on this table){}",
            super::cache_note(std::slice::from_ref(&loaded.cache)),
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
    if !compiled.errors.is_empty() {
        ExitCode::from(1)
    } else if undecided > 0 {
        eprintln!("{undecided} rule(s) rest on undecided values: exit 4");
        ExitCode::from(4)
    } else {
        ExitCode::SUCCESS
    }
}

/// The rules compiled, by their position in the input, and the errors of those that are not.
struct Compiled {
    programs: Vec<(usize, Program)>,
    errors: Vec<(usize, String)>,
}

impl Compiled {
    /// A user rule over `--devices` (or the reverse) is an error of that rule.
    fn refuse_other_object(&mut self, object: ObjectType) {
        let wrong_kind: Vec<usize> = self
            .programs
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
            self.errors.push((
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
        self.programs.retain(|(i, _)| !wrong_kind.contains(i));
    }
}

/// Compiles every rule; invalid ones are reported on stderr and become errors. Warnings are
/// shown in full for one rule, as a count for a file.
fn compile_rules(args: &EvalArgs, rules: &[RuleLine], opts: &CompileOptions) -> Compiled {
    let source = args
        .rules
        .as_ref()
        .map_or("rule".to_string(), |p| p.display().to_string());
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
            (Some(hir), true) => match Program::compile(hir, opts) {
                Ok(p) => {
                    // The warnings `check` shows (DR305 `-and`/`-or` without parentheses,
                    // contradictions…): for one rule in full, for a file as a count.
                    if !checked.diagnostics.is_empty() {
                        if args.rules.is_none() {
                            print_text(&r.text, &name, &checked.diagnostics);
                        } else {
                            warned += 1;
                        }
                    }
                    compiled.push((i, p));
                }
                Err(e) => errors.push((i, e.to_string())),
            },
            _ => {
                print_text(&r.text, &name, &checked.diagnostics);
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
    Compiled {
        programs: compiled,
        errors,
    }
}

/// Rules whose `-match` left values undecided (D63), each reported on stderr; returns how many.
fn report_undecided(args: &EvalArgs, compiled: &Compiled, programs: &[Program]) -> usize {
    let mut undecided = 0;
    for ((i, _), n) in compiled
        .programs
        .iter()
        .zip(dynrule::vm::undecided(programs))
    {
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
    undecided
}

/// Writes each rule's members (or count, or error) in `--format`, in input order.
fn write_members(
    args: &EvalArgs,
    rules: &[RuleLine],
    result: &[(usize, Result<&dynrule::bitmap::Bitmap, &str>)],
    table: &dynrule::table::Table,
    object: ObjectType,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let many = args.rules.is_some();
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
    for (i, r) in result {
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
}
