//! Front-end throughput: lex+parse, and the full check (parse, resolve, type, lint), over the
//! real-rule corpus and over one long rule. Report results as ratios against a baseline run in
//! the same session (`cargo bench --bench front_end -- --save-baseline before`, then
//! `-- --baseline before`), not as absolute times.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench fails by panicking, helpers included"
)]
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn corpus() -> Vec<String> {
    let text = std::fs::read_to_string("corpus/entra-rules.jsonl").unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("rule").and_then(|r| r.as_str()).map(String::from))
        .collect()
}

fn bench(c: &mut Criterion) {
    let rules = corpus();
    let bytes: usize = rules.iter().map(String::len).sum();
    let long =
        vec!["(user.department -eq \"Sales\" -and user.city -in [\"Lagos\", \"Abuja\"])"; 40]
            .join(" -or ");
    let mut g = c.benchmark_group("front_end");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(BenchmarkId::new("parse", "corpus"), |b| {
        b.iter(|| {
            rules
                .iter()
                .filter(|r| dynrule::parse(r).0.is_some())
                .count()
        })
    });
    g.bench_function(BenchmarkId::new("check", "corpus"), |b| {
        b.iter(|| {
            rules
                .iter()
                .filter(|r| dynrule::check(r).is_valid())
                .count()
        })
    });
    g.throughput(Throughput::Bytes(long.len() as u64));
    g.bench_function(BenchmarkId::new("check", "long_rule"), |b| {
        b.iter(|| dynrule::check(&long).is_valid())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
