//! The shape of `src/` the README's Layout section describes, held by a test: no function runs
//! past `MAX_FN_LINES` lines, the crate's modules import each other without a circle, the value
//! formats stay a leaf, and the loader stays below the front end (it imports neither the
//! checker, the oracle nor the VM).
//!
//! Functions are found as rustfmt writes them: a line `fn name(` (with any visibility) at some
//! indentation, ending at the first later line that is `}` at the same indentation. Test
//! modules (`#[cfg(test)]` at column 0, to the end of the file) are not counted.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails by panicking, helpers included"
)]

use std::path::{Path, PathBuf};

/// The longest a function may be, in lines, signature and closing brace included.
const MAX_FN_LINES: usize = 150;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn all_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            let name = p
                .strip_prefix(&root)
                .expect("under src")
                .display()
                .to_string();
            (name, text)
        })
        .collect()
}

/// `(name, first line, lines)` of every function outside test modules.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.starts_with("#[cfg(test)]"))
        .unwrap_or(lines.len());
    let mut out = Vec::new();
    for (i, l) in lines[..end].iter().enumerate() {
        let body = l.trim_start();
        let indent = &l[..l.len() - body.len()];
        let mut rest = body;
        for prefix in ["pub(crate) ", "pub(super) ", "pub ", "const ", "async "] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        let Some(sig) = rest.strip_prefix("fn ") else {
            continue;
        };
        if body.ends_with(';') {
            continue;
        }
        let name: String = sig
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        let last = if body.ends_with('}') {
            i
        } else {
            (i + 1..end).find(|&j| lines[j] == close).unwrap_or(end)
        };
        out.push((name, i + 1, last - i + 1));
    }
    out
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let mut long = Vec::new();
    let mut count = 0;
    for (file, text) in all_sources() {
        for (name, line, len) in functions(&text) {
            count += 1;
            if len > MAX_FN_LINES {
                long.push(format!("src/{file}:{line}: {name} is {len} lines"));
            }
        }
    }
    assert!(count > 500, "the scanner found only {count} functions");
    assert!(
        long.is_empty(),
        "split these into named steps (at most {MAX_FN_LINES} lines each):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_scanner_measures_a_function() {
    let text = "fn a() {\n    x();\n}\n\npub(crate) fn b(\n    y: u8,\n) -> u8 {\n    y\n}\n";
    assert_eq!(
        functions(text),
        [("a".to_string(), 1, 3), ("b".to_string(), 5, 5)]
    );
}

#[test]
fn value_formats_are_a_leaf_and_the_loader_sits_below_the_front_end() {
    for (file, text) in all_sources() {
        let imports = |module: &str| text.contains(&format!("crate::{module}"));
        if file == "formats.rs" {
            assert!(
                !text.contains("crate::"),
                "formats.rs imports from the crate"
            );
        }
        if file.starts_with("load/") {
            for m in ["check", "oracle", "vm", "program", "lint", "hir"] {
                assert!(!imports(m), "src/{file} imports crate::{m}");
            }
        }
    }
}

/// The top-level module of a file under `src/` (`load/scan.rs` → `load`).
fn module_of(file: &str) -> String {
    file.split('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".rs")
        .to_string()
}

/// Arrows `from → to` between the crate's top-level modules: a `crate::to` path outside
/// comments and test modules. The binary's `cli/` and the crate root are left out.
fn arrows() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let sources = all_sources();
    let modules: std::collections::BTreeSet<String> =
        sources.iter().map(|(f, _)| module_of(f)).collect();
    let mut out: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    for (file, text) in &sources {
        let from = module_of(file);
        if ["lib", "main", "cli"].contains(&from.as_str()) {
            continue;
        }
        let code = text.split("#[cfg(test)]").next().unwrap_or(text);
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let to: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if to != from && modules.contains(&to) {
                    out.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    out
}

#[test]
fn modules_import_each_other_without_a_circle() {
    let arrows = arrows();
    assert!(
        arrows.len() > 15,
        "the scanner found only {} modules",
        arrows.len()
    );
    // Depth-first search; a module met again while still on the path closes a circle.
    fn visit<'a>(
        m: &'a str,
        arrows: &'a std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
    ) -> Option<String> {
        if let Some(at) = path.iter().position(|p| *p == m) {
            return Some(format!("{} → {m}", path[at..].join(" → ")));
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for to in arrows.get(m).into_iter().flatten() {
            if let Some(c) = visit(to, arrows, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for m in arrows.keys() {
        let mut path = Vec::new();
        if let Some(circle) = visit(m, &arrows, &mut path, &mut done) {
            panic!("an import circle: {circle}");
        }
    }
}
