//! `replicationd`: the mesh replication daemon and its local commands.
//!
//! `run` keeps this node in sync with its peers and serves the status page, health,
//! metrics and the admin controls; `put`/`get`/`del` write and read the node's own store;
//! `status` shows a running daemon's status; `diff` previews a repair with a peer; `peer`
//! pauses, resumes or repairs one peer of a running daemon; `check-config` validates a
//! config file; `completions` prints shell completions.

/// mimalloc rather than the system allocator: the hot path allocates and frees many
/// short-lived buffers of a few KB per change (decoded content, item JSON, command
/// arguments), and glibc's malloc spent about a third of the engine's CPU on them
/// (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod admin_token;
mod client;
mod config;
mod diff;
mod engine_cell;
mod http;
mod logging;
mod node;
mod page;
mod peer_cli;
mod run;
mod status;
mod status_model;
#[cfg(feature = "sync-engine")]
mod sync_store;

#[cfg(test)]
mod dashboards;

use clap::{CommandFactory, Parser, Subcommand};
use logging::LogFormat;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "replicationd", version, about = "Mesh replication daemon")]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value = "human", global = true)]
    log_format: LogFormat,
    /// More logs: `-v` shows progress (INFO) for one-shot commands, `-vv` debug logs.
    /// `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine until SIGTERM/SIGINT; SIGHUP reloads the config.
    Run {
        /// Config file (engine config plus [node], [http] and [admin]).
        #[arg(long)]
        config: PathBuf,
    },
    /// Write KEY on this node (VALUE, or `-` / nothing to read stdin).
    Put {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// Object id.
        key: String,
        /// Content; `-` reads stdin.
        value: Option<String>,
    },
    /// Print KEY's content from this node.
    Get {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// Object id.
        key: String,
    },
    /// Delete KEY on this node.
    Del {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// Object id.
        key: String,
    },
    /// Show the status of the running daemon (exit 1 when it is not healthy).
    Status {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// Print the status report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Preview a repair with a peer: what differs and who wins. Never writes.
    /// Exit 0: identical, 1: differences, 2: error.
    Diff {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// The peer's node id, as configured.
        #[arg(long)]
        peer: String,
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// At most this many differing keys are read and listed.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pause, resume or repair one peer of the running daemon (admin endpoint).
    Peer {
        /// Config file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// How long `repair` waits for the cycle's outcome.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, global = true)]
        wait: Duration,
        #[command(subcommand)]
        action: PeerCommand,
    },
    /// Validate a config file and exit.
    CheckConfig {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print shell completions: `replicationd completions bash > /etc/bash_completion.d/replicationd`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum PeerCommand {
    /// Stop replicating from the peer (kept across config reloads, not across restarts).
    Pause {
        /// The peer's node id.
        id: String,
    },
    /// Replicate from the peer again, from its cursor.
    Resume {
        /// The peer's node id.
        id: String,
    },
    /// Run a repair cycle with the peer now and wait for its outcome.
    Repair {
        /// The peer's node id.
        id: String,
    },
}

impl Command {
    /// Only the daemon logs its progress by default; one-shot commands stay quiet.
    fn logs_progress(&self) -> bool {
        matches!(self, Command::Run { .. })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = &cli.command {
        clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "replicationd",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let verbosity = cli.verbose + u8::from(cli.command.logs_progress());
    logging::init(cli.log_format, verbosity);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("replicationd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `diff` keeps 1 for "they differ", so its errors exit 2.
    let error_code = match cli.command {
        Command::Diff { .. } => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    };
    let result = runtime.block_on(execute(cli.command));
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line, with the causes chained: "cannot reach ...: connection refused".
            eprintln!("replicationd: {e:#}");
            error_code
        }
    }
}

async fn execute(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => run::run(&config).await?,
        Command::Put { config, key, value } => node::put(&config, &key, value.as_deref()).await?,
        Command::Get { config, key } => node::get(&config, &key).await?,
        Command::Del { config, key } => node::del(&config, &key).await?,
        Command::Status { config, json } => status::status(&config, json).await?,
        Command::Diff {
            config,
            peer,
            prefix,
            limit,
            json,
        } => {
            let args = diff::DiffArgs {
                peer,
                prefix,
                limit,
                json,
            };
            return Ok(match diff::diff(&config, &args).await? {
                diff::DiffOutcome::Identical => ExitCode::SUCCESS,
                diff::DiffOutcome::Differ => ExitCode::from(1),
            });
        }
        Command::Peer {
            config,
            wait,
            action,
        } => {
            let config = config.ok_or_else(|| anyhow::anyhow!("peer: --config is required"))?;
            let (action, id) = match action {
                PeerCommand::Pause { id } => (peer_cli::PeerAction::Pause, id),
                PeerCommand::Resume { id } => (peer_cli::PeerAction::Resume, id),
                PeerCommand::Repair { id } => (peer_cli::PeerAction::Repair, id),
            };
            peer_cli::run(&config, action, &id, wait).await?;
        }
        Command::CheckConfig { config } => {
            let c = config::DaemonConfig::load(&config)?;
            println!("{}: ok ({} peers)", config.display(), c.engine.peers.len());
        }
        Command::Completions { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
