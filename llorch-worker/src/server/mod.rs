//! The worker service (feature `server`): the engine on its own thread, the
//! in-process [`WorkerExecutor`](llorch_core::WorkerExecutor), the HTTP API of
//! `worker-orcd` and its start-up sequence (SPEC WORK-3xxx).
//!
//! - [`runner`]: one OS thread owns the [`Engine`]; commands reach it over a bounded
//!   channel; it blocks when idle and publishes a snapshot after each step.
//! - [`executor`]: [`LocalExecutor`], the seam in process: tokenize, check the
//!   context, submit, stream; dropping a stream cancels its job.
//! - [`jobs`]: live and recent jobs, the counting sink behind each stream.
//! - [`metrics`]: Prometheus metrics with the WORK-3080 names.
//! - [`http`]: the axum routes (`/execute` SSE, `/cancel`, `/health`, `/ready`,
//!   `/metrics`, `/shutdown`), body limits, correlation ids.
//! - [`callback`]: the ready and failure callbacks to the pool manager.
//! - [`daemon`]: `worker-orcd`'s life: check the device, load, serve, call back,
//!   drain on SIGTERM or `/shutdown`.

pub mod callback;
pub mod daemon;
pub mod executor;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod runner;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use llorch_core::{Device, Error, WorkerId};
use parking_lot::Mutex;

pub use executor::{HealthReport, LocalExecutor};
pub use metrics::Metrics;
pub use runner::{RunnerHandle, Snapshot};

use crate::engine::Engine;

/// Who a worker is, as its logs, health and callbacks say (WORK-3080 fields).
#[derive(Debug, Clone)]
pub struct WorkerIdent {
    /// The worker's id.
    pub worker_id: WorkerId,
    /// The model it holds (`file:/abs/path.gguf`, or the reference it was given).
    pub model_ref: String,
    /// Its device (`cpu`, `cuda:N`).
    pub device: String,
    /// Memory it holds: weights + KV reservation + scratch, bytes.
    pub vram_bytes: u64,
}

/// Starts the runner thread over `engine` and returns the executor over it.
///
/// The memory figure is measured from the engine's backend here (weights + KV).
pub fn start(
    engine: Engine,
    worker_id: WorkerId,
    model_ref: String,
    device: Device,
) -> Result<LocalExecutor, Error> {
    let vram_bytes = engine.backend().memory_bytes();
    let ident = Arc::new(WorkerIdent {
        worker_id,
        model_ref,
        device: device.to_string(),
        vram_bytes,
    });
    let metrics = Arc::new(Metrics::new());
    metrics.set_capacity(
        vram_bytes,
        engine.config().max_seqs,
        engine.backend().num_pages(),
    );
    metrics.set_occupancy(engine.free_slots(), engine.free_pages(), 0);
    let tok = Arc::clone(engine.tokenizer());
    let vocab = engine.backend().vocab_size();
    let max_ctx = engine.config().max_ctx;
    let jobs = Arc::new(jobs::JobsCtx {
        metrics,
        ledger: Mutex::new(jobs::Ledger::default()),
        ident,
    });
    let runner = runner::spawn(engine, Arc::clone(&jobs))?;
    Ok(LocalExecutor::new(executor::Inner {
        runner,
        jobs,
        tok,
        vocab,
        max_ctx,
        draining: AtomicBool::new(false),
    }))
}
