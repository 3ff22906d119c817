//! Knobs of one repair cycle: batch size, concurrency and the per-cycle budgets.

use replication_core::ColdPathSettings;

/// How one repair cycle may spend round trips, items and bytes.
///
/// Zero values would make no progress at all, so every field is treated as at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepairSettings {
    /// Most paths or keys in one batched call to either side.
    pub batch_size: usize,
    /// How many batched calls per side may be in flight at once.
    pub concurrency: usize,
    /// Most differing keys resolved per cycle (each costs one item or tombstone read from
    /// the peer); the rest waits in [`crate::RepairState`] for the next cycle.
    pub max_items_per_cycle: usize,
    /// Most bytes of items one cycle fetches. The peer sizes the items before they are
    /// read and only those that fit what is left are fetched, so a cycle stays within it,
    /// except to read, alone, one item larger than the whole budget (else that key would
    /// never be repaired). Items a peer cannot size are read one at a time: such a cycle
    /// overshoots by at most its last item.
    pub max_bytes_per_cycle: u64,
}

/// Batched calls per side in flight at once when the configuration does not say.
pub(crate) const DEFAULT_CONCURRENCY: usize = 4;

impl Default for RepairSettings {
    fn default() -> Self {
        Self::from(&ColdPathSettings::default())
    }
}

impl From<&ColdPathSettings> for RepairSettings {
    fn from(settings: &ColdPathSettings) -> Self {
        Self {
            batch_size: settings.batch_size,
            concurrency: DEFAULT_CONCURRENCY,
            max_items_per_cycle: settings.max_items_per_cycle,
            max_bytes_per_cycle: settings.max_bytes_per_cycle,
        }
    }
}

impl RepairSettings {
    pub(crate) fn batch(&self) -> usize {
        self.batch_size.max(1)
    }

    /// Paths or keys handled per step: one batch for each call allowed in flight.
    pub(crate) fn step(&self) -> usize {
        self.batch().saturating_mul(self.concurrency.max(1))
    }

    pub(crate) fn max_items(&self) -> usize {
        self.max_items_per_cycle.max(1)
    }

    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes_per_cycle.max(1)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;

    #[test]
    fn takes_the_cold_path_settings_and_clamps_zeroes() {
        let cold = ColdPathSettings {
            batch_size: 0,
            max_items_per_cycle: 0,
            max_bytes_per_cycle: 0,
            ..Default::default()
        };
        let settings = RepairSettings {
            concurrency: 0,
            ..RepairSettings::from(&cold)
        };
        assert_eq!(
            (
                settings.batch(),
                settings.step(),
                settings.max_items(),
                settings.max_bytes()
            ),
            (1, 1, 1, 1)
        );
        let defaults = RepairSettings::default();
        assert_eq!(
            defaults.max_items_per_cycle,
            ColdPathSettings::default().max_items_per_cycle
        );
        assert_eq!(
            defaults.step(),
            ColdPathSettings::default().batch_size * DEFAULT_CONCURRENCY
        );
    }
}
