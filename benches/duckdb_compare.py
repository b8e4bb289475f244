#!/usr/bin/env python3
"""dynrule against DuckDB on the same generated tenant and the same rules, in one run.

Usage (from the repository root):

    pip install duckdb
    cargo build --release
    python3 benches/duckdb_compare.py --users 1000000 [--threads 2] [--keep] [--repeat 3]
        [--suite benches/suite2.jsonl] [--cache]

It generates a tenant with `dynrule gen-tenant` (seed 7), loads it with DuckDB's `read_json`
and with `dynrule eval --timings`, runs the 36 rules of `benches/suite.jsonl` (or `--suite`:
`benches/suite2.jsonl` is a second suite of other shapes: regular expressions whose literal is not
a prefix, patterns over a million distinct values, substrings over every proxy address; each has its SQL
translation: `lower()` for Entra's case-insensitive comparison, NULL handling per our decision
D1) as `count(*)` queries, checks that both give the same counts, and prints load and evaluate
times and their ratios, and dynrule's peak resident memory (Linux). Times are wall-clock on
this machine, both engines using all cores; the file is read once first (so neither engine pays
for the disk), the engines run alternately `--repeat` times, and the best and median of each
are compared.
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
    ap.add_argument("--suite", default=os.path.join(ROOT, "benches", "suite.jsonl"),
                    help="rules and their SQL, one JSON object a line (suite.jsonl, suite2.jsonl)")
    ap.add_argument("--cache", action="store_true",
                    help="let dynrule read its load cache (D79); by default it parses the file, as DuckDB does")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each engine, alternating; the best and median are reported")
    args = ap.parse_args()

    import duckdb  # imported here so --help works without it

    os.makedirs(args.dir, exist_ok=True)
    data = os.path.join(args.dir, f"users-{args.users}.jsonl")
    if not (args.keep and os.path.exists(data)):
        subprocess.run([args.binary, "gen-tenant", "--users", str(args.users), "--seed", "7",
                        "--out", data], check=True)
    size_mb = os.path.getsize(data) / 1e6
    suite = [json.loads(l) for l in open(args.suite) if l.strip()]
    rules_file = os.path.join(args.dir, "rules.jsonl")
    with open(rules_file, "w") as f:
        for s in suite:
            f.write(json.dumps({"rule": s["rule"]}) + "\n")

    # Read the file once so that neither engine pays for the disk and the other for the cache.
    with open(data, "rb") as f:
        while f.read(1 << 24):
            pass

    def run_dynrule():
        # load + compile + evaluate all rules in one process; --timings splits the phases.
        cache = ["--cache", "on"] if args.cache else ["--no-cache"]
        p = subprocess.run([args.binary, "eval", "--users", data, "--rules", rules_file, "--count",
                            "--timings", "--now", NOW] + cache, capture_output=True, text=True, check=True)
        counts = [json.loads(l)["count"] for l in p.stdout.splitlines()]
        m = re.search(r"load ([\d.]+) ms.*evaluate ([\d.]+) ms", p.stderr)
        rss = re.search(r"peak resident (\d+) MB", p.stderr)  # Linux only
        return (float(m.group(1)) / 1e3, float(m.group(2)) / 1e3, counts,
                int(rss.group(1)) if rss else None)

    def run_duckdb():
        # read_json into a table, then one count(*) per rule.
        con = duckdb.connect()
        con.execute(f"SET threads TO {args.threads}")
        t0 = time.perf_counter()
        con.execute(f"CREATE TABLE users AS SELECT * FROM read_json('{data}', format='newline_delimited', maximum_object_size=1048576)")
        load = time.perf_counter() - t0
        counts = []
        t0 = time.perf_counter()
        for s in suite:
            counts.append(con.execute(f"SELECT count(*) FROM users WHERE {s['sql']}").fetchone()[0])
        evaluate = time.perf_counter() - t0
        con.close()
        return load, evaluate, counts

    dyn, duck = [], []
    for _ in range(max(1, args.repeat)):
        dyn.append(run_dynrule())
        duck.append(run_duckdb())
    dyn_counts, duck_counts = dyn[0][2], duck[0][2]

    bad = [(s["rule"], a, b) for s, a, b in zip(suite, dyn_counts, duck_counts) if a != b]
    bad += [("(runs disagree)", 0, 0)] if any(r[2] != dyn_counts for r in dyn + duck) else []
    for rule, a, b in bad:
        print(f"COUNT MISMATCH dynrule={a} duckdb={b}: {rule}", file=sys.stderr)
    n, r = args.users, len(suite)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    print(f"suite: {os.path.relpath(args.suite, ROOT)}; dynrule load: {'its cache' if args.cache else 'parsed'}")
    print(f"tenant: {n} users, {size_mb:.0f} MB JSON Lines; {r} rules; {args.threads} threads; "
          f"duckdb {duckdb.__version__}; {len(dyn)} runs each, alternating")
    for name, i in (("load", 0), ("evaluate", 1)):
        d, k = [x[i] for x in dyn], [x[i] for x in duck]
        print(f"{name:9} dynrule best {min(d):7.3f} s median {med(d):7.3f} s   "
              f"duckdb best {min(k):7.3f} s median {med(k):7.3f} s   "
              f"ratio best {min(k) / min(d):5.1f}x median {med(k) / med(d):5.1f}x")
    d_eval, k_eval = med([x[1] for x in dyn]), med([x[1] for x in duck])
    print(f"per user per rule (median): dynrule {d_eval / n / r * 1e9:.2f} ns, duckdb {k_eval / n / r * 1e9:.2f} ns")
    peaks = [x[3] for x in dyn if x[3] is not None]
    if peaks:
        print(f"dynrule peak resident memory (load + evaluate): {max(peaks)} MB")
    print("counts agree" if not bad else f"{len(bad)} count mismatches")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
