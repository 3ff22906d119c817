//! Checks of the Grafana dashboard and the Prometheus alert rules in docs/: every metric
//! they name is one the engine or the daemon emits, every dashboard query and rule is
//! valid PromQL (`promtool check rules`), and the rules' own unit tests pass
//! (`promtool test rules`). promtool comes with the Debian package `prometheus`, which
//! `cargo xtask test` installs where it is missing.

use crate::engine_cell::DAEMON_GAUGES;
use replication_engine::metrics::{MetricKind, ALL};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn read(name: &str) -> String {
    let path = docs().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every series name the metrics endpoint can show: histograms as their three series.
fn emitted() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = DAEMON_GAUGES.iter().map(|n| (*n).to_owned()).collect();
    names.insert(crate::run::CONFIG_RELOADS.to_owned());
    for (name, kind) in ALL {
        names.insert((*name).to_owned());
        if *kind == MetricKind::Histogram {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// Every token in `text` that looks like one of our metric names.
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("replication") {
        let before = rest[..at].chars().next_back();
        let token: String = rest[at..].chars().take_while(|c| is_ident(*c)).collect();
        if !before.is_some_and(is_ident) && token.contains('_') {
            found.insert(token.clone());
        }
        rest = &rest[at + token.len().max(1)..];
    }
    found
}

/// Every `expr` of the dashboard, in panel order.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

fn promtool(args: &[&str]) -> std::process::Output {
    let binary = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".into());
    Command::new(&binary)
        .args(args)
        .current_dir(docs())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {binary} ({e}): `cargo xtask test` installs it (Debian package \
                 prometheus), or point PROMTOOL_BIN at one"
            )
        })
}

fn assert_ok(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_dashboard_and_the_rules_name_only_emitted_metrics() {
    let emitted = emitted();
    for file in [
        "grafana-dashboard.json",
        "prometheus-alerts.yml",
        "prometheus-alerts.test.yml",
    ] {
        let named = metric_names(&read(file));
        assert!(!named.is_empty(), "{file} names no metric");
        let unknown: Vec<&String> = named.difference(&emitted).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics nothing emits: {unknown:?}"
        );
    }
}

#[test]
fn the_rules_cover_what_an_operator_is_paged_for() {
    use replication_engine::metrics as m;
    let named = metric_names(&read("prometheus-alerts.yml"));
    for metric in [
        m::LAG_MS,
        m::PEER_CONNECTED,
        m::PEER_CIRCUIT_OPEN,
        m::SYNC_ENGINE_CIRCUIT,
        DAEMON_GAUGES[2], // replicationd_ready: the store refuses writes
        m::EVENTS_REJECTED,
        m::REPAIR_CYCLES,
        m::GAPS,
    ] {
        assert!(named.contains(metric), "no alert on {metric}");
    }
}

#[test]
fn the_dashboard_shows_every_per_peer_figure_of_the_status_page() {
    use replication_engine::metrics as m;
    let named = metric_names(&read("grafana-dashboard.json"));
    for metric in [
        m::LAG_MS,
        m::LAG_ENTRIES,
        m::EVENTS_APPLIED,
        m::EVENTS_REJECTED,
        m::GAPS,
        m::REPAIR_CYCLES,
        m::REPAIR_ITEMS_FETCHED,
        m::REPAIR_BYTES_FETCHED,
        m::READ_WIRE_BYTES,
        m::READ_CONTENT_BYTES,
        m::PEER_CONNECTED,
        m::PEER_CIRCUIT_OPEN,
        m::PEER_PAUSED,
    ] {
        assert!(
            named.contains(metric),
            "the dashboard does not show {metric}"
        );
    }
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    assert_ok(
        &promtool(&["check", "rules", "prometheus-alerts.yml"]),
        "promtool check rules",
    );
    assert_ok(
        &promtool(&["test", "rules", "prometheus-alerts.test.yml"]),
        "promtool test rules",
    );
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana-dashboard.json")).expect("the dashboard is JSON");
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    // Each query as a recording rule, Grafana's variables given plain values, so promtool
    // parses them all.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        let plain = query
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*")
            .replace("$peer", ".*");
        let quoted = serde_json::to_string(&plain).expect("a string serialises");
        rules.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dashboard-queries.yml");
    std::fs::write(&path, rules).expect("write the rules");
    let path = path.to_str().expect("a UTF-8 temp path");
    assert_ok(
        &promtool(&["check", "rules", path]),
        "promtool check rules (dashboard queries)",
    );
}

#[test]
fn the_engines_list_of_metrics_holds_every_name_it_declares() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../replication-engine/src/metrics.rs");
    let source = std::fs::read_to_string(&source).expect("the engine's metrics.rs");
    let declared: BTreeSet<String> = source
        .lines()
        .filter(|line| line.starts_with("pub const ") && line.contains(": &str = \""))
        .filter_map(|line| line.split('"').nth(1))
        .map(str::to_owned)
        .collect();
    let listed: BTreeSet<String> = ALL.iter().map(|(name, _)| (*name).to_owned()).collect();
    assert_eq!(
        declared, listed,
        "metrics::ALL and the declared names differ"
    );
}

#[test]
fn metric_names_are_found_as_whole_tokens() {
    let found = metric_names(
        "rate(replication_events_read_total[5m]) / replicationd_ready x_replication_no \
         alert: ReplicationLagHigh replication",
    );
    let expected: BTreeSet<String> = ["replication_events_read_total", "replicationd_ready"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(found, expected);
}
