// The status page: renders a StatusReport (see status_model.rs) and polls /status.json.
"use strict";

function esc(value) {
  return String(value)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function num(n) {
  return Number(n).toLocaleString("en");
}

function duration(ms) {
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  if (ms < 3600000) return Math.round(ms / 60000) + " min";
  return (ms / 3600000).toFixed(1) + " h";
}

function ago(atMs, nowMs) {
  const ms = Math.max(0, nowMs - atMs);
  if (ms < 1500) return "just now";
  return duration(ms >= 1000 ? Math.round(ms / 1000) * 1000 : ms) + " ago";
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function sparkline(samples) {
  const values = samples.map((s) => (s.lag_ms === null || s.lag_ms === undefined ? 0 : s.lag_ms));
  if (values.length < 2) {
    return '<figure class="spark"><figcaption data-field="lag-history">lag history: collecting samples…</figcaption></figure>';
  }
  const max = Math.max(1, ...values);
  const w = 200, h = 44, step = w / (values.length - 1);
  const points = values.map((v, i) => (i * step).toFixed(1) + "," + (h - 2 - (v / max) * (h - 4)).toFixed(1));
  const span = samples[samples.length - 1].at_ms - samples[0].at_ms;
  const label = "lag, last " + duration(Math.round(span / 1000) * 1000) + " · peak " + duration(Math.max(...values));
  return '<figure class="spark"><svg viewBox="0 0 ' + w + " " + h + '" preserveAspectRatio="none" role="img" aria-label="' + esc(label) + '">' +
    "<title>" + esc(label) + "</title>" +
    '<polygon class="area" points="0,' + h + " " + points.join(" ") + " " + w + "," + h + '"/>' +
    '<polyline points="' + points.join(" ") + '"/></svg><figcaption data-field="lag-history">' + esc(label) + "</figcaption></figure>";
}

function failovers(n) {
  return n ? " (" + num(n) + (n === 1 ? " failover)" : " failovers)") : "";
}

function badge(text, tone) {
  return '<span class="badge ' + tone + '">' + esc(text) + "</span>";
}

function rejected(peer) {
  const reasons = Object.entries(peer.rejected);
  if (reasons.length === 0) return "none";
  return reasons.map(([reason, n]) => esc(reason) + " " + num(n)).join(" · ");
}

function gaps(peer, now) {
  const g = peer.gaps;
  if (g.trimmed === 0 && g.recreated === 0) return "none";
  const parts = [];
  if (g.trimmed) parts.push(num(g.trimmed) + " trimmed");
  if (g.recreated) parts.push(num(g.recreated) + " recreated");
  return parts.join(", ") + (g.last_at_ms ? " (last " + ago(g.last_at_ms, now) + ")" : "");
}

function repair(r, now) {
  if (!r) return "none yet";
  const when = ago(r.finished_at_ms, now) + " (" + esc(r.trigger) + ", cycle " + num(r.cycle) + ")";
  if (r.error) return when + ': <span class="error">failed: ' + esc(r.error) + "</span>";
  if (r.in_sync) return when + ": in sync, took " + duration(r.duration_ms);
  const parts = [
    num(r.keys_different) + " keys different",
    num(r.items_fetched) + " items fetched (" + bytes(r.bytes_fetched) + ")",
    num(r.items_applied) + " applied",
  ];
  if (r.tombstones_applied) parts.push(num(r.tombstones_applied) + " deleted");
  if (!r.completed) parts.push("more to do next cycle");
  return when + ": " + parts.join(", ") + ", took " + duration(r.duration_ms);
}

function bytesRead(peer) {
  const b = peer.bytes_read;
  if (b.wire === 0) return "nothing yet";
  return bytes(b.content) + " content, " + bytes(b.wire) + " over the wire";
}

function peerCard(peer, samples, now) {
  const state = peer.enabled ? peer.connection_state : "disabled";
  const tone = !peer.enabled ? "info" : peer.connected ? "good" : "bad";
  let title = esc(peer.node_id) + " " + badge(state, tone);
  if (peer.paused) title += " " + badge("paused", "warn");
  if (peer.circuit_open) title += " " + badge("circuit open", "bad");
  if (peer.catching_up) title += " " + badge("catching up", "info");
  const lag = peer.lag_ms === null ? "–" : duration(peer.lag_ms);
  const entries = peer.lag_entries === null ? "entries behind unknown" : num(peer.lag_entries) + " entries behind";
  const rows = [
    ["applied", "applied", num(peer.applied_per_sec) + "/s · " + num(peer.applied_total) + " total"],
    ["cursor", "cursor", peer.cursor ? "<code>" + esc(peer.cursor) + "</code>" : "–"],
    ["rejected", "rejected", rejected(peer)],
    ["gaps", "gaps", gaps(peer, now)],
    ["last repair", "last-repair", repair(peer.last_repair, now)],
    ["read", "bytes-read", bytesRead(peer)],
  ];
  if (peer.server) {
    rows.push(["server", "server", "<code>" + esc(peer.server) + "</code>" + failovers(peer.failovers) +
      (peer.reconnects ? ", " + num(peer.reconnects) + " reconnects" : "")]);
  }
  const diff = peer.last_difference;
  if (diff && (!peer.last_repair || diff.cycle !== peer.last_repair.cycle)) {
    rows.push(["last found differences", "last-difference", repair(diff, now)]);
  }
  if (peer.paused) {
    rows.push(["paused", "paused", "resume with <code>replicationd peer resume " + esc(peer.node_id) + "</code>"]);
  }
  if (peer.last_error) {
    const when = peer.last_error_at_ms ? " (" + ago(peer.last_error_at_ms, now) + ")" : "";
    rows.push(["last error", "last-error", '<span class="error">' + esc(peer.last_error) + "</span>" + when]);
  }
  const list = rows.map(([label, field, html]) => "<dt>" + label + '</dt><dd data-field="' + field + '">' + html + "</dd>").join("");
  return '<section class="peer" data-peer="' + esc(peer.node_id) + '" data-state="' + esc(state) + '" data-paused="' + peer.paused + '">' +
    "<h2>" + title + "</h2>" +
    '<div class="lag"><div class="figure" data-field="lag">' + lag + "<small>behind · " + entries + "</small></div>" + sparkline(samples) + "</div>" +
    "<dl>" + list + "</dl></section>";
}

function render(report) {
  const h = report.health;
  const verdict = h.healthy ? ["healthy", "good"] : h.ready ? ["ready, peers degraded", "warn"] : ["not ready", "bad"];
  const store = h.sync_engine_accepting_writes ? "accepting writes" : "refusing writes";
  document.title = "replicationd · " + report.node_id + " · " + verdict[0];
  document.getElementById("summary").innerHTML =
    "<h1>replicationd · " + esc(report.node_id) + "</h1>" +
    '<div class="facts"><span data-field="verdict" class="' + verdict[1] + '"><b class="' + verdict[1] + '">' + verdict[0] + "</b></span>" +
    "<span>engine <b>" + esc(h.state) + "</b></span>" +
    '<span data-field="store">store <b>' + store + "</b>, circuit <b>" + esc(h.sync_engine_circuit) + "</b>" +
    (h.sync_engine_server ? " on <code>" + esc(h.sync_engine_server) + "</code>" + failovers(h.sync_engine_failovers) : "") + "</span>" +
    '<span data-field="peers">peers <b>' + h.peers_connected + "/" + h.peers_total + "</b> connected</span></div>";
  const history = {};
  for (const peer of report.history) history[peer.node_id] = peer.samples;
  const cards = h.peers.map((peer) => peerCard(peer, history[peer.node_id] || [], report.generated_at_ms));
  document.getElementById("peers").innerHTML = cards.length ? cards.join("") : "<p>No peers configured.</p>";
  document.getElementById("footer").textContent =
    "updated " + new Date(report.generated_at_ms).toLocaleTimeString("en-GB") +
    " · replicationd " + report.version + " · refreshes every " + report.sample_every_secs + " s";
}

let lastSeen = Date.now();

async function poll(everyMs) {
  try {
    const response = await fetch("/status.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    lastSeen = Date.now();
    document.getElementById("stale").hidden = true;
  } catch (e) {
    const stale = document.getElementById("stale");
    stale.hidden = false;
    stale.textContent = "Cannot reach the daemon since " + new Date(lastSeen).toLocaleTimeString("en-GB") +
      " (" + e.message + "); the figures below are the last ones seen.";
  }
  setTimeout(() => poll(everyMs), everyMs);
}

const initial = JSON.parse(document.getElementById("initial-status").textContent);
render(initial);
const every = Math.max(1, initial.sample_every_secs) * 1000;
setTimeout(() => poll(every), every);
