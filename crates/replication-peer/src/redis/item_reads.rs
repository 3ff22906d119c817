//! Reading items (repair) and their existence (delete evidence) from a peer, each bounded
//! by [`ReadLimits`](super::limits::ReadLimits): an item is never transferred beyond the item cap.
//!
//! Items: one pipeline of `TYPE`, `STRLEN` and `GETRANGE key 0 cap-1` per key, so a string
//! item costs one round trip however large it is at the peer, and at most the cap in
//! transfer. RedisJSON documents (rare: sync-engine's JSON items) take two more round trips:
//! `MEMORY USAGE` sizes them, and `JSON.GET` reads those within the cap.
//!
//! Sizes (repair's byte budget): one pipeline of `STRLEN` per batch, read before the items,
//! so that a repair cycle fetches only the items that fit what is left of its budget.

use super::keys::command_on;
use super::query::{cmd, QueryService};
use crate::items::{parse_item_json, parse_json_document};
use fred::error::Error as FredError;
use fred::interfaces::ClientLike;
use fred::types::Value;
use replication_core::{ItemRead, PeerError};
use replication_redis::into_bytes;

impl QueryService {
    /// Items for `keys`, in order.
    pub(super) async fn read_items(&self, keys: &[String]) -> Result<Vec<ItemRead>, PeerError> {
        // Ids over the limits are bad input: answered without asking the peer.
        let mut out: Vec<Option<ItemRead>> = keys
            .iter()
            .map(|key| {
                let refused = self.limits.object_ids.check_bounds(key).err();
                refused.map(|e| ItemRead::Unreadable {
                    reason: e.to_string(),
                })
            })
            .collect();
        let asked: Vec<usize> = (0..keys.len()).filter(|i| out[*i].is_none()).collect();
        if asked.is_empty() {
            return Ok(out.into_iter().flatten().collect());
        }
        let cap = self.limits.max_item_bytes();
        let pipeline = self.client.pipeline();
        for &i in &asked {
            let key = self.keys.item(&keys[i]);
            for (name, args) in [
                ("TYPE", vec![key.clone()]),
                ("STRLEN", vec![key.clone()]),
                ("GETRANGE", vec![key, "0".to_owned(), (cap - 1).to_string()]),
            ] {
                let _: () = pipeline
                    .custom(cmd(name), args)
                    .await
                    .map_err(|e| self.fred_error(&e))?;
            }
        }
        self.trip();
        let mut replies = pipeline.try_all::<Value>().await.into_iter();
        let mut json = Vec::new();
        for &i in &asked {
            let (Some(kind), Some(len), Some(head)) =
                (replies.next(), replies.next(), replies.next())
            else {
                return Err(self.protocol("pipeline returned fewer replies than commands".into()));
            };
            let kind = kind.map_err(|e| self.fred_error(&e))?;
            out[i] = match kind.as_str().as_deref() {
                Some("none") => Some(ItemRead::Absent),
                Some("string") => Some(self.string_item(&keys[i], len, head)?),
                Some("ReJSON-RL") => {
                    json.push(i);
                    None
                }
                other => Some(ItemRead::Unreadable {
                    reason: format!(
                        "key holds a {}, not an item string or RedisJSON document",
                        other.unwrap_or("value of unknown type")
                    ),
                }),
            };
        }
        if !json.is_empty() {
            self.read_json_documents(keys, &json, &mut out).await?;
        }
        Ok(out
            .into_iter()
            .map(|read| read.unwrap_or(ItemRead::Absent))
            .collect())
    }

    /// A string item from its `STRLEN` and `GETRANGE` replies.
    fn string_item(
        &self,
        key: &str,
        len: Result<Value, FredError>,
        head: Result<Value, FredError>,
    ) -> Result<ItemRead, PeerError> {
        let len = len.map_err(|e| self.fred_error(&e))?;
        let len = len
            .as_u64()
            .ok_or_else(|| self.protocol(format!("STRLEN of {key:?}: not an integer")))?;
        if len > self.limits.max_item_bytes() as u64 {
            return Ok(self.limits.item_too_large(len));
        }
        let head = head.map_err(|e| self.fred_error(&e))?;
        let bytes = into_bytes(head)
            .map_err(|e| self.protocol(format!("GETRANGE of {key:?}: {e}")))?
            .unwrap_or_default();
        if bytes.len() as u64 != len {
            // Written or deleted between the two commands: judged again next cycle.
            return Ok(ItemRead::Unreadable {
                reason: "the item changed while it was being read".into(),
            });
        }
        Ok(self.limits.content_within(parse_item_json(key, &bytes)))
    }

    /// RedisJSON documents at `keys[i]` for every `i` in `json`: sized first, read only
    /// within the cap. A server that will not size them (`MEMORY` not allowed) is read as
    /// before, unbounded: the cap protects against data, not against our own permissions.
    async fn read_json_documents(
        &self,
        keys: &[String],
        json: &[usize],
        out: &mut [Option<ItemRead>],
    ) -> Result<(), PeerError> {
        let pipeline = self.client.pipeline();
        for &i in json {
            let key = self.keys.item(&keys[i]);
            // Routed by the key: fred would hash `USAGE`, the first argument.
            let _: () = pipeline
                .custom(command_on("MEMORY", &key), vec!["USAGE".to_owned(), key])
                .await
                .map_err(|e| self.fred_error(&e))?;
        }
        self.trip();
        let sizes = pipeline.try_all::<Value>().await;
        let mut within = Vec::with_capacity(json.len());
        for (&i, size) in json.iter().zip(sizes) {
            match size.ok().and_then(|v| v.as_u64()) {
                Some(size) if size > self.limits.max_item_bytes() as u64 => {
                    out[i] = Some(self.limits.item_too_large(size));
                }
                _ => within.push(i),
            }
        }
        if within.is_empty() {
            return Ok(());
        }
        let pipeline = self.client.pipeline();
        for &i in &within {
            let args = vec![self.keys.item(&keys[i]), "$".to_owned()];
            let _: () = pipeline
                .custom(cmd("JSON.GET"), args)
                .await
                .map_err(|e| self.fred_error(&e))?;
        }
        self.trip();
        for (&i, reply) in within.iter().zip(pipeline.try_all::<Value>().await) {
            out[i] = Some(match reply {
                Ok(v) => match v.into_bytes() {
                    Some(bytes) => self
                        .limits
                        .content_within(parse_json_document(&keys[i], &bytes)),
                    None => ItemRead::Absent,
                },
                // The module is absent: the key exists but cannot be read here.
                Err(e) if e.details().contains("unknown command") => ItemRead::Unreadable {
                    reason: "RedisJSON document, but the peer has no RedisJSON module".into(),
                },
                Err(e) => return Err(self.fred_error(&e)),
            });
        }
        Ok(())
    }

    /// The stored size of each key's item: one pipeline of `STRLEN`, no item transferred
    /// (`0` for an absent key). A key that is not a string (a RedisJSON document, a wrong
    /// type) cannot be sized this way: `None`, and the repair reads it on its own. Ids over
    /// the limits are never asked for (their read is refused without asking): `0`.
    pub(super) async fn item_sizes(&self, keys: &[String]) -> Result<Vec<Option<u64>>, PeerError> {
        let asked: Vec<usize> = (0..keys.len())
            .filter(|&i| self.limits.object_ids.check_bounds(&keys[i]).is_ok())
            .collect();
        let mut out = vec![Some(0); keys.len()];
        if asked.is_empty() {
            return Ok(out);
        }
        let pipeline = self.client.pipeline();
        for &i in &asked {
            let _: () = pipeline
                .custom(cmd("STRLEN"), vec![self.keys.item(&keys[i])])
                .await
                .map_err(|e| self.fred_error(&e))?;
        }
        self.trip();
        let replies = pipeline.try_all::<Value>().await;
        if replies.len() != asked.len() {
            return Err(self.protocol("pipeline returned fewer replies than commands".into()));
        }
        for (&i, reply) in asked.iter().zip(replies) {
            out[i] = match reply {
                Ok(len) => Some(len.as_u64().ok_or_else(|| {
                    self.protocol(format!("STRLEN of {:?}: not an integer", keys[i]))
                })?),
                Err(e) => {
                    let error = self.fred_error(&e);
                    if error.is_retriable() {
                        return Err(error);
                    }
                    // `WRONGTYPE`: the server answered, about this key alone.
                    None
                }
            };
        }
        Ok(out)
    }

    /// Whether the peer holds each key in any form: one pipeline of `EXISTS`, no item
    /// transferred.
    pub(super) async fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>, PeerError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = self.client.pipeline();
        for key in keys {
            let _: () = pipeline
                .custom(cmd("EXISTS"), vec![self.keys.item(key)])
                .await
                .map_err(|e| self.fred_error(&e))?;
        }
        self.trip();
        let replies = pipeline.try_all::<Value>().await;
        if replies.len() != keys.len() {
            return Err(self.protocol("pipeline returned fewer replies than commands".into()));
        }
        replies
            .into_iter()
            .zip(keys)
            .map(|(reply, key)| {
                let reply = reply.map_err(|e| self.fred_error(&e))?;
                reply
                    .as_u64()
                    .map(|n| n > 0)
                    .ok_or_else(|| self.protocol(format!("EXISTS of {key:?}: not an integer")))
            })
            .collect()
    }
}
