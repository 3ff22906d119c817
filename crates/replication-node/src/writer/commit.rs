//! Committing one part of a batch: the `MULTI`/`EXEC` block of the apply script (see
//! `apply_script`), whether it landed (the token it installed tells, also when the reply
//! was lost), and loading scripts on the server that runs them.

use super::Writer;
use crate::apply_script::{ScriptArgs, SOURCE};
use crate::keys::KeySpace;
use crate::value_codec::{corrupt, reply_array, reply_bytes};
use crate::NodeError;
use bytes::Bytes;
use fred::prelude::{Client, ClientLike, KeysInterface, TransactionInterface, Value};
use fred::types::CustomCommand;

impl Writer {
    /// Runs the commit block (see `apply_script`); `Ok(false)` when another writer got there
    /// first.
    pub(super) async fn commit(
        &self,
        expected: Bytes,
        new_token: Bytes,
        args: ScriptArgs,
    ) -> Result<bool, NodeError> {
        let epoch = self.keys.epoch();
        let (staging, argv) = args.into_commit(expected, new_token.clone(), &self.keys);
        let reply = match self.run_commit(&epoch, staging, argv).await {
            Ok(reply) => reply,
            Err(error) if error.is_retriable() => {
                // The block may have run before the connection failed: our token tells.
                let now: Option<Bytes> = self.client.get(&epoch).await.ok().flatten();
                if now.as_ref() == Some(&new_token) {
                    return Ok(true);
                }
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        Ok(match reply {
            Value::Integer(1) => true,
            // A resent block (client retry after a dropped connection) finds its own token.
            other => reply_bytes(&epoch, other)?.is_some_and(|current| current == new_token),
        })
    }

    /// `MULTI`, the staging `MSET` (if any body is stored), `EVAL` of the script, `EXEC`;
    /// returns the script's reply. `EVAL` rather than `EVALSHA`: a script missing from the
    /// server's cache would fail inside the block after the `MSET` had run.
    async fn run_commit(
        &self,
        epoch: &str,
        staging: Vec<(fred::types::Key, Value)>,
        argv: Vec<Value>,
    ) -> Result<Value, NodeError> {
        let queue = |e| NodeError::redis("queueing the commit", e);
        let block = self.client.multi();
        let staged = !staging.is_empty();
        if staged {
            let _: () = block.mset(staging).await.map_err(queue)?;
        }
        // Transactions have no typed EVAL: `EVAL source 1 token-key argv...`.
        let mut eval = Vec::with_capacity(3 + argv.len());
        eval.extend([
            Value::from_static_str(SOURCE),
            Value::Integer(1),
            Value::from(epoch),
        ]);
        eval.extend(argv);
        // Routed by the store's slot: fred would hash the script's source, the first argument.
        let eval_command = CustomCommand::new_static("EVAL", self.keys.route(), false);
        let _: () = block.custom(eval_command, eval).await.map_err(queue)?;
        let replies: Value = block
            .exec(true)
            .await
            .map_err(|e| NodeError::redis("write script", e))?;
        let mut replies = reply_array(epoch, replies)?;
        let expected = if staged { 2 } else { 1 };
        if replies.len() != expected {
            return Err(corrupt(
                epoch,
                format!(
                    "the commit block answered {} replies, not {expected}",
                    replies.len()
                ),
            ));
        }
        Ok(replies.pop().unwrap_or(Value::Null))
    }
}

/// `SCRIPT LOAD source` on the server that runs the store's scripts: on a Cluster, the
/// primary of the store's slot (fred would send it wherever the source text hashes).
/// Returns the script's SHA-1.
pub(super) async fn load_script(
    client: &Client,
    keys: &KeySpace,
    source: &str,
) -> Result<String, NodeError> {
    let command = CustomCommand::new_static("SCRIPT", keys.route(), false);
    client
        .custom(command, vec!["LOAD", source])
        .await
        .map_err(|e| NodeError::redis("SCRIPT LOAD", e))
}

#[cfg(test)]
mod tests {
    //! The commit block against a real redis-server: what a refused or failing commit
    //! leaves behind (nothing, staged bodies included).
    use super::*;
    use crate::connect::connect;
    use crate::keys::KeySpace;
    use crate::NodeStoreConfig;
    use replication_testkit::RedisServer;
    use std::sync::Arc;

    async fn writer(server: &RedisServer) -> Writer {
        let config = NodeStoreConfig::new(server.url()).with_prefix("n:");
        let client = connect(&config).await.unwrap();
        Writer::new(client, KeySpace::new("n:"), 1000, Arc::default())
            .await
            .unwrap()
    }

    /// A commit storing two items and appending one CDC entry.
    fn args(keys: &KeySpace) -> ScriptArgs {
        let mut args = ScriptArgs::new();
        args.xadd(keys.cdc(), 1000, vec![("op", b"PUT".to_vec())]);
        args.zadd(keys.children(""), format!("a:{}", "0".repeat(64)));
        args.set_item(keys.item("a"), Bytes::from_static(b"{\"body\":1}"));
        args.set_item(keys.item("b"), Bytes::from_static(b"{\"body\":2}"));
        args
    }

    fn get(server: &RedisServer, key: &str) -> String {
        server.command(&["GET", key]).unwrap().trim().to_owned()
    }

    fn all_keys(server: &RedisServer) -> String {
        server.command(&["KEYS", "*"]).unwrap().trim().to_owned()
    }

    #[tokio::test]
    async fn a_commit_lands_atomically_and_leaves_no_staged_body() {
        let server = RedisServer::start().unwrap();
        let writer = writer(&server).await;
        let keys = KeySpace::new("n:");
        let committed = writer
            .commit(Bytes::new(), Bytes::from_static(b"t1"), args(&keys))
            .await
            .unwrap();
        assert!(committed);
        assert_eq!(get(&server, "n:a"), "{\"body\":1}");
        assert_eq!(get(&server, "n:b"), "{\"body\":2}");
        assert_eq!(get(&server, "n:store:epoch"), "t1");
        assert!(
            !all_keys(&server).contains("staging"),
            "{}",
            all_keys(&server)
        );
    }

    #[tokio::test]
    async fn a_commit_against_another_token_writes_nothing_and_drops_its_staged_bodies() {
        let server = RedisServer::start().unwrap();
        let writer = writer(&server).await;
        let keys = KeySpace::new("n:");
        server.command(&["SET", "n:store:epoch", "theirs"]).unwrap();
        let committed = writer
            .commit(
                Bytes::from_static(b"ours"),
                Bytes::from_static(b"t2"),
                args(&keys),
            )
            .await
            .unwrap();
        assert!(!committed);
        assert_eq!(all_keys(&server), "n:store:epoch");
        assert_eq!(get(&server, "n:store:epoch"), "theirs");
    }

    #[tokio::test]
    async fn a_failing_write_reports_the_error_and_drops_the_staged_bodies() {
        let server = RedisServer::start().unwrap();
        let writer = writer(&server).await;
        let keys = KeySpace::new("n:");
        // Something outside the store made the CDC key a string: XADD fails first.
        server.command(&["SET", "n:cdc", "not a stream"]).unwrap();
        let error = writer
            .commit(Bytes::new(), Bytes::from_static(b"t3"), args(&keys))
            .await
            .unwrap_err();
        assert!(format!("{error:?}").contains("WRONGTYPE"), "{error:?}");
        assert!(!error.is_retriable(), "{error:?}");
        assert_eq!(all_keys(&server), "n:cdc");
    }
}
