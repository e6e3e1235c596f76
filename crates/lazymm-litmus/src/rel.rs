//! Small binary relations over at most 128 events, as rows of `u128` bitsets.

/// A set of events.
pub type Set = u128;

/// Iterate the indices of the set bits.
pub fn bits(mut s: Set) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if s == 0 {
            None
        } else {
            let i = s.trailing_zeros() as usize;
            s &= s - 1;
            Some(i)
        }
    })
}

/// Maximum number of events in a relation.
pub const MAX: usize = 128;

/// A relation: `r[i]` is the set of `j` with `(i, j)` in the relation.
/// Stored inline (no heap allocation) in `W` rows, of which the first `n`
/// are used: a candidate execution is judged with the smallest width of 32,
/// 64 or [`MAX`] that holds its events, because every operation builds a
/// new relation (zeroing and moving `W` rows: a quarter of the time of a
/// judgement of a 31-event execution at `W = 128`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rel<const W: usize> {
    n: usize,
    pub r: [Set; W],
}

impl<const W: usize> Rel<W> {
    pub fn empty(n: usize) -> Rel<W> {
        Rel {
            n: n.min(W),
            r: [0; W],
        }
    }
    pub fn n(&self) -> usize {
        self.n
    }
    fn rows(&self) -> &[Set] {
        &self.r[..self.n]
    }
    fn map2(&self, o: &Rel<W>, f: impl Fn(Set, Set) -> Set) -> Rel<W> {
        let mut out = Rel::empty(self.n);
        for i in 0..self.n {
            out.r[i] = f(self.r[i], o.r[i]);
        }
        out
    }
    /// `[s]`: identity restricted to `s`.
    pub fn id(n: usize, s: Set) -> Rel<W> {
        let mut r = Rel::empty(n);
        for i in bits(s) {
            if i < r.n {
                r.r[i] |= 1 << i;
            }
        }
        r
    }
    /// `a * b`: cartesian product.
    pub fn cross(n: usize, a: Set, b: Set) -> Rel<W> {
        let mut r = Rel::empty(n);
        for i in bits(a) {
            if i < r.n {
                r.r[i] = b;
            }
        }
        r
    }
    pub fn add(&mut self, i: usize, j: usize) {
        self.r[i] |= 1 << j;
    }
    pub fn has(&self, i: usize, j: usize) -> bool {
        self.r[i] >> j & 1 == 1
    }
    pub fn is_empty(&self) -> bool {
        self.rows().iter().all(|&x| x == 0)
    }
    pub fn domain(&self) -> Set {
        self.rows()
            .iter()
            .enumerate()
            .filter(|(_, &x)| x != 0)
            .fold(0, |a, (i, _)| a | 1 << i)
    }
    pub fn range(&self) -> Set {
        self.rows().iter().fold(0, |a, &x| a | x)
    }
    pub fn or(&self, o: &Rel<W>) -> Rel<W> {
        self.map2(o, |a, b| a | b)
    }
    pub fn or_in(&mut self, o: &Rel<W>) {
        for i in 0..self.n {
            self.r[i] |= o.r[i];
        }
    }
    pub fn and(&self, o: &Rel<W>) -> Rel<W> {
        self.map2(o, |a, b| a & b)
    }
    pub fn minus(&self, o: &Rel<W>) -> Rel<W> {
        self.map2(o, |a, b| a & !b)
    }
    /// `[d] ; self ; [g]`
    pub fn restrict(&self, d: Set, g: Set) -> Rel<W> {
        let mut out = Rel::empty(self.n);
        for i in bits(d) {
            if i >= self.n {
                break;
            }
            out.r[i] = self.r[i] & g;
        }
        out
    }
    /// `self ; o`
    pub fn seq(&self, o: &Rel<W>) -> Rel<W> {
        let mut out = Rel::empty(self.n);
        for i in 0..self.n {
            let row = self.r[i];
            if row == 0 {
                continue;
            }
            let mut acc = 0;
            for j in bits(row) {
                acc |= o.r[j];
            }
            out.r[i] = acc;
        }
        out
    }
    pub fn inv(&self) -> Rel<W> {
        let mut out = Rel::empty(self.n);
        for i in 0..self.n {
            for j in bits(self.r[i]) {
                out.r[j] |= 1 << i;
            }
        }
        out
    }
    /// `self | id` (over all events).
    pub fn opt(&self) -> Rel<W> {
        let mut r = self.clone();
        for i in 0..r.n {
            r.r[i] |= 1 << i;
        }
        r
    }
    /// Transitive closure `self+`.
    pub fn plus(&self) -> Rel<W> {
        let mut r = self.clone();
        // Warshall, restricted to the rows that are non-empty (they stay the
        // only non-empty ones) and to pivots that are both a source and a
        // target (the union of the rows never grows).
        let nz = r.domain();
        let pivots = nz & r.range();
        let n = r.n;
        for k in bits(pivots) {
            let rk = r.r[k];
            // every row (an empty one has no bit k), without branches
            for x in r.r[..n].iter_mut() {
                *x |= rk & ((*x >> k) & 1).wrapping_neg();
            }
        }
        r
    }
    /// Reflexive-transitive closure `self*`.
    pub fn star(&self) -> Rel<W> {
        self.plus().opt()
    }
    pub fn irreflexive(&self) -> bool {
        self.rows()
            .iter()
            .enumerate()
            .all(|(i, &x)| x >> i & 1 == 0)
    }
    pub fn acyclic(&self) -> bool {
        self.plus().irreflexive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn closure_and_cycles() {
        let mut r = Rel::<128>::empty(4);
        r.add(0, 1);
        r.add(1, 2);
        assert!(r.acyclic());
        assert!(r.plus().has(0, 2));
        r.add(2, 0);
        assert!(!r.acyclic());
        assert!(r.inv().has(1, 0));
        assert_eq!(bits(0b1010).collect::<Vec<_>>(), vec![1, 3]);
    }
}
