//! The status page at `/`: one HTML page, its stylesheet and script, all embedded in the
//! binary (no external network), rendered in the browser from the typed [`StatusReport`].
//!
//! The page carries the report it was served with, so it shows the figures at once (and
//! without script errors for a tool that dumps the DOM after load); the script then polls
//! `/status.json` once per sample to stay live.

use crate::status_model::StatusReport;

const HTML: &str = include_str!("../assets/status.html");
/// The page's stylesheet, served at `/assets/status.css`.
pub(crate) const CSS: &str = include_str!("../assets/status.css");
/// The page's script, served at `/assets/status.js`.
pub(crate) const JS: &str = include_str!("../assets/status.js");

/// Only what the page itself serves: no other origin for scripts, styles or requests.
pub(crate) const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:";

/// The page, with `report` embedded for the first render.
pub(crate) fn render(report: &StatusReport) -> String {
    HTML.replace("{{NODE_ID}}", &escape_html(&report.node_id))
        .replace("{{INITIAL_STATUS}}", &embed_json(report))
}

/// JSON safe inside a `<script type="application/json">` element: `<` is escaped, so no
/// value (a peer's error message, say) can close the element.
fn embed_json(report: &StatusReport) -> String {
    serde_json::to_string(report)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication_engine::{EngineState, HealthCheck};

    fn report(node_id: &str) -> StatusReport {
        StatusReport {
            node_id: node_id.into(),
            version: "0".into(),
            generated_at_ms: 1,
            health: HealthCheck {
                state: EngineState::Running,
                ready: true,
                healthy: true,
                sync_engine_accepting_writes: true,
                sync_engine_circuit: "closed".into(),
                sync_engine_server: None,
                sync_engine_failovers: 0,
                peers_connected: 0,
                peers_total: 0,
                peers: Vec::new(),
            },
            history: Vec::new(),
            sample_every_secs: 2,
        }
    }

    #[test]
    fn the_embedded_report_cannot_close_its_script_element() {
        let html = render(&report("</script><script>alert(1)</script>"));
        assert!(!html.contains("</script><script>alert"), "{html}");
        assert!(html.contains("&lt;/script&gt;"), "the title is escaped");
        let start = html.find("{\"node_id\"").expect("embedded report");
        let end = start + html[start..].find("</script>").expect("element closes");
        let back: StatusReport = serde_json::from_str(&html[start..end]).expect("valid JSON");
        assert_eq!(back.node_id, "</script><script>alert(1)</script>");
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for asset in [HTML, CSS, JS] {
            assert!(!asset.contains("http://") && !asset.contains("https://"));
        }
        assert!(HTML.contains("name=\"viewport\""), "readable on a phone");
    }
}
