//! A fixed-length bitmap of `u64` words: bit `i` is row `i` of a table (a membership) or code `i`
//! of a dictionary (a per-value decision). Bits past `len` are always zero.

use std::sync::Arc;

/// A fixed-length set of bits. Clones share their words until one of them is changed (copy on
/// write): a what-if's after side starts from the before side's memberships, 15,000 bitmaps of
/// a million bits each, without copying them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bitmap {
    words: Arc<Vec<u64>>,
    len: usize,
}

impl Bitmap {
    /// `self AND NOT other`, bit for bit (`other` shorter counts as zeros past its end).
    pub fn and_not(&self, other: &Bitmap) -> Bitmap {
        let words = self
            .words()
            .iter()
            .zip(other.words().iter().chain(std::iter::repeat(&0)))
            .map(|(x, y)| x & !y)
            .collect();
        Bitmap::from_words(words, self.len())
    }

    /// `len` zero bits.
    pub fn zeros(len: usize) -> Self {
        Bitmap {
            words: Arc::new(vec![0; len.div_ceil(64)]),
            len,
        }
    }

    /// `len` one bits.
    pub fn ones(len: usize) -> Self {
        let mut b = Bitmap {
            words: Arc::new(vec![u64::MAX; len.div_ceil(64)]),
            len,
        };
        b.clear_tail();
        b
    }

    /// Builds from `len` words produced elsewhere (the VM's chunks); bits past `len` are cleared.
    pub fn from_words(mut words: Vec<u64>, len: usize) -> Self {
        words.resize(len.div_ceil(64), 0);
        let mut b = Bitmap {
            words: Arc::new(words),
            len,
        };
        b.clear_tail();
        b
    }

    fn clear_tail(&mut self) {
        let rem = self.len % 64;
        if rem != 0 && self.words.last().is_some_and(|&w| w >> rem != 0) {
            if let Some(last) = Arc::make_mut(&mut self.words).last_mut() {
                *last &= (1u64 << rem) - 1;
            }
        }
    }

    /// Appends every bit of `other`, a word at a time.
    pub fn extend(&mut self, other: &Bitmap) {
        let shift = self.len % 64;
        let words = Arc::make_mut(&mut self.words);
        if shift == 0 {
            words.extend_from_slice(&other.words);
        } else {
            for &w in other.words.iter() {
                if let Some(last) = words.last_mut() {
                    *last |= w << shift;
                }
                words.push(w >> (64 - shift));
            }
        }
        self.len += other.len;
        words.truncate(self.len.div_ceil(64));
        self.clear_tail();
    }

    /// Appends one bit.
    #[inline]
    pub fn push(&mut self, v: bool) {
        let words = Arc::make_mut(&mut self.words);
        if self.len % 64 == 0 {
            words.push(0);
        }
        if v {
            if let Some(w) = words.last_mut() {
                *w |= 1 << (self.len % 64);
            }
        }
        self.len += 1;
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no bits at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bit `i` (false past the end).
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    }

    /// Sets bit `i` (ignored past the end).
    #[inline]
    pub fn set(&mut self, i: usize, v: bool) {
        if i < self.len {
            if let Some(w) = Arc::make_mut(&mut self.words).get_mut(i / 64) {
                if v {
                    *w |= 1 << (i % 64);
                } else {
                    *w &= !(1 << (i % 64));
                }
            }
        }
    }

    /// Number of one bits.
    pub fn count_ones(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Indices of the one bits, ascending.
    pub fn ones_iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + b)
            })
        })
    }

    /// The words (bit `i` is `words[i / 64] >> (i % 64)`).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// True when every bit is the same; returns that bit. An empty bitmap is `Some(false)`.
    pub fn uniform(&self) -> Option<bool> {
        let ones = self.count_ones();
        if ones == 0 {
            Some(false)
        } else if ones == self.len {
            Some(true)
        } else {
            None
        }
    }

    /// Inverts every bit.
    pub fn not(&self) -> Bitmap {
        let mut b = Bitmap {
            words: Arc::new(self.words.iter().map(|w| !w).collect()),
            len: self.len,
        };
        b.clear_tail();
        b
    }
}

impl FromIterator<bool> for Bitmap {
    fn from_iter<I: IntoIterator<Item = bool>>(iter: I) -> Self {
        let (mut words, mut len) = (Vec::new(), 0usize);
        for v in iter {
            if len % 64 == 0 {
                words.push(0);
            }
            if v {
                if let Some(w) = words.last_mut() {
                    *w |= 1 << (len % 64);
                }
            }
            len += 1;
        }
        Bitmap {
            words: Arc::new(words),
            len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let b: Bitmap = [true, false, true].into_iter().collect();
        assert_eq!(b.len(), 3);
        assert_eq!(b.ones_iter().collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(b.not().ones_iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(Bitmap::ones(70).count_ones(), 70);
        assert_eq!(Bitmap::ones(70).uniform(), Some(true));
        assert_eq!(Bitmap::zeros(0).uniform(), Some(false));
        let mut z = Bitmap::zeros(130);
        z.set(129, true);
        z.set(200, true);
        assert_eq!(z.ones_iter().collect::<Vec<_>>(), vec![129]);
        assert_eq!(Bitmap::from_words(vec![u64::MAX; 2], 65).count_ones(), 65);
    }

    #[test]
    fn extend_matches_pushes() {
        let pattern = |n: usize, k: usize| (0..n).map(move |i| (i * 7 + k) % 3 == 0);
        for a in [0usize, 1, 63, 64, 65, 130] {
            for b in [0usize, 1, 63, 64, 65, 200] {
                let mut x: Bitmap = pattern(a, 1).collect();
                x.extend(&pattern(b, 2).collect());
                let y: Bitmap = pattern(a, 1).chain(pattern(b, 2)).collect();
                assert_eq!(x, y, "{a} + {b}");
            }
        }
    }
}
