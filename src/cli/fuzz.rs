//! `dynrule fuzz gen` and `dynrule fuzz diff`: rules drawn from the grammar
//! ([`dynrule::generate`]), and disagreements with another checker found and shrunk.

use dynrule::generate::{self, Mode};
use dynrule::program::{CompileOptions, Program};
use dynrule::schema::ObjectType;
use proptest::strategy::{BoxedStrategy, Strategy};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};

/// `dynrule fuzz …`.
#[derive(clap::Args)]
pub struct FuzzArgs {
    #[command(subcommand)]
    command: FuzzCommand,
}

#[derive(clap::Subcommand)]
enum FuzzCommand {
    /// Write generated rules as JSON Lines: {"rule", "valid", "codes", "kind", "object"}
    /// (and "members" with --tenant). Deterministic per --seed.
    Gen(GenArgs),
    /// Run another checker over generated rules and report, shrunk, every rule where its verdict
    /// differs from dynrule's. Exit 0 when none differ, 1 when some do, 2 when the command fails.
    Diff(DiffArgs),
}

#[derive(clap::Args)]
struct GenArgs {
    /// How many rules.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// The seed: the same seed and arguments give the same rules.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The object type the rules are about.
    #[arg(long, value_enum, default_value_t = Object::User)]
    object: Object,
    /// Valid rules, invalid ones, or mutations of valid ones (or of --from's rules) as admins
    /// break them.
    #[arg(long, value_enum, default_value_t = Mode::Valid)]
    mode: Mode,
    /// Rules to mutate (one a line: rule text, a JSON string, or an object with "rule"), for
    /// --mode mutate.
    #[arg(long)]
    from: Option<PathBuf>,
    /// A tenant snapshot folder, or `sample`: each valid rule also gets its member count there.
    #[arg(long)]
    tenant: Option<String>,
    /// The instant `system.now` stands for (RFC 3339) in member counts; default: now.
    #[arg(long)]
    now: Option<jiff::Timestamp>,
}

#[derive(clap::Args)]
struct DiffArgs {
    /// The other checker, run once by `sh -c`: it reads rules on stdin, one a line, and answers
    /// each with one line on stdout, `valid` or `invalid`, or a JSON object with "valid"
    /// (flush after each line).
    #[arg(long)]
    command: String,
    /// How many rules.
    #[arg(long, default_value_t = 300)]
    count: usize,
    /// The seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The object type.
    #[arg(long, value_enum, default_value_t = Object::User)]
    object: Object,
    /// Only this kind of rule (default: valid, invalid and mutated in turn).
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Write the disagreements as JSON Lines here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The most candidates tried while shrinking one disagreement.
    #[arg(long, default_value_t = 2000)]
    max_shrink: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Object {
    User,
    Device,
}

impl From<Object> for ObjectType {
    fn from(o: Object) -> ObjectType {
        match o {
            Object::User => ObjectType::User,
            Object::Device => ObjectType::Device,
        }
    }
}

/// `dynrule fuzz`.
pub fn fuzz(args: FuzzArgs) -> ExitCode {
    match args.command {
        FuzzCommand::Gen(a) => gen_rules(&a),
        FuzzCommand::Diff(a) => diff(&a),
    }
}

/// The strategy of `mode`, as `(rule, kind)`.
fn strategy(object: ObjectType, mode: Mode, from: Vec<String>) -> BoxedStrategy<(String, String)> {
    match mode {
        Mode::Valid => generate::valid(object)
            .prop_map(|r| (r, "valid".to_string()))
            .boxed(),
        Mode::Invalid => generate::invalid(object),
        Mode::Mutate => generate::mutate(object, from),
    }
}

/// dynrule's verdict on a rule: valid, and the codes of its diagnostics.
fn verdict(rule: &str) -> (bool, Vec<String>) {
    let checked = dynrule::check(rule);
    let codes = checked
        .diagnostics
        .iter()
        .map(|d| d.code.as_str().to_string())
        .collect();
    (checked.is_valid(), codes)
}

fn gen_rules(a: &GenArgs) -> ExitCode {
    let object = ObjectType::from(a.object);
    let from = match a.from.as_ref().map(|p| super::read_rules(p)) {
        Some(Ok(rules)) => rules.into_iter().map(|r| r.text).collect(),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        None => Vec::new(),
    };
    let trees = match generate::draw(&strategy(object, a.mode, from), a.count, a.seed) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: the generator: {e}");
            return ExitCode::from(2);
        }
    };
    let rules: Vec<(String, String)> = trees.iter().map(|t| t.current()).collect();
    let members = match &a.tenant {
        Some(t) => match member_counts(t, object, &rules, a.now) {
            Ok(m) => Some(m),
            Err(code) => return code,
        },
        None => None,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (i, (rule, kind)) in rules.iter().enumerate() {
        let (valid, codes) = verdict(rule);
        let mut line = json!({"rule": rule, "valid": valid, "codes": codes, "kind": kind, "object": object.as_str()});
        if let Some(n) = members.as_ref().and_then(|m| m.get(i).copied().flatten()) {
            if let Some(o) = line.as_object_mut() {
                o.insert("members".into(), json!(n));
            }
        }
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(2);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// Each valid rule's member count over the tenant's users (or devices), in one VM pass.
fn member_counts(
    tenant: &str,
    object: ObjectType,
    rules: &[(String, String)],
    now: Option<jiff::Timestamp>,
) -> Result<Vec<Option<usize>>, ExitCode> {
    let tenant = super::recompute::tenant_or_sample(tenant, None, true, Vec::new())?;
    let table = match object {
        ObjectType::User => Some(&tenant.users),
        ObjectType::Device => tenant.devices.as_ref(),
    };
    let Some(table) = table else {
        eprintln!("error: the snapshot has no devices export");
        return Err(ExitCode::from(2));
    };
    let opts = CompileOptions {
        now: now.unwrap_or_else(jiff::Timestamp::now),
    };
    let compiled: Vec<Option<Program>> = rules
        .iter()
        .map(|(r, _)| {
            let checked = dynrule::check(r);
            checked
                .hir
                .as_ref()
                .filter(|_| checked.is_valid())
                .and_then(|h| Program::compile(h, &opts).ok())
                .filter(|p| p.object == object)
        })
        .collect();
    let programs: Vec<Program> = compiled.iter().flatten().cloned().collect();
    let members = dynrule::vm::evaluate(&programs, table);
    let mut counts = members.iter().map(dynrule::bitmap::Bitmap::count_ones);
    Ok(compiled
        .iter()
        .map(|p| p.as_ref().and_then(|_| counts.next()))
        .collect())
}

/// The other checker, running.
struct Other {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    asked: usize,
}

impl Other {
    fn start(command: &str) -> Result<Other, String> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run `{command}`: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("no pipes to the command".into());
        };
        Ok(Other {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            asked: 0,
        })
    }

    /// The other checker's verdict on `rule`.
    ///
    /// Errors: it stopped, or its answer is neither `valid`, `invalid` nor `{"valid": …}`.
    fn ask(&mut self, rule: &str) -> Result<bool, String> {
        self.asked += 1;
        writeln!(self.stdin, "{rule}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("the command stopped reading (rule {}): {e}", self.asked))?;
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => {
                return Err(format!(
                    "the command stopped answering (rule {})",
                    self.asked
                ));
            }
            Err(e) => return Err(format!("reading the command's answer: {e}")),
            Ok(_) => {}
        }
        let t = line.trim();
        if t.eq_ignore_ascii_case("valid") {
            return Ok(true);
        }
        if t.eq_ignore_ascii_case("invalid") {
            return Ok(false);
        }
        match serde_json::from_str::<Value>(t)
            .ok()
            .and_then(|v| v.get("valid").and_then(Value::as_bool))
        {
            Some(v) => Ok(v),
            None => Err(format!(
                "answer {} to rule {} is neither `valid`, `invalid` nor {{\"valid\": …}}",
                serde_json::Value::String(t.to_string()),
                self.asked
            )),
        }
    }
}

impl Drop for Other {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn label(valid: bool) -> &'static str {
    if valid { "valid" } else { "invalid" }
}

fn diff(a: &DiffArgs) -> ExitCode {
    let object = ObjectType::from(a.object);
    let modes: Vec<Mode> = match a.mode {
        Some(m) => vec![m],
        None => vec![Mode::Valid, Mode::Invalid, Mode::Mutate],
    };
    let strategies: Vec<BoxedStrategy<(String, String)>> = modes
        .iter()
        .map(|m| strategy(object, *m, Vec::new()))
        .collect();
    let mut other = match Other::start(&a.command) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut runner = generate::runner(a.seed);
    let mut found: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..a.count {
        let Some(s) = strategies.get(i % strategies.len()) else {
            break;
        };
        let mut tree = match s.new_tree(&mut runner) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: the generator: {e}");
                return ExitCode::from(2);
            }
        };
        let (rule, kind) = tree.current();
        let ours = verdict(&rule).0;
        let theirs = match other.ask(&rule) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        if ours == theirs {
            continue;
        }
        let mut failure = None;
        let (small, steps) = generate::shrink(
            tree.as_mut(),
            |(r, _)| match other.ask(r) {
                Ok(t) => t != verdict(r).0,
                Err(e) => {
                    failure.get_or_insert(e);
                    false
                }
            },
            a.max_shrink,
        );
        let small = generate::reduce(&small.0, |r| match other.ask(r) {
            Ok(t) => t != verdict(r).0,
            Err(e) => {
                failure.get_or_insert(e);
                false
            }
        });
        if let Some(e) = failure {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        let (ours, codes) = verdict(&small);
        if !seen.insert(small.clone()) {
            continue;
        }
        found.push(json!({
            "rule": small,
            "dynrule": label(ours),
            "other": label(!ours),
            "codes": codes,
            "kind": kind,
            "found": rule,
            "shrinkSteps": steps,
        }));
    }
    let text: String = found.iter().map(|v| format!("{v}\n")).collect();
    let written = match &a.out {
        Some(p) => dynrule::output::write_file(p, |w| w.write_all(text.as_bytes())),
        None => std::io::stdout().write_all(text.as_bytes()),
    };
    if let Err(e) = written {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    eprintln!(
        "{} rules, {} asked in all (with shrinking): {} disagreement(s)",
        a.count,
        other.asked,
        found.len()
    );
    if found.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
