//! Log setup: human-readable by default, JSON lines with `--log-format json`.

use tracing_subscriber::EnvFilter;

/// Output format of logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The filter a verbosity gives: 0 warnings only, 1 progress (`info`), 2 or more `debug`.
/// At 0 the Redis client's own warnings are left out too: a one-shot command closing its
/// connections makes fred warn about the commands it dropped, which says nothing to a user.
/// sync-engine logs its Redis and SQL URLs (passwords included) at info level when it
/// connects, so its own target is held at `warn` whatever the verbosity.
pub(crate) fn level(verbosity: u8) -> &'static str {
    match verbosity {
        0 => "warn,fred=error",
        1 => "info,sync_engine=warn",
        _ => "debug,sync_engine=warn",
    }
}

/// Installs the global subscriber; `RUST_LOG` overrides the level `verbosity` gives.
pub(crate) fn init(format: LogFormat, verbosity: u8) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level(verbosity)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::level;

    #[test]
    fn quiet_by_default_louder_with_each_v() {
        assert_eq!(level(0), "warn,fred=error");
        assert_eq!(level(1), "info,sync_engine=warn");
        assert_eq!(level(3), "debug,sync_engine=warn");
    }
}
