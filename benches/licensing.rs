//! Licensing and what-if benches over a generated tenant snapshot (`gen-tenant --snapshot`,
//! 100k users, 201 groups, seed 7; written once to the temp folder): every group's membership,
//! group-based licensing, the whole `recompute` after loading, and a what-if (narrowing the EMS
//! licence group), which computes two worlds with the `assignedPlans` feedback loop. Then the
//! same at Entra's limit of 15,000 dynamic groups (`gen-tenant --snapshot --groups 15000`):
//! `recompute` (memberships and licensing), and the what-if computed incrementally (the
//! default) and in full (`--full`).
//!
//! `DYNRULE_BENCH_1M=1` adds both groups at 1M users (2.6 GB snapshots written once to the temp
//! folder; loading each takes seconds). Report ratios between runs of the same session
//! (`--save-baseline` / `--baseline`), not absolute times.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench fails by panicking, helpers included"
)]
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use criterion::{Criterion, criterion_group, criterion_main};
use dynrule::recompute::{RecomputeOptions, memberships};
use dynrule::tenant::{Tenant, TenantOptions};
use dynrule::whatif::{self, Change, WhatIfOptions};
use std::path::PathBuf;

const USERS: usize = 100_000;

fn snapshot(users: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dynrule-bench-snapshot-{users}-v1"));
    if !dir.join("organization.json").exists() {
        dynrule::synth::write_snapshot(users, 7, &dir).expect("write snapshot");
    }
    dir
}

/// The `users`-user snapshot topped up to 15,000 dynamic groups.
fn snapshot_15k(users: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dynrule-bench-snapshot-{users}-15000-v1"));
    if !dir.join("organization.json").exists() {
        dynrule::synth::write_snapshot_with(users, 7, 15_000, &dir).expect("write snapshot");
    }
    dir
}

fn many_groups(c: &mut Criterion) {
    many_groups_size(c, USERS);
    if std::env::var_os("DYNRULE_BENCH_1M").is_some() {
        many_groups_size(c, 1_000_000);
    }
}

fn many_groups_size(c: &mut Criterion, users: usize) {
    let dir = snapshot_15k(users);
    let tenant = Tenant::load(&dir, &TenantOptions::default()).expect("load");
    let ropts = RecomputeOptions { now: now() };
    let change = ems_narrowed(&tenant);
    let mut g = c.benchmark_group(format!("many-groups-{users}-users-15000-groups"));
    g.sample_size(10);
    g.bench_function("recompute", |b| {
        b.iter(|| dynrule::recompute::run(&tenant, &dynrule::recompute::Overlay::default(), &ropts))
    });
    for (name, full) in [("whatif-incremental", false), ("whatif-full", true)] {
        let opts = WhatIfOptions {
            full,
            ..WhatIfOptions::new(now())
        };
        g.bench_function(name, |b| {
            b.iter(|| whatif::run(&tenant, std::slice::from_ref(&change), &opts).expect("whatif"))
        });
    }
    g.finish();
}

/// The what-if both groups of benches time: the EMS licence group's rule narrowed to enabled
/// accounts.
fn ems_narrowed(tenant: &Tenant) -> Change {
    Change {
        group: tenant.find_group("Licence EMS").expect("EMS group"),
        membership_rule: Some(
            "user.extensionAttribute1 -contains \"EMS\" -and user.accountEnabled -eq true".into(),
        ),
        ..Change::default()
    }
}

fn now() -> jiff::Timestamp {
    "2026-11-21T00:00:00Z".parse().expect("now")
}

fn bench(c: &mut Criterion) {
    bench_size(c, USERS);
    if std::env::var_os("DYNRULE_BENCH_1M").is_some() {
        bench_size(c, 1_000_000);
    }
}

fn bench_size(c: &mut Criterion, users: usize) {
    let dir = snapshot(users);
    let tenant = Tenant::load(&dir, &TenantOptions::default()).expect("load");
    let opts = RecomputeOptions { now: now() };
    let (m, _) = memberships(&tenant, &tenant.groups, &tenant.users, &opts);
    let change = ems_narrowed(&tenant);

    let mut g = c.benchmark_group(format!("licensing-{users}-users"));
    g.sample_size(10);
    g.bench_function("memberships-201-groups", |b| {
        b.iter(|| memberships(&tenant, &tenant.groups, &tenant.users, &opts))
    });
    g.bench_function("assign", |b| {
        b.iter(|| dynrule::licensing::assign(&tenant, &tenant.groups, &m))
    });
    g.bench_function("whatif-narrow-ems", |b| {
        b.iter(|| {
            whatif::run(
                &tenant,
                std::slice::from_ref(&change),
                &WhatIfOptions::new(now()),
            )
            .expect("whatif")
        })
    });
    g.finish();
}

criterion_group!(benches, bench, many_groups);
criterion_main!(benches);
