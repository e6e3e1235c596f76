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

/// A relation: `r[i]` is the set of `j` with `(i, j)` in the relation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rel {
    pub r: Vec<Set>,
}

impl Rel {
    pub fn empty(n: usize) -> Rel {
        Rel { r: vec![0; n] }
    }
    pub fn n(&self) -> usize {
        self.r.len()
    }
    /// `[s]`: identity restricted to `s`.
    pub fn id(n: usize, s: Set) -> Rel {
        let mut r = Rel::empty(n);
        for i in bits(s) {
            if i < n {
                r.r[i] |= 1 << i;
            }
        }
        r
    }
    /// `a * b`: cartesian product.
    pub fn cross(n: usize, a: Set, b: Set) -> Rel {
        let mut r = Rel::empty(n);
        for i in bits(a) {
            r.r[i] = b;
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
        self.r.iter().all(|&x| x == 0)
    }
    pub fn domain(&self) -> Set {
        self.r
            .iter()
            .enumerate()
            .filter(|(_, &x)| x != 0)
            .fold(0, |a, (i, _)| a | 1 << i)
    }
    pub fn range(&self) -> Set {
        self.r.iter().fold(0, |a, &x| a | x)
    }
    pub fn or(&self, o: &Rel) -> Rel {
        Rel {
            r: self.r.iter().zip(&o.r).map(|(a, b)| a | b).collect(),
        }
    }
    pub fn or_in(&mut self, o: &Rel) {
        for (a, b) in self.r.iter_mut().zip(&o.r) {
            *a |= b;
        }
    }
    pub fn and(&self, o: &Rel) -> Rel {
        Rel {
            r: self.r.iter().zip(&o.r).map(|(a, b)| a & b).collect(),
        }
    }
    pub fn minus(&self, o: &Rel) -> Rel {
        Rel {
            r: self.r.iter().zip(&o.r).map(|(a, b)| a & !b).collect(),
        }
    }
    /// `[d] ; self ; [g]`
    pub fn restrict(&self, d: Set, g: Set) -> Rel {
        Rel {
            r: self
                .r
                .iter()
                .enumerate()
                .map(|(i, &x)| if d >> i & 1 == 1 { x & g } else { 0 })
                .collect(),
        }
    }
    /// `self ; o`
    pub fn seq(&self, o: &Rel) -> Rel {
        let mut out = vec![0; self.r.len()];
        for (i, &row) in self.r.iter().enumerate() {
            let mut acc = 0;
            for j in bits(row) {
                acc |= o.r[j];
            }
            out[i] = acc;
        }
        Rel { r: out }
    }
    pub fn inv(&self) -> Rel {
        let mut out = vec![0; self.r.len()];
        for (i, &row) in self.r.iter().enumerate() {
            for j in bits(row) {
                out[j] |= 1 << i;
            }
        }
        Rel { r: out }
    }
    /// `self | id` (over all events).
    pub fn opt(&self) -> Rel {
        let mut r = self.clone();
        for (i, x) in r.r.iter_mut().enumerate() {
            *x |= 1 << i;
        }
        r
    }
    /// Transitive closure `self+`.
    pub fn plus(&self) -> Rel {
        let mut r = self.clone();
        let n = r.r.len();
        for k in 0..n {
            let rk = r.r[k];
            if rk == 0 {
                continue;
            }
            let bit = 1u128 << k;
            for i in 0..n {
                if r.r[i] & bit != 0 {
                    r.r[i] |= rk;
                }
            }
        }
        r
    }
    /// Reflexive-transitive closure `self*`.
    pub fn star(&self) -> Rel {
        self.plus().opt()
    }
    pub fn irreflexive(&self) -> bool {
        self.r.iter().enumerate().all(|(i, &x)| x >> i & 1 == 0)
    }
    pub fn acyclic(&self) -> bool {
        self.plus().irreflexive()
    }
    /// Keep only pairs `(i, j)` with `keep(i, j)` true on a per-row mask.
    pub fn mask_rows(&self, m: &[Set]) -> Rel {
        Rel {
            r: self.r.iter().zip(m).map(|(a, b)| a & b).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn closure_and_cycles() {
        let mut r = Rel::empty(4);
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
