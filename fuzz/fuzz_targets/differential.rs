//! Differential fuzzing from raw bytes: the input is a rule, a newline, then users as JSON
//! Lines. When the rule is valid and the users load, the columnar engine (table → Program → VM)
//! must select exactly the users the reference oracle selects. Neither may panic on anything.
#![no_main]

use dynrule::oracle::{self, Context};
use dynrule::program::{CompileOptions, Program};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (rule, users) = text.split_once('\n').unwrap_or((&text, ""));
    let checked = dynrule::check(rule);
    let Some(hir) = checked.hir.as_ref().filter(|_| checked.is_valid()) else {
        return;
    };
    let values: Vec<serde_json::Value> = users
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let Ok(table) = dynrule::load::table_from_values(&values, hir.object) else {
        return;
    };
    let now = jiff::Timestamp::from_second(1_795_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let Ok(program) = Program::compile(hir, &CompileOptions { now }) else {
        return;
    };
    let members = dynrule::vm::evaluate(std::slice::from_ref(&program), &table);
    let cx = Context::at(now);
    for (row, v) in values.iter().enumerate() {
        let want = oracle::evaluate(hir, v, &cx);
        let got = members.first().is_some_and(|m| m.get(row));
        assert_eq!(got, want, "rule {rule:?} on {v}");
    }
});
