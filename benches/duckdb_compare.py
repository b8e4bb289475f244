#!/usr/bin/env python3
"""dynrule against DuckDB on the same generated tenant and the same rules, in one run.

Usage (from the repository root):

    pip install duckdb
    cargo build --release
    python3 benches/duckdb_compare.py --users 1000000 [--threads 2] [--keep]

It generates a tenant with `dynrule gen-tenant` (seed 7), loads it with DuckDB's `read_json`
and with `dynrule eval --timings`, runs the 36 rules of `benches/suite.jsonl` (each has its SQL
translation: `lower()` for Entra's case-insensitive comparison, NULL handling per our decision
D1) as `count(*)` queries, checks that both give the same counts, and prints load and evaluate
times and their ratios. Times are wall-clock on this machine, both engines using all cores.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = "2026-11-21T00:00:00Z"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--dir", default="/tmp/dynrule-bench")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "dynrule"))
    ap.add_argument("--keep", action="store_true", help="reuse an existing generated file")
    args = ap.parse_args()

    import duckdb  # imported here so --help works without it

    os.makedirs(args.dir, exist_ok=True)
    data = os.path.join(args.dir, f"users-{args.users}.jsonl")
    if not (args.keep and os.path.exists(data)):
        subprocess.run([args.binary, "gen-tenant", "--users", str(args.users), "--seed", "7",
                        "--out", data], check=True)
    size_mb = os.path.getsize(data) / 1e6
    suite = [json.loads(l) for l in open(os.path.join(ROOT, "benches", "suite.jsonl")) if l.strip()]

    # dynrule: load + compile + evaluate all rules in one process; --timings splits the phases.
    rules_file = os.path.join(args.dir, "rules.jsonl")
    with open(rules_file, "w") as f:
        for s in suite:
            f.write(json.dumps({"rule": s["rule"]}) + "\n")
    t0 = time.perf_counter()
    p = subprocess.run([args.binary, "eval", "--users", data, "--rules", rules_file, "--count",
                        "--timings", "--now", NOW], capture_output=True, text=True, check=True)
    dyn_wall = time.perf_counter() - t0
    dyn_counts = [json.loads(l)["count"] for l in p.stdout.splitlines()]
    m = re.search(r"load ([\d.]+) ms.*evaluate ([\d.]+) ms", p.stderr)
    dyn_load, dyn_eval = float(m.group(1)) / 1e3, float(m.group(2)) / 1e3

    # DuckDB: read_json into a table, then one count(*) per rule.
    con = duckdb.connect()
    con.execute(f"SET threads TO {args.threads}")
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE users AS SELECT * FROM read_json('{data}', format='newline_delimited', maximum_object_size=1048576)")
    duck_load = time.perf_counter() - t0
    duck_counts = []
    t0 = time.perf_counter()
    for s in suite:
        duck_counts.append(con.execute(f"SELECT count(*) FROM users WHERE {s['sql']}").fetchone()[0])
    duck_eval = time.perf_counter() - t0

    bad = [(s["rule"], a, b) for s, a, b in zip(suite, dyn_counts, duck_counts) if a != b]
    for rule, a, b in bad:
        print(f"COUNT MISMATCH dynrule={a} duckdb={b}: {rule}", file=sys.stderr)
    n, r = args.users, len(suite)
    print(f"tenant: {n} users, {size_mb:.0f} MB JSON Lines; {r} rules; {args.threads} threads; duckdb {duckdb.__version__}")
    print(f"load      dynrule {dyn_load:8.3f} s   duckdb {duck_load:8.3f} s   ratio {duck_load / dyn_load:6.1f}x")
    print(f"evaluate  dynrule {dyn_eval:8.3f} s   duckdb {duck_eval:8.3f} s   ratio {duck_eval / dyn_eval:6.1f}x")
    print(f"per user per rule: dynrule {dyn_eval / n / r * 1e9:.2f} ns, duckdb {duck_eval / n / r * 1e9:.2f} ns")
    print(f"dynrule wall (load+compile+evaluate+output): {dyn_wall:.3f} s")
    print("counts agree" if not bad else f"{len(bad)} count mismatches")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
