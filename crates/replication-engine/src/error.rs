//! Errors of the engine facade.

use replication_core::{ConfigError, CursorError, EngineState};

/// A failed engine operation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration is not acceptable; names the field.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The call is not allowed in the engine's current state (e.g. `start()` twice).
    #[error("cannot {operation} while the engine is {state}")]
    InvalidState {
        /// What was attempted.
        operation: &'static str,
        /// The state the engine was in.
        state: EngineState,
    },
    /// The cursor store could not be opened or used.
    #[error(transparent)]
    Cursor(#[from] CursorError),
}

/// Result alias of the facade.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
