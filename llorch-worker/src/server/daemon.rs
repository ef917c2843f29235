//! `worker-orcd`'s life (WORK-3011, WORK-3100): check the device, load the model,
//! measure the memory it holds, serve, call back ready, accept work; on SIGTERM,
//! SIGINT or `POST /shutdown` refuse new work (503), let active jobs finish, stop.
//!
//! A start-up failure is logged, reported to the pool manager's failure callback
//! when there is one, and returned with its SPEC code (the binary maps it to a
//! non-zero exit). A clean shutdown returns `Ok` (exit 0) within
//! [`DaemonConfig::drain_grace`] + a few seconds.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use llorch_core::wire::pool::ReadyCallback;
use llorch_core::{Device, Error, ErrorCode, WorkerId};

use super::LocalExecutor;
use super::callback::CallbackTarget;
use super::http::{AppState, ShutdownSwitch, router};
use crate::engine::EngineConfig;

/// Context length when `--ctx` is not given (capped by the model's).
pub const DEFAULT_CTX: usize = 4096;
/// Sequences at once when `--max-seqs` is not given.
pub const DEFAULT_MAX_SEQS: usize = 16;
/// Time active jobs get to finish on shutdown before they are cancelled (< 30 s in all).
pub const DRAIN_GRACE: Duration = Duration::from_secs(25);
/// After the engine stopped, time open connections get to close.
const SERVER_CLOSE: Duration = Duration::from_secs(2);

/// Everything `worker-orcd` is told on its command line.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// This worker's id.
    pub worker_id: WorkerId,
    /// The GGUF file.
    pub model: PathBuf,
    /// The reference to report (default `file:<absolute path>`).
    pub model_ref: Option<String>,
    /// The device.
    pub device: Device,
    /// GPU matrix kernels (ignored on the CPU).
    pub matmul: crate::cuda::MatmulPath,
    /// Address to listen on.
    pub bind: IpAddr,
    /// Port to listen on (0: any free port; the bound address is logged).
    pub port: u16,
    /// Base URL to report in the ready callback (default `http://{bind}:{port}`).
    pub advertise_uri: Option<String>,
    /// Pool manager to call back, with its token.
    pub callback: Option<CallbackTarget>,
    /// Sequences at once.
    pub max_seqs: usize,
    /// Context length (prompt + output), capped by the model's.
    pub ctx: Option<usize>,
    /// A job running longer ends with `INFERENCE_TIMEOUT` (WORK-3071).
    pub inference_timeout: Duration,
    /// A stream whose reader takes nothing for this long is cancelled.
    pub stall_timeout: Duration,
    /// Time active jobs get on shutdown.
    pub drain_grace: Duration,
}

impl DaemonConfig {
    /// A configuration with the defaults for everything optional.
    pub fn new(worker_id: WorkerId, model: PathBuf, device: Device, port: u16) -> Self {
        let d = EngineConfig::default();
        Self {
            worker_id,
            model,
            model_ref: None,
            device,
            matmul: crate::cuda::MatmulPath::default(),
            bind: IpAddr::from([127, 0, 0, 1]),
            port,
            advertise_uri: None,
            callback: None,
            max_seqs: DEFAULT_MAX_SEQS,
            ctx: None,
            inference_timeout: d.inference_timeout,
            stall_timeout: d.stall_timeout,
            drain_grace: DRAIN_GRACE,
        }
    }
}

/// A started worker: serving, not yet called back.
struct Started {
    exec: LocalExecutor,
    addr: SocketAddr,
    state: AppState,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_server: ShutdownSwitch,
}

/// Runs the worker until it is shut down. `Err` carries the SPEC code to exit with.
pub async fn run(cfg: DaemonConfig) -> Result<(), Error> {
    let started = match start(&cfg).await {
        Ok(s) => s,
        Err(e) => {
            log_failure("start_failed", &cfg, &e);
            if let Some(cb) = &cfg.callback {
                cb.failed(&cfg.worker_id, &e).await;
            }
            return Err(e);
        }
    };
    if let Err(e) = announce(&cfg, &started).await {
        log_failure("start_failed", &cfg, &e);
        if let Some(cb) = &cfg.callback {
            cb.failed(&cfg.worker_id, &e).await;
        }
        started.exec.drain(Duration::ZERO).await;
        started.stop_server.trigger();
        return Err(e);
    }
    serve(&cfg, started).await
}

fn log_failure(event: &str, cfg: &DaemonConfig, e: &Error) {
    tracing::error!(
        event,
        worker_id = %cfg.worker_id,
        gpu_device = %cfg.device,
        error_code = %e.code,
        message = %e.message,
        "worker failed"
    );
}

async fn start(cfg: &DaemonConfig) -> Result<Started, Error> {
    if cfg.max_seqs == 0 {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            "--max-seqs must be at least 1",
        ));
    }
    let path = cfg.model.clone();
    let model = tokio::task::spawn_blocking(move || crate::model::load::load(&path))
        .await
        .map_err(|e| Error::new(ErrorCode::Internal, format!("model loader: {e}")))??;
    let model_ctx = model.cfg.ctx_len;
    let ctx = cfg.ctx.unwrap_or(DEFAULT_CTX).min(model_ctx);
    if ctx < 2 {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            format!("--ctx {ctx} leaves no room for a prompt and an output token"),
        ));
    }
    let engine_cfg = EngineConfig {
        max_seqs: cfg.max_seqs,
        max_ctx: ctx,
        inference_timeout: cfg.inference_timeout,
        stall_timeout: cfg.stall_timeout,
        ..EngineConfig::default()
    };
    let (device, matmul) = (cfg.device, cfg.matmul);
    // Opening a GPU compiles kernels and copies weights: off the async threads.
    let engine =
        tokio::task::spawn_blocking(move || model.into_engine_on(device, matmul, engine_cfg))
            .await
            .map_err(|e| Error::new(ErrorCode::Internal, format!("engine start: {e}")))??;
    let model_ref = cfg.model_ref.clone().unwrap_or_else(|| {
        let abs = std::fs::canonicalize(&cfg.model).unwrap_or_else(|_| cfg.model.clone());
        format!("file:{}", abs.display())
    });
    let exec = super::start(engine, cfg.worker_id.clone(), model_ref, cfg.device)?;
    let listener = tokio::net::TcpListener::bind((cfg.bind, cfg.port))
        .await
        .map_err(|e| {
            Error::new(
                ErrorCode::Internal,
                format!("cannot listen on {}:{}: {e}", cfg.bind, cfg.port),
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::new(ErrorCode::Internal, format!("bound address: {e}")))?;
    let id = exec.ident();
    let snap = exec.snapshot();
    tracing::info!(
        event = "listening",
        addr = %addr,
        worker_id = %id.worker_id,
        model_ref = %id.model_ref,
        gpu_device = %id.device,
        vram_bytes = id.vram_bytes,
        slots = snap.slots_total,
        kv_pages = snap.pages_total,
        ctx,
        "model loaded; serving"
    );
    let state = AppState {
        exec: exec.clone(),
        accepting: Arc::new(AtomicBool::new(false)),
        shutdown: ShutdownSwitch::new(),
    };
    let stop_server = ShutdownSwitch::new();
    let stop = stop_server.clone();
    let app = router(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.triggered().await })
            .await
    });
    Ok(Started {
        exec,
        addr,
        state,
        server,
        stop_server,
    })
}

/// Calls back ready (when told to) and opens `/execute`.
async fn announce(cfg: &DaemonConfig, s: &Started) -> Result<(), Error> {
    let id = s.exec.ident();
    if let Some(cb) = &cfg.callback {
        let host = if s.addr.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            s.addr.ip()
        };
        let uri = cfg
            .advertise_uri
            .clone()
            .unwrap_or_else(|| format!("http://{}", SocketAddr::new(host, s.addr.port())));
        let body = ReadyCallback {
            worker_id: id.worker_id.clone(),
            model_ref: id.model_ref.clone(),
            vram_bytes: id.vram_bytes,
            uri,
            slots_total: s.exec.snapshot().slots_total as u32,
        };
        cb.ready(&body).await?;
    }
    s.state.accepting.store(true, Ordering::SeqCst);
    tracing::info!(
        event = "ready",
        worker_id = %id.worker_id,
        model_ref = %id.model_ref,
        gpu_device = %id.device,
        vram_bytes = id.vram_bytes,
        called_back = cfg.callback.is_some(),
        "accepting work"
    );
    Ok(())
}

async fn serve(cfg: &DaemonConfig, s: Started) -> Result<(), Error> {
    let runner = s.exec.runner().clone();
    let reason = tokio::select! {
        r = termination_signal() => r,
        () = s.state.shutdown.triggered() => "shutdown request",
        _ = runner.stopped() => "engine stopped",
    };
    let id = s.exec.ident();
    tracing::info!(
        event = "draining",
        worker_id = %id.worker_id,
        reason,
        jobs_active = s.exec.snapshot().jobs_active,
        "refusing new work; finishing active jobs"
    );
    s.exec.drain(cfg.drain_grace).await;
    let limit = cfg.drain_grace + super::runner::CANCEL_FLUSH + Duration::from_secs(1);
    let fatal = tokio::time::timeout(limit, runner.stopped())
        .await
        .unwrap_or(None);
    s.stop_server.trigger();
    let _ = tokio::time::timeout(SERVER_CLOSE, s.server).await;
    let m = s.exec.metrics();
    tracing::info!(
        event = "stopped",
        worker_id = %id.worker_id,
        uptime_seconds = m.uptime().as_secs(),
        "worker stopped"
    );
    match fatal {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// SIGTERM or SIGINT.
async fn termination_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
