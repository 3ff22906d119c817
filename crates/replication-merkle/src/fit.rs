//! How many of the next differing keys a cycle may resolve within its byte budget.
//!
//! The peer sizes the items first (Redis: `STRLEN`, no content transferred), and only the
//! keys whose items fit what is left of the budget are read; the rest stay queued in the
//! [`RepairState`](crate::RepairState) for the next cycle. So a cycle reads at most its
//! budget, except that a cycle which has fetched nothing yet reads its first item even
//! when that item alone is larger than the whole budget (else that key would never be
//! repaired). Items the peer cannot size are read one at a time, so the budget is checked
//! after each of them.

use crate::error::{check_len, RepairError, Side};
use crate::report::CycleReport;
use crate::source::RepairPeer;
use crate::state::Candidate;
use crate::ReadStage;
use futures::future::try_join_all;

/// What of the next candidates fits the budget.
pub(crate) struct Fit {
    /// How many candidates (a prefix) to resolve now; zero when the first item does not
    /// fit: the byte budget is spent.
    pub(crate) keys: usize,
    /// The peer's sizes of the admitted items it could size.
    pub(crate) sized_bytes: u64,
}

/// How many of `candidates` (a prefix) to resolve now with `remaining` bytes of budget
/// left; `fetched_any` says whether this cycle has spent any of its budget yet.
pub(crate) async fn fitting<P: RepairPeer>(
    peer: &P,
    candidates: &[Candidate],
    remaining: u64,
    fetched_any: bool,
    batch: usize,
    report: &mut CycleReport,
) -> Result<Fit, RepairError> {
    let on_peer: Vec<String> = candidates
        .iter()
        .filter(|c| c.on_peer)
        .map(|c| c.key.clone())
        .collect();
    if on_peer.is_empty() {
        // Only tombstones to read: no item content at stake.
        return Ok(Fit {
            keys: candidates.len(),
            sized_bytes: 0,
        });
    }
    let sizes = sizes(peer, &on_peer, batch, report).await?;
    let mut sizes = sizes.into_iter();
    let mut planned: u64 = 0;
    let mut items = 0;
    for (admitted, candidate) in candidates.iter().enumerate() {
        if !candidate.on_peer {
            continue;
        }
        let size = sizes.next().flatten();
        let first = items == 0;
        let keys = match size {
            Some(size) if planned.saturating_add(size) <= remaining => {
                planned += size;
                items += 1;
                continue;
            }
            // Larger than the whole budget, or of unknown size: read it alone.
            Some(size) if first && !fetched_any => {
                planned = size;
                admitted + 1
            }
            None if first => admitted + 1,
            _ => admitted,
        };
        return Ok(Fit {
            keys,
            sized_bytes: planned,
        });
    }
    Ok(Fit {
        keys: candidates.len(),
        sized_bytes: planned,
    })
}

/// One size per key, `None` where the peer cannot tell; batched like item reads, all
/// batches at once. A peer that cannot size at all costs no call.
async fn sizes<P: RepairPeer>(
    peer: &P,
    keys: &[String],
    batch: usize,
    report: &mut CycleReport,
) -> Result<Vec<Option<u64>>, RepairError> {
    let node_id = peer.node_id();
    let chunks: Vec<&[String]> = keys.chunks(batch).collect();
    let answers = try_join_all(chunks.iter().map(|chunk| async move {
        let got = peer
            .item_sizes(chunk)
            .await
            .map_err(|source| RepairError::Peer {
                peer: node_id.to_owned(),
                stage: ReadStage::Items,
                source,
            })?;
        got.map(|got| check_len(node_id, Side::Peer, ReadStage::Items, chunk.len(), got))
            .transpose()
    }))
    .await?;
    let mut out = Vec::with_capacity(keys.len());
    for (chunk, answer) in chunks.iter().zip(answers) {
        match answer {
            Some(sizes) => {
                report.peer_round_trips += 1;
                out.extend(sizes);
            }
            None => out.extend(std::iter::repeat_n(None, chunk.len())),
        }
    }
    Ok(out)
}
