//! Typed indices, and the one interner behind them.
//!
//! Licensing refers to SKUs, source groups, `disabledPlans` lists, error details and whole state
//! lists by position. Each kind has its own index type, so passing a SKU index where a
//! disabled-list index is expected does not compile.

use hashbrown::HashMap;
use std::borrow::Borrow;
use std::hash::Hash;

/// A position in one of the interned tables.
pub(crate) trait Idx: Copy {
    /// The index of position `i`. Tables never reach `u32::MAX` entries (they are bounded by
    /// the number of users and groups); a larger position saturates.
    fn at(i: usize) -> Self;
    /// The position.
    fn position(self) -> usize;
}

macro_rules! index_type {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl $name {
            /// The position in its table.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl Idx for $name {
            fn at(i: usize) -> Self {
                $name(u32::try_from(i).unwrap_or(u32::MAX))
            }
            fn position(self) -> usize {
                self.0 as usize
            }
        }
    )*};
}

index_type! {
    /// A SKU: a position in [`super::Assignments::skus`].
    SkuIx;
    /// Where a state comes from: a group id in [`super::Assignments::source_id`]. The tenant's
    /// groups come first, in order, so a tenant group's source index is its position; groups
    /// that appear only in users' `assignedByGroup` follow.
    SourceIx;
    /// A distinct `disabledPlans` list ([`super::Assignments::disabled_plans`]); 0 is the empty
    /// list.
    DisabledIx;
    /// Why a state has its error ([`super::Assignments::detail`]); 0 is no detail.
    DetailIx;
    /// A distinct state list ([`super::Assignments::list`]); 0 is the empty list.
    ListIx;
}

/// Distinct values of `K`, each given the next index of type `I` on first sight.
#[derive(Clone, Debug)]
pub(crate) struct Interner<I, K> {
    values: Vec<K>,
    positions: HashMap<K, I>,
}

impl<I: Idx, K: Hash + Eq + Clone> Interner<I, K> {
    /// An interner holding `first` at index 0.
    pub(crate) fn starting_with(first: K) -> Self {
        let mut out = Interner {
            values: Vec::new(),
            positions: HashMap::new(),
        };
        out.intern_owned(first);
        out
    }

    /// An empty interner.
    pub(crate) fn new() -> Self {
        Interner {
            values: Vec::new(),
            positions: HashMap::new(),
        }
    }

    /// The index of `key`, added when new.
    pub(crate) fn intern<Q>(&mut self, key: &Q) -> I
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        match self.positions.get(key) {
            Some(&i) => i,
            None => self.intern_owned(key.to_owned()),
        }
    }

    /// The index of `key`, added when new (no copy when it is).
    pub(crate) fn intern_owned(&mut self, key: K) -> I {
        if let Some(&i) = self.positions.get(&key) {
            return i;
        }
        let i = I::at(self.values.len());
        self.values.push(key.clone());
        self.positions.insert(key, i);
        i
    }

    /// The index of `key`, if interned.
    pub(crate) fn find<Q>(&self, key: &Q) -> Option<I>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.positions.get(key).copied()
    }

    /// The value at `i`.
    pub(crate) fn get(&self, i: I) -> Option<&K> {
        self.values.get(i.position())
    }

    /// The values, by index.
    pub(crate) fn into_values(self) -> Vec<K> {
        self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_first_sight_order_and_stable() {
        let mut t: Interner<SkuIx, String> = Interner::starting_with(String::new());
        let a = t.intern("a");
        let b = t.intern("b");
        assert_eq!((a.index(), b.index()), (1, 2));
        assert_eq!(t.intern("a"), a);
        assert_eq!(t.find("b"), Some(b));
        assert_eq!(t.find("c"), None);
        assert_eq!(t.get(b).map(String::as_str), Some("b"));
        assert_eq!(t.into_values(), ["", "a", "b"]);
    }
}
