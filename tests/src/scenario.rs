//! Seeds and scale of a scenario: printed up front (cargo shows it for failing tests) and
//! taken from the environment so a failure can be rerun exactly.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// Env var that fixes the seed of every scenario (`MESH_SEED=1234 cargo test ...`).
pub const SEED_VAR: &str = "MESH_SEED";
/// Env var that multiplies the workload size (default 1: CI; soak runs use more).
pub const SCALE_VAR: &str = "MESH_SCALE";

/// One scenario's seed and scale.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name, used in messages and node ids.
    pub name: String,
    /// Seed of every random choice the scenario makes.
    pub seed: u64,
    /// Workload multiplier (>= 1).
    pub scale: u64,
}

impl Scenario {
    /// Reads `MESH_SEED` (or picks a fresh seed) and `MESH_SCALE`, and prints both.
    pub fn new(name: &str) -> Self {
        let seed = std::env::var(SEED_VAR)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(rand::random::<u64>);
        let scale = std::env::var(SCALE_VAR)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|s: &u64| *s >= 1)
            .unwrap_or(1);
        // Captured stdout is shown by the test harness exactly when the test fails.
        println!("scenario {name}: seed {seed}, scale {scale} (rerun: {SEED_VAR}={seed} {SCALE_VAR}={scale})");
        Self {
            name: name.to_owned(),
            seed,
            scale,
        }
    }

    /// A generator derived from the seed and a stream number (one per task).
    pub fn rng(&self, stream: u64) -> StdRng {
        StdRng::seed_from_u64(self.seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// `what` plus the rerun hint, for assertion messages.
    pub fn context(&self, what: &str) -> String {
        format!(
            "[{} seed {} scale {}: rerun with {SEED_VAR}={}] {what}",
            self.name, self.seed, self.scale, self.seed
        )
    }
}
