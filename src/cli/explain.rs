//! `dynrule explain`: one user's (or device's) result, clause by clause.

use super::{eval_projection, input, memberships, print_text};
use dynrule::load;
use dynrule::oracle::{self, Context};
use dynrule::program::{CompileOptions, Program};
use dynrule::schema::ObjectType;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `dynrule explain`.
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

/// `dynrule explain`: exit 0 with the explanation, 1 for an invalid rule, 2 when the export
/// cannot be read or holds no such record.
pub fn explain(args: ExplainArgs) -> ExitCode {
    let checked = dynrule::check(&args.rule);
    let Some(hir) = checked.hir.as_ref().filter(|_| checked.is_valid()) else {
        print_text(&args.rule, "rule", &checked.diagnostics);
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
