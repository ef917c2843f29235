//! The in-process [`WorkerExecutor`]: a validated job in, its event stream out.
//!
//! This is the worker seam without HTTP: `worker-orcd`'s routes call it, and
//! `llorch serve` will hand it to the orchestrator directly. It tokenizes the
//! prompt, checks it against the worker's context (WORK-3120, WORK-3071), gives the
//! job to the runner with a bounded per-stream channel, and returns a stream that
//! ends after exactly one terminal event; dropping the stream early cancels the job
//! (WORK-3053).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use llorch_core::wire::events::TaskEvent;
use llorch_core::wire::pool::WorkerHealth;
use llorch_core::wire::task::{PromptInput, ValidJob};
use llorch_core::{CancelOutcome, Error, ErrorCode, EventStream, JobId, WorkerExecutor};
use serde::Serialize;
use tokio::sync::mpsc;

use super::WorkerIdent;
use super::jobs::JobsCtx;
use super::metrics::{Metrics, Outcome};
use super::runner::{RunnerHandle, Snapshot};
use crate::engine::SeqRequest;
use crate::sampling::{SamplingParams, mix64};
use crate::tokenizer::Tokenizer;

/// Events buffered per stream; a reader further behind pauses its sequence.
pub const STREAM_BUFFER: usize = 16;
/// `max_tokens` when a request gives none (capped by the room left in the context).
pub const DEFAULT_MAX_TOKENS: u32 = 256;
/// Prompts longer than this (bytes) are tokenized on a blocking thread.
const INLINE_TOKENIZE_BYTES: usize = 16 << 10;
/// A busy engine that has not finished an iteration for this long is unhealthy.
pub const STALL_UNHEALTHY: Duration = Duration::from_secs(60);

/// `/health`: the seam's [`WorkerHealth`] plus the engine's occupancy.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// Status, model, memory, uptime, slots.
    #[serde(flatten)]
    pub health: WorkerHealth,
    /// The device (`cpu`, `cuda:N`).
    pub device: String,
    /// Jobs accepted and not ended.
    pub jobs_active: usize,
    /// KV pages in all.
    pub kv_pages_total: usize,
    /// KV pages free.
    pub kv_pages_free: usize,
    /// The worker's context length, tokens.
    pub ctx: usize,
}

pub(crate) struct Inner {
    pub(crate) runner: RunnerHandle,
    pub(crate) jobs: Arc<JobsCtx>,
    pub(crate) tok: Arc<Tokenizer>,
    pub(crate) vocab: usize,
    pub(crate) max_ctx: usize,
    pub(crate) draining: AtomicBool,
}

/// The worker's jobs in this process. Cheap to clone.
#[derive(Clone)]
pub struct LocalExecutor {
    inner: Arc<Inner>,
}

impl LocalExecutor {
    pub(crate) fn new(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The worker's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.jobs.metrics
    }

    /// Who this worker is.
    pub fn ident(&self) -> &Arc<WorkerIdent> {
        &self.inner.jobs.ident
    }

    /// The runner's last snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.runner.snapshot()
    }

    /// The runner (drain, wait for it to stop).
    pub fn runner(&self) -> &RunnerHandle {
        &self.inner.runner
    }

    /// Whether new jobs are refused.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Refuses new jobs from now on (503 `SHUTTING_DOWN`), lets running ones finish and
    /// stops the engine when idle; jobs still running after `grace` are cancelled
    /// (WORK-3100).
    pub async fn drain(&self, grace: Duration) {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.inner.runner.drain(grace).await;
    }

    /// [`WorkerExecutor::execute`] with a correlation id for the logs.
    pub async fn execute_with(
        &self,
        job: ValidJob,
        correlation_id: String,
    ) -> Result<EventStream, Error> {
        let result = self.start(job, &correlation_id).await;
        if let Err(e) = &result {
            self.metrics().request(Outcome::rejected);
            let id = self.ident();
            tracing::info!(
                event = "job_rejected",
                worker_id = %id.worker_id,
                model_ref = %id.model_ref,
                gpu_device = %id.device,
                correlation_id = %correlation_id,
                error_code = %e.code,
                "job refused"
            );
        }
        result
    }

    async fn start(&self, job: ValidJob, correlation_id: &str) -> Result<EventStream, Error> {
        if self.is_draining() {
            return Err(Error::new(
                ErrorCode::ShuttingDown,
                "the worker is shutting down and takes no new jobs",
            ));
        }
        let big = matches!(job.input(), PromptInput::Text { prompt } if prompt.len() > INLINE_TOKENIZE_BYTES);
        let req = if big {
            let inner = Arc::clone(&self.inner);
            tokio::task::spawn_blocking(move || prepare(&inner, &job))
                .await
                .map_err(|e| Error::new(ErrorCode::Internal, format!("tokenizer task: {e}")))??
        } else {
            prepare(&self.inner, &job)?
        };
        let job_id = req.job_id.clone();
        let (tokens_in, max_tokens) = (req.prompt.len(), req.max_tokens);
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        self.inner
            .runner
            .submit(req, tx, correlation_id.to_owned())
            .await?;
        let id = self.ident();
        tracing::info!(
            event = "job_accepted",
            worker_id = %id.worker_id,
            model_ref = %id.model_ref,
            gpu_device = %id.device,
            job_id = %job_id,
            correlation_id = %correlation_id,
            tokens_in,
            max_tokens,
            "job accepted"
        );
        Ok(Box::pin(JobStream {
            rx,
            job_id,
            runner: self.inner.runner.clone(),
            ended: false,
        }))
    }

    /// `/health` in full.
    pub fn health_report(&self) -> HealthReport {
        let s = self.snapshot();
        let id = self.ident();
        let status = if s.fatal.is_some()
            || (s.stopped && !self.is_draining())
            || (s.busy && s.last_progress.elapsed() > STALL_UNHEALTHY)
        {
            "unhealthy"
        } else if self.is_draining() || s.draining {
            "draining"
        } else {
            "ok"
        };
        HealthReport {
            health: WorkerHealth {
                status: status.to_owned(),
                model: id.model_ref.clone(),
                vram_bytes: id.vram_bytes,
                uptime_seconds: self.metrics().uptime().as_secs(),
                slots_total: s.slots_total as u32,
                slots_free: s.slots_free as u32,
            },
            device: id.device.clone(),
            jobs_active: s.jobs_active,
            kv_pages_total: s.pages_total,
            kv_pages_free: s.pages_free,
            ctx: self.inner.max_ctx,
        }
    }
}

/// A deterministic seed for a job that gave none: a hash of its id (WORK-3062).
fn fallback_seed(job: &JobId) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in job.as_str().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

fn invalid(field: &str, why: String) -> Error {
    Error::new(ErrorCode::InvalidRequest, format!("{field}: {why}"))
        .with_details(serde_json::json!({ "field": field }))
}

/// Tokenizes and checks a job against this worker's context.
fn prepare(inner: &Inner, job: &ValidJob) -> Result<SeqRequest, Error> {
    let prompt = match job.input() {
        PromptInput::Text { prompt } => inner
            .tok
            .encode(prompt, true, true)
            .map_err(|e| invalid("prompt", e.to_string()))?,
        PromptInput::Tokens { prompt_tokens } => {
            if let Some(t) = prompt_tokens.iter().find(|&&t| t as usize >= inner.vocab) {
                return Err(invalid(
                    "prompt_tokens",
                    format!("token id {t} is outside the vocabulary ({})", inner.vocab),
                ));
            }
            prompt_tokens.clone()
        }
    };
    if prompt.is_empty() {
        return Err(invalid("prompt", "has no tokens".into()));
    }
    let params = job.params();
    let ctx = inner.max_ctx;
    let room = ctx.saturating_sub(prompt.len());
    let max_tokens = params
        .max_tokens
        .unwrap_or_else(|| DEFAULT_MAX_TOKENS.min(room as u32).max(1));
    if prompt.len() + max_tokens as usize > ctx {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            format!(
                "max_tokens: the prompt has {} tokens and max_tokens is {max_tokens}; \
                 together they exceed this worker's context of {ctx}",
                prompt.len()
            ),
        )
        .with_details(serde_json::json!({
            "field": "max_tokens",
            "tokens_in": prompt.len(),
            "max_tokens": max_tokens,
            "ctx": ctx,
        })));
    }
    Ok(SeqRequest {
        job_id: job.job_id().clone(),
        prompt,
        max_tokens,
        params: SamplingParams::from_wire(params, fallback_seed(job.job_id())),
        stop: params.stop.clone(),
        ignore_eos: false,
    })
}

#[async_trait]
impl WorkerExecutor for LocalExecutor {
    async fn execute(&self, job: ValidJob) -> Result<EventStream, Error> {
        let correlation_id = format!("corr-{}", uuid::Uuid::new_v4().simple());
        self.execute_with(job, correlation_id).await
    }

    async fn cancel(&self, job_id: &JobId) -> Result<CancelOutcome, Error> {
        let outcome = self.inner.runner.cancel(job_id).await?;
        let id = self.ident();
        tracing::info!(
            event = "cancel",
            worker_id = %id.worker_id,
            job_id = %job_id,
            outcome = ?outcome,
            "cancel request"
        );
        outcome.ok_or_else(|| {
            Error::new(
                ErrorCode::NotFound,
                format!("no job {job_id} on this worker"),
            )
        })
    }

    async fn health(&self) -> Result<llorch_core::wire::pool::WorkerHealth, Error> {
        Ok(self.health_report().health)
    }
}

/// A job's events; ends after exactly one terminal event. Dropped early, it cancels
/// the job (the engine also sees the closed channel at its next event).
struct JobStream {
    rx: mpsc::Receiver<TaskEvent>,
    job_id: JobId,
    runner: RunnerHandle,
    ended: bool,
}

impl Stream for JobStream {
    type Item = TaskEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<TaskEvent>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(ev)) => {
                if ev.is_terminal() {
                    self.ended = true;
                }
                Poll::Ready(Some(ev))
            }
            Poll::Ready(None) => {
                // The engine let go without a terminal event (this reader stalled past
                // the limit, or the worker stopped): end the stream all the same.
                self.ended = true;
                Poll::Ready(Some(TaskEvent::Error(
                    Error::new(
                        ErrorCode::Cancelled,
                        "the worker dropped the job before its end was delivered",
                    )
                    .to_body(),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for JobStream {
    fn drop(&mut self) {
        if !self.ended {
            self.runner.cancel_detached(self.job_id.clone());
        }
    }
}
