//! A stop signal tasks can poll and await: the engine's (and each peer's) shutdown switch.
//!
//! Stopping may come with a drain deadline: work already in flight when the stop comes
//! (a hot-path batch read but not yet applied) keeps retrying until then
//! ([`Stop::sleep_in_flight`]), so that a clean shutdown applies the batch and records its
//! cursor; everything else ([`Stop::sleep`], [`Stop::stopped`]) ends at once.

use tokio::sync::watch;
use tokio::time::Instant;

/// What the switch says: running, or stopped with the instant until which in-flight work
/// may still finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Running,
    Stopped { drain_until: Instant },
}

/// Sender side: flips once to stopped.
#[derive(Debug)]
pub(crate) struct StopSwitch(watch::Sender<Signal>);

/// Receiver side, cloned into every task that must stop with its owner.
#[derive(Clone, Debug)]
pub(crate) struct Stop(watch::Receiver<Signal>);

impl StopSwitch {
    pub(crate) fn new() -> (StopSwitch, Stop) {
        let (tx, rx) = watch::channel(Signal::Running);
        (StopSwitch(tx), Stop(rx))
    }

    /// Stops at once: in-flight work is not retried any more.
    pub(crate) fn stop(&self) {
        self.stop_draining(Instant::now());
    }

    /// Stops, letting in-flight work retry until `drain_until`.
    pub(crate) fn stop_draining(&self, drain_until: Instant) {
        self.0.send_if_modified(|signal| match signal {
            Signal::Running => {
                *signal = Signal::Stopped { drain_until };
                true
            }
            Signal::Stopped { .. } => false,
        });
    }
}

impl Stop {
    pub(crate) fn is_stopped(&self) -> bool {
        matches!(*self.0.borrow(), Signal::Stopped { .. })
    }

    /// Resolves once stopped (at once if already stopped, or if the switch was dropped).
    pub(crate) async fn stopped(&mut self) {
        let _ = self
            .0
            .wait_for(|signal| matches!(signal, Signal::Stopped { .. }))
            .await;
    }

    /// Sleeps for `duration` unless stopped first; returns false when stopped.
    pub(crate) async fn sleep(&mut self, duration: std::time::Duration) -> bool {
        // Biased (here and below): the outcome when both are ready must not depend on a
        // coin toss, so that a seeded run replays exactly.
        tokio::select! {
            biased;
            _ = tokio::time::sleep(duration) => !self.is_stopped(),
            _ = self.stopped() => false,
        }
    }

    /// Sleeps for `duration` before retrying work already in flight. A stop does not cut
    /// it short; only its drain deadline does. Returns false when the retry would come
    /// after that deadline (the work is abandoned).
    pub(crate) async fn sleep_in_flight(&mut self, duration: std::time::Duration) -> bool {
        let wake = Instant::now() + duration;
        let until = tokio::select! {
            biased;
            _ = tokio::time::sleep_until(wake) => {
                return self.drain_until().is_none_or(|until| wake <= until);
            }
            until = self.drain_deadline() => until,
        };
        if wake > until {
            return false;
        }
        tokio::time::sleep_until(wake).await;
        true
    }

    /// The drain deadline, once stopped.
    fn drain_until(&self) -> Option<Instant> {
        match *self.0.borrow() {
            Signal::Running => None,
            Signal::Stopped { drain_until } => Some(drain_until),
        }
    }

    /// Resolves with the drain deadline once stopped; a dropped switch drains nothing.
    async fn drain_deadline(&mut self) -> Instant {
        match self
            .0
            .wait_for(|signal| matches!(signal, Signal::Stopped { .. }))
            .await
        {
            Ok(signal) => match *signal {
                Signal::Stopped { drain_until } => drain_until,
                Signal::Running => Instant::now(),
            },
            Err(_) => Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_plain_stop_ends_sleeps_and_in_flight_retries_at_once() {
        let (switch, mut stop) = StopSwitch::new();
        let sleeper = {
            let mut stop = stop.clone();
            tokio::spawn(async move { stop.sleep(Duration::from_secs(60)).await })
        };
        tokio::task::yield_now().await;
        switch.stop();
        assert!(!sleeper.await.unwrap());
        assert!(!stop.sleep_in_flight(Duration::from_millis(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_retries_go_on_until_the_drain_deadline() {
        let (switch, mut stop) = StopSwitch::new();
        switch.stop_draining(Instant::now() + Duration::from_secs(1));
        assert!(!stop.sleep(Duration::from_millis(10)).await);
        let started = Instant::now();
        assert!(stop.sleep_in_flight(Duration::from_millis(400)).await);
        assert!(stop.sleep_in_flight(Duration::from_millis(400)).await);
        assert_eq!(started.elapsed(), Duration::from_millis(800));
        // The next retry would come after the deadline: given up without waiting for it.
        assert!(!stop.sleep_in_flight(Duration::from_millis(400)).await);
        assert_eq!(started.elapsed(), Duration::from_millis(800));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_during_an_in_flight_sleep_shortens_it_to_the_deadline() {
        let (switch, stop) = StopSwitch::new();
        let sleeper = {
            let mut stop = stop.clone();
            tokio::spawn(async move { stop.sleep_in_flight(Duration::from_secs(60)).await })
        };
        tokio::task::yield_now().await;
        let started = Instant::now();
        switch.stop_draining(Instant::now() + Duration::from_secs(2));
        assert!(!sleeper.await.unwrap());
        assert_eq!(started.elapsed(), Duration::ZERO);
        // A retry that fits before the deadline is still made.
        let sleeper = {
            let mut stop = stop.clone();
            tokio::spawn(async move { stop.sleep_in_flight(Duration::from_secs(1)).await })
        };
        assert!(sleeper.await.unwrap());
    }
}
