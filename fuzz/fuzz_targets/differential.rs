//! Differential fuzzing from raw bytes: the input is a rule, a newline, then users (or devices)
//! as JSON Lines bytes, which need not be valid UTF-8 or JSON. The lines go through the same
//! load path as `eval` (chunk parser, byte scanner, serde visitors; with the rule's projection
//! and without) and the same record check as `explain`; both must accept the same lines, and
//! the columnar engine must select exactly the records the reference oracle selects
//! (`dynrule::harness::differential`). Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (rule, users) = match data.iter().position(|&c| c == b'\n') {
        Some(i) => (data.get(..i).unwrap_or(&[]), data.get(i + 1..).unwrap_or(&[])),
        None => (data, &[][..]),
    };
    let Ok(rule) = std::str::from_utf8(rule) else {
        return;
    };
    let now = jiff::Timestamp::from_second(1_795_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    if let Err(e) = dynrule::harness::differential(rule, users, now) {
        panic!("{e}");
    }
});
