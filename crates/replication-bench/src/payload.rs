//! The one payload generator every section uses, and fast stream filling.
//!
//! Payloads are 512-byte JSON documents with a realistic mix of repeated words and
//! per-item noise, so zstd compresses them roughly as it would real records (about 2:1).
//! The first field `t` carries the append time in microseconds, which the lag section reads
//! back on the applying side.

use anyhow::{Context, Result};
use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::prelude::{Builder, Config};
use fred::types::{ClusterHash, CustomCommand, Value};
use replication_core::{CdcEncoder, ContentType, SyncItem};
use std::time::{SystemTime, UNIX_EPOCH};

/// Size of every generated payload.
pub(crate) const PAYLOAD_BYTES: usize = 512;

/// XADDs per pipeline when filling a stream: large enough to amortise round trips,
/// small enough to keep the client's buffers modest.
const FILL_CHUNK: usize = 2_000;

const WORDS: [&str; 16] = [
    "patient",
    "ward",
    "admitted",
    "discharged",
    "observation",
    "medication",
    "dose",
    "allergy",
    "none",
    "stable",
    "review",
    "clinic",
    "referral",
    "pending",
    "normal",
    "note",
];

/// Object id of item `i`: two levels of fan-out below a fixed root (`bench.b12.k345`),
/// like real hierarchical ids, so Merkle upkeep and repair see a realistic tree.
pub(crate) fn key(i: u64) -> String {
    format!("bench.b{}.k{}", i / 1000, i % 1000)
}

/// How entry `i`'s object id is formed: the Merkle tree's shape the store maintains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// [`key`]: 1 000 children per branch, consecutive entries in one branch.
    Branches,
    /// `bench.tenant{i % 16}.item{i}`: 16 branches that each grow to `n / 16` children,
    /// consecutive entries spread over all of them.
    Wide,
}

impl Layout {
    /// The object id of entry `i`.
    pub(crate) fn key(self, i: u64) -> String {
        match self {
            Layout::Branches => key(i),
            Layout::Wide => format!("bench.tenant{}.item{i}", i % 16),
        }
    }

    /// The id pattern, for reports.
    pub(crate) fn pattern(self) -> &'static str {
        match self {
            Layout::Branches => "bench.b{i/1000}.k{i%1000}",
            Layout::Wide => "bench.tenant{i%16}.item{i}",
        }
    }
}

/// What a filled stream holds: the id layout and the entries' `content_type`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub(crate) layout: Layout,
    pub(crate) content_type: ContentType,
}

impl Shape {
    /// What every section but 10 writes: [`key`] ids, binary content.
    pub(crate) const DEFAULT: Shape = Shape {
        layout: Layout::Branches,
        content_type: ContentType::Binary,
    };
}

/// Microseconds since the Unix epoch.
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The 512-byte JSON payload of item `i`, stamped with `t_micros`.
pub(crate) fn payload(i: u64, t_micros: u64) -> Vec<u8> {
    let mut state = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64: cheap deterministic noise.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = format!(
        "{{\"t\":{t_micros:016},\"id\":{i},\"mrn\":\"{:010}\",\"notes\":\"",
        next() % 10_000_000_000
    );
    // Leave room for the closing `"}`.
    while out.len() < PAYLOAD_BYTES - 2 {
        let r = next();
        if r % 5 == 0 {
            out.push_str(&format!("{:x} ", r >> 40));
        } else {
            out.push_str(WORDS[(r % 16) as usize]);
            out.push(' ');
        }
    }
    out.truncate(PAYLOAD_BYTES - 2);
    out.push_str("\"}");
    out.into_bytes()
}

/// Reads the `t` stamp back from a payload made by [`payload`].
pub(crate) fn stamp_of(content: &[u8]) -> Option<u64> {
    let digits = content.get(5..21)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The item for entry `i` (version 1, so every key is new to an empty store).
pub(crate) fn item(i: u64, t_micros: u64) -> SyncItem {
    shaped_item(Shape::DEFAULT, i, t_micros)
}

/// [`item`] with the id and content type of `shape`.
fn shaped_item(shape: Shape, i: u64, t_micros: u64) -> SyncItem {
    SyncItem::new(
        shape.layout.key(i),
        payload(i, t_micros),
        1,
        (t_micros / 1000) as i64,
    )
    .with_content_type(shape.content_type)
}

/// A connected plain fred client.
pub(crate) async fn client(url: &str) -> Result<Client> {
    let config = Config::from_url(url).context("redis url")?;
    let client = Builder::from_config(config)
        .build()
        .context("fred client")?;
    client.init().await.context("connecting fred client")?;
    Ok(client)
}

pub(crate) fn command(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::FirstKey, false)
}

/// The XADD arguments of item `i` in sync-engine's wire format (no MAXLEN: a benchmark
/// stream must keep every entry; the trim is not what is measured).
pub(crate) fn xadd_args(
    encoder: &mut CdcEncoder,
    stream: &str,
    i: u64,
    t_micros: u64,
) -> Vec<Value> {
    shaped_xadd_args(encoder, Shape::DEFAULT, stream, i, t_micros)
}

fn shaped_xadd_args(
    encoder: &mut CdcEncoder,
    shape: Shape,
    stream: &str,
    i: u64,
    t_micros: u64,
) -> Vec<Value> {
    let fields = encoder.encode_put(&shaped_item(shape, i, t_micros));
    let mut args: Vec<Value> = Vec::with_capacity(2 + 2 * fields.len());
    args.push(stream.into());
    args.push("*".into());
    for (name, value) in fields {
        args.push(name.into());
        args.push(Value::Bytes(value.into()));
    }
    args
}

/// Appends `n` PUT entries (items `first..first + n`) to `stream` with pipelined XADDs.
pub(crate) async fn fill(client: &Client, stream: &str, first: u64, n: u64) -> Result<()> {
    fill_shaped(client, Shape::DEFAULT, stream, first, n).await
}

/// [`fill`] with the ids and content type of `shape`.
pub(crate) async fn fill_shaped(
    client: &Client,
    shape: Shape,
    stream: &str,
    first: u64,
    n: u64,
) -> Result<()> {
    let mut encoder = CdcEncoder::new();
    let stamp = now_micros();
    let mut i = first;
    while i < first + n {
        let end = (i + FILL_CHUNK as u64).min(first + n);
        let pipeline = client.pipeline();
        for j in i..end {
            let _: () = pipeline
                .custom(
                    command("XADD"),
                    shaped_xadd_args(&mut encoder, shape, stream, j, stamp),
                )
                .await
                .context("queueing XADD")?;
        }
        let _: Vec<Value> = pipeline.all().await.context("pipelined XADD")?;
        i = end;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests panic on failure by design.
mod tests {
    use super::*;

    #[test]
    fn payloads_are_512_bytes_of_json_with_a_readable_stamp() {
        for i in [0, 1, 999, 123_456] {
            let p = payload(i, 1_700_000_000_123_456);
            assert_eq!(p.len(), PAYLOAD_BYTES);
            let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
            assert_eq!(v["id"], i);
            assert_eq!(stamp_of(&p), Some(1_700_000_000_123_456));
        }
    }

    #[test]
    fn payloads_compress_about_two_to_one() {
        let p = payload(7, 1);
        let c = zstd::bulk::compress(&p, 3).unwrap();
        assert!(
            c.len() < p.len() * 3 / 4 && c.len() > p.len() / 5,
            "{}",
            c.len()
        );
    }
}
