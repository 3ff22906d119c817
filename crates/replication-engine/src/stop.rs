//! A stop signal tasks can poll and await: the engine's (and each peer's) shutdown switch.

use tokio::sync::watch;

/// Sender side: flips once to stopped.
#[derive(Debug)]
pub(crate) struct StopSwitch(watch::Sender<bool>);

/// Receiver side, cloned into every task that must stop with its owner.
#[derive(Clone, Debug)]
pub(crate) struct Stop(watch::Receiver<bool>);

impl StopSwitch {
    pub(crate) fn new() -> (StopSwitch, Stop) {
        let (tx, rx) = watch::channel(false);
        (StopSwitch(tx), Stop(rx))
    }

    pub(crate) fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Stop {
    pub(crate) fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once stopped (at once if already stopped, or if the switch was dropped).
    pub(crate) async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }

    /// Sleeps for `duration` unless stopped first; returns false when stopped.
    pub(crate) async fn sleep(&mut self, duration: std::time::Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(duration) => !self.is_stopped(),
            _ = self.stopped() => false,
        }
    }
}
