//! The operator's commands end to end, through the real `replicationd` binary over real
//! redis-servers: `diff` (a read-only repair preview with exit codes 0/1/2) and the runtime
//! controls `peer pause|resume|repair` through the admin endpoint and its token.

#![allow(clippy::unwrap_used)]

use replication_tests::daemon_node::{stderr, stdout, DaemonNode};

/// `diff` from `node` against `peer`, with `extra` arguments.
fn diff(node: &DaemonNode, peer: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["diff", "--peer", peer];
    args.extend_from_slice(extra);
    node.cli(&args)
}

#[test]
fn diff_of_an_identical_pair_exits_0_with_no_rows() {
    let (mut a, mut b) = (DaemonNode::new("a"), DaemonNode::new("b"));
    a.write_config(&[&b], "");
    b.write_config(&[&a], "");
    a.start(&[]);
    b.start(&[]);
    for i in 0..10 {
        a.put(&format!("k.a{i}"), "from a");
        b.put(&format!("k.b{i}"), "from b");
    }
    a.cli(&["del", "k.a3"]);
    for node in [&a, &b] {
        assert!(node.wait_until("both sides have every write", |n| {
            (0..10).all(|i| n.has(&format!("k.b{i}")) && (i == 3 || n.has(&format!("k.a{i}"))))
                && !n.has("k.a3")
        }));
    }
    // Converged once both roots are equal; `diff` itself is the check.
    assert!(a.wait_until("diff finds them identical", |n| {
        diff(n, "b", &[]).status.code() == Some(0)
    }));
    let out = diff(&a, "b", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "identical to b\n", "no rows");
    let json: serde_json::Value =
        serde_json::from_slice(&diff(&a, "b", &["--json"]).stdout).unwrap();
    assert_eq!(json["identical"], true);
    assert_eq!(json["differences"].as_array().map(Vec::len), Some(0));
}

#[test]
fn diff_of_a_differing_pair_exits_1_and_names_each_keys_winner() {
    // No daemons: the two stores are written apart and stay apart.
    let (a, b) = (DaemonNode::new("a"), DaemonNode::new("b"));
    a.write_config(&[&b], "");
    a.put("k.same", "same");
    b.put("k.same", "same");
    a.put("k.peer-newer", "a v1");
    b.put("k.peer-newer", "b v1");
    b.put("k.peer-newer", "b v2");
    a.put("k.local-newer", "a v1");
    a.put("k.local-newer", "a v2");
    b.put("k.local-newer", "b v1");
    b.put("k.missing-here", "only on b");
    a.put("k.only-here", "only on a");
    a.put("k.deleted-there", "v1");
    b.put("k.deleted-there", "v1");
    assert!(b.cli(&["del", "k.deleted-there"]).status.success());
    a.put("k.deleted-here", "v1");
    b.put("k.deleted-here", "v1");
    assert!(a.cli(&["del", "k.deleted-here"]).status.success());
    let root_before = a.redis.command(&["GET", "a:merkle:hash:"]).unwrap();

    let out = diff(&a, "b", &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["identical"], false);
    let rows = json["differences"].as_array().unwrap();
    let row = |key: &str| {
        rows.iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("{key} missing from {json:#}"))
    };
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "k.deleted-here",
            "k.deleted-there",
            "k.local-newer",
            "k.missing-here",
            "k.only-here",
            "k.peer-newer"
        ],
        "every differing key, sorted, and k.same not among them"
    );
    let expect = [
        ("k.peer-newer", "peer", "fetch", "put", "put"),
        ("k.local-newer", "local", "keep_local", "put", "put"),
        ("k.missing-here", "peer", "fetch", "absent", "put"),
        ("k.only-here", "local", "keep_local", "put", "absent"),
        ("k.deleted-there", "peer", "delete", "put", "deleted"),
        (
            "k.deleted-here",
            "local",
            "await_peer_delete",
            "deleted",
            "put",
        ),
    ];
    for (key, winner, action, local, peer) in expect {
        let r = row(key);
        assert_eq!(r["winner"], winner, "{key}: {r}");
        assert_eq!(r["action"], action, "{key}: {r}");
        assert_eq!(r["local"]["kind"], local, "{key}: {r}");
        assert_eq!(r["peer"]["kind"], peer, "{key}: {r}");
    }
    assert_eq!(row("k.peer-newer")["peer"]["version"], 2);
    assert_eq!(row("k.peer-newer")["local"]["version"], 1);

    // The human form: one row per key with both stamps and the winner.
    let out = diff(&a, "b", &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("6 key(s) differ from b\n"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("k.peer-newer"))
        .unwrap();
    assert!(
        line.contains("put v1 ") && line.contains("put v2 ") && line.contains("peer"),
        "{line}"
    );
    assert!(line.contains("fetch the peer's item"), "{line}");

    // Scoped and limited.
    let out = diff(&a, "b", &["--prefix", "k.deleted", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = json["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["k.deleted-here", "k.deleted-there"]);
    let out = diff(&a, "b", &["--prefix", "k.same"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = diff(&a, "b", &["--limit", "2", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["differences"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["truncated"], true);

    // It never wrote: the same tree, and what the peer has is still not here.
    assert_eq!(
        a.redis.command(&["GET", "a:merkle:hash:"]).unwrap(),
        root_before
    );
    assert!(!a.has("k.missing-here"));
    assert!(a.has("k.deleted-there"));
}

#[test]
fn diff_with_an_unreachable_peer_exits_2_with_a_clear_error() {
    let (a, mut b) = (DaemonNode::new("a"), DaemonNode::new("b"));
    a.write_config(
        &[&b],
        "[settings.peer]\nconnect_timeout = \"1s\"\ncommand_timeout = \"1s\"\n",
    );
    a.put("k.1", "v");
    b.redis.kill();
    let out = diff(&a, "b", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot compare with peer b at redis://127.0.0.1:"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(stdout(&out).is_empty());

    let out = diff(&a, "nobody", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no peer nobody in"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pause_resume_and_repair_through_the_cli_with_the_admin_token() {
    const TOKEN: &str = "s3cret-token";
    let (mut a, mut b) = (DaemonNode::new("a"), DaemonNode::new("b"));
    a.write_config(&[&b], "");
    b.write_config(&[&a], "");
    a.start(&[]);
    b.start(&[("REPLICATIOND_ADMIN_TOKEN", TOKEN), ("RUST_LOG", "info")]);
    let token = [("REPLICATIOND_ADMIN_TOKEN", TOKEN)];

    // Without the token, or with a wrong one, the daemon refuses and says what to do.
    let out = b.cli(&["peer", "pause", "a"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("requires an admin token") && err.contains("REPLICATIOND_ADMIN_TOKEN"),
        "{err}"
    );
    let out = b.cli_env(
        &["peer", "pause", "a"],
        &[("REPLICATIOND_ADMIN_TOKEN", "guess")],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("(401): the admin token is wrong"),
        "{}",
        stderr(&out)
    );
    assert!(!b.status().peer("a").paused);

    let out = b.cli_env(&["peer", "pause", "a"], &token);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "paused replication from a\n");
    assert!(b.status().peer("a").paused);
    let status = stdout(&b.cli(&["status"]));
    assert!(status.contains("PAUSED"), "{status}");
    let out = b.cli_env(&["peer", "repair", "a"], &token);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("paused; resume it first"),
        "{}",
        stderr(&out)
    );
    let out = b.cli_env(&["peer", "pause", "nobody"], &token);
    assert!(
        stderr(&out).contains("no peer nobody is configured"),
        "{}",
        stderr(&out)
    );

    // A reload that reconnects the peer (its URL is written anew) keeps the pause.
    a.put("k.while-paused", "v");
    let url = a.redis.url();
    let reloaded = std::fs::read_to_string(b.config()).unwrap().replace(
        &format!("redis_url = \"{url}\"\nredis_prefix = \"a:\""),
        &format!("redis_url = \"{url}/0\"\nredis_prefix = \"a:\""),
    );
    std::fs::write(b.config(), reloaded).unwrap();
    b.signal("HUP");
    assert!(b.wait_until("the reload reconnected a", |n| {
        n.log()
            .contains("reload: peer settings changed; reconnecting")
            && n.status().peer("a").connected
    }));
    assert!(b.status().peer("a").paused, "a reload keeps the pause");
    assert!(!b.has("k.while-paused"));

    let out = b.cli_env(&["peer", "resume", "a"], &token);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "resumed replication from a\n");
    assert!(b.wait_until("the paused write arrives", |n| n.has("k.while-paused")));

    // A repair asked for now runs, and the CLI reports its outcome.
    let out = b.cli_env(&["peer", "repair", "a"], &token);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.starts_with("repair with a: cycle ") && said.contains("(operator)"),
        "{said}"
    );
    let last = b.status().peer("a").last_repair.clone().unwrap();
    assert_eq!(last.trigger, replication_engine::RepairTrigger::Operator);

    // A pause does not survive a restart.
    let out = b.cli_env(&["peer", "pause", "a"], &token);
    assert!(out.status.success(), "{}", stderr(&out));
    b.kill();
    b.start(&[("REPLICATIOND_ADMIN_TOKEN", TOKEN)]);
    assert!(!b.status().peer("a").paused, "a restart resumes every peer");
}

#[test]
fn one_shot_commands_are_quiet_unless_asked() {
    let a = DaemonNode::new("a");
    let quiet = a.cli(&["put", "k.1", "v"]);
    assert!(quiet.status.success());
    assert_eq!(stderr(&quiet), "", "no logs by default");
    assert_eq!(stdout(&quiet), "put k.1 version 1 (1 bytes)\n");
    let verbose = a.cli(&["put", "k.1", "v2", "-v"]);
    assert!(verbose.status.success());
    assert!(stderr(&verbose).contains("INFO"), "{}", stderr(&verbose));
    let get = a.cli(&["get", "k.1"]);
    assert_eq!((stdout(&get).as_str(), stderr(&get).as_str()), ("v2\n", ""));
}

#[test]
fn shell_completions_cover_every_command() {
    let binary = replication_testkit::replicationd_binary().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(&binary)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for command in [
            "diff",
            "peer",
            "pause",
            "resume",
            "repair",
            "status",
            "completions",
        ] {
            assert!(
                script.contains(command),
                "{shell} completions lack {command}"
            );
        }
    }
    let bad = std::process::Command::new(&binary)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
