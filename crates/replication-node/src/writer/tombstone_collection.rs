//! Tombstone collection: dropping tombstones older than the retention, in `HSCAN` pages,
//! each page through a script that also raises the version floor above what it dropped.

use super::Writer;
use crate::value_codec::{decode_recorded_tombstone, reply_array, reply_bytes};
use crate::NodeError;
use fred::prelude::{ClientLike, LuaInterface, Value};
use fred::types::CustomCommand;

/// Drops tombstones whose value is still the one the purge read, so a tombstone replaced
/// meanwhile (a newer delete) survives, and raises the version floor to the highest version
/// dropped, in the same step (local writes then take versions above every collected
/// tombstone). When it drops any, it installs a fresh write token: states read before (kept
/// for a write, or cached) must not outlive the tombstones they saw.
/// KEYS: tombstones hash, version floor, write token. ARGV: the new token, then (field,
/// value, version as decimal text) per tombstone. Returns how many it dropped.
/// Versions are compared as decimal text (longer is larger, then byte order), exact for
/// every u64, which Lua's double-precision numbers are not.
pub(super) const SOURCE: &str = r#"
local function larger(a, b)
  return #a > #b or (#a == #b and a > b)
end
local dropped = 0
local top = nil
for i = 2, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    dropped = dropped + redis.call('HDEL', KEYS[1], ARGV[i])
    if top == nil or larger(ARGV[i + 2], top) then
      top = ARGV[i + 2]
    end
  end
end
if top ~= nil then
  local floor = redis.call('GET', KEYS[2])
  if not floor or larger(top, floor) then
    redis.call('SET', KEYS[2], top)
  end
end
if dropped > 0 then
  redis.call('SET', KEYS[3], ARGV[1])
end
return dropped
"#;

impl Writer {
    /// Drops tombstones this store recorded before `recorded_before_ms` (its own clock;
    /// values without the time count as recorded at their `deleted_at`) and raises the
    /// version floor above the versions they held (see [`SOURCE`]); returns how many.
    pub(crate) async fn purge_tombstones(&self, recorded_before_ms: i64) -> Result<u64, NodeError> {
        let key = self.keys.tombstones();
        let script_keys = vec![key.clone(), self.keys.version_floor(), self.keys.epoch()];
        let mut cursor = String::from("0");
        let mut dropped = 0u64;
        loop {
            let args: Vec<Value> = vec![
                key.clone().into(),
                cursor.clone().into(),
                "COUNT".into(),
                1000.into(),
            ];
            let reply: Value = self
                .client
                .custom(
                    CustomCommand::new_static("HSCAN", self.keys.route(), false),
                    args,
                )
                .await
                .map_err(|e| NodeError::redis("HSCAN tombstones", e))?;
            let mut parts = reply_array(&key, reply)?.into_iter();
            let next_cursor = parts
                .next()
                .map(|v| reply_bytes(&key, v))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            let pairs = parts
                .next()
                .map(|v| reply_array(&key, v))
                .transpose()?
                .unwrap_or_default();
            let token = format!("{:032x}", rand::random::<u128>());
            let mut argv = vec![Value::from(token)];
            let mut pairs = pairs.into_iter();
            while let (Some(field), Some(value)) = (pairs.next(), pairs.next()) {
                let field = reply_bytes(&key, field)?.unwrap_or_default();
                let value = reply_bytes(&key, value)?.unwrap_or_default();
                let id = String::from_utf8_lossy(&field);
                let (tombstone, recorded_at) = decode_recorded_tombstone(&key, &id, &value)?;
                if recorded_at < recorded_before_ms {
                    argv.push(Value::Bytes(field));
                    argv.push(Value::Bytes(value));
                    argv.push(Value::from(tombstone.version.to_string()));
                }
            }
            if argv.len() > 1 {
                let reply = self
                    .evalsha(&self.purge_sha, SOURCE, script_keys.clone(), argv)
                    .await?;
                dropped += reply.as_u64().unwrap_or(0);
            }
            cursor = String::from_utf8_lossy(&next_cursor).into_owned();
            if cursor == "0" || cursor.is_empty() {
                return Ok(dropped);
            }
        }
    }

    /// `EVALSHA`, loading the script again if the server lost it (restart, SCRIPT FLUSH).
    async fn evalsha(
        &self,
        sha: &str,
        source: &str,
        keys: Vec<String>,
        argv: Vec<Value>,
    ) -> Result<Value, NodeError> {
        match self
            .client
            .evalsha::<Value, _, _, _>(sha, keys.clone(), argv.clone())
            .await
        {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                super::commit::load_script(&self.client, &self.keys, source).await?;
                self.client
                    .evalsha(sha, keys, argv)
                    .await
                    .map_err(|e| NodeError::redis("write script", e))
            }
            other => other.map_err(|e| NodeError::redis("write script", e)),
        }
    }
}
