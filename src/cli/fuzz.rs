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
    /// Ask Microsoft's service: each rule through Graph's evaluateDynamicMembership (beta) for
    /// one member, recorded beside dynrule's verdict as a corpus line; resumable (rules already
    /// in --out are skipped). Exit 2 when signing in or a request fails.
    Probe(ProbeArgs),
}

#[derive(clap::Args)]
struct ProbeArgs {
    /// The member the service evaluates each rule for (a user's or device's object id).
    #[arg(long)]
    member: String,
    /// The corpus file to append to (JSON Lines); rules it already has are not asked again.
    #[arg(long)]
    out: PathBuf,
    /// Rules to ask about (one a line: rule text, a JSON string, or an object with "rule");
    /// default: the built-in set (every unknown corpus rule and the semantics table).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// A tenant snapshot folder holding the member: dynrule's own answer for it is recorded too.
    #[arg(long)]
    tenant: Option<String>,
    /// The instant `system.now` stands for in dynrule's answers; default: now.
    #[arg(long)]
    now: Option<jiff::Timestamp>,
    /// Requests per second at most.
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Microsoft Graph's service root, without the version.
    #[arg(long, default_value = "https://graph.microsoft.com")]
    graph_url: String,
    /// The sign-in endpoint's root.
    #[arg(long, default_value = "https://login.microsoftonline.com")]
    login_url: String,
    /// Retries of one request after throttling or a fault.
    #[arg(long, default_value_t = 8)]
    retries: u32,
    /// The first wait in milliseconds when Graph gives no Retry-After.
    #[arg(long, default_value_t = 1000)]
    backoff_ms: u64,
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
    /// A tenant snapshot folder, or `sample`: for an evaluator whose answers carry `"members"`
    /// (object ids), the members are compared too.
    #[arg(long)]
    tenant: Option<String>,
    /// The instant `system.now` stands for in dynrule's members; default: now.
    #[arg(long)]
    now: Option<jiff::Timestamp>,
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
        FuzzCommand::Probe(a) => probe(&a),
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
fn codes(checked: &dynrule::Checked) -> Vec<&'static str> {
    checked
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect()
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
        let checked = dynrule::check(rule);
        let (valid, codes) = (checked.is_valid(), codes(&checked));
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
    let tenant = super::recompute::tenant_or_sample(tenant, &super::recompute::quiet_options())?;
    let Some(table) = tenant.table(object) else {
        eprintln!("error: the snapshot has no devices export");
        return Err(ExitCode::from(2));
    };
    let opts = CompileOptions {
        now: now.unwrap_or_else(jiff::Timestamp::now),
    };
    let compiled: Vec<Option<Program>> = rules
        .iter()
        .map(|(r, _)| {
            dynrule::check(r)
                .program(&opts)
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

/// What the other checker said about a rule.
struct Said {
    valid: bool,
    /// The members it computed (object ids, lower case), when it said.
    members: Option<std::collections::BTreeSet<String>>,
}

/// The members dynrule computes for rules on one snapshot.
struct Members {
    tenant: dynrule::tenant::Tenant,
    object: ObjectType,
    opts: CompileOptions,
}

impl Members {
    /// The object ids (lower case) a checked rule selects; `None` when it does not compile for
    /// `object`.
    fn of(&self, checked: &dynrule::Checked) -> Option<std::collections::BTreeSet<String>> {
        let program = checked
            .program(&self.opts)
            .filter(|p| p.object == self.object)?;
        let table = self.tenant.table(self.object)?;
        let m = dynrule::vm::evaluate(std::slice::from_ref(&program), table);
        Some(
            m.first()?
                .ones_iter()
                .filter_map(|r| table.id(r).map(str::to_ascii_lowercase))
                .collect(),
        )
    }
}

/// Whether dynrule and the other checker disagree on `rule`: on the verdict, or (both valid,
/// members known on both sides) on the members.
fn disagree(rule: &str, said: &Said, members: Option<&Members>) -> bool {
    let checked = dynrule::check(rule);
    if checked.is_valid() != said.valid {
        return true;
    }
    match (members, &said.members, said.valid) {
        (Some(m), Some(theirs), true) => m.of(&checked).is_some_and(|mine| mine != *theirs),
        _ => false,
    }
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
    fn ask(&mut self, rule: &str) -> Result<Said, String> {
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
        if t.eq_ignore_ascii_case("valid") || t.eq_ignore_ascii_case("invalid") {
            return Ok(Said {
                valid: t.eq_ignore_ascii_case("valid"),
                members: None,
            });
        }
        let v: Option<Value> = serde_json::from_str(t).ok();
        match v
            .as_ref()
            .and_then(|v| v.get("valid").and_then(Value::as_bool))
        {
            Some(valid) => Ok(Said {
                valid,
                members: v
                    .as_ref()
                    .and_then(|v| v.get("members"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_ascii_lowercase)
                            .collect()
                    }),
            }),
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
    let members = match &a.tenant {
        Some(t) => {
            match super::recompute::tenant_or_sample(t, &super::recompute::quiet_options()) {
                Ok(tenant) => Some(Members {
                    tenant,
                    object,
                    opts: CompileOptions {
                        now: a.now.unwrap_or_else(jiff::Timestamp::now),
                    },
                }),
                Err(code) => return code,
            }
        }
        None => None,
    };
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
        let said = match other.ask(&rule) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        if !disagree(&rule, &said, members.as_ref()) {
            continue;
        }
        let mut failure = None;
        let (small, steps) = generate::shrink(
            tree.as_mut(),
            |(r, _)| match other.ask(r) {
                Ok(t) => disagree(r, &t, members.as_ref()),
                Err(e) => {
                    failure.get_or_insert(e);
                    false
                }
            },
            a.max_shrink,
        );
        let small = generate::reduce(&small.0, |r| match other.ask(r) {
            Ok(t) => disagree(r, &t, members.as_ref()),
            Err(e) => {
                failure.get_or_insert(e);
                false
            }
        });
        if let Some(e) = failure {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        let checked = dynrule::check(&small);
        let ours = checked.is_valid();
        if !seen.insert(small.clone()) {
            continue;
        }
        let theirs = match other.ask(&small) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let mut entry = json!({
            "rule": small,
            "dynrule": label(ours),
            "other": label(theirs.valid),
            "codes": codes(&checked),
            "kind": kind,
            "found": rule,
            "shrinkSteps": steps,
        });
        if let (Some(mine), Some(other_members), Some(o)) = (
            members.as_ref().and_then(|m| m.of(&checked)),
            &theirs.members,
            entry.as_object_mut(),
        ) {
            let only = |a: &std::collections::BTreeSet<String>,
                        b: &std::collections::BTreeSet<String>| {
                a.difference(b).take(5).cloned().collect::<Vec<_>>()
            };
            o.insert("onlyDynrule".into(), json!(only(&mine, other_members)));
            o.insert("onlyOther".into(), json!(only(other_members, &mine)));
        }
        found.push(entry);
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

fn probe(a: &ProbeArgs) -> ExitCode {
    use dynrule::graph::probe::{self, ProbeRule};
    let rules: Vec<ProbeRule> = match &a.rules {
        Some(p) => match super::read_rules(p) {
            Ok(r) => r
                .into_iter()
                .map(|r| ProbeRule {
                    rule: r.text,
                    decision: None,
                })
                .collect(),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => probe::builtin(),
    };
    // Resume: rules already recorded are not asked again.
    let done: std::collections::HashSet<String> = std::fs::read_to_string(&a.out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("rule").and_then(Value::as_str).map(str::to_string))
        .collect();
    let todo: Vec<&ProbeRule> = rules.iter().filter(|r| !done.contains(&r.rule)).collect();
    let ours = match &a.tenant {
        Some(t) => match member_answers(t, &a.member, &todo, a.now) {
            Ok(m) => Some(m),
            Err(code) => return code,
        },
        None => None,
    };
    let client = match super::pull::sign_in(&a.graph_url, &a.login_url, a.retries, a.backoff_ms) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&a.out)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {}: {e}", a.out.display());
            return ExitCode::from(2);
        }
    };
    let pause = std::time::Duration::from_secs_f64(1.0 / a.rate.max(0.01));
    let today = jiff::Timestamp::now().to_string();
    let (mut asked, mut disagree) = (0usize, 0usize);
    for (i, r) in todo.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        let answer = match probe::evaluate(&client, &a.member, &r.rule) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: {e}");
                eprintln!(
                    "  ({asked} answers recorded in {}; run again to resume)",
                    a.out.display()
                );
                return ExitCode::from(2);
            }
        };
        asked += 1;
        let checked = dynrule::check(&r.rule);
        let codes = codes(&checked);
        let member = ours.as_ref().and_then(|m| m.get(i).copied().flatten());
        let agree = answer.accepted == checked.is_valid()
            && (member.is_none() || answer.member.is_none() || member == answer.member);
        if !agree {
            disagree += 1;
        }
        let line = json!({
            "rule": r.rule,
            "source": format!("Microsoft Graph evaluateDynamicMembership (beta), {}", today.get(..10).unwrap_or("")),
            "kind": checked.object.map(|o| o.as_str()),
            "expect": label(answer.accepted),
            "note": answer.error.clone().unwrap_or_else(|| format!("member {}", answer.member.map_or("unknown", |m| if m { "true" } else { "false" }))),
            "decision": r.decision,
            "entra": answer,
            "dynrule": {"valid": checked.is_valid(), "codes": codes, "member": member},
            "agree": agree,
        });
        if writeln!(file, "{line}")
            .and_then(|()| file.flush())
            .is_err()
        {
            eprintln!("error: cannot write {}", a.out.display());
            return ExitCode::from(2);
        }
    }
    eprintln!(
        "{asked} rule(s) asked ({} already recorded), {disagree} where Entra and dynrule disagree, in {}",
        rules.len() - todo.len(),
        a.out.display()
    );
    ExitCode::SUCCESS
}

/// dynrule's answer for the member on each rule (`None` for a rule that does not compile or a
/// member not in the snapshot).
fn member_answers(
    tenant: &str,
    member: &str,
    rules: &[&dynrule::graph::probe::ProbeRule],
    now: Option<jiff::Timestamp>,
) -> Result<Vec<Option<bool>>, ExitCode> {
    let tenant = super::recompute::tenant_or_sample(tenant, &super::recompute::quiet_options())?;
    let opts = CompileOptions {
        now: now.unwrap_or_else(jiff::Timestamp::now),
    };
    // The member's row, looked up once per object type.
    let row_in = |object: ObjectType| {
        let table = tenant.table(object)?;
        let row = (0..table.len()).find(|&i| {
            table
                .id(i)
                .is_some_and(|id| id.eq_ignore_ascii_case(member))
        })?;
        Some((table, row))
    };
    let rows = [row_in(ObjectType::User), row_in(ObjectType::Device)];
    Ok(rules
        .iter()
        .map(|r| {
            let program = dynrule::check(&r.rule).program(&opts)?;
            let (table, row) = match program.object {
                ObjectType::User => rows[0],
                ObjectType::Device => rows[1],
            }?;
            dynrule::vm::evaluate(std::slice::from_ref(&program), table)
                .first()
                .map(|m| m.get(row))
        })
        .collect())
}
