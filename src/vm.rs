//! The VM: evaluates [`Program`]s over a [`Table`] and returns one membership [`Bitmap`] per
//! program (bit `r` set when row `r` is a member).
//!
//! Two steps:
//! 1. **Bind** each program to the table. Every distinct leaf of all the programs is decided once
//!    per distinct value of its column (a string leaf gets a bitmap over the dictionary, a
//!    collection leaf over the element dictionary, an `assignedPlans` leaf over the plan sets),
//!    in parallel; so `-contains` or `-match` cost grows with distinct values, not rows (the
//!    substring tests of one column share one pass over its text, `vm/bulk.rs`). Leaves
//!    that are constant on this table (a column no record has, a value every row shares) fold
//!    away, and the code is re-emitted with short-circuit jumps.
//! 2. **Run** the bound code vector-at-a-time: rows in chunks of [`CHUNK_ROWS`], one rayon task
//!    per chunk, every program over the chunk while its columns are in cache. An instruction
//!    works on the whole chunk's bitmask (64 words); a leaf shared by several programs is
//!    computed once per chunk. Programs are immutable and shared; scratch space is per task.

use crate::bitmap::Bitmap;
use crate::program::{
    DateOp, Field, Instr, Leaf, ListSource, Node, Program, Source, StrPred, Sub, run_postfix,
};
use crate::table::{Column, ColumnKey, Dict, ListColumn, StrColumn, Table};
use rayon::prelude::*;
use std::collections::HashMap;

mod bulk;
use bulk::Bulk;

/// Words of 64 rows per chunk.
const WORDS: usize = 64;
/// Rows per chunk (4,096): a chunk's masks are 512 bytes each.
pub const CHUNK_ROWS: usize = WORDS * 64;

type Mask = [u64; WORDS];

/// A decided leaf: how to compute its mask on a chunk.
enum Kernel<'t> {
    /// `accept[codes[row]]`.
    Codes { codes: &'t [u32], accept: Bitmap },
    /// [`Kernel::Codes`] on a dictionary of at most 63 entries: `accept` is one word, no load
    /// per row.
    Small { codes: &'t [u32], accept: u64 },
    /// `codes[row] == 0` (null), or `!= 0` when `negated`: no lookup at all.
    Null { codes: &'t [u32], negated: bool },
    /// `table[null, false, true]`.
    Bools {
        value: &'t Bitmap,
        valid: &'t Bitmap,
        table: [bool; 3],
    },
    /// Dates against a constant.
    Dates {
        value: &'t [jiff::Timestamp],
        valid: &'t Bitmap,
        op: DateOp,
        negated: bool,
    },
    /// Any/all of a row's elements in `accept`.
    List {
        list: &'t ListColumn,
        accept: Bitmap,
        all: bool,
    },
}

/// Bound instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Kernel(u32),
    Const(bool),
    Not,
    And,
    Or,
    /// Skip the next `n` instructions when the top is all zeros (an `-and` already false).
    SkipIfNone(u32),
    /// Skip the next `n` instructions when the top is all ones (an `-or` already true).
    SkipIfAll(u32),
}

/// Programs bound to one table, ready to run.
pub struct Bound<'t> {
    table: &'t Table,
    kernels: Vec<Kernel<'t>>,
    code: Vec<Vec<Op>>,
}

/// What evaluation measured, for `--timings`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Stats {
    /// Distinct leaves across the programs.
    pub leaves: usize,
    /// Leaves that folded to a constant on this table.
    pub folded: usize,
    /// Kernels that run per chunk.
    pub kernels: usize,
    /// Milliseconds spent deciding leaves per distinct value.
    pub bind_ms: f64,
    /// Milliseconds spent running over the rows.
    pub run_ms: f64,
}

/// Per program, how many values its `-match` patterns left undecided (the backtracking
/// engine's limit, D9 and D63) in the evaluations so far: counted per pattern source over all
/// `programs`, since programs that share a leaf have it evaluated once, by one of them. Zero
/// for a program whose patterns all decided; an answer resting on one that is not cannot be
/// trusted.
pub fn undecided<P: std::borrow::Borrow<Program>>(programs: &[P]) -> Vec<u64> {
    let mut by_source: HashMap<&str, u64> = HashMap::new();
    for p in programs {
        for (src, pattern) in p.borrow().patterns() {
            *by_source.entry(src).or_default() += pattern.undecided();
        }
    }
    programs
        .iter()
        .map(|p| {
            let mut sources: Vec<&str> =
                p.borrow().patterns().into_iter().map(|(s, _)| s).collect();
            sources.sort_unstable();
            sources.dedup();
            sources
                .iter()
                .map(|s| by_source.get(s).copied().unwrap_or(0))
                .sum()
        })
        .collect()
}

/// Evaluates programs over a table: one membership bitmap per program, in order. Programs for
/// the other object type select nobody.
pub fn evaluate(programs: &[Program], table: &Table) -> Vec<Bitmap> {
    evaluate_with_stats(programs, table).0
}

/// [`evaluate`], also returning what it measured.
pub fn evaluate_with_stats(programs: &[Program], table: &Table) -> (Vec<Bitmap>, Stats) {
    let t0 = std::time::Instant::now();
    let (bound, mut stats) = bind(programs, table);
    stats.bind_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = std::time::Instant::now();
    let out = bound.run();
    stats.run_ms = t1.elapsed().as_secs_f64() * 1e3;
    (out, stats)
}

fn str_source<'t>(table: &'t Table, s: &Source) -> Option<&'t StrColumn> {
    match s {
        Source::Prop(p) => table.str_column(ColumnKey::Prop(p)),
        Source::Extension(n) => table.extension(n),
        Source::Manager => table.str_column(ColumnKey::Manager),
    }
}

fn list_source<'t>(table: &'t Table, s: &ListSource) -> Option<&'t ListColumn> {
    match s {
        ListSource::Prop(p) => match table.column(ColumnKey::Prop(p)) {
            Some(Column::List(l)) => Some(l),
            _ => None,
        },
        ListSource::MemberOf => table.member_of(),
    }
}

/// A test decided per dictionary value.
#[derive(Clone, Copy)]
enum ValueTest<'a> {
    /// A string predicate, negated or not.
    Str(&'a StrPred, bool),
    /// An element predicate of `-any`/`-all`.
    Sub(&'a Sub),
}

impl<'a> ValueTest<'a> {
    /// The test as one string comparison `(predicate, negated)`: a string leaf, or an element
    /// predicate that is a single comparison on `_` (the common shape).
    #[inline]
    fn single(self) -> Option<(&'a StrPred, bool)> {
        match self {
            ValueTest::Str(p, negated) => Some((p, negated)),
            ValueTest::Sub(sub) => match (sub.code.as_slice(), sub.leaves.as_slice()) {
                ([Instr::Leaf(0)], [leaf]) if leaf.field == Field::Element => {
                    Some((&leaf.pred, leaf.negated))
                }
                _ => None,
            },
        }
    }

    #[inline]
    fn eval(self, v: Option<(&str, &str)>, ascii: bool) -> bool {
        match (self.single(), self) {
            (Some((p, negated)), _) => p.test_flagged(v, ascii) != negated,
            (None, ValueTest::Sub(sub)) => sub.eval(|_| v),
            (None, ValueTest::Str(..)) => false,
        }
    }

    /// `(kind, needle, predicate, negated)` when this test can be decided in bulk (a string
    /// comparison with a non-empty ASCII literal).
    fn bulk(self) -> Option<(Bulk, &'a str, &'a StrPred, bool)> {
        let (pred, negated) = self.single()?;
        let (kind, x) = match pred {
            StrPred::Contains(x) => (Bulk::Contains, x),
            StrPred::StartsWith(x) => (Bulk::StartsWith, x),
            StrPred::EndsWith(x) => (Bulk::EndsWith, x),
            _ => return None,
        };
        (x.is_ascii() && !x.is_empty()).then_some((kind, x.as_str(), pred, negated))
    }
}

/// Decides several tests per dictionary code: bit 0 is null, bit `c` entry `c - 1`. One
/// bitmap per test. Tests with an ASCII literal (`-contains`, `-startsWith`, `-endsWith`) run
/// over the dictionary's text directly ([`bulk`]); the rest are
/// decided value by value in one pass.
fn decide_dict(dict: &Dict, tests: &[ValueTest<'_>]) -> Vec<Bitmap> {
    let n = dict.len();
    // `-match` with a literal every match contains: tested only on values holding it.
    let filtered: Vec<(usize, Vec<String>, &StrPred, bool)> = tests
        .iter()
        .enumerate()
        .filter(|(_, t)| t.bulk().is_none())
        .filter_map(|(i, t)| {
            let (pred, negated) = t.single()?;
            let StrPred::Match(_, src) = pred else {
                return None;
            };
            let literals = crate::pattern::required_literals(src);
            (!literals.is_empty()).then_some((i, literals, pred, negated))
        })
        .collect();
    let per_value: Vec<(usize, ValueTest<'_>)> = tests
        .iter()
        .enumerate()
        .filter(|(i, t)| t.bulk().is_none() && !filtered.iter().any(|f| f.0 == *i))
        .map(|(i, t)| (i, *t))
        .collect();
    let k = per_value.len();
    let words = (n + 1).div_ceil(64);
    let mut flat = vec![0u64; words * k];
    if k > 0 {
        flat.par_chunks_mut(k)
            .enumerate()
            .with_min_len(16)
            .for_each(|(w, out)| {
                for b in 0..64 {
                    let code = w * 64 + b;
                    if code > n {
                        break;
                    }
                    let v = code.checked_sub(1).map(|i| dict.text(i));
                    let ascii = v.is_some_and(|(_, t)| t.is_ascii());
                    for (word, (_, t)) in out.iter_mut().zip(&per_value) {
                        if t.eval(v, ascii) {
                            *word |= 1 << b;
                        }
                    }
                }
            });
    }
    let mut out: Vec<Option<Bitmap>> = (0..tests.len()).map(|_| None).collect();
    for (j, (i, _)) in per_value.iter().enumerate() {
        if let Some(slot) = out.get_mut(*i) {
            *slot = Some(Bitmap::from_words(
                flat.iter().skip(j).step_by(k).copied().collect(),
                n + 1,
            ));
        }
    }
    // One pass decides the bulk tests and the `-match` prefilters.
    let bulk: Vec<(usize, Bulk, &str, &StrPred, bool)> = tests
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.bulk().map(|(kind, x, pred, neg)| (i, kind, x, pred, neg)))
        .chain(filtered.iter().flat_map(|(i, lits, pred, neg)| {
            lits.iter()
                .map(move |l| (*i, Bulk::Contains, l.as_str(), *pred, *neg))
        }))
        .collect();
    let passes: Vec<(Bulk, &str)> = bulk.iter().map(|b| (b.1, b.2)).collect();
    let decided = bulk::decide(dict, &passes);
    // A pattern's literals (one pass each) narrow its candidates together: a value must hold
    // every one of them.
    let mut merged: Vec<((usize, &StrPred, bool), Bitmap)> = Vec::new();
    for (&(i, _, _, pred, negated), hits) in bulk.iter().zip(decided) {
        match merged.last_mut() {
            Some(((j, _, _), acc)) if *j == i && matches!(pred, StrPred::Match(..)) => {
                *acc = acc.and_not(&hits.not());
            }
            _ => merged.push(((i, pred, negated), hits)),
        }
    }
    let decided: Vec<(usize, Bitmap)> = merged
        .into_par_iter()
        .map(|((i, pred, negated), mut hits)| {
            if matches!(pred, StrPred::Match(..)) {
                // The pass found the candidates (values holding the pattern's literals): each
                // is tested, a word of candidates at a time.
                let words: Vec<u64> = hits
                    .words()
                    .par_iter()
                    .enumerate()
                    .with_min_len(64)
                    .map(|(wi, &w)| {
                        let (mut w, mut out) = (w, 0u64);
                        while w != 0 {
                            let b = w.trailing_zeros();
                            w &= w - 1;
                            let code = wi * 64 + b as usize;
                            if code > 0 && pred.test(Some(dict.text(code - 1))) {
                                out |= 1 << b;
                            }
                        }
                        out
                    })
                    .collect();
                hits = Bitmap::from_words(words, n + 1);
            }
            // Non-ASCII values compare by their folded form, value by value.
            for e in dict.unicode_entries() {
                hits.set(e + 1, pred.test(Some(dict.text(e))));
            }
            (i, if negated { hits.not() } else { hits })
        })
        .collect();
    for (i, b) in decided {
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(b);
        }
    }
    out.into_iter().map(Option::unwrap_or_default).collect()
}

/// A leaf decided on this table: a kernel, or a constant.
enum Decided<'t> {
    Const(bool),
    Kernel(Kernel<'t>),
}

fn decide<'t>(leaf: &Leaf, table: &'t Table) -> Decided<'t> {
    let rows = table.len();
    match leaf {
        Leaf::Str {
            source,
            pred,
            negated,
        } => {
            let Some(col) = str_source(table, source).filter(|c| !c.codes.is_empty()) else {
                return Decided::Const(pred.test(None) != *negated);
            };
            if let StrPred::IsNull = pred {
                let mut accept = if *negated {
                    Bitmap::ones(col.dict.len() + 1)
                } else {
                    Bitmap::zeros(col.dict.len() + 1)
                };
                accept.set(0, !*negated);
                return str_decided(col, accept);
            }
            decide_str_group(col, &[(0, pred, *negated)])
                .pop()
                .map_or(Decided::Const(false), |(_, d)| d)
        }
        Leaf::Bool { prop, table: tt } => match table.column(ColumnKey::Prop(prop)) {
            Some(Column::Bool(b)) if rows > 0 => {
                if tt[0] == tt[1] && tt[1] == tt[2] {
                    return Decided::Const(tt[0]);
                }
                Decided::Kernel(Kernel::Bools {
                    value: &b.value,
                    valid: &b.valid,
                    table: *tt,
                })
            }
            _ => Decided::Const(tt[0]),
        },
        Leaf::Date { prop, op, negated } => match table.column(ColumnKey::Prop(prop)) {
            Some(Column::Date(d)) if d.valid.count_ones() > 0 => Decided::Kernel(Kernel::Dates {
                value: &d.value,
                valid: &d.valid,
                op: *op,
                negated: *negated,
            }),
            _ => Decided::Const(op.test(None) != *negated),
        },
        Leaf::Strings { source, all, pred } => {
            let Some(list) = list_source(table, source).filter(|l| !l.values.is_empty()) else {
                // Every row's collection is empty.
                return Decided::Const(*all);
            };
            decide_list_group(list, &[(0, pred, *all)])
                .pop()
                .map_or(Decided::Const(false), |(_, d)| d)
        }
        Leaf::Plans { all, pred } => {
            let Some(Column::Plans(pc)) = table.column(ColumnKey::Prop("assignedPlans")) else {
                return Decided::Const(*all);
            };
            let sets = &pc.sets;
            let leaves = plan_leaves(pred, sets);
            let eval = |p: [u32; 3]| {
                run_postfix(&pred.code, |i| {
                    leaves.get(i as usize).is_some_and(|(field, accept)| {
                        accept.get(p.get(*field).copied().unwrap_or(0) as usize)
                    })
                })
            };
            let decided: Vec<bool> = (0..sets.len())
                .into_par_iter()
                .with_min_len(1024)
                .map(|s| {
                    if *all {
                        sets.plans(s).all(eval)
                    } else {
                        sets.plans(s).any(eval)
                    }
                })
                .collect();
            let accept: Bitmap = decided.into_iter().collect();
            if let Some(c) = accept.uniform() {
                return Decided::Const(c);
            }
            Decided::Kernel(Kernel::Codes {
                codes: &pc.set_codes,
                accept,
            })
        }
    }
}

/// Each leaf of an `assignedPlan` predicate decided once per code of the field it reads:
/// `(field, accept)` with bit 0 for null, bit `c` for entry `c - 1` of that field's dictionary.
/// Plans are then decided with bit lookups, no string comparison per plan.
fn plan_leaves(pred: &Sub, sets: &crate::table::PlanSets) -> Vec<(usize, Bitmap)> {
    pred.leaves
        .iter()
        .map(|l| {
            let dict = match l.field {
                Field::Plan(f) => sets.dicts.get(f).map(|d| (f, d)),
                Field::Element => None,
            };
            match dict {
                Some((f, dict)) => (
                    f,
                    (0..=dict.len())
                        .map(|c| l.pred.test(c.checked_sub(1).map(|e| dict.text(e))) != l.negated)
                        .collect(),
                ),
                // Reads nothing on a plan: null, whatever the plan (no field `usize::MAX`).
                None => (
                    usize::MAX,
                    std::iter::once(l.pred.test(None) != l.negated).collect(),
                ),
            }
        })
        .collect()
}

/// A string leaf's constant, when every code present decides the same.
fn str_decided<'t>(col: &'t StrColumn, accept: Bitmap) -> Decided<'t> {
    let n = col.dict.len();
    let ones = accept.count_ones() - usize::from(accept.get(0));
    let first = accept.get(1);
    let values_uniform = ones == 0 || ones == n;
    if values_uniform && (!col.has_null || accept.get(0) == first) {
        return Decided::Const(first);
    }
    let codes = &col.codes;
    if values_uniform {
        // Only nullness decides.
        return Decided::Kernel(Kernel::Null {
            codes,
            negated: first,
        });
    }
    match accept.words() {
        [word] => Decided::Kernel(Kernel::Small {
            codes,
            accept: *word,
        }),
        _ => Decided::Kernel(Kernel::Codes { codes, accept }),
    }
}

/// Binds programs to a table (step 1 of the module docs).
fn bind<'t>(programs: &[Program], table: &'t Table) -> (Bound<'t>, Stats) {
    // Distinct leaves across programs.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut distinct: Vec<&Leaf> = Vec::new();
    let maps: Vec<Vec<usize>> = programs
        .iter()
        .map(|p| {
            p.leaves
                .iter()
                .map(|l| {
                    *index.entry(l.key()).or_insert_with(|| {
                        distinct.push(l);
                        distinct.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    let decided = decide_all(&distinct, table);
    let mut stats = Stats {
        leaves: distinct.len(),
        ..Stats::default()
    };
    let mut kernels = Vec::new();
    let mut kernel_of: Vec<Option<u32>> = Vec::with_capacity(decided.len());
    let mut consts: Vec<Option<bool>> = Vec::with_capacity(decided.len());
    for d in decided {
        match d {
            Decided::Const(b) => {
                stats.folded += 1;
                kernel_of.push(None);
                consts.push(Some(b));
            }
            Decided::Kernel(k) => {
                kernel_of.push(Some(kernels.len() as u32));
                consts.push(None);
                kernels.push(k);
            }
        }
    }
    stats.kernels = kernels.len();
    let code = programs
        .iter()
        .zip(&maps)
        .map(|(p, map)| {
            if p.object != table.object() {
                return vec![Op::Const(false)];
            }
            let global = |n: u32| map.get(n as usize).copied();
            let node = Node::decode(&p.code)
                .substitute(&|n| global(n).and_then(|g| consts.get(g).copied().flatten()))
                .simplify();
            let mut out = Vec::new();
            emit(
                &node,
                &|n| {
                    global(n)
                        .and_then(|g| kernel_of.get(g).copied().flatten())
                        .unwrap_or(0)
                },
                &mut out,
            );
            out
        })
        .collect();
    (
        Bound {
            table,
            kernels,
            code,
        },
        stats,
    )
}

/// Decides every distinct leaf: string leaves on one column together (each entry folded once),
/// the rest one by one; groups in parallel.
fn decide_all<'t>(leaves: &[&Leaf], table: &'t Table) -> Vec<Decided<'t>> {
    let mut groups: HashMap<&Source, Vec<usize>> = HashMap::new();
    let mut lists: HashMap<&ListSource, Vec<usize>> = HashMap::new();
    let mut singles = Vec::new();
    for (i, l) in leaves.iter().enumerate() {
        match l {
            // `-eq null` needs no look at the values.
            Leaf::Str {
                pred: StrPred::IsNull,
                ..
            } => singles.push(i),
            Leaf::Str { source, .. }
                if str_source(table, source).is_some_and(|c| !c.codes.is_empty()) =>
            {
                groups.entry(source).or_default().push(i);
            }
            Leaf::Strings { source, .. }
                if list_source(table, source).is_some_and(|l| !l.values.is_empty()) =>
            {
                lists.entry(source).or_default().push(i);
            }
            _ => singles.push(i),
        }
    }
    let mut jobs: Vec<Vec<usize>> = groups.into_values().collect();
    jobs.extend(lists.into_values());
    jobs.extend(singles.into_iter().map(|i| vec![i]));
    let done: Vec<Vec<(usize, Decided<'t>)>> = jobs
        .par_iter()
        .map(|job| {
            let first = job.first().and_then(|&i| leaves.get(i));
            match first {
                Some(Leaf::Str { source, .. }) if job.len() > 1 => {
                    let Some(col) = str_source(table, source) else {
                        return Vec::new();
                    };
                    let members: Vec<(usize, &StrPred, bool)> = job
                        .iter()
                        .filter_map(|&i| match leaves.get(i) {
                            Some(Leaf::Str { pred, negated, .. }) => Some((i, pred, *negated)),
                            _ => None,
                        })
                        .collect();
                    decide_str_group(col, &members)
                }
                Some(Leaf::Strings { source, .. }) if job.len() > 1 => {
                    let Some(list) = list_source(table, source) else {
                        return Vec::new();
                    };
                    let members: Vec<(usize, &Sub, bool)> = job
                        .iter()
                        .filter_map(|&i| match leaves.get(i) {
                            Some(Leaf::Strings { pred, all, .. }) => Some((i, pred, *all)),
                            _ => None,
                        })
                        .collect();
                    decide_list_group(list, &members)
                }
                _ => job
                    .iter()
                    .filter_map(|&i| leaves.get(i).map(|l| (i, decide(l, table))))
                    .collect(),
            }
        })
        .collect();
    let mut out: Vec<Option<Decided<'t>>> = (0..leaves.len()).map(|_| None).collect();
    for (i, d) in done.into_iter().flatten() {
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(d);
        }
    }
    out.into_iter()
        .map(|d| d.unwrap_or(Decided::Const(false)))
        .collect()
}

/// Decides string leaves `(index, predicate, negated)` on one column in one pass. A predicate
/// and its negation (`-contains`, `-notContains`) are decided once; the negation is the
/// complement.
fn decide_str_group<'t>(
    col: &'t StrColumn,
    members: &[(usize, &StrPred, bool)],
) -> Vec<(usize, Decided<'t>)> {
    let mut keys: Vec<String> = Vec::new();
    let mut tests: Vec<ValueTest<'_>> = Vec::new();
    let mut uses: Vec<(usize, usize, bool)> = Vec::new();
    for &(i, pred, negated) in members {
        let mut k = String::new();
        pred.key(&mut k);
        let u = keys.iter().position(|x| *x == k).unwrap_or_else(|| {
            keys.push(k);
            tests.push(ValueTest::Str(pred, false));
            tests.len() - 1
        });
        uses.push((i, u, negated));
    }
    let bitmaps = decide_dict(&col.dict, &tests);
    uses.into_iter()
        .filter_map(|(i, u, negated)| {
            let b = bitmaps.get(u)?;
            let accept = if negated { b.not() } else { b.clone() };
            Some((i, str_decided(col, accept)))
        })
        .collect()
}

/// Decides `-any`/`-all` leaves `(index, element predicate, all)` on one collection in one
/// pass over its element dictionary.
fn decide_list_group<'t>(
    list: &'t ListColumn,
    members: &[(usize, &Sub, bool)],
) -> Vec<(usize, Decided<'t>)> {
    let tests: Vec<ValueTest<'_>> = members.iter().map(|&(_, p, _)| ValueTest::Sub(p)).collect();
    let bitmaps = decide_dict(&list.dict, &tests);
    members
        .iter()
        .zip(bitmaps)
        .map(|(&(i, _, all), accept)| (i, Decided::Kernel(Kernel::List { list, accept, all })))
        .collect()
}

/// Emits bound code with short-circuit skips.
fn emit(node: &Node, kernel: &impl Fn(u32) -> u32, out: &mut Vec<Op>) {
    match node {
        Node::Const(b) => out.push(Op::Const(*b)),
        Node::Leaf(n) => out.push(Op::Kernel(kernel(*n))),
        Node::Not(x) => {
            emit(x, kernel, out);
            out.push(Op::Not);
        }
        Node::And(xs) | Node::Or(xs) => {
            let and = matches!(node, Node::And(_));
            for (i, x) in xs.iter().enumerate() {
                if i == 0 {
                    emit(x, kernel, out);
                    continue;
                }
                let mut part = Vec::new();
                emit(x, kernel, &mut part);
                part.push(if and { Op::And } else { Op::Or });
                let n = part.len() as u32;
                out.push(if and {
                    Op::SkipIfNone(n)
                } else {
                    Op::SkipIfAll(n)
                });
                out.extend(part);
            }
        }
    }
}

#[inline]
fn bit(words: &[u64], i: usize) -> u64 {
    words.get(i >> 6).map_or(0, |w| (w >> (i & 63)) & 1)
}

impl Kernel<'_> {
    /// Computes rows `start..end` (at most [`CHUNK_ROWS`]) into `out`.
    fn run(&self, start: usize, end: usize, out: &mut Mask) {
        match self {
            Kernel::Codes { codes, accept } => {
                let acc = accept.words();
                code_mask(codes, start, end, out, |c| bit(acc, c as usize) == 1);
            }
            Kernel::Small { codes, accept } => {
                code_mask(codes, start, end, out, |c| (accept >> (c & 63)) & 1 == 1);
            }
            Kernel::Null { codes, negated } => {
                code_mask(codes, start, end, out, |c| c == 0);
                if *negated {
                    // Bits past the chunk's rows are never read.
                    out.iter_mut().for_each(|w| *w = !*w);
                }
            }
            Kernel::Bools {
                value,
                valid,
                table,
            } => {
                let (vw, dw) = (value.words(), valid.words());
                let first = start / 64;
                for (i, w) in out.iter_mut().enumerate() {
                    let v = vw.get(first + i).copied().unwrap_or(0);
                    let d = dw.get(first + i).copied().unwrap_or(0);
                    let pick = |b: bool, m: u64| if b { m } else { 0 };
                    *w = pick(table[0], !d) | pick(table[1], d & !v) | pick(table[2], d & v);
                }
            }
            Kernel::Dates {
                value,
                valid,
                op,
                negated,
            } => {
                // Compared as they are, then masked by validity (null: only `-eq null`).
                let vals = value.get(start..end).unwrap_or(&[]);
                let dw = valid.words();
                let flip = if *negated { u64::MAX } else { 0 };
                for (wi, w) in out.iter_mut().enumerate() {
                    let chunk = vals.get(wi * 64..).unwrap_or(&[]);
                    let chunk = chunk.get(..64).unwrap_or(chunk);
                    let d = dw.get(start / 64 + wi).copied().unwrap_or(0);
                    let r = match *op {
                        DateOp::IsNull => !d,
                        DateOp::Eq(t) => d & mask64(chunk, |v| v == t),
                        DateOp::Ge(t) => d & mask64(chunk, |v| v >= t),
                        DateOp::Le(t) => d & mask64(chunk, |v| v <= t),
                    };
                    // Bits past the chunk's rows are never read.
                    *w = r ^ flip;
                }
            }
            Kernel::List { list, accept, all } => {
                // A running count of accepted elements over the chunk's elements, then per row
                // the count in its range against its length: no branch per row or element.
                let acc = accept.words();
                let offsets = list.offsets.get(start..=end).unwrap_or(&[]);
                let base = offsets.first().copied().unwrap_or(0) as usize;
                let last = offsets.last().copied().unwrap_or(0) as usize;
                let elements = list.values.get(base..last).unwrap_or(&[]);
                let mut counts = Vec::with_capacity(elements.len() + 1);
                let mut n = 0u32;
                counts.push(0);
                for &c in elements {
                    n += bit(acc, c as usize) as u32;
                    counts.push(n);
                }
                let count = |o: u32| {
                    counts
                        .get((o as usize).wrapping_sub(base))
                        .copied()
                        .unwrap_or(0)
                };
                for (wi, w) in out.iter_mut().enumerate() {
                    let rows = offsets.get(wi * 64..).unwrap_or(&[]);
                    let mut m = 0u64;
                    for (b, pair) in rows.windows(2).take(64).enumerate() {
                        let (s, z) = (pair.first().copied(), pair.last().copied());
                        let (s, z) = (s.unwrap_or(0), z.unwrap_or(0));
                        let hits = count(z).wrapping_sub(count(s));
                        let r = if *all {
                            hits == z.wrapping_sub(s)
                        } else {
                            hits > 0
                        };
                        m |= u64::from(r) << b;
                    }
                    *w = m;
                }
            }
        }
    }
}

/// Rows `start..end` of `codes` into `out`, 64 to a word: bit set where `test` holds.
#[inline(always)]
fn code_mask(codes: &[u32], start: usize, end: usize, out: &mut Mask, test: impl Fn(u32) -> bool) {
    let codes = codes.get(start..end).unwrap_or(&[]);
    for (w, chunk) in out
        .iter_mut()
        .zip(codes.chunks(64).chain(std::iter::repeat(&[][..])))
    {
        *w = mask64(chunk, &test);
    }
}

/// Up to 64 values tested, bit `b` set where `test(xs[b])`.
#[inline(always)]
fn mask64<T: Copy>(xs: &[T], test: impl Fn(T) -> bool) -> u64 {
    let mut m = 0u64;
    for (b, &x) in xs.iter().enumerate() {
        m |= u64::from(test(x)) << b;
    }
    m
}

/// Per-task scratch: the mask stack and the per-chunk kernel cache. Masks are boxed so they
/// move between the stack, the free list and the results without copying 512 bytes.
#[allow(clippy::vec_box)]
struct Scratch {
    stack: Vec<Box<Mask>>,
    free: Vec<Box<Mask>>,
    cache: Vec<Box<Mask>>,
    cached_at: Vec<usize>,
}

impl Scratch {
    fn new(kernels: usize) -> Scratch {
        Scratch {
            stack: Vec::new(),
            free: Vec::new(),
            cache: (0..kernels).map(|_| Box::new([0u64; WORDS])).collect(),
            cached_at: vec![usize::MAX; kernels],
        }
    }

    fn fresh(&mut self) -> Box<Mask> {
        self.free.pop().unwrap_or_else(|| Box::new([0u64; WORDS]))
    }
}

impl Bound<'_> {
    /// Every program over every row: chunks of [`CHUNK_ROWS`] rows in parallel, each chunk's
    /// masks written straight into the programs' bitmaps (a chunk owns its words of every
    /// bitmap), so the results are never held twice and no mask is allocated per result.
    fn run(&self) -> Vec<Bitmap> {
        let rows = self.table.len();
        let words = rows.div_ceil(64);
        let mut out: Vec<Vec<u64>> = (0..self.code.len()).map(|_| vec![0u64; words]).collect();
        {
            // [chunk][program] → that chunk's words of that program's bitmap.
            let chunks = rows.div_ceil(CHUNK_ROWS);
            let mut parts: Vec<Vec<&mut [u64]>> = (0..chunks)
                .map(|_| Vec::with_capacity(self.code.len()))
                .collect();
            for bitmap in &mut out {
                for (part, words) in parts.iter_mut().zip(bitmap.chunks_mut(WORDS)) {
                    part.push(words);
                }
            }
            parts.into_par_iter().enumerate().for_each_init(
                || Scratch::new(self.kernels.len()),
                |s, (ci, mut dest)| {
                    let start = ci * CHUNK_ROWS;
                    let end = (start + CHUNK_ROWS).min(rows);
                    for (code, d) in self.code.iter().zip(dest.iter_mut()) {
                        let m = self.run_one(code, ci, start, end, s);
                        let n = d.len();
                        d.copy_from_slice(m.get(..n).unwrap_or(&m[..]));
                        s.free.push(m);
                    }
                },
            );
        }
        out.into_iter()
            .map(|w| Bitmap::from_words(w, rows))
            .collect()
    }

    fn run_one(
        &self,
        code: &[Op],
        ci: usize,
        start: usize,
        end: usize,
        s: &mut Scratch,
    ) -> Box<Mask> {
        let used = (end - start).div_ceil(64);
        let mut pc = 0usize;
        while let Some(op) = code.get(pc) {
            pc += 1;
            match *op {
                Op::Kernel(k) => {
                    let k = k as usize;
                    let mut m = s.fresh();
                    if s.cached_at.get(k) != Some(&ci) {
                        if let (Some(kernel), Some(slot)) =
                            (self.kernels.get(k), s.cache.get_mut(k))
                        {
                            kernel.run(start, end, slot);
                        }
                        if let Some(c) = s.cached_at.get_mut(k) {
                            *c = ci;
                        }
                    }
                    if let Some(c) = s.cache.get(k) {
                        *m = **c;
                    }
                    s.stack.push(m);
                }
                Op::Const(b) => {
                    let mut m = s.fresh();
                    m.fill(if b { u64::MAX } else { 0 });
                    s.stack.push(m);
                }
                Op::Not => {
                    if let Some(t) = s.stack.last_mut() {
                        t.iter_mut().for_each(|w| *w = !*w);
                    }
                }
                Op::And | Op::Or => {
                    let Some(b) = s.stack.pop() else { continue };
                    if let Some(a) = s.stack.last_mut() {
                        if *op == Op::And {
                            a.iter_mut().zip(b.iter()).for_each(|(x, y)| *x &= y);
                        } else {
                            a.iter_mut().zip(b.iter()).for_each(|(x, y)| *x |= y);
                        }
                    }
                    s.free.push(b);
                }
                Op::SkipIfNone(n) => {
                    if s.stack
                        .last()
                        .is_some_and(|t| t.iter().take(used).all(|&w| w == 0))
                    {
                        pc += n as usize;
                    }
                }
                Op::SkipIfAll(n) => {
                    let full = |t: &Mask| {
                        t.iter().take(used).enumerate().all(|(i, &w)| {
                            let live = (end - start).saturating_sub(i * 64).min(64);
                            let want = if live == 64 {
                                u64::MAX
                            } else {
                                (1u64 << live) - 1
                            };
                            w & want == want
                        })
                    };
                    if s.stack.last().is_some_and(|t| full(t)) {
                        pc += n as usize;
                    }
                }
            }
        }
        let out = s.stack.pop().unwrap_or_else(|| Box::new([0u64; WORDS]));
        while let Some(x) = s.stack.pop() {
            s.free.push(x);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ObjectType;

    /// The whole-text passes agree with testing each value, for every needle cut from the
    /// values and from across their boundaries, including non-ASCII values.
    #[test]
    fn bulk_passes_match_per_value() {
        let values = [
            "ab",
            "cab",
            "xa",
            "bx",
            "",
            "ABC",
            "aab",
            "smtp:x@contoso.com",
            "\u{212A}elvin",
            "kelvin",
            "co-op",
            "a-b-c",
            "zz",
        ];
        let users: Vec<serde_json::Value> = values
            .iter()
            .enumerate()
            .map(|(i, v)| serde_json::json!({"id": format!("u{i}"), "department": v}))
            .chain(std::iter::once(serde_json::json!({"id": "null"})))
            .collect();
        let table = crate::load::table_from_values(&users, ObjectType::User).expect("table");
        let col = table
            .str_column(crate::table::ColumnKey::Prop("department"))
            .expect("column");
        let joined: String = values.concat().to_ascii_lowercase();
        let mut needles: Vec<String> = Vec::new();
        for i in 0..joined.len() {
            for j in i + 1..=(i + 4).min(joined.len()) {
                if let Some(n) = joined.get(i..j) {
                    needles.push(n.to_string());
                }
            }
        }
        needles.extend(["kelvin", "elvin", "co-op", "-"].map(String::from));
        for needle in needles.iter().filter(|n| n.is_ascii() && !n.is_empty()) {
            let preds = [
                StrPred::Contains(needle.clone()),
                StrPred::StartsWith(needle.clone()),
                StrPred::EndsWith(needle.clone()),
            ];
            let tests: Vec<ValueTest<'_>> =
                preds.iter().map(|p| ValueTest::Str(p, false)).collect();
            assert!(tests.iter().all(|t| t.bulk().is_some()), "decided in bulk");
            for (got, pred) in decide_dict(&col.dict, &tests).iter().zip(&preds) {
                for i in 0..col.dict.len() {
                    let want = pred.test(Some(col.dict.text(i)));
                    assert_eq!(got.get(i + 1), want, "{pred:?} on {:?}", col.dict.get(i));
                }
                assert!(!got.get(0), "null never matches");
            }
        }
        // `-match` through the literal prefilter agrees with testing every value.
        for src in [
            "^k.*n$",
            "elvin",
            "(?:a|c)ab?",
            "co-?op",
            "^smtp:.*contoso",
            "b[x-z]",
            "A.C",
        ] {
            let pattern = crate::pattern::Pattern::new(src).expect("pattern");
            let pred = StrPred::Match(pattern, src.to_string());
            let tests = [ValueTest::Str(&pred, false), ValueTest::Str(&pred, true)];
            let got = decide_dict(&col.dict, &tests);
            for i in 0..col.dict.len() {
                let want = pred.test(Some(col.dict.text(i)));
                assert_eq!(got[0].get(i + 1), want, "{src} on {:?}", col.dict.get(i));
                assert_eq!(
                    got[1].get(i + 1),
                    !want,
                    "not {src} on {:?}",
                    col.dict.get(i)
                );
            }
            assert!(
                !got[0].get(0) && got[1].get(0),
                "null: -match false, -notMatch true"
            );
        }
    }
}
