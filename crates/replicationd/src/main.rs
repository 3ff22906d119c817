//! `replicationd`: the mesh replication daemon and its local commands.
//!
//! `run` keeps this node in sync with its peers; `put`/`get`/`del` write and read the
//! node's own store; `status` asks a running daemon for its health; `check-config`
//! validates a config file.

/// mimalloc rather than the system allocator: the hot path allocates and frees many
/// short-lived buffers of a few KB per change (decoded content, item JSON, command
/// arguments), and glibc's malloc spent about a third of the engine's CPU on them
/// (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod config;
mod engine_cell;
mod http;
mod logging;
mod node;
mod run;
mod status;
#[cfg(feature = "sync-engine")]
mod sync_store;

use clap::{Parser, Subcommand};
use logging::LogFormat;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "replicationd", version, about = "Mesh replication daemon")]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value = "human", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine until SIGTERM/SIGINT; SIGHUP reloads the config.
    Run {
        /// Config file (engine config plus [node] and [http]).
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
    /// Show the health of the running daemon.
    Status {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a config file and exit.
    CheckConfig {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
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
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Run { config } => run::run(config).await,
            Command::Put { config, key, value } => node::put(config, key, value.as_deref()).await,
            Command::Get { config, key } => node::get(config, key).await,
            Command::Del { config, key } => node::del(config, key).await,
            Command::Status { config } => status::status(config).await,
            Command::CheckConfig { config } => config::DaemonConfig::load(config)
                .map(|c| println!("{}: ok ({} peers)", config.display(), c.engine.peers.len()))
                .map_err(Into::into),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, with the causes chained: "cannot reach ...: connection refused".
            eprintln!("replicationd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
