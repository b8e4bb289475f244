//! The semantics table, `corpus/semantics.jsonl`, run on both engines: the reference oracle
//! over each JSON object, and the compiled program on the VM over the same objects loaded into
//! a table. Each case names the decision or documented behaviour it pins down (`about`).
//!
//! The file's first lines define the objects (`{"name", "object"}`); every other line is a case
//! `{"rule", "object", "member", "about"}`. `system.now` is `common::now()`
//! (2026-11-21T12:00:00Z).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

mod common;

use common::now;
use dynrule::load::table_from_values;
use dynrule::oracle::{Context, evaluate};
use dynrule::program::{CompileOptions, Program};
use dynrule::schema::ObjectType;
use serde_json::Value;

struct Case {
    line: usize,
    rule: String,
    object: String,
    member: bool,
    about: String,
}

fn table() -> (Vec<(String, Value)>, Vec<Case>) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/corpus/semantics.jsonl"
    ))
    .expect("corpus/semantics.jsonl");
    let (mut objects, mut cases) = (Vec::new(), Vec::new());
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let s = |k: &str| v[k].as_str().map(str::to_string);
        match (s("name"), s("rule")) {
            (Some(name), None) => objects.push((name, v["object"].clone())),
            (None, Some(rule)) => cases.push(Case {
                line: i + 1,
                rule,
                object: s("object").expect("object"),
                member: v["member"].as_bool().expect("member"),
                about: s("about").unwrap_or_default(),
            }),
            _ => panic!("line {}: neither an object nor a case", i + 1),
        }
    }
    (objects, cases)
}

#[test]
fn semantics_table_on_the_oracle_and_the_vm() {
    let (objects, cases) = table();
    assert!(cases.len() >= 30, "the table lost cases");
    let values: Vec<Value> = objects.iter().map(|(_, v)| v.clone()).collect();
    let users = table_from_values(&values, ObjectType::User).expect("table");
    let cx = Context::at(now());
    let opts = CompileOptions { now: now() };
    let mut failures = Vec::new();
    for c in &cases {
        let row = objects
            .iter()
            .position(|(n, _)| *n == c.object)
            .unwrap_or_else(|| panic!("line {}: no object {}", c.line, c.object));
        let checked = dynrule::check(&c.rule);
        let hir = checked
            .hir
            .clone()
            .unwrap_or_else(|| panic!("line {}: {:?}", c.line, checked.diagnostics));
        let oracle = evaluate(&hir, &values[row], &cx);
        let program = Program::compile(&hir, &opts).expect("compiles");
        let vm = dynrule::vm::evaluate(std::slice::from_ref(&program), &users)[0].get(row);
        for (engine, got) in [("oracle", oracle), ("vm", vm)] {
            if got != c.member {
                failures.push(format!(
                    "line {}: {} on {}: the {engine} says {got}, the table {} ({})",
                    c.line, c.rule, c.object, c.member, c.about
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
