//! Engine benches over generated tenants (`dynrule::synth`, seed 7): JSON Lines load (parsed,
//! and read back from the load cache), compiling
//! the 36-rule suite of `benches/suite.jsonl`, and evaluating it, whole and per operator family.
//!
//! `cargo bench --bench engine` runs the 100k-user tenant; `DYNRULE_BENCH_1M=1` adds 1M users
//! (2.3 GB of JSON Lines in the temp folder; each load takes seconds). Report ratios between
//! runs of the same session (criterion keeps the previous run as the baseline), not absolute
//! times; `benches/duckdb_compare.py` gives the ratio to DuckDB on the same data.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench fails by panicking, helpers included"
)]
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dynrule::load::{LoadOptions, load};
use dynrule::program::{CompileOptions, Program};
use dynrule::schema::ObjectType;
use std::path::PathBuf;

fn suite() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/suite.jsonl"))
        .expect("benches/suite.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("suite line");
            v["rule"].as_str().expect("rule").to_string()
        })
        .collect()
}

fn family(rule: &str) -> &'static str {
    if rule.contains("assignedPlans") {
        "assignedPlans"
    } else if rule.contains("proxyAddresses") {
        "any-proxyAddresses"
    } else if rule.contains("-match") {
        "match"
    } else if rule.contains("null") {
        "null"
    } else if rule.contains("employeeHireDate") {
        "date"
    } else if rule.contains("-contains")
        || rule.contains("-startsWith")
        || rule.contains("-endsWith")
    {
        "substring"
    } else {
        "eq-in-bool"
    }
}

fn tenant(users: usize) -> PathBuf {
    let path = std::env::temp_dir().join(format!("dynrule-bench-{users}.jsonl"));
    if !path.exists() {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        dynrule::synth::write_tenant(users, 7, &mut f).expect("write");
    }
    path
}

fn now() -> jiff::Timestamp {
    "2026-11-21T00:00:00Z".parse().expect("now")
}

fn bench_size(c: &mut Criterion, users: usize) {
    let path = tenant(users);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let rules = suite();
    let opts = CompileOptions { now: now() };
    let programs: Vec<Program> = rules
        .iter()
        .map(|r| Program::from_text(r, &opts).expect("suite rule compiles"))
        .collect();
    let table = load(&path, ObjectType::User, &LoadOptions::default())
        .expect("load")
        .table;

    let mut g = c.benchmark_group(format!("{users}-users"));
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("load-jsonl", |b| {
        b.iter(|| load(&path, ObjectType::User, &LoadOptions::default()).expect("load"))
    });
    // The same table read back from the load cache (D79), written once before timing.
    let cached = LoadOptions {
        cache: dynrule::load::CacheMode::On,
        ..LoadOptions::default()
    };
    load(&path, ObjectType::User, &cached).expect("write the cache");
    g.bench_function("load-cached", |b| {
        b.iter(|| {
            let l = load(&path, ObjectType::User, &cached).expect("load");
            assert!(matches!(l.cache, dynrule::load::CacheUse::Hit { .. }));
            l
        })
    });
    g.throughput(Throughput::Elements(rules.len() as u64));
    g.bench_function("compile-suite", |b| {
        b.iter(|| {
            rules
                .iter()
                .map(|r| Program::from_text(r, &opts).expect("compiles"))
                .collect::<Vec<_>>()
        })
    });
    g.throughput(Throughput::Elements((users * programs.len()) as u64));
    g.bench_function("evaluate-suite", |b| {
        b.iter(|| dynrule::vm::evaluate(&programs, &table))
    });
    let mut families: Vec<&str> = rules.iter().map(|r| family(r)).collect();
    families.sort_unstable();
    families.dedup();
    for fam in families {
        let subset: Vec<Program> = rules
            .iter()
            .zip(&programs)
            .filter(|(r, _)| family(r) == fam)
            .map(|(_, p)| p.clone())
            .collect();
        g.throughput(Throughput::Elements((users * subset.len()) as u64));
        g.bench_function(format!("evaluate-{fam}"), |b| {
            b.iter_batched(
                || subset.clone(),
                |s| dynrule::vm::evaluate(&s, &table),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn engine(c: &mut Criterion) {
    bench_size(c, 100_000);
    if std::env::var_os("DYNRULE_BENCH_1M").is_some() {
        bench_size(c, 1_000_000);
    }
}

criterion_group!(benches, engine);
criterion_main!(benches);
