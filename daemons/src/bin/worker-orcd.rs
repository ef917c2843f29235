//! `worker-orcd`: the llama-orch worker: loads one GGUF model and runs many jobs at
//! once, streaming tokens as SSE (SPEC WORK-3xxx, issue 6).
//!
//! Logs are JSON lines on stdout (WORK-3080 fields; never prompts or the callback
//! token); the first `"event":"listening"` line carries the bound `addr` (useful with
//! `--port 0`). Exit codes: 0 after a clean shutdown, 2 for bad arguments, else
//! [`llorch_daemons::worker::exit_code`] of the SPEC error code (also printed on
//! stderr as `worker-orcd: CODE: message`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use llorch_core::{Device, WorkerId};
use llorch_daemons::worker::{exit_code, init_logging};
use llorch_daemons::{fail, parse_args};
use llorch_worker::cuda::MatmulPath;
use llorch_worker::server::callback::CallbackTarget;
use llorch_worker::server::daemon::{self, DaemonConfig};

/// The environment variable that may carry the callback token.
const TOKEN_ENV: &str = "LLORCH_CALLBACK_TOKEN";

/// the llama-orch worker: loads one GGUF model and runs many jobs at once.
#[derive(Parser)]
#[command(name = "worker-orcd", version, about, long_about = None)]
struct Args {
    /// This worker's id.
    #[arg(long)]
    worker_id: WorkerId,
    /// The GGUF file to load.
    #[arg(long)]
    model: PathBuf,
    /// The model reference to report (default: `file:<absolute path>`).
    #[arg(long)]
    model_ref: Option<String>,
    /// Device: `cpu` or `cuda:N` (`--gpu-device` is the SPEC's name for it).
    #[arg(long, alias = "gpu-device", default_value = "cpu")]
    device: Device,
    /// GPU matrix kernels: `tensor-cores` (fastest for prompts and batches) or `f32`
    /// (lowest latency for one stream on small models).
    #[arg(long, default_value = "tensor-cores")]
    matmul: MatmulPath,
    /// Port to serve on (0: any free port; the bound address is logged).
    #[arg(long)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Base URL to report in the ready callback (default: `http://BIND:PORT`).
    #[arg(long)]
    advertise_uri: Option<String>,
    /// Pool manager base URL to call back when ready (or failed).
    #[arg(long)]
    callback_url: Option<String>,
    /// Bearer token for the callbacks (never logged; else $LLORCH_CALLBACK_TOKEN,
    /// which keeps it out of the process list).
    #[arg(long, requires = "callback_url")]
    callback_token: Option<String>,
    /// Sequences running at once (continuous batching).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    max_seqs: u32,
    /// Context length per sequence, prompt + output (default: 4096, capped by the model's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=1_048_576))]
    ctx: Option<u32>,
    /// A job running longer ends with INFERENCE_TIMEOUT, milliseconds.
    #[arg(long, default_value_t = 300_000)]
    inference_timeout_ms: u64,
    /// A stream whose reader takes nothing for this long is cancelled, milliseconds.
    #[arg(long, default_value_t = 30_000)]
    stall_timeout_ms: u64,
    /// On shutdown, time active jobs get before they are cancelled, milliseconds.
    #[arg(long, default_value_t = 25_000)]
    drain_grace_ms: u64,
}

fn main() -> ExitCode {
    let args = match parse_args::<Args>("worker-orcd") {
        Ok(a) => a,
        Err(code) => return code,
    };
    let token = args
        .callback_token
        .or_else(|| std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()));
    let callback = match (args.callback_url, token) {
        (Some(url), Some(token)) => Some(CallbackTarget { url, token }),
        (Some(_), None) => {
            return fail(
                "worker-orcd",
                format!("--callback-url needs --callback-token or ${TOKEN_ENV}"),
            );
        }
        (None, _) => None,
    };
    init_logging();
    let mut cfg = DaemonConfig::new(args.worker_id, args.model, args.device, args.port);
    cfg.model_ref = args.model_ref;
    cfg.matmul = args.matmul;
    cfg.bind = args.bind;
    cfg.advertise_uri = args.advertise_uri;
    cfg.callback = callback;
    cfg.max_seqs = args.max_seqs as usize;
    cfg.ctx = args.ctx.map(|n| n as usize);
    cfg.inference_timeout = Duration::from_millis(args.inference_timeout_ms);
    cfg.stall_timeout = Duration::from_millis(args.stall_timeout_ms);
    cfg.drain_grace = Duration::from_millis(args.drain_grace_ms);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("worker-orcd-io")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail("worker-orcd", format!("INTERNAL: runtime: {e}")),
    };
    match rt.block_on(daemon::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker-orcd: {}: {}", e.code, e.message.replace('\n', " "));
            ExitCode::from(exit_code(e.code))
        }
    }
}
