//! `Fault`: what can go wrong, drawn from the seed; each lasts until its heal time (or is
//! instantaneous), and every one is healed before the mesh is judged.

use crate::rng::Rng;
use std::fmt;

/// How a config reload changes one peer of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reload {
    Remove,
    Disable,
    /// Another URL for the same node: read from the beginning, sync evidence dropped.
    Repoint,
}

/// Malformed or oversized stream entries a hostile or buggy peer writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hostile {
    /// Fields present, values wrong (bad hash, truncated meta; a DEL's stamp that does not
    /// parse).
    BadFields,
    /// Binary junk field names and values.
    Junk,
    /// An op that is neither PUT nor DEL.
    UnknownOp,
    /// A PUT whose hash is another content's.
    HashMismatch,
    /// An id over `max_object_id_bytes`.
    OversizedId,
    /// Content over `max_content_bytes`.
    OversizedValue,
}

/// See the module docs. Nodes are indices; `reader` reads `peer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Both directions between `a` and `b` cut.
    Partition { a: usize, b: usize },
    /// `reader` cannot reach `peer`; the other direction works.
    OneWay { reader: usize, peer: usize },
    /// `reader`'s link to `peer` goes down and up every `half_ms`.
    Flapping {
        reader: usize,
        peer: usize,
        half_ms: u64,
    },
    /// Every call from `reader` to `peer` takes `delay_ms` longer.
    Slow {
        reader: usize,
        peer: usize,
        delay_ms: u64,
    },
    /// The engine is dropped without shutdown; it restarts at heal.
    Crash { node: usize },
    /// A clean shutdown; it starts again at heal. With `hiccup`, the store fails writes
    /// just before (while peers write) and recovers as the shutdown begins: the batch in
    /// flight must still land within the drain budget.
    CleanStop { node: usize, hiccup: bool },
    /// `peer`'s stream trimmed to its newest `keep` entries (instantaneous).
    Trim { peer: usize, keep: usize },
    /// `peer`'s stream key deleted; the next append recreates it (instantaneous).
    RecreateStream { peer: usize },
    /// The node's store fails its writes (retriable).
    StoreWritesFail { node: usize },
    /// The node's store fails every call (retriable).
    StoreDown { node: usize },
    /// The node's store asks for backpressure (`should_accept_writes` false).
    Backpressure { node: usize },
    /// The node's store replies `ms` after each write is visible.
    ReplyLatency { node: usize, ms: u64 },
    /// The node's store refuses every replicated write of `key` for good.
    Refuse { node: usize, key: String },
    /// A reload of `node`'s config changes `peer`; the heal restores it.
    Reload {
        node: usize,
        peer: usize,
        change: Reload,
    },
    /// `peer` appends hostile entries to its stream (instantaneous).
    Hostile { peer: usize, kind: Hostile },
    /// `peer`'s tombstones read as malformed.
    MalformedTombstones { peer: usize },
}

impl Fault {
    /// Draws a fault for a mesh of `nodes` nodes over `keys`. `refusals` says whether
    /// permanent refusals may be drawn (not in hot-path-only meshes, where nothing could
    /// ever bring a refused change back).
    pub(crate) fn draw(rng: &mut Rng, nodes: usize, keys: &[String], refusals: bool) -> Self {
        let node = rng.index(nodes);
        let other = (node + 1 + rng.index(nodes - 1)) % nodes;
        match rng.below(100) {
            0..=11 => Fault::Partition { a: node, b: other },
            12..=19 => Fault::OneWay {
                reader: node,
                peer: other,
            },
            20..=25 => Fault::Flapping {
                reader: node,
                peer: other,
                half_ms: rng.between(50, 800),
            },
            26..=30 => Fault::Slow {
                reader: node,
                peer: other,
                delay_ms: rng.between(20, 1500),
            },
            31..=40 => Fault::Crash { node },
            41..=46 => Fault::CleanStop {
                node,
                hiccup: rng.percent(50),
            },
            47..=53 => Fault::Trim {
                peer: node,
                keep: rng.below(4) as usize,
            },
            54..=56 => Fault::RecreateStream { peer: node },
            57..=63 => Fault::StoreWritesFail { node },
            64..=66 => Fault::StoreDown { node },
            67..=71 => Fault::Backpressure { node },
            72..=74 => Fault::ReplyLatency {
                node,
                ms: rng.between(10, 800),
            },
            75..=79 if refusals => Fault::Refuse {
                node,
                key: rng.pick(keys).clone(),
            },
            75..=87 => Fault::Reload {
                node,
                peer: other,
                change: *rng.pick(&[Reload::Remove, Reload::Disable, Reload::Repoint]),
            },
            88..=95 => Fault::Hostile {
                peer: node,
                kind: *rng.pick(&[
                    Hostile::BadFields,
                    Hostile::Junk,
                    Hostile::UnknownOp,
                    Hostile::HashMismatch,
                    Hostile::OversizedId,
                    Hostile::OversizedValue,
                ]),
            },
            _ => Fault::MalformedTombstones { peer: node },
        }
    }

    /// Whether the fault takes effect and ends in one step.
    pub(crate) fn is_instant(&self) -> bool {
        matches!(
            self,
            Fault::Trim { .. } | Fault::RecreateStream { .. } | Fault::Hostile { .. }
        )
    }

    /// The fault's short name, for counts.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::OneWay { .. } => "one-way",
            Fault::Flapping { .. } => "flapping",
            Fault::Slow { .. } => "slow-peer",
            Fault::Crash { .. } => "crash",
            Fault::CleanStop { .. } => "clean-restart",
            Fault::Trim { .. } => "trim",
            Fault::RecreateStream { .. } => "recreate-stream",
            Fault::StoreWritesFail { .. } => "store-writes-fail",
            Fault::StoreDown { .. } => "store-down",
            Fault::Backpressure { .. } => "backpressure",
            Fault::ReplyLatency { .. } => "reply-latency",
            Fault::Refuse { .. } => "refuse-key",
            Fault::Reload { .. } => "reload",
            Fault::Hostile { .. } => "hostile-input",
            Fault::MalformedTombstones { .. } => "malformed-tombstones",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { a, b } => write!(f, "partition n{a} <-> n{b}"),
            Fault::OneWay { reader, peer } => write!(f, "one-way: n{reader} cannot reach n{peer}"),
            Fault::Flapping {
                reader,
                peer,
                half_ms,
            } => write!(f, "flapping n{reader} -> n{peer} every {half_ms} ms"),
            Fault::Slow {
                reader,
                peer,
                delay_ms,
            } => write!(f, "slow n{reader} -> n{peer} +{delay_ms} ms per call"),
            Fault::Crash { node } => write!(f, "crash n{node}"),
            Fault::CleanStop { node, hiccup } => write!(
                f,
                "clean stop n{node}{}",
                if *hiccup { " after a store hiccup" } else { "" }
            ),
            Fault::Trim { peer, keep } => write!(f, "trim n{peer}'s stream to {keep}"),
            Fault::RecreateStream { peer } => write!(f, "recreate n{peer}'s stream empty"),
            Fault::StoreWritesFail { node } => write!(f, "n{node}'s store fails writes"),
            Fault::StoreDown { node } => write!(f, "n{node}'s store fails every call"),
            Fault::Backpressure { node } => write!(f, "n{node}'s store asks for backpressure"),
            Fault::ReplyLatency { node, ms } => write!(f, "n{node}'s store replies {ms} ms late"),
            Fault::Refuse { node, key } => write!(f, "n{node}'s store refuses {key} for good"),
            Fault::Reload { node, peer, change } => {
                write!(f, "reload n{node}: {change:?} peer n{peer}")
            }
            Fault::Hostile { peer, kind } => write!(f, "n{peer} appends hostile entry {kind:?}"),
            Fault::MalformedTombstones { peer } => write!(f, "n{peer}'s tombstones malformed"),
        }
    }
}
