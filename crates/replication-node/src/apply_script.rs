//! The one Lua script every write batch commits through, and its argument encoding.
//!
//! Redis has no SHA-256 in Lua, so hashes are computed client-side and the script only
//! applies a precomputed list of writes. It first compares the store's write token
//! (`{prefix}store:epoch`) with the token the batch was planned against: when another
//! writer (another task, process or node daemon) committed in between, the script writes
//! nothing and the batch is planned again. Otherwise it applies every write and installs a
//! fresh token, all in one atomic step (Redis runs a script to completion, and AOF /
//! replication carry its effects as one MULTI/EXEC block, so a crash never leaves half of it).
//!
//! Writes that can fail on a wrongly typed key go first: the stream append (the script's
//! only write to a key whose type it does not own), then the sets and the hash (their types
//! were checked when the batch read them). `SET`/`DEL` cannot fail.

use bytes::Bytes;
use fred::types::Value;
use std::collections::BTreeMap;

/// The script. ARGV: expected token, new token, then commands, each as its name, its
/// argument count and its arguments. Only the commands the store issues are accepted.
///
/// Writes are grouped into few commands (`MSET` of every item and hash key, one `ZADD` per
/// children set, ...): a `redis.call` costs far more than the copy of one more argument,
/// so per-key calls dominated the script before. Commands are split client-side so that no
/// `unpack` exceeds Lua's stack limit.
pub(crate) const SOURCE: &str = r#"
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
  return current
end
local allowed = {XADD = true, ZREM = true, ZADD = true, HSET = true, HDEL = true, MSET = true, DEL = true}
local i = 3
local n = #ARGV
while i <= n do
  local command = ARGV[i]
  local count = tonumber(ARGV[i + 1])
  if not allowed[command] or count == nil or count < 1 then
    return redis.error_reply('node store script: bad command ' .. tostring(command))
  end
  redis.call(command, unpack(ARGV, i + 2, i + 1 + count))
  i = i + 2 + count
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"#;

/// Drops tombstones whose value is still the one the purge read, so a tombstone replaced
/// meanwhile (a newer delete) survives. ARGV: field, value pairs. Returns how many it dropped.
pub(crate) const PURGE_SOURCE: &str = r#"
local dropped = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    dropped = dropped + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return dropped
"#;

/// Most arguments one command of the script carries (Lua's `unpack` limit is about 8000).
const MAX_COMMAND_ARGS: usize = 1_000;

/// Builds the argument list of one script call, grouping writes into few commands, in the
/// order the script needs (see the module docs).
pub(crate) struct ScriptArgs {
    appends: Vec<Value>,
    removed_members: Grouped,
    added_members: Grouped,
    tombstones_set: Vec<Value>,
    tombstones_deleted: Vec<Value>,
    values_set: Vec<Value>,
    keys_deleted: Vec<Value>,
}

/// Arguments per key, for commands of the form `CMD key args...` (ZADD, ZREM).
type Grouped = BTreeMap<String, Vec<Value>>;

fn text(s: String) -> Value {
    Value::Bytes(Bytes::from(s))
}

impl ScriptArgs {
    pub(crate) fn new() -> Self {
        Self {
            appends: Vec::new(),
            removed_members: Grouped::new(),
            added_members: Grouped::new(),
            tombstones_set: Vec::new(),
            tombstones_deleted: Vec::new(),
            values_set: Vec::new(),
            keys_deleted: Vec::new(),
        }
    }

    /// `XADD stream MAXLEN ~ maxlen * fields...`, one command per entry.
    pub(crate) fn xadd(
        &mut self,
        stream: String,
        maxlen: u64,
        fields: Vec<(&'static str, Vec<u8>)>,
    ) {
        let count = 5 + 2 * fields.len();
        self.appends.extend([
            Value::from_static_str("XADD"),
            Value::Integer(count as i64),
            text(stream),
            Value::from_static_str("MAXLEN"),
            Value::from_static_str("~"),
            Value::Integer(maxlen_arg(maxlen)),
            Value::from_static_str("*"),
        ]);
        for (name, value) in fields {
            self.appends.push(Value::from_static_str(name));
            self.appends.push(Value::Bytes(Bytes::from(value)));
        }
    }

    /// Removes `member` from the sorted set `key`.
    pub(crate) fn zrem(&mut self, key: String, member: String) {
        self.removed_members
            .entry(key)
            .or_default()
            .push(text(member));
    }

    /// Adds `member` with score 0 to the sorted set `key`.
    pub(crate) fn zadd(&mut self, key: String, member: String) {
        let args = self.added_members.entry(key).or_default();
        args.push(Value::Integer(0));
        args.push(text(member));
    }

    /// Sets `field` of the tombstones hash.
    pub(crate) fn hset(&mut self, field: String, value: String) {
        self.tombstones_set.push(text(field));
        self.tombstones_set.push(text(value));
    }

    /// Deletes `field` of the tombstones hash.
    pub(crate) fn hdel(&mut self, field: String) {
        self.tombstones_deleted.push(text(field));
    }

    /// Sets string `key` (an item or a hash key).
    pub(crate) fn set(&mut self, key: String, value: Bytes) {
        self.values_set.push(text(key));
        self.values_set.push(Value::Bytes(value));
    }

    /// Deletes `key`.
    pub(crate) fn del(&mut self, key: String) {
        self.keys_deleted.push(text(key));
    }

    /// The full ARGV: tokens, then the commands in failure-safe order. `tombstones` is the
    /// key of the tombstones hash.
    pub(crate) fn into_argv(
        self,
        expected_token: Bytes,
        new_token: Bytes,
        tombstones: &str,
    ) -> Vec<Value> {
        let mut argv = Argv(vec![Value::Bytes(expected_token), Value::Bytes(new_token)]);
        argv.0.extend(self.appends);
        for (key, members) in self.removed_members {
            argv.keyed("ZREM", &key, members, 1);
        }
        for (key, pairs) in self.added_members {
            argv.keyed("ZADD", &key, pairs, 2);
        }
        argv.keyed("HSET", tombstones, self.tombstones_set, 2);
        argv.keyed("HDEL", tombstones, self.tombstones_deleted, 1);
        argv.unkeyed("MSET", self.values_set, 2);
        argv.unkeyed("DEL", self.keys_deleted, 1);
        argv.0
    }
}

/// The ARGV being assembled.
struct Argv(Vec<Value>);

impl Argv {
    /// `command key args...`, split into several commands of whole `unit`s of arguments
    /// (pairs stay together) when there are many.
    fn keyed(&mut self, command: &'static str, key: &str, args: Vec<Value>, unit: usize) {
        let per_command = (MAX_COMMAND_ARGS / unit) * unit;
        let mut args = args.into_iter().peekable();
        while args.peek().is_some() {
            let chunk: Vec<Value> = args.by_ref().take(per_command).collect();
            self.0.push(Value::from_static_str(command));
            self.0.push(Value::Integer(chunk.len() as i64 + 1));
            self.0.push(Value::from(key.to_owned()));
            self.0.extend(chunk);
        }
    }

    /// `command args...`, split like [`keyed`](Self::keyed).
    fn unkeyed(&mut self, command: &'static str, args: Vec<Value>, unit: usize) {
        let per_command = (MAX_COMMAND_ARGS / unit) * unit;
        let mut args = args.into_iter().peekable();
        while args.peek().is_some() {
            let chunk: Vec<Value> = args.by_ref().take(per_command).collect();
            self.0.push(Value::from_static_str(command));
            self.0.push(Value::Integer(chunk.len() as i64));
            self.0.extend(chunk);
        }
    }
}

/// MAXLEN as a Redis integer argument (lengths beyond i64 are meaningless anyway).
fn maxlen_arg(maxlen: u64) -> i64 {
    i64::try_from(maxlen).unwrap_or(i64::MAX)
}
