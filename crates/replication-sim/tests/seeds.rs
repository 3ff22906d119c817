//! Replays the simulation's regression seeds (each once found a defect or a gap in the
//! model) and checks that a seed's history is deterministic.

use replication_sim::{replay_command, run, SimOptions};

/// Seeds worth replaying on every `cargo test`: each line says what it caught.
const REGRESSIONS: &[(u64, Option<usize>, &str)] = &[
    (
        37,
        None,
        "a clean stop after a store hiccup left the store failing (stall check)",
    ),
    (
        310,
        None,
        "a minimal store folds a put and its delete of one batch away",
    ),
    (
        53,
        None,
        "a delete read without its malformed tombstone follows the bare rule",
    ),
    (
        89,
        None,
        "a tombstone collected while a peer still had an older put of its key to read brought the key back",
    ),
    (
        515,
        None,
        "a node collected its tombstone while its own hot path had the peer's older put unread",
    ),
    (
        1971,
        None,
        "a peer re-pointed away and back lost the writes its recreated stream had dropped",
    ),
    (
        449,
        None,
        "a delete judged against a minimal store removed a newer put another peer wrote meanwhile",
    ),
    (
        2982,
        None,
        "a node resuming at the start of a recreated stream missed what the stream lost when recreated again",
    ),
];

fn options(seed: u64, nodes: Option<usize>) -> SimOptions {
    SimOptions {
        seed,
        nodes,
        trace: false,
    }
}

#[test]
fn two_runs_of_one_seed_have_the_same_history() {
    for seed in [1, 2, 3] {
        let first = run(&options(seed, None));
        let second = run(&options(seed, None));
        assert_eq!(
            first.digest,
            second.digest,
            "seed {seed} is not deterministic; compare the traces of: {}",
            replay_command(seed, None)
        );
        assert!(first.writes > 0, "seed {seed} wrote nothing");
    }
}

#[test]
fn regression_seeds_pass() {
    for (seed, nodes, what) in REGRESSIONS {
        let report = run(&options(*seed, *nodes));
        assert!(
            report.violations.is_empty(),
            "seed {seed} ({what}) fails again: {:?}\nreplay: {}",
            report.violations,
            replay_command(*seed, *nodes)
        );
    }
}

#[test]
fn every_mesh_size_runs_clean() {
    for nodes in 2..=7 {
        let report = run(&options(100 + nodes as u64, Some(nodes)));
        assert_eq!(report.nodes, nodes);
        assert!(
            report.violations.is_empty(),
            "{:?}\nreplay: {}",
            report.violations,
            replay_command(100 + nodes as u64, Some(nodes))
        );
    }
}
