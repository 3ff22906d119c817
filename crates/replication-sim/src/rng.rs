//! `Rng`: the one source of every choice a simulation makes (SplitMix64: tiny, fast, and
//! the same numbers on every platform for a seed).

/// A seeded generator. Each concern draws from its own stream ([`Rng::fork`]), so adding
/// a draw to one (say, the workload) does not shift every choice of the others.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent stream named by `salt`.
    pub(crate) fn fork(&self, salt: u64) -> Self {
        let mut mixed = Rng::new(self.state ^ salt.wrapping_mul(0xA24B_AED4_963E_E407));
        Rng::new(mixed.next_u64())
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        self.next_u64() % bound
    }

    /// An index into a collection of `len` elements.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A number in `low..=high`.
    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// True with probability `percent` / 100.
    pub(crate) fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_sequence_and_forks_differ() {
        let a: Vec<u64> = (0..5).map(|_| Rng::new(3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let base = Rng::new(3);
        assert_ne!(base.fork(1).next_u64(), base.fork(2).next_u64());
        let mut r = Rng::new(9);
        assert!((0..1000).all(|_| r.between(2, 7) >= 2 && r.between(2, 7) <= 7));
    }
}
