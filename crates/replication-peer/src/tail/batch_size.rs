//! Adaptive read size (AIMD): grow by a step when a read comes back full (we are behind),
//! halve when it comes back short (we are caught up), within `[1, max]`; and never more
//! entries than, at the size of the last read's entries, fit a byte budget.

/// The current read size and its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchSize {
    current: usize,
    step: usize,
    max: usize,
}

impl BatchSize {
    /// Starts at `initial`, grows by `initial`, never above `max`.
    pub(crate) fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1);
        Self {
            current: initial.clamp(1, max),
            step: initial.max(1),
            max,
        }
    }

    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// New bounds from a config reload; the current size is kept within them.
    pub(crate) fn set_bounds(&mut self, initial: usize, max: usize) {
        self.max = max.max(1);
        self.step = initial.max(1);
        self.current = self.current.clamp(1, self.max);
    }

    /// Opens the size to its upper bound (paired reads: a blocking read's count only
    /// caps what it returns, and the byte budget still caps the size as entries are seen).
    pub(crate) fn widen(&mut self) {
        self.current = self.max;
    }

    /// Adapts to a read that asked for `requested` entries and got `returned`.
    pub(crate) fn observe(&mut self, requested: usize, returned: usize) {
        self.current = if returned >= requested {
            self.current.saturating_add(self.step).min(self.max)
        } else {
            (self.current / 2).max(1)
        };
    }
}

impl BatchSize {
    /// Caps the size so that the next read, at the mean entry size of one that returned
    /// `returned` entries in `bytes`, stays within `budget` bytes (at least one entry).
    pub(crate) fn fit_bytes(&mut self, returned: usize, bytes: usize, budget: usize) {
        if returned == 0 || bytes <= budget {
            return;
        }
        let per_entry = (bytes / returned).max(1);
        self.current = self.current.min((budget / per_entry).max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additive_increase_multiplicative_decrease() {
        let mut size = BatchSize::new(100, 250);
        size.observe(100, 100);
        assert_eq!(size.current(), 200);
        size.observe(200, 200);
        assert_eq!(size.current(), 250);
        size.observe(250, 3);
        assert_eq!(size.current(), 125);
        for _ in 0..20 {
            size.observe(size.current(), 0);
        }
        assert_eq!(size.current(), 1);
        size.set_bounds(10, 5);
        size.observe(1, 1);
        assert_eq!(size.current(), 5);
    }

    #[test]
    fn large_entries_shrink_the_read_to_the_byte_budget() {
        let mut size = BatchSize::new(100, 1000);
        size.observe(100, 100);
        // 100 entries of 1 MB against a 16 MB budget: 16 per read from now on.
        size.fit_bytes(100, 100 << 20, 16 << 20);
        assert_eq!(size.current(), 16);
        // One entry larger than the budget: one at a time.
        size.fit_bytes(1, 64 << 20, 16 << 20);
        assert_eq!(size.current(), 1);
        // Within the budget nothing changes.
        let mut small = BatchSize::new(100, 1000);
        small.fit_bytes(100, 1 << 20, 16 << 20);
        assert_eq!(small.current(), 100);
    }
}
