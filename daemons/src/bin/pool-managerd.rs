//! `pool-managerd`: the llama-orch pool manager: reports a host's GPUs and workers and runs lifecycle commands.
//!
//! Flags are parsed and checked; serving is not in this build yet (issue 7).

use std::process::ExitCode;

use clap::Parser;
use llorch_daemons::fail;

/// the llama-orch pool manager: reports a host's GPUs and workers and runs lifecycle commands.
#[derive(Parser)]
#[command(name = "pool-managerd", version, about, long_about = None)]
struct Args {
    /// Address to serve the pool API on (POOL-2080).
    #[arg(long, default_value = "0.0.0.0:9200")]
    bind_addr: std::net::SocketAddr,
    /// This host's node id (default: the hostname).
    #[arg(long)]
    node_id: Option<llorch_core::NodeId>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = (args.bind_addr, args.node_id);
    fail(
        "pool-managerd",
        "serving is not implemented in this build yet (see issue 7); nothing was started",
    )
}
