//! `orchestratord`: the llama-orch orchestrator: admits, queues, places and streams jobs.
//!
//! Flags are parsed and checked; serving is not in this build yet (issue 7).

use std::process::ExitCode;

use clap::Parser;
use llorch_daemons::fail;

/// the llama-orch orchestrator: admits, queues, places and streams jobs.
#[derive(Parser)]
#[command(name = "orchestratord", version, about, long_about = None)]
struct Args {
    /// Address to serve the client API on (ORCH-1140).
    #[arg(long, default_value = "0.0.0.0:8080")]
    bind_addr: std::net::SocketAddr,
    /// Pool manager base URLs (ORCH-1110).
    #[arg(long = "pool-manager")]
    pool_managers: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _ = (args.bind_addr, args.pool_managers);
    fail(
        "orchestratord",
        "serving is not implemented in this build yet (see issue 7); nothing was started",
    )
}
