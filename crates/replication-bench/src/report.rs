//! Collected figures, the console table and the Markdown written to docs/BENCHMARKS.md.

use std::fmt::Write as _;

/// One line of the results table.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) section: &'static str,
    pub(crate) metric: String,
    pub(crate) value: String,
    pub(crate) target: String,
    pub(crate) verdict: Verdict,
}

/// Whether a figure meets its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No target: information only.
    Info,
    /// Target met.
    Met,
    /// Target missed.
    Missed,
}

impl Verdict {
    pub(crate) fn of(met: bool) -> Self {
        if met {
            Verdict::Met
        } else {
            Verdict::Missed
        }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Info => "",
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
        }
    }
}

/// Everything one `run` measured.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    /// Per-section notes (setup, caveats), in order.
    pub(crate) notes: Vec<(&'static str, String)>,
}

impl Report {
    pub(crate) fn row(
        &mut self,
        section: &'static str,
        metric: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        verdict: Verdict,
    ) {
        let row = Row {
            section,
            metric: metric.into(),
            value: value.into(),
            target: target.into(),
            verdict,
        };
        println!(
            "{:<10} {:<58} {:>16} {:>14} {}",
            row.section,
            row.metric,
            row.value,
            row.target,
            row.verdict.label()
        );
        self.rows.push(row);
    }

    pub(crate) fn note(&mut self, section: &'static str, text: impl Into<String>) {
        self.notes.push((section, text.into()));
    }

    /// The Markdown results table and notes.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("| section | figure | value | target | |\n|---|---|---:|---:|---|\n");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                row.section,
                row.metric,
                row.value,
                row.target,
                row.verdict.label()
            );
        }
        let mut current = "";
        for (section, text) in &self.notes {
            if *section != current {
                let _ = write!(out, "\n**{section}.** ");
                current = section;
            } else {
                out.push(' ');
            }
            out.push_str(text);
            out.push('\n');
        }
        out
    }
}

/// Median of `values` (mean of the middle two for an even count); 0 when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The `q` quantile (0..=1) of sorted `values`, nearest rank.
pub(crate) fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `123456.7` → `"123 457"`: thousands separated by thin spaces for readability.
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// How many cores this process may run on.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Machine facts for the document header.
pub(crate) fn machine() -> String {
    let cores = cores();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let redis = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .and_then(|v| {
            v.split_whitespace()
                .nth(2)
                .map(|s| s.trim_start_matches("v=").to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{cores} cores ({cpu}), redis-server {redis}, release build")
}

/// Today's UTC date as `YYYY-MM-DD` (civil-from-days, no date crate needed).
pub(crate) fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_quantiles_and_numbers() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&sorted, 0.5), 50);
        assert_eq!(quantile(&sorted, 0.99), 99);
        assert_eq!(quantile(&sorted, 1.0), 100);
        assert_eq!(thousands(1_234_567.4), "1 234 567");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(today().len(), 10);
    }
}
