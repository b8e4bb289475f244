//! The `assignedPlans` column: plan sets (struct of arrays) and a plan-set code per row.

use super::*;

/// Distinct `assignedPlans` lists, struct-of-arrays: set `s` is plans
/// `offsets[s]..offsets[s + 1]`, each plan's fields codes into the three dictionaries (0 null).
/// Set 0 is the empty set (no plans, or a null `assignedPlans`).
#[derive(Clone, Debug, Default)]
pub struct PlanSets {
    /// `sets + 1` offsets.
    pub(crate) offsets: Vec<u32>,
    /// `assignedPlan.servicePlanId` codes.
    pub(crate) service_plan_id: Vec<u32>,
    /// `assignedPlan.service` codes.
    pub(crate) service: Vec<u32>,
    /// `assignedPlan.capabilityStatus` codes.
    pub(crate) capability_status: Vec<u32>,
    /// Dictionaries of the three fields, in that order.
    pub(crate) dicts: [Dict; 3],
}

impl PlanSets {
    /// Number of distinct sets (the empty set included).
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when there is no set at all (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plans of set `s` as codes `[servicePlanId, service, capabilityStatus]`.
    pub fn plans(&self, s: usize) -> impl Iterator<Item = [u32; 3]> + '_ {
        let a = self.offsets.get(s).copied().unwrap_or(0) as usize;
        let b = self.offsets.get(s + 1).copied().unwrap_or(0) as usize;
        (a..b).map(move |i| {
            [
                self.service_plan_id.get(i).copied().unwrap_or(0),
                self.service.get(i).copied().unwrap_or(0),
                self.capability_status.get(i).copied().unwrap_or(0),
            ]
        })
    }
}

/// The `assignedPlans` column: a plan-set code per row.
#[derive(Clone, Debug, Default)]
pub struct PlanColumn {
    /// Per row, an index into `sets`.
    pub(crate) set_codes: Vec<u32>,
    /// The distinct sets.
    pub(crate) sets: PlanSets,
}

impl PlanColumn {
    /// Row `row`'s plans as `[servicePlanId, service, capabilityStatus]` (`None` for a missing
    /// field), in the set's order; empty when the row has no value.
    pub fn plans_of(&self, row: usize) -> Vec<[Option<&str>; 3]> {
        let set = self.set_codes.get(row).copied().unwrap_or(0) as usize;
        let [a, b, c] = &self.sets.dicts;
        fn text(d: &Dict, code: u32) -> Option<&str> {
            (code > 0).then(|| d.get(code as usize - 1))
        }
        self.sets
            .plans(set)
            .map(|[i, s, st]| [text(a, i), text(b, s), text(c, st)])
            .collect()
    }
}

pub(super) struct PlanBuilder {
    pub(super) set_codes: Vec<u32>,
    /// Plan set (sorted triple codes) → set code.
    pub(super) index: hashbrown::HashMap<Vec<u32>, u32>,
    pub(super) sets: Vec<Vec<u32>>,
    /// Whole plans `(servicePlanId, service, capabilityStatus)`, interned as one key each (one
    /// hash per plan instead of three).
    pub(super) triples: DictBuilder,
    /// Triple code − 1 → its field codes.
    pub(super) triple_fields: Vec<[u32; 3]>,
    pub(super) dicts: [DictBuilder; 3],
    pub(super) scratch: String,
    /// Rows' plan lists as written (their plans' keys concatenated, in order) → set code: a
    /// list seen before costs one lookup instead of one per plan. At most [`MAX_PLAN_LISTS`].
    pub(super) lists: DictBuilder,
    /// List code − 1 → set code.
    pub(super) list_sets: Vec<u32>,
}

/// Distinct plan lists a [`PlanBuilder`] remembers.
pub(super) const MAX_PLAN_LISTS: usize = 16_384;

/// Appends plan `p`'s key: each field length-prefixed, so no field content can make two plans,
/// or two lists of plans, look alike. The prefix is one character: U+0000 for null, the
/// character `len + 1` for lengths below 0xD000, else U+E000 and the length in decimal and `:`
/// (a string that long is rare enough for `to_string`).
pub(super) fn push_plan_key(out: &mut String, p: &[Option<Cow<'_, str>>; 3]) {
    for f in p {
        match f {
            Some(v) => {
                match u32::try_from(v.len())
                    .ok()
                    .filter(|&n| n < 0xD000)
                    .and_then(|n| char::from_u32(n + 1))
                {
                    Some(c) => out.push(c),
                    None => {
                        out.push('\u{E000}');
                        out.push_str(&v.len().to_string());
                        out.push(':');
                    }
                }
                out.push_str(v);
            }
            None => out.push('\0'),
        }
    }
}

impl Default for PlanBuilder {
    fn default() -> Self {
        let mut index = hashbrown::HashMap::new();
        index.insert(Vec::new(), 0);
        PlanBuilder {
            set_codes: Vec::new(),
            index,
            sets: vec![Vec::new()],
            triples: DictBuilder {
                always_dedupe: true,
                ..DictBuilder::default()
            },
            triple_fields: Vec::new(),
            dicts: Default::default(),
            scratch: String::new(),
            lists: DictBuilder {
                always_dedupe: true,
                ..DictBuilder::default()
            },
            list_sets: Vec::new(),
        }
    }
}

/// One row's plans given to [`PlanColumn::derive`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanList {
    /// Set `s` of this column, unchanged.
    Set(u32),
    /// Plans as `[servicePlanId, service, capabilityStatus]` codes, sorted and deduplicated.
    /// A field's code is 0 for null, `1..=n` for a value of the column's own dictionary of `n`
    /// values, and `n + 1 + k` for the field's `k`-th new text given to [`PlanColumn::derive`].
    Plans(Vec<[u32; 3]>),
}

impl PlanColumn {
    /// A new column over the same rows: `lists[set_codes[row]]` is row `row`'s plans. The new
    /// column keeps every set of this one under its code (a [`PlanList::Set`] costs nothing)
    /// and adds the distinct [`PlanList::Plans`] lists after them; `new_text` extends each
    /// field's dictionary (see [`PlanList::Plans`] for the codes).
    ///
    /// Errors: more than 4 billion plans or sets, or 4 GiB of distinct text.
    pub fn derive(
        &self,
        new_text: &[Vec<&str>; 3],
        lists: Vec<PlanList>,
        set_codes: &[u32],
    ) -> Result<PlanColumn, String> {
        let mut dicts: [DictBuilder; 3] = Default::default();
        let mut remap: [Vec<u32>; 3] = Default::default();
        for (((b, r), d), new) in dicts
            .iter_mut()
            .zip(remap.iter_mut())
            .zip(&self.sets.dicts)
            .zip(new_text)
        {
            b.always_dedupe = true;
            r.push(0);
            for i in 0..d.len() {
                r.push(b.intern(d.get(i)));
            }
            for t in new {
                r.push(b.intern(t));
            }
        }
        // A dictionary with a repeated value (or new text it had) moves codes: lists are then
        // mapped, and sorted again.
        let identity = remap
            .iter()
            .all(|r| r.iter().enumerate().all(|(i, &c)| c as usize == i));
        let field = |f: usize, c: u32| {
            remap
                .get(f)
                .and_then(|r| r.get(c as usize))
                .copied()
                .unwrap_or(0)
        };
        let mut sets = PlanSets {
            offsets: self.sets.offsets.clone(),
            service_plan_id: self
                .sets
                .service_plan_id
                .iter()
                .map(|&c| field(0, c))
                .collect(),
            service: self.sets.service.iter().map(|&c| field(1, c)).collect(),
            capability_status: self
                .sets
                .capability_status
                .iter()
                .map(|&c| field(2, c))
                .collect(),
            dicts: Default::default(),
        };
        let mut index: hashbrown::HashMap<Vec<[u32; 3]>, u32> = hashbrown::HashMap::new();
        index.insert(Vec::new(), 0);
        let mut list_sets = Vec::with_capacity(lists.len());
        for l in lists {
            let mut key = match l {
                PlanList::Set(s) => {
                    list_sets.push(s);
                    continue;
                }
                PlanList::Plans(key) => key,
            };
            if !identity {
                for [a, b, c] in &mut key {
                    (*a, *b, *c) = (field(0, *a), field(1, *b), field(2, *c));
                }
                key.sort_unstable();
                key.dedup();
            }
            let code = match index.get(&key) {
                Some(&c) => c,
                None => {
                    let next =
                        u32::try_from(sets.len()).map_err(|_| "too many plan sets".to_string())?;
                    for [a, b, c] in &key {
                        sets.service_plan_id.push(*a);
                        sets.service.push(*b);
                        sets.capability_status.push(*c);
                    }
                    sets.offsets.push(
                        u32::try_from(sets.service.len())
                            .map_err(|_| "too many assigned plans".to_string())?,
                    );
                    index.insert(key, next);
                    next
                }
            };
            list_sets.push(code);
        }
        let [a, b, c] = dicts;
        sets.dicts = [a.finish()?, b.finish()?, c.finish()?];
        Ok(PlanColumn {
            set_codes: set_codes
                .iter()
                .map(|&l| list_sets.get(l as usize).copied().unwrap_or(0))
                .collect(),
            sets,
        })
    }
}

impl PlanBuilder {
    pub(super) fn push(&mut self, plans: &[[Option<Cow<'_, str>>; 3]]) {
        let mut list = std::mem::take(&mut self.scratch);
        list.clear();
        for p in plans {
            push_plan_key(&mut list, p);
        }
        let known = self
            .lists
            .find(&list)
            .and_then(|c| self.list_sets.get(c as usize - 1).copied());
        if let Some(code) = known {
            self.set_codes.push(code);
            self.scratch = list;
            return;
        }
        let code = self.intern_set(plans);
        if self.lists.dict.len() < MAX_PLAN_LISTS {
            self.lists.insert(&list);
            self.list_sets.push(code);
        }
        self.scratch = list;
        self.set_codes.push(code);
    }

    /// The set code of `plans`, interning each plan and the set.
    pub(super) fn intern_set(&mut self, plans: &[[Option<Cow<'_, str>>; 3]]) -> u32 {
        let mut key: Vec<u32> = Vec::with_capacity(plans.len());
        let mut one = String::new();
        for p in plans {
            one.clear();
            push_plan_key(&mut one, p);
            let t = self.triples.intern(&one);
            if t as usize > self.triple_fields.len() {
                let [a, b, c] = p;
                let [da, db, dc] = &mut self.dicts;
                self.triple_fields.push([
                    a.as_deref().map_or(0, |s| da.intern(s)),
                    b.as_deref().map_or(0, |s| db.intern(s)),
                    c.as_deref().map_or(0, |s| dc.intern(s)),
                ]);
            }
            key.push(t);
        }
        key.sort_unstable();
        self.set_code(key)
    }

    /// The code of plan set `key` (sorted triple codes), adding it when new.
    pub(super) fn set_code(&mut self, key: Vec<u32>) -> u32 {
        let next = self.sets.len() as u32;
        match self.index.get(&key) {
            Some(&c) => c,
            None => {
                self.index.insert(key.clone(), next);
                self.sets.push(key);
                next
            }
        }
    }

    pub(super) fn fork(&self) -> PlanBuilder {
        let [a, b, c] = &self.dicts;
        PlanBuilder {
            triples: self.triples.fork(),
            dicts: [a.fork(), b.fork(), c.fork()],
            ..PlanBuilder::default()
        }
    }

    /// Appends the rows of `part` (from [`PlanBuilder::fork`]): its field values, plans and
    /// plan sets are interned here, and its rows' set codes mapped.
    pub(super) fn append(&mut self, part: PlanBuilder) {
        let PlanBuilder {
            set_codes,
            sets,
            triples,
            triple_fields,
            dicts: [pa, pb, pc],
            ..
        } = part;
        let [da, db, dc] = &mut self.dicts;
        let fields = [da.absorb(pa), db.absorb(pb), dc.absorb(pc)];
        let mut triple_map = Vec::with_capacity(triples.dict.len() + 1);
        triple_map.push(0);
        for (i, f) in triple_fields.iter().enumerate() {
            let t = self
                .triples
                .intern(slice(&triples.dict.text, &triples.dict.ends, i));
            if t as usize > self.triple_fields.len() {
                let [fa, fb, fc] = &fields;
                self.triple_fields
                    .push([remap(fa, f[0]), remap(fb, f[1]), remap(fc, f[2])]);
            }
            triple_map.push(t);
        }
        let set_map: Vec<u32> = sets
            .into_iter()
            .map(|set| {
                let mut key: Vec<u32> = set.iter().map(|&t| remap(&triple_map, t)).collect();
                key.sort_unstable();
                self.set_code(key)
            })
            .collect();
        self.set_codes
            .extend(set_codes.iter().map(|&c| remap(&set_map, c)));
    }

    pub(super) fn finish(self) -> Result<PlanColumn, String> {
        let mut s = PlanSets {
            offsets: vec![0],
            ..Default::default()
        };
        for set in &self.sets {
            for &t in set {
                let [a, b, c] = self
                    .triple_fields
                    .get((t as usize).wrapping_sub(1))
                    .copied()
                    .unwrap_or([0; 3]);
                s.service_plan_id.push(a);
                s.service.push(b);
                s.capability_status.push(c);
            }
            s.offsets.push(
                u32::try_from(s.service.len())
                    .map_err(|_| "too many assigned plans".to_string())?,
            );
        }
        let [a, b, c] = self.dicts;
        s.dicts = [a.finish()?, b.finish()?, c.finish()?];
        Ok(PlanColumn {
            set_codes: shrunk(self.set_codes),
            sets: s,
        })
    }
}
