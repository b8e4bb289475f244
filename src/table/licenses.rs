//! The `assignedLicenses` and `licenseAssignmentStates` columns: a distinct entry list per row.

use super::*;

/// One licence entry of a user: an `assignedLicense` (`skuId`, `disabledPlans`) or a
/// `licenseAssignmentState` (those two plus `assignedByGroup`, `state`, `error`), as Graph's
/// user resource returns them. GUIDs are lower-cased, `disabledPlans` sorted and deduplicated,
/// and an `error` of `"None"` (what Microsoft's own examples write on success) is read as `None`
/// like Graph's documented `null`. `lastUpdatedDateTime` is not kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LicenseEntry {
    /// `skuId`.
    pub sku_id: String,
    /// `disabledPlans`: service-plan ids turned off in this assignment.
    pub disabled_plans: Vec<String>,
    /// `assignedByGroup`: the group the licence is inherited from; `None` for a direct
    /// assignment (and for `assignedLicenses`, which do not say).
    pub assigned_by_group: Option<String>,
    /// `state`: `Active`, `ActiveWithError`, `Disabled` or `Error` (`None` for `assignedLicenses`).
    pub state: Option<String>,
    /// `error`: `CountViolation`, `MutuallyExclusiveViolation`, …; `None` when there is none.
    pub error: Option<String>,
}

/// A licence entry as the loaders read it, borrowing from the input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LicenseCell<'a> {
    /// `skuId`.
    pub sku_id: Option<Cow<'a, str>>,
    /// `disabledPlans`.
    pub disabled_plans: Vec<Cow<'a, str>>,
    /// `assignedByGroup`.
    pub assigned_by_group: Option<Cow<'a, str>>,
    /// `state`.
    pub state: Option<Cow<'a, str>>,
    /// `error`.
    pub error: Option<Cow<'a, str>>,
}

impl LicenseCell<'_> {
    pub(super) fn entry(&self) -> LicenseEntry {
        let lower = |s: &Cow<'_, str>| s.trim().to_ascii_lowercase();
        let mut disabled: Vec<String> = self.disabled_plans.iter().map(lower).collect();
        disabled.sort_unstable();
        disabled.dedup();
        LicenseEntry {
            sku_id: self.sku_id.as_ref().map(lower).unwrap_or_default(),
            disabled_plans: disabled,
            assigned_by_group: self
                .assigned_by_group
                .as_ref()
                .map(lower)
                .filter(|g| !g.is_empty()),
            state: self.state.as_ref().map(|s| s.trim().to_string()),
            error: self
                .error
                .as_ref()
                .map(|s| s.trim().to_string())
                .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("none")),
        }
    }
}

/// `assignedLicenses` or `licenseAssignmentStates`: per row a code into `sets`. Set 0 is "no
/// value" (the key was missing or null), so an export without the field can be told from a
/// user with no licences (an empty set, code 1 or above).
#[derive(Clone, Debug, Default)]
pub struct LicenseColumn {
    /// Per row, an index into `sets`.
    pub(crate) set_codes: Vec<u32>,
    /// The distinct entry lists, each sorted.
    pub(crate) sets: Vec<Vec<LicenseEntry>>,
}

impl LicenseColumn {
    /// The entries of `row`; `None` when the row had no value.
    pub fn get(&self, row: usize) -> Option<&[LicenseEntry]> {
        match self.set_codes.get(row).copied().unwrap_or(0) {
            0 => None,
            c => self.sets.get(c as usize).map(Vec::as_slice),
        }
    }

    /// The position of row `row`'s list in [`LicenseColumn::lists`]; `None` when the row had no
    /// value. Rows with equal lists share one position.
    pub fn list_code(&self, row: usize) -> Option<usize> {
        match self.set_codes.get(row).copied().unwrap_or(0) {
            0 => None,
            c => Some(c as usize),
        }
    }

    /// The distinct entry lists, each sorted (position 0, no value, is empty).
    pub fn lists(&self) -> &[Vec<LicenseEntry>] {
        &self.sets
    }
}

#[derive(Default)]
pub(super) struct LicenseBuilder {
    pub(super) set_codes: Vec<u32>,
    pub(super) index: hashbrown::HashMap<Vec<LicenseEntry>, u32>,
    pub(super) sets: Vec<Vec<LicenseEntry>>,
}

impl LicenseBuilder {
    pub(super) fn push(&mut self, cell: Option<&[LicenseCell<'_>]>) {
        let Some(cells) = cell else {
            self.set_codes.push(0);
            return;
        };
        let mut key: Vec<LicenseEntry> = cells.iter().map(LicenseCell::entry).collect();
        key.sort_unstable();
        let code = self.set_code(key);
        self.set_codes.push(code);
    }

    /// The code (1 or above) of entry list `key` (sorted), adding it when new.
    pub(super) fn set_code(&mut self, key: Vec<LicenseEntry>) -> u32 {
        if self.sets.is_empty() {
            // Set 0: no value.
            self.sets.push(Vec::new());
        }
        let next = self.sets.len() as u32;
        *self.index.entry(key).or_insert_with_key(|k| {
            self.sets.push(k.clone());
            next
        })
    }

    /// Appends the rows of `part`, interning its entry lists here.
    pub(super) fn append(&mut self, part: LicenseBuilder) {
        let mut map = Vec::with_capacity(part.sets.len().max(1));
        map.push(0);
        for key in part.sets.into_iter().skip(1) {
            map.push(self.set_code(key));
        }
        self.set_codes
            .extend(part.set_codes.iter().map(|&c| remap(&map, c)));
    }

    pub(super) fn finish(mut self) -> LicenseColumn {
        if self.sets.is_empty() {
            self.sets.push(Vec::new());
        }
        LicenseColumn {
            set_codes: shrunk(self.set_codes),
            sets: self.sets,
        }
    }
}
