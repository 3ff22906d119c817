//! Metrics read back in tests: a `DebuggingRecorder`'s snapshots drain its counters, so
//! [`Recorded`] accumulates them and keeps the latest value of each gauge, and looks both
//! up by name and a subset of labels.

use metrics_util::debugging::{DebugValue, Snapshotter};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Metrics seen by a `DebuggingRecorder`. Its snapshots drain counters, so counts are
/// accumulated here; gauges keep the value of the latest snapshot that saw them set.
pub struct Recorded {
    snapshotter: Snapshotter,
    counters: Mutex<HashMap<Series, u64>>,
    gauges: Mutex<HashMap<Series, f64>>,
}

type Series = (String, Vec<(String, String)>);

impl Recorded {
    /// Reads the snapshots of `snapshotter` (take it from the recorder before installing it).
    pub fn new(snapshotter: Snapshotter) -> Self {
        Self {
            snapshotter,
            counters: Mutex::default(),
            gauges: Mutex::default(),
        }
    }

    fn refresh(&self) {
        let mut counters = lock(&self.counters);
        let mut gauges = lock(&self.gauges);
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let series = (
                key.name().to_owned(),
                key.labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect(),
            );
            match value {
                DebugValue::Counter(n) => *counters.entry(series).or_default() += n,
                DebugValue::Gauge(g) => {
                    gauges.insert(series, g.into_inner());
                }
                DebugValue::Histogram(_) => {}
            }
        }
    }

    fn matching<T: Copy>(map: &HashMap<Series, T>, name: &str, labels: &[(&str, &str)]) -> Vec<T> {
        map.iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| *v)
            .collect()
    }

    /// Total of counter `name` over every series whose labels include `labels`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.refresh();
        Self::matching(&lock(&self.counters), name, labels)
            .into_iter()
            .sum()
    }

    /// Latest value of gauge `name` with `labels`.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.refresh();
        Self::matching(&lock(&self.gauges), name, labels)
            .into_iter()
            .next()
    }
}
