//! The engine's lifecycle as a state machine whose allowed transitions are data.

use std::fmt;

/// Lifecycle state of a replication engine. Serialised as its `Display` name (`"Running"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EngineState {
    /// Built, not started.
    Created,
    /// `start()` is opening the cursor store and peers.
    Connecting,
    /// Tailing and repairing.
    Running,
    /// `shutdown()` is draining.
    ShuttingDown,
    /// Shut down; terminal.
    Stopped,
    /// Start failed (e.g. cursor store unusable); only shutdown is possible.
    Failed,
}

impl EngineState {
    /// Every allowed `(from, to)` transition. Anything else is an [`InvalidTransition`].
    pub const TRANSITIONS: &'static [(EngineState, EngineState)] = &[
        (EngineState::Created, EngineState::Connecting),
        (EngineState::Created, EngineState::Stopped),
        (EngineState::Connecting, EngineState::Running),
        (EngineState::Connecting, EngineState::Failed),
        (EngineState::Connecting, EngineState::ShuttingDown),
        (EngineState::Running, EngineState::ShuttingDown),
        (EngineState::Running, EngineState::Failed),
        (EngineState::ShuttingDown, EngineState::Stopped),
        (EngineState::Failed, EngineState::ShuttingDown),
        (EngineState::Failed, EngineState::Stopped),
    ];

    /// Whether `self -> to` is allowed.
    pub fn can_transition_to(self, to: EngineState) -> bool {
        Self::TRANSITIONS.contains(&(self, to))
    }

    /// `to` when the transition is allowed, else an error naming both states.
    pub fn transition(self, to: EngineState) -> Result<EngineState, InvalidTransition> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(InvalidTransition { from: self, to })
        }
    }

    /// Stable lowercase name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineState::Created => "created",
            EngineState::Connecting => "connecting",
            EngineState::Running => "running",
            EngineState::ShuttingDown => "shutting_down",
            EngineState::Stopped => "stopped",
            EngineState::Failed => "failed",
        }
    }

    /// Numeric code for the `replication_engine_state` gauge (order of declaration).
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for EngineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineState::Created => "Created",
            EngineState::Connecting => "Connecting",
            EngineState::Running => "Running",
            EngineState::ShuttingDown => "ShuttingDown",
            EngineState::Stopped => "Stopped",
            EngineState::Failed => "Failed",
        })
    }
}

/// A transition the state machine does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid engine state transition {from} -> {to}")]
pub struct InvalidTransition {
    /// Current state.
    pub from: EngineState,
    /// Requested state.
    pub to: EngineState,
}

#[cfg(test)]
mod tests {
    use super::EngineState::*;
    use super::*;

    const ALL: [EngineState; 6] = [Created, Connecting, Running, ShuttingDown, Stopped, Failed];

    #[test]
    fn happy_path_is_allowed() {
        let s = Created.transition(Connecting).unwrap();
        let s = s.transition(Running).unwrap();
        let s = s.transition(ShuttingDown).unwrap();
        assert_eq!(s.transition(Stopped).unwrap(), Stopped);
    }

    #[test]
    fn stopped_is_terminal_and_no_restart_from_running() {
        for to in ALL {
            assert!(Stopped.transition(to).is_err());
        }
        let err = Running.transition(Connecting).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid engine state transition Running -> Connecting"
        );
        assert!(Created.transition(Running).is_err(), "must connect first");
    }

    #[test]
    fn every_state_can_reach_stopped() {
        for from in ALL {
            let mut seen = vec![from];
            let mut frontier = vec![from];
            while let Some(s) = frontier.pop() {
                for to in ALL {
                    if s.can_transition_to(to) && !seen.contains(&to) {
                        seen.push(to);
                        frontier.push(to);
                    }
                }
            }
            assert!(seen.contains(&Stopped), "{from} cannot reach Stopped");
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(ShuttingDown.to_string(), "ShuttingDown");
        assert_eq!(ShuttingDown.as_str(), "shutting_down");
    }

    #[test]
    fn serialised_as_the_display_name() {
        for state in ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(serde_json::from_str::<EngineState>(&json).unwrap(), state);
        }
    }
}
