//! The status page as a person sees it: a three-node mesh of real `replicationd` processes
//! over real redis-servers, each node's page opened in headless Chromium. Every page shows
//! both peers connected with lag figures and a lag sparkline, and the node whose peer's
//! stream was trimmed past its cursor shows the gap and the repair that followed.
//!
//! Every run saves the page's screenshot to docs/status-page.png, the one the README shows,
//! so the picture is always of the page as the code draws it today.

#![allow(clippy::unwrap_used)]

use replication_tests::browser::{dump_dom, element, field_text, screenshot};
use replication_tests::daemon_node::{stderr, stdout, DaemonNode};
use std::path::PathBuf;

const NAMES: [&str; 3] = ["london", "paris", "berlin"];

fn mesh() -> Vec<DaemonNode> {
    let mut nodes: Vec<DaemonNode> = NAMES.iter().map(|n| DaemonNode::new(n)).collect();
    for i in 0..nodes.len() {
        let peers: Vec<&DaemonNode> = nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| n)
            .collect();
        nodes[i].write_config(&peers, "");
    }
    for node in &mut nodes {
        node.start(&[]);
    }
    nodes
}

#[test]
fn each_status_page_shows_its_peers_lag_and_the_repair_after_a_trimmed_stream() {
    let nodes = mesh();
    let (london, berlin) = (&nodes[0], &nodes[2]);
    // A write on every node, so every link has applied a batch and knows its lag.
    for node in &nodes {
        node.put(&format!("first.{}", node.name), "hello");
    }
    for node in &nodes {
        assert!(node.wait_until("every first write arrived", |n| {
            NAMES.iter().all(|name| n.has(&format!("first.{name}")))
        }));
    }

    // Berlin stops reading london; london writes on and trims its whole stream, so the
    // entries berlin has not read are gone and only a repair can bring them.
    let paused = berlin.cli(&["peer", "pause", "london"]);
    assert!(paused.status.success(), "{}", stderr(&paused));
    for i in 0..5 {
        london.put(&format!("missed.{i}"), "written while berlin was paused");
    }
    london
        .redis
        .command(&["XTRIM", "london:cdc", "MAXLEN", "0"])
        .unwrap();
    let resumed = berlin.cli(&["peer", "resume", "london"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        berlin.wait_until("the repair brought what was trimmed", |n| {
            (0..5).all(|i| n.has(&format!("missed.{i}")))
        })
    );
    assert!(berlin.wait_until("the repair is recorded", |n| {
        n.status()
            .peer("london")
            .last_difference
            .as_ref()
            .is_some_and(|r| r.items_fetched >= 5)
    }));
    // Enough samples for every sparkline to be drawn.
    for node in &nodes {
        assert!(node.wait_until("two status samples per peer", |n| {
            n.status().history.iter().all(|h| h.samples.len() >= 2)
        }));
    }

    // Open the three pages at once: a browser takes about a second.
    let doms: Vec<String> = std::thread::scope(|scope| {
        let pages: Vec<_> = nodes
            .iter()
            .map(|node| scope.spawn(move || dump_dom(&node.url())))
            .collect();
        pages
            .into_iter()
            .map(|page| page.join().unwrap().unwrap())
            .collect()
    });
    for (node, dom) in nodes.iter().zip(&doms) {
        let context = format!("{}'s page:\n{dom}", node.name);
        assert!(
            dom.contains(&format!("replicationd · {}", node.name)),
            "{context}"
        );
        assert_eq!(
            field_text(dom, "verdict").as_deref(),
            Some("healthy"),
            "{context}"
        );
        assert_eq!(
            field_text(dom, "peers").as_deref(),
            Some("peers 2/2 connected"),
            "{context}"
        );
        for peer in NAMES.iter().filter(|p| **p != node.name) {
            let card = element(dom, &format!("data-peer=\"{peer}\""), "section")
                .unwrap_or_else(|| panic!("no card for {peer} on {context}"));
            assert!(card.contains("data-state=\"connected\""), "{peer}: {card}");
            let lag = field_text(card, "lag").unwrap();
            let figure = lag.split_whitespace().next().unwrap_or("");
            assert!(
                figure.parse::<f64>().is_ok() && (lag.contains(" ms") || lag.contains(" s")),
                "{peer}: lag shows {lag:?}"
            );
            assert!(lag.contains("entries behind"), "{peer}: {lag:?}");
            let history = field_text(card, "lag-history").unwrap();
            assert!(history.starts_with("lag, last"), "{peer}: {history:?}");
            assert!(card.contains("<polyline"), "{peer}: no sparkline in {card}");
        }
    }

    let berlin_dom = &doms[2];
    let from_london = element(berlin_dom, "data-peer=\"london\"", "section").unwrap();
    let gaps = field_text(from_london, "gaps").unwrap();
    assert!(gaps.starts_with("1 trimmed"), "{gaps:?}");
    // The repair after the gap: the last cycle, or (if a later one found the trees
    // equal) the one shown as the last that found differences.
    let repair = field_text(from_london, "last-difference")
        .or_else(|| field_text(from_london, "last-repair"))
        .unwrap();
    assert!(repair.contains("(gap, cycle"), "{repair:?}");
    let keys = repair
        .split(" keys different")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(keys.is_some_and(|k| k >= 5), "{repair:?}");
    assert!(repair.contains("items fetched ("), "{repair:?}");

    // The same figures through `replicationd status`: one typed report behind both.
    let status = berlin.cli(&["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let text = stdout(&status);
    assert!(text.contains("gaps 1 trimmed"), "{text}");
    assert!(text.contains("(gap, cycle"), "{text}");

    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/status-page.png");
    screenshot(&berlin.url(), &shot, 1100, 460).unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} is not a screenshot of a drawn page ({} bytes)",
        shot.display(),
        png.len()
    );
}
