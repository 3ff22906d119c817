//! Replays every saved fuzz input (fuzz/regressions/<target>/*: crashes found by
//! `cargo xtask fuzz` are copied there) through the same checks the fuzz targets run, plus
//! a short seeded random sweep so the checks run in every `cargo test`.

#![allow(clippy::unwrap_used)]

use rand::{Rng, RngCore};
use replication_tests::fuzz_checks;
use replication_tests::Scenario;
use std::path::Path;

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 3] = [
    ("cdc_decode", fuzz_checks::cdc_decode),
    ("stream_id", fuzz_checks::stream_id),
    ("children_member", fuzz_checks::children_member),
];

#[test]
fn saved_fuzz_inputs_pass_their_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let dir = root.join(target);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            println!("replaying {}", path.display());
            check(&data);
            replayed += 1;
        }
    }
    assert!(
        replayed >= 3,
        "the regression inputs are missing ({replayed} found)"
    );
}

#[test]
fn random_inputs_pass_the_fuzz_checks() {
    let s = Scenario::new("fuzz-sweep");
    let mut rng = s.rng(0);
    for _ in 0..2000 * s.scale {
        let len = rng.random_range(0..200);
        let mut data = vec![0u8; len];
        rng.fill_bytes(&mut data);
        for (_, check) in TARGETS {
            check(&data);
        }
    }
}
