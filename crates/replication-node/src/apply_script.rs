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

/// The script. ARGV: expected token, new token, then operations, each an opcode followed by
/// a fixed number of arguments (`X` is followed by its field count and the pairs).
pub(crate) const SOURCE: &str = r#"
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
  return current
end
local i = 3
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  if op == 'X' then
    local count = tonumber(ARGV[i + 3])
    local args = {ARGV[i + 1], 'MAXLEN', '~', ARGV[i + 2], '*'}
    for j = 1, 2 * count do
      args[5 + j] = ARGV[i + 3 + j]
    end
    redis.call('XADD', unpack(args))
    i = i + 4 + 2 * count
  elseif op == 'ZR' then
    redis.call('ZREM', ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'ZA' then
    redis.call('ZADD', ARGV[i + 1], 0, ARGV[i + 2])
    i = i + 3
  elseif op == 'HS' then
    redis.call('HSET', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
    i = i + 4
  elseif op == 'HD' then
    redis.call('HDEL', ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'S' then
    redis.call('SET', ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'D' then
    redis.call('DEL', ARGV[i + 1])
    i = i + 2
  else
    return redis.error_reply('node store script: unknown op ' .. tostring(op))
  end
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

/// Builds the argument list of one script call, in the order the script needs.
pub(crate) struct ScriptArgs {
    appends: Vec<Value>,
    sets: Vec<Value>,
    hashes: Vec<Value>,
    plain: Vec<Value>,
}

fn op(name: &'static str) -> Value {
    Value::from_static_str(name)
}

fn text(s: String) -> Value {
    Value::Bytes(Bytes::from(s))
}

impl ScriptArgs {
    pub(crate) fn new() -> Self {
        Self {
            appends: Vec::new(),
            sets: Vec::new(),
            hashes: Vec::new(),
            plain: Vec::new(),
        }
    }

    /// `XADD stream MAXLEN ~ maxlen * fields...`.
    pub(crate) fn xadd(
        &mut self,
        stream: String,
        maxlen: u64,
        fields: Vec<(&'static str, Vec<u8>)>,
    ) {
        self.appends.extend([
            op("X"),
            text(stream),
            Value::Integer(maxlen_arg(maxlen)),
            Value::Integer(fields.len() as i64),
        ]);
        for (name, value) in fields {
            self.appends.push(Value::from_static_str(name));
            self.appends.push(Value::Bytes(Bytes::from(value)));
        }
    }

    /// `ZREM key member`.
    pub(crate) fn zrem(&mut self, key: String, member: String) {
        self.sets.extend([op("ZR"), text(key), text(member)]);
    }

    /// `ZADD key 0 member`.
    pub(crate) fn zadd(&mut self, key: String, member: String) {
        self.sets.extend([op("ZA"), text(key), text(member)]);
    }

    /// `HSET key field value`.
    pub(crate) fn hset(&mut self, key: String, field: String, value: String) {
        self.hashes
            .extend([op("HS"), text(key), text(field), text(value)]);
    }

    /// `HDEL key field`.
    pub(crate) fn hdel(&mut self, key: String, field: String) {
        self.hashes.extend([op("HD"), text(key), text(field)]);
    }

    /// `SET key value`.
    pub(crate) fn set(&mut self, key: String, value: Bytes) {
        self.plain.extend([op("S"), text(key), Value::Bytes(value)]);
    }

    /// `DEL key`.
    pub(crate) fn del(&mut self, key: String) {
        self.plain.extend([op("D"), text(key)]);
    }

    /// The full ARGV: tokens, then the writes in failure-safe order.
    pub(crate) fn into_argv(self, expected_token: Bytes, new_token: Bytes) -> Vec<Value> {
        let len = 2 + self.appends.len() + self.sets.len() + self.hashes.len() + self.plain.len();
        let mut argv = Vec::with_capacity(len);
        argv.push(Value::Bytes(expected_token));
        argv.push(Value::Bytes(new_token));
        argv.extend(self.appends);
        argv.extend(self.sets);
        argv.extend(self.hashes);
        argv.extend(self.plain);
        argv
    }
}

/// MAXLEN as a Redis integer argument (lengths beyond i64 are meaningless anyway).
fn maxlen_arg(maxlen: u64) -> i64 {
    i64::try_from(maxlen).unwrap_or(i64::MAX)
}
