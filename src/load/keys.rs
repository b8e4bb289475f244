//! Key mapping: which cell of the record a JSON key fills ([`Target`]), matched
//! case-insensitively, with one slot per key so that a key given twice makes the record
//! malformed (D62).

use super::*;

#[derive(Clone, Debug)]
pub(super) enum Target {
    /// A column's value: `primary` (the Graph key) wins over a fallback (the property's name).
    Scalar {
        col: usize,
        kind: Kind,
        primary: bool,
    },
    /// `businessPhones`: the first element.
    First(usize),
    /// `onPremisesExtensionAttributes` / device `extensionAttributes`: nested key → column.
    Nested(hashbrown::HashMap<String, usize>),
    /// `manager`: `{"id": …}` or an id.
    Manager(usize),
    /// `memberOf`: ids or `{"id": …}` objects.
    MemberOf(usize),
    /// `assignedPlans`.
    Plans(usize),
    /// `assignedLicenses` or `licenseAssignmentStates`.
    Licenses(usize),
    /// Graph PowerShell's `AdditionalProperties`: an object whose keys are the record's own.
    Additional,
}

/// Graph key (lower case, and Graph's own spelling) → where its value goes, with the key's
/// *slot*: one number per key ignoring ASCII case, so a record that holds a key twice (`department`
/// and `Department`, or `department` twice) is caught by either record path (D62).
pub(super) struct KeyMap {
    /// Directory extensions kept (lower case); `None`: all.
    pub(super) extensions: Option<std::collections::HashSet<String>>,
    pub(super) layout_len: usize,
    pub(super) id_col: usize,
    pub(super) map: hashbrown::HashMap<String, (u16, Target)>,
    /// How many slots there are.
    pub(super) slots: usize,
}

impl KeyMap {
    pub(super) fn new(object: ObjectType, projection: Option<&Projection>) -> KeyMap {
        let layout = Layout::new(object);
        let mut map: hashbrown::HashMap<String, Target> = hashbrown::HashMap::new();
        let mut fallbacks = Vec::new();
        for p in schema::PROPERTIES.iter().filter(|p| p.object == object) {
            let Some(col) = layout.position(ColumnKey::Prop(p.name)) else {
                continue;
            };
            let kind = layout.columns.get(col).map_or(Kind::Str, |c| c.1);
            match p.graph {
                GraphKey::Field(k) => {
                    let t = if p.ty == PropType::AssignedPlans {
                        Target::Plans(col)
                    } else {
                        Target::Scalar {
                            col,
                            kind,
                            primary: true,
                        }
                    };
                    map.insert(k.to_ascii_lowercase(), t);
                }
                GraphKey::Nested(outer, inner) => {
                    let e = map
                        .entry(outer.to_ascii_lowercase())
                        .or_insert_with(|| Target::Nested(hashbrown::HashMap::new()));
                    if let Target::Nested(m) = e {
                        m.insert(inner.to_ascii_lowercase(), col);
                    }
                }
                GraphKey::First(k) => {
                    map.insert(k.to_ascii_lowercase(), Target::First(col));
                }
                GraphKey::Derived => continue,
            }
            fallbacks.push((p.name.to_ascii_lowercase(), col, kind));
        }
        for (name, col, kind) in fallbacks {
            map.entry(name).or_insert(Target::Scalar {
                col,
                kind,
                primary: false,
            });
        }
        let manager = layout.position(ColumnKey::Manager).unwrap_or(0);
        map.insert("manager".into(), Target::Manager(manager));
        map.insert(
            "managerid".into(),
            Target::Scalar {
                col: manager,
                kind: Kind::Str,
                primary: false,
            },
        );
        let member_of = layout.position(ColumnKey::MemberOf).unwrap_or(0);
        map.insert("memberof".into(), Target::MemberOf(member_of));
        map.insert("additionalproperties".into(), Target::Additional);
        for (key, col) in [
            ("assignedLicenses", ColumnKey::AssignedLicenses),
            ("licenseAssignmentStates", ColumnKey::LicenseStates),
        ] {
            if let Some(c) = layout.position(col) {
                map.insert(key.to_ascii_lowercase(), Target::Licenses(c));
                map.insert(key.into(), Target::Licenses(c));
            }
        }
        // The spellings Graph itself writes (`accountEnabled`, `onPremisesExtensionAttributes`,
        // `extensionAttribute1`) hit on the first lookup, without lower-casing the key.
        let mut canonical: Vec<(String, Target)> = Vec::new();
        for p in schema::PROPERTIES.iter().filter(|p| p.object == object) {
            let names = match p.graph {
                GraphKey::Field(k) | GraphKey::First(k) | GraphKey::Nested(k, _) => [k, p.name],
                GraphKey::Derived => continue,
            };
            for n in names {
                if let Some(t) = map.get(&n.to_ascii_lowercase()) {
                    canonical.push((n.to_string(), t.clone()));
                }
            }
        }
        for n in ["managerId", "memberOf", "AdditionalProperties"] {
            if let Some(t) = map.get(&n.to_ascii_lowercase()) {
                canonical.push((n.to_string(), t.clone()));
            }
        }
        for (k, t) in canonical {
            map.entry(k).or_insert(t);
        }
        // Nested targets reached by their lower-case key get the canonical spellings too.
        for t in map.values_mut() {
            if let Target::Nested(inner) = t {
                let extra: Vec<(String, usize)> = inner
                    .iter()
                    .filter_map(|(lower, col)| {
                        (1..=15)
                            .map(|i| format!("extensionAttribute{i}"))
                            .find(|n| n.to_ascii_lowercase() == *lower)
                            .map(|n| (n, *col))
                    })
                    .collect();
                inner.extend(extra);
            }
        }
        // A projection drops the keys of other columns: their values are skipped unparsed.
        if let Some(p) = projection {
            let keep = |col: &usize| {
                layout
                    .columns
                    .get(*col)
                    .is_some_and(|(key, _)| p.columns.contains(key))
            };
            map.retain(|_, t| match t {
                Target::Scalar { col, .. }
                | Target::First(col)
                | Target::Manager(col)
                | Target::MemberOf(col)
                | Target::Plans(col)
                | Target::Licenses(col) => keep(col),
                Target::Additional => true,
                Target::Nested(inner) => {
                    inner.retain(|_, c| keep(c));
                    !inner.is_empty()
                }
            });
        }
        let mut lower: Vec<String> = map.keys().map(|k| k.to_ascii_lowercase()).collect();
        lower.sort_unstable();
        lower.dedup();
        let map = map
            .into_iter()
            .map(|(k, t)| {
                let slot = lower
                    .binary_search(&k.to_ascii_lowercase())
                    .map_or(0, |i| u16::try_from(i).unwrap_or(u16::MAX));
                (k, (slot, t))
            })
            .collect();
        KeyMap {
            extensions: projection.map(|p| p.extensions.clone()),
            layout_len: layout.len(),
            id_col: layout.position(ColumnKey::Prop("objectId")).unwrap_or(0),
            map,
            slots: lower.len(),
        }
    }

    /// A record's "seen" set of slots, all clear.
    pub(super) fn seen_set(&self) -> Vec<u64> {
        vec![0; self.slots / 64 + 1]
    }
}

/// Marks `slot` in `seen`; false when it was already marked (the record repeats a key).
#[inline]
pub(super) fn first_sight(seen: &mut [u64], slot: u16) -> bool {
    let (word, bit) = (usize::from(slot) / 64, 1u64 << (slot % 64));
    match seen.get_mut(word) {
        Some(w) if *w & bit != 0 => false,
        Some(w) => {
            *w |= bit;
            true
        }
        None => true,
    }
}

/// The error for a key a record (or one of its objects) holds twice, ignoring case (D62).
pub(super) fn repeated_key(key: &str) -> String {
    format!(
        "the key `{key}` appears twice in one object (keys match ignoring case; Graph writes each once, so the record is malformed): keep one"
    )
}

impl KeyMap {
    /// Whether `key` is a directory extension this load keeps (`key` as written).
    pub(super) fn keeps_extension(&self, key: &str) -> bool {
        key.len() > 10
            && key
                .get(..10)
                .is_some_and(|p| p.eq_ignore_ascii_case("extension_"))
            && self
                .extensions
                .as_ref()
                .is_none_or(|e| e.contains(&key.to_ascii_lowercase()))
    }

    /// The target of a key: its exact spelling first (Graph's camelCase is in the map), then
    /// lower-cased (PascalCase exports), without allocating for short keys.
    pub(super) fn get(&self, key: &str) -> Option<&(u16, Target)> {
        if let Some(t) = self.map.get(key) {
            return Some(t);
        }
        if !key.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut buf = [0u8; 64];
        match buf.get_mut(..key.len()) {
            Some(dst) => {
                dst.copy_from_slice(key.as_bytes());
                dst.make_ascii_lowercase();
                std::str::from_utf8(dst).ok().and_then(|k| self.map.get(k))
            }
            None => self.map.get(&key.to_ascii_lowercase()),
        }
    }
}
