//! `worker-orcd`: the llama-orch worker: loads one GGUF model and runs many jobs at once.
//!
//! Flags are parsed and checked; serving is not in this build yet (issue 6).

use std::process::ExitCode;

use clap::Parser;
use llorch_daemons::fail;

/// the llama-orch worker: loads one GGUF model and runs many jobs at once.
#[derive(Parser)]
#[command(name = "worker-orcd", version, about, long_about = None)]
struct Args {
    /// This worker's id.
    #[arg(long)]
    worker_id: llorch_core::WorkerId,
    /// The GGUF file to load.
    #[arg(long)]
    model: std::path::PathBuf,
    /// Device: `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: llorch_core::Device,
    /// Port to serve on.
    #[arg(long)]
    port: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.model.is_file() {
        return fail(
            "worker-orcd",
            format!("model file {} not found", args.model.display()),
        );
    }
    let _ = (args.worker_id, args.device, args.port);
    fail(
        "worker-orcd",
        "serving is not implemented in this build yet (see issue 6); nothing was started",
    )
}
