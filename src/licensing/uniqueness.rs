//! Duplicate proxy addresses, for `UniquenessViolation` (licensing-groups-resolve-problems,
//! "duplicate proxy addresses").

use crate::table::{Column, ColumnKey, ListColumn};
use crate::tenant::Tenant;
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};

/// SMTP addresses (`smtp:` prefix dropped, compared in lower case) that appear on more than one
/// user: their hashes, and the exact addresses behind those hashes.
#[derive(Default)]
pub(super) struct Duplicates {
    hashes: HashSet<u64>,
    exact: HashSet<String>,
}

impl Duplicates {
    /// Row `row` has an SMTP address another user has too.
    pub(super) fn has_duplicate(&self, col: &ListColumn, row: usize) -> bool {
        if self.exact.is_empty() {
            return false;
        }
        col.codes(row).iter().any(|&c| {
            col.value(c).and_then(smtp_part).is_some_and(|a| {
                self.hashes.contains(&address_hash(a))
                    && self.exact.contains(&a.trim().to_lowercase())
            })
        })
    }
}

fn address_hash(addr: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for c in addr.trim().chars().flat_map(char::to_lowercase) {
        c.hash(&mut h);
    }
    h.finish()
}

fn smtp_part(v: &str) -> Option<&str> {
    let (prefix, addr) = v.split_once(':')?;
    prefix.eq_ignore_ascii_case("smtp").then_some(addr)
}

/// The tenant's duplicate addresses, in two passes: hashes of every address without
/// allocating, then the exact (lower-cased) text only of addresses whose hash repeats, so a hash
/// collision never reports a duplicate. Empty when no mailbox plan is tracked.
pub(super) fn duplicate_addresses(tenant: &Tenant) -> Duplicates {
    if tenant.rules.mailbox_plans.is_empty() {
        return Duplicates::default();
    }
    let Some(Column::List(col)) = tenant.users.column(ColumnKey::Prop("proxyAddresses")) else {
        return Duplicates::default();
    };
    let mut all: Vec<(u64, u32)> = (0..tenant.users.len())
        .into_par_iter()
        .flat_map_iter(|row| {
            col.codes(row)
                .iter()
                .filter_map(move |&c| {
                    col.value(c)
                        .and_then(smtp_part)
                        .map(|a| (address_hash(a), row as u32))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    all.par_sort_unstable();
    all.dedup();
    let hashes: HashSet<u64> = all
        .windows(2)
        .filter_map(|w| match w {
            [(a, _), (b, _)] if a == b => Some(*a),
            _ => None,
        })
        .collect();
    let mut rows_of: HashMap<String, BTreeSet<u32>> = HashMap::new();
    for &(h, row) in &all {
        if !hashes.contains(&h) {
            continue;
        }
        for &c in col.codes(row as usize) {
            if let Some(a) = col.value(c).and_then(smtp_part) {
                if address_hash(a) == h {
                    rows_of
                        .entry(a.trim().to_lowercase())
                        .or_default()
                        .insert(row);
                }
            }
        }
    }
    let exact = rows_of
        .into_iter()
        .filter(|(_, rows)| rows.len() > 1)
        .map(|(a, _)| a)
        .collect();
    Duplicates { hashes, exact }
}
