//! The commit of every write batch: one `MULTI`/`EXEC` block of a `MSET` that stages the
//! item bodies and a Lua script that checks the write token and applies everything.
//!
//! Redis has no SHA-256 in Lua, so hashes are computed client-side and the script only
//! applies a precomputed list of writes. It first compares the store's write token
//! (`{prefix}store:epoch`) with the token the batch was planned against: when another
//! writer (another task, process or node daemon) committed in between, the script writes
//! nothing (it drops the staged bodies) and the batch is planned again. Otherwise it applies
//! every write and installs a fresh token. The block is atomic: Redis runs it without
//! interleaving, and AOF / replicas receive it as one MULTI/EXEC, so a crash never leaves
//! half of it, and no client ever sees a staged body.
//!
//! Why stage: every argument of a script becomes a Lua string, and for item bodies (a few
//! KB each: content is a JSON array of byte values) that conversion cost Redis more than
//! all the writes together. Staged bodies reach Redis as plain `MSET` arguments, and the
//! script `RENAME`s each into place, which moves the value without copying it.
//!
//! Writes that can fail on a wrongly typed key go first: the stream append (the script's
//! only write to a key whose type it does not own), then the sets and the hash (their types
//! were checked when the batch read them). If one fails anyway, the script drops the staged
//! bodies before it reports the error. `MSET`, `RENAME` and `DEL` cannot fail.

use crate::keys::KeySpace;
use bytes::Bytes;
use fred::types::{Key, Value};
use std::collections::BTreeMap;

/// The script. KEYS[1]: the token key. ARGV: expected token, new token, the number of
/// staged bodies, then (staging key, item key) per body, then commands, each as its name,
/// its argument count and its arguments. Only the commands the store issues are accepted.
///
/// Writes are grouped into few commands (`MSET` of every hash key, one `ZADD` per children
/// set, ...): fewer `redis.call`s. Commands are split client-side so that no `unpack`
/// exceeds Lua's stack limit.
pub(crate) const SOURCE: &str = r#"
local staged = tonumber(ARGV[3])
local first_command = 4 + 2 * staged
local function unstage()
  for j = 4, first_command - 1, 2 do
    redis.call('DEL', ARGV[j])
  end
end
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
  unstage()
  return current
end
local allowed = {XADD = true, ZREM = true, ZADD = true, HSET = true, HDEL = true, MSET = true, DEL = true}
local ok, failure = pcall(function()
  local i = first_command
  local n = #ARGV
  while i <= n do
    local command = ARGV[i]
    local count = tonumber(ARGV[i + 1])
    if not allowed[command] or count == nil or count < 1 then
      error('bad command ' .. tostring(command))
    end
    redis.call(command, unpack(ARGV, i + 2, i + 1 + count))
    i = i + 2 + count
  end
end)
if not ok then
  unstage()
  if type(failure) == 'table' then
    failure = failure.err
  end
  -- The reply keeps Redis' error code first (WRONGTYPE, OOM, ...): callers classify by it.
  return redis.error_reply(tostring(failure) .. ' (in the node store script)')
end
for j = 4, first_command - 1, 2 do
  redis.call('RENAME', ARGV[j], ARGV[j + 1])
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"#;

/// Most arguments one command of the script carries (Lua's `unpack` limit is about 8000).
const MAX_COMMAND_ARGS: usize = 1_000;

/// Builds the argument list of one script call, grouping writes into few commands, in the
/// order the script needs (see the module docs).
pub(crate) struct ScriptArgs {
    /// Item keys and bodies, staged by the `MSET` before the script.
    bodies: Vec<(String, Bytes)>,
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
            bodies: Vec::new(),
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

    /// Stores item `key` with `body` (staged, then renamed into place by the script).
    pub(crate) fn set_item(&mut self, key: String, body: Bytes) {
        self.bodies.push((key, body));
    }

    /// Sets string `key` (a hash key).
    pub(crate) fn set(&mut self, key: String, value: Bytes) {
        self.values_set.push(text(key));
        self.values_set.push(Value::Bytes(value));
    }

    /// Deletes `key`.
    pub(crate) fn del(&mut self, key: String) {
        self.keys_deleted.push(text(key));
    }

    /// The commit: the staging `MSET` pairs (empty when no item is stored) and the script's
    /// ARGV (tokens, renames, then the commands in failure-safe order). `keys` names the
    /// staging keys and the tombstones hash.
    pub(crate) fn into_commit(
        self,
        expected_token: Bytes,
        new_token: Bytes,
        keys: &KeySpace,
    ) -> (Vec<(Key, Value)>, Vec<Value>) {
        let mut staging = Vec::with_capacity(self.bodies.len());
        let mut argv = Argv(Vec::with_capacity(3 + 2 * self.bodies.len()));
        argv.0.extend([
            Value::Bytes(expected_token),
            Value::Bytes(new_token),
            Value::Integer(self.bodies.len() as i64),
        ]);
        for (i, (key, body)) in self.bodies.into_iter().enumerate() {
            let staged = keys.staging(i);
            staging.push((Key::from(staged.as_str()), Value::Bytes(body)));
            argv.0.push(text(staged));
            argv.0.push(text(key));
        }
        argv.0.extend(self.appends);
        for (key, members) in self.removed_members {
            argv.keyed("ZREM", &key, members, 1);
        }
        for (key, pairs) in self.added_members {
            argv.keyed("ZADD", &key, pairs, 2);
        }
        let tombstones = keys.tombstones();
        argv.keyed("HSET", &tombstones, self.tombstones_set, 2);
        argv.keyed("HDEL", &tombstones, self.tombstones_deleted, 1);
        argv.unkeyed("MSET", self.values_set, 2);
        argv.unkeyed("DEL", self.keys_deleted, 1);
        (staging, argv.0)
    }
}

/// The ARGV being assembled.
struct Argv(Vec<Value>);

impl Argv {
    /// `command key args...`, split into several commands of whole `unit`s of arguments
    /// (pairs stay together) when there are many.
    fn keyed(&mut self, command: &'static str, key: &str, args: Vec<Value>, unit: usize) {
        self.push(command, Some(key), args, unit);
    }

    /// `command args...`, split like [`keyed`](Self::keyed).
    fn unkeyed(&mut self, command: &'static str, args: Vec<Value>, unit: usize) {
        self.push(command, None, args, unit);
    }

    fn push(&mut self, command: &'static str, key: Option<&str>, args: Vec<Value>, unit: usize) {
        let per_command = (MAX_COMMAND_ARGS / unit) * unit;
        let mut args = args.into_iter().peekable();
        while args.peek().is_some() {
            let chunk: Vec<Value> = args.by_ref().take(per_command).collect();
            let count = chunk.len() + usize::from(key.is_some());
            self.0.push(Value::from_static_str(command));
            self.0.push(Value::Integer(count as i64));
            if let Some(key) = key {
                self.0.push(Value::from(key.to_owned()));
            }
            self.0.extend(chunk);
        }
    }
}

/// MAXLEN as a Redis integer argument (lengths beyond i64 are meaningless anyway).
fn maxlen_arg(maxlen: u64) -> i64 {
    i64::try_from(maxlen).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(values: &[Value]) -> Vec<String> {
        values
            .iter()
            .map(|v| match v {
                Value::Integer(n) => n.to_string(),
                other => other.as_string().unwrap_or_default(),
            })
            .collect()
    }

    #[test]
    fn large_groups_split_into_commands_of_whole_pairs() {
        let keys = KeySpace::new("p:");
        let mut args = ScriptArgs::new();
        for i in 0..1_001 {
            args.zadd(keys.children("a"), format!("m{i}"));
        }
        let (staging, argv) = args.into_commit(Bytes::new(), Bytes::from_static(b"t"), &keys);
        assert!(staging.is_empty());
        let argv = texts(&argv);
        // Tokens and the (zero) count of staged bodies, then the commands.
        assert_eq!(&argv[..3], ["", "t", "0"]);
        let mut at = 3;
        let mut members = Vec::new();
        while at < argv.len() {
            assert_eq!(argv[at], "ZADD");
            let count: usize = argv[at + 1].parse().unwrap();
            assert!(count <= MAX_COMMAND_ARGS + 1, "{count}");
            assert_eq!(argv[at + 2], "p:merkle:children:a");
            // Score, member pairs: never split.
            assert_eq!((count - 1) % 2, 0);
            for pair in argv[at + 3..at + 2 + count].chunks(2) {
                assert_eq!(pair[0], "0");
                members.push(pair[1].clone());
            }
            at += 2 + count;
        }
        assert_eq!(members.len(), 1_001);
        assert_eq!(members[1_000], "m1000");
    }

    #[test]
    fn item_bodies_are_staged_and_renamed_in_order() {
        let keys = KeySpace::new("p:");
        let mut args = ScriptArgs::new();
        args.set_item(keys.item("x"), Bytes::from_static(b"X"));
        args.set_item(keys.item("y"), Bytes::from_static(b"Y"));
        args.del(keys.item("z"));
        let (staging, argv) = args.into_commit(
            Bytes::from_static(b"old"),
            Bytes::from_static(b"new"),
            &keys,
        );
        let staged: Vec<(String, String)> = staging
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().unwrap_or_default().to_owned(),
                    v.as_string().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            staged,
            [
                ("p:store:staging:0".to_owned(), "X".to_owned()),
                ("p:store:staging:1".to_owned(), "Y".to_owned())
            ]
        );
        assert_eq!(
            texts(&argv),
            [
                "old",
                "new",
                "2",
                "p:store:staging:0",
                "p:x",
                "p:store:staging:1",
                "p:y",
                "DEL",
                "1",
                "p:z"
            ]
        );
    }
}
