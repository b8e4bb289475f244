//! Replays every input under `fuzz/regressions/<target>/` through the same checks the fuzz
//! targets make, so a crash found once stays fixed (the regex crate's `tests/regression_fuzz.rs`
//! does the same).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = format!("fuzz/regressions/{target}");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.path().display().to_string(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{dir} is empty");
    out
}

#[test]
fn parse_regressions() {
    for (name, data) in inputs("parse") {
        let src = String::from_utf8_lossy(&data);
        let checked = dynrule::check(&src);
        for d in &checked.diagnostics {
            assert!(
                d.span.end <= src.len()
                    && src.is_char_boundary(d.span.start)
                    && src.is_char_boundary(d.span.end),
                "{name}"
            );
        }
        let _ = dynrule::diag::render_plain(&checked.diagnostics, "rule", &src);
        let _ = dynrule::format(&src);
    }
}

#[test]
fn roundtrip_regressions() {
    for (name, data) in inputs("roundtrip") {
        let Ok(src) = std::str::from_utf8(&data) else {
            continue;
        };
        let (Some(ast), _) = dynrule::parse(src) else {
            continue;
        };
        let printed = dynrule::syntax::print::print(&ast);
        assert_eq!(dynrule::parse(&printed).0.as_ref(), Some(&ast), "{name}");
        let formatted = dynrule::format(src).unwrap_or_default();
        assert_eq!(
            dynrule::format(&formatted).as_ref(),
            Ok(&formatted),
            "{name}"
        );
    }
}

#[test]
fn load_regressions() {
    for (name, data) in inputs("load") {
        for object in [
            dynrule::schema::ObjectType::User,
            dynrule::schema::ObjectType::Device,
        ] {
            if let Err(e) = dynrule::load::check_record_paths(&data, object) {
                panic!("{name}: {e}");
            }
        }
    }
}

/// The `differential` target's findings: a rule line, then JSON Lines bytes; the load and the
/// oracle must accept the same records and select the same ones.
#[test]
fn differential_regressions() {
    let now = jiff::Timestamp::from_second(1_795_000_000).expect("timestamp");
    for (name, data) in inputs("differential") {
        let (rule, users) = match data.iter().position(|&c| c == b'\n') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (&data[..], &[][..]),
        };
        let Ok(rule) = std::str::from_utf8(rule) else {
            continue;
        };
        if let Err(e) = dynrule::harness::differential(rule, users, now) {
            panic!("{name}: {e}");
        }
    }
}

/// The `licensing` target's findings: a snapshot from bytes must license within its seats.
#[test]
fn licensing_regressions() {
    for (name, data) in inputs("licensing") {
        if let Err(e) = dynrule::harness::licensing(&data) {
            panic!("{name}: {e}");
        }
    }
}
