//! `Trace`: the event history of one run, its digest, and the virtual clock it is stamped by.

use std::fmt::Write as _;

/// Every event of a run in order, each stamped with virtual milliseconds since the start.
/// Two runs of one seed must produce the same lines, hence the same digest.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    lines: Vec<String>,
    /// FNV-1a over every line, kept as lines arrive so a run without `--trace` keeps none.
    digest: u64,
    keep: bool,
    /// Print each line as it happens (with `SIM_LOG`, between the engines' log lines).
    live: bool,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Trace {
    pub(crate) fn new(keep: bool) -> Self {
        Self {
            lines: Vec::new(),
            digest: FNV_OFFSET,
            keep,
            live: keep && std::env::var_os("SIM_LOG").is_some(),
        }
    }

    pub(crate) fn event(&mut self, at_ms: u64, what: impl std::fmt::Display) {
        let mut line = String::new();
        let _ = write!(line, "{at_ms:>8} {what}");
        for byte in line.bytes().chain(std::iter::once(b'\n')) {
            self.digest ^= u64::from(byte);
            self.digest = self.digest.wrapping_mul(FNV_PRIME);
        }
        if self.live {
            eprintln!("SIM {line}");
        }
        if self.keep {
            self.lines.push(line);
        }
    }

    pub(crate) fn digest(&self) -> u64 {
        self.digest
    }

    pub(crate) fn into_lines(self) -> Vec<String> {
        self.lines
    }
}
