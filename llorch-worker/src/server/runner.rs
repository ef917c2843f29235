//! The engine's own OS thread and the bounded command channel that reaches it.
//!
//! The [`Engine`] is synchronous and single-threaded; one runner thread owns it.
//! Commands (submit, cancel, drain) arrive over a bounded channel. Between steps the
//! runner takes every queued command without waiting; when the engine has no work it
//! blocks on the channel (no spinning), and when every sequence is paused on a slow
//! reader it waits for a command or a short timer. After each iteration it publishes
//! a [`Snapshot`] (slots, pages, liveness) that `/health`, `/ready` and the metrics
//! read without waiting for a step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use llorch_core::wire::events::TaskEvent;
use llorch_core::{CancelOutcome, Error, ErrorCode, JobId};
use tokio::sync::{mpsc, oneshot, watch};

use super::jobs::{JobSink, JobsCtx};
use crate::engine::{Engine, SeqRequest};

/// Commands queued for the runner, at most.
pub const COMMAND_QUEUE: usize = 256;
/// How long the runner waits before looking again at sequences paused on slow readers.
pub const PAUSED_POLL: Duration = Duration::from_millis(5);
/// After the drain deadline, how long cancelled jobs get to deliver their last event.
pub const CANCEL_FLUSH: Duration = Duration::from_secs(2);

/// A request to the runner.
pub(crate) enum Command {
    /// Starts a job whose events go to `tx`.
    Submit {
        req: SeqRequest,
        tx: mpsc::Sender<TaskEvent>,
        correlation_id: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Cancels a job by id; `None` in the reply means the id is unknown.
    Cancel {
        job_id: JobId,
        reply: Option<oneshot::Sender<Option<CancelOutcome>>>,
    },
    /// Takes no new jobs, lets the running ones finish, and stops when idle; jobs
    /// still running after `grace` are cancelled.
    Drain { grace: Duration },
}

/// What the runner last published.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Sequences the engine runs at once.
    pub slots_total: usize,
    /// Slots not taken by running or waiting jobs.
    pub slots_free: usize,
    /// KV pages in all.
    pub pages_total: usize,
    /// KV pages free.
    pub pages_free: usize,
    /// Jobs accepted and not ended.
    pub jobs_active: usize,
    /// Whether the engine had work at the last publication.
    pub busy: bool,
    /// When the runner last finished an iteration (liveness).
    pub last_progress: Instant,
    /// Draining: no new jobs.
    pub draining: bool,
    /// The runner has stopped (drained, or failed).
    pub stopped: bool,
    /// The failure that stopped it, if any.
    pub fatal: Option<Error>,
}

/// A handle to the runner: send commands, read its snapshot. Cheap to clone.
#[derive(Clone)]
pub struct RunnerHandle {
    tx: mpsc::Sender<Command>,
    state: watch::Receiver<Snapshot>,
}

fn stopped_error() -> Error {
    Error::new(
        ErrorCode::WorkerUnavailable,
        "the worker's engine has stopped",
    )
}

impl RunnerHandle {
    /// Submits a job; its events go to `tx`. Errors mean it never started.
    pub(crate) async fn submit(
        &self,
        req: SeqRequest,
        tx: mpsc::Sender<TaskEvent>,
        correlation_id: String,
    ) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Submit {
            req,
            tx,
            correlation_id,
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| stopped_error())?;
        rx.await.map_err(|_| stopped_error())?
    }

    /// Cancels a job; `None` when the worker never heard of it (or forgot it).
    pub async fn cancel(&self, job_id: &JobId) -> Result<Option<CancelOutcome>, Error> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Cancel {
            job_id: job_id.clone(),
            reply: Some(reply),
        };
        self.tx.send(cmd).await.map_err(|_| stopped_error())?;
        rx.await.map_err(|_| stopped_error())
    }

    /// Cancels a job without waiting (a stream dropped before its end).
    pub(crate) fn cancel_detached(&self, job_id: JobId) {
        let cmd = Command::Cancel {
            job_id,
            reply: None,
        };
        match self.tx.try_send(cmd) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                // The engine also notices the closed stream at its next event.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let tx = self.tx.clone();
                    rt.spawn(async move { tx.send(cmd).await });
                }
            }
        }
    }

    /// Starts draining (idempotent).
    pub async fn drain(&self, grace: Duration) {
        let _ = self.tx.send(Command::Drain { grace }).await;
    }

    /// The last published snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.state.borrow().clone()
    }

    /// Waits until the runner has stopped; returns its failure, if any.
    pub async fn stopped(&self) -> Option<Error> {
        let mut rx = self.state.clone();
        match rx.wait_for(|s| s.stopped).await {
            Ok(s) => s.fatal.clone(),
            Err(_) => None, // the runner is gone: it has stopped
        }
    }
}

/// Starts the runner thread over `engine`.
pub(crate) fn spawn(engine: Engine, jobs: Arc<JobsCtx>) -> Result<RunnerHandle, Error> {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let snap = Snapshot {
        slots_total: engine.config().max_seqs,
        slots_free: engine.free_slots(),
        pages_total: engine.backend().num_pages(),
        pages_free: engine.free_pages(),
        jobs_active: 0,
        busy: false,
        last_progress: Instant::now(),
        draining: false,
        stopped: false,
        fatal: None,
    };
    let (state_tx, state_rx) = watch::channel(snap);
    let state_tx = Arc::new(state_tx);
    let on_panic = Arc::clone(&state_tx);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::new(ErrorCode::Internal, format!("runner clock: {e}")))?;
    let runner = Runner {
        engine,
        rx,
        jobs,
        state: state_tx,
        drain_deadline: None,
        cancelled_all: false,
        fatal: None,
        closed: false,
        rt,
    };
    std::thread::Builder::new()
        .name("llorch-engine".into())
        .spawn(move || {
            let run = std::panic::AssertUnwindSafe(move || runner.run());
            if std::panic::catch_unwind(run).is_err() {
                // A bug: say so in the snapshot (health turns unhealthy, the daemon exits
                // non-zero); the job streams end when their senders drop.
                on_panic.send_modify(|s| {
                    s.stopped = true;
                    s.busy = false;
                    s.fatal = Some(Error::new(
                        ErrorCode::Internal,
                        "the engine thread panicked",
                    ));
                });
            }
        })
        .map_err(|e| Error::new(ErrorCode::Internal, format!("runner thread: {e}")))?;
    Ok(RunnerHandle {
        tx,
        state: state_rx,
    })
}

struct Runner {
    engine: Engine,
    rx: mpsc::Receiver<Command>,
    jobs: Arc<JobsCtx>,
    state: Arc<watch::Sender<Snapshot>>,
    drain_deadline: Option<Instant>,
    cancelled_all: bool,
    fatal: Option<Error>,
    /// Every handle is gone (the channel is closed).
    closed: bool,
    /// A clock for timed waits on the channel (this thread is not in a runtime).
    rt: tokio::runtime::Runtime,
}

enum Wait {
    Forever,
    For(Duration),
}

impl Runner {
    fn run(mut self) {
        loop {
            let has_work = self.engine.has_work();
            if !has_work && (self.drain_deadline.is_some() || self.fatal.is_some()) {
                break;
            }
            let wait = if !has_work {
                Some(Wait::Forever)
            } else if !self.engine.can_progress() {
                Some(Wait::For(PAUSED_POLL))
            } else {
                None
            };
            if let Some(wait) = wait {
                self.publish();
                if !self.wait_command(wait) {
                    // Every handle is gone: nobody can read results or send work.
                    self.start_drain(Duration::ZERO);
                }
            }
            while let Ok(cmd) = self.rx.try_recv() {
                self.handle(cmd);
            }
            if self.engine.has_work()
                && let Err(e) = self.engine.step()
            {
                self.fail(e);
            }
            if let Some(deadline) = self.drain_deadline {
                let now = Instant::now();
                if now >= deadline && !self.cancelled_all {
                    self.cancel_all();
                }
                if now >= deadline + CANCEL_FLUSH {
                    break; // readers that do not take their last event lose it
                }
            }
            self.publish();
        }
        self.finish();
    }

    /// Waits for one command and handles it; false when the channel is closed.
    fn wait_command(&mut self, wait: Wait) -> bool {
        if self.closed {
            std::thread::sleep(PAUSED_POLL);
            return false;
        }
        let rx = &mut self.rx;
        let got = match wait {
            Wait::Forever => self.rt.block_on(rx.recv()),
            // The timer must be made inside the runtime: build it in the async block.
            Wait::For(d) => match self
                .rt
                .block_on(async { tokio::time::timeout(d, rx.recv()).await })
            {
                Ok(got) => got,
                Err(_) => return true,
            },
        };
        match got {
            Some(cmd) => {
                self.handle(cmd);
                true
            }
            None => {
                self.closed = true;
                false
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Submit {
                req,
                tx,
                correlation_id,
                reply,
            } => {
                let result = self.submit(req, tx, correlation_id);
                let _ = reply.send(result);
            }
            Command::Cancel { job_id, reply } => {
                let outcome = self.engine.cancel(&job_id).or_else(|| {
                    self.jobs
                        .ledger
                        .lock()
                        .ended_lately(&job_id)
                        .then_some(CancelOutcome::AlreadyFinished)
                });
                if let Some(reply) = reply {
                    let _ = reply.send(outcome);
                }
            }
            Command::Drain { grace } => self.start_drain(grace),
        }
    }

    fn submit(
        &mut self,
        req: SeqRequest,
        tx: mpsc::Sender<TaskEvent>,
        correlation_id: String,
    ) -> Result<(), Error> {
        if self.drain_deadline.is_some() || self.fatal.is_some() {
            return Err(Error::new(
                ErrorCode::ShuttingDown,
                "the worker is shutting down",
            ));
        }
        let serial = self.jobs.ledger.lock().next_serial();
        let job = req.job_id.clone();
        let sink = JobSink::new(
            tx,
            serial,
            job.clone(),
            correlation_id,
            Arc::clone(&self.jobs),
        );
        self.engine.submit(req, Box::new(sink))?;
        self.jobs.ledger.lock().accept(serial, job);
        Ok(())
    }

    fn start_drain(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.drain_deadline = Some(self.drain_deadline.map_or(deadline, |d| d.min(deadline)));
    }

    fn cancel_all(&mut self) {
        self.cancelled_all = true;
        let jobs = self.jobs.ledger.lock().active_jobs();
        for job in jobs {
            self.engine.cancel(&job);
        }
    }

    /// A failed step: the engine ended that batch's jobs; end the rest and stop.
    fn fail(&mut self, e: Error) {
        let id = &self.jobs.ident;
        tracing::error!(
            event = "engine_failed",
            worker_id = %id.worker_id,
            model_ref = %id.model_ref,
            gpu_device = %id.device,
            error_code = %e.code,
            message = %e.message,
            "the engine failed; ending every job"
        );
        self.fatal = Some(e);
        self.cancel_all();
        self.start_drain(Duration::ZERO);
    }

    fn publish(&self) {
        let e = &self.engine;
        let jobs_active = self.jobs.ledger.lock().active_len();
        self.jobs
            .metrics
            .set_occupancy(e.free_slots(), e.free_pages(), jobs_active);
        self.state.send_modify(|s| {
            s.slots_free = e.free_slots();
            s.pages_free = e.free_pages();
            s.jobs_active = jobs_active;
            s.busy = e.has_work();
            s.last_progress = Instant::now();
            s.draining = self.drain_deadline.is_some();
            s.fatal = self.fatal.clone();
        });
    }

    fn finish(mut self) {
        self.publish();
        let fatal = self.fatal.take();
        // Dropping the engine drops the sinks of anything left: their streams end.
        drop(self.engine);
        let jobs_active = self.jobs.ledger.lock().active_len();
        self.jobs.metrics.set_occupancy(0, 0, jobs_active);
        self.state.send_modify(|s| {
            s.jobs_active = jobs_active;
            s.stopped = true;
            s.busy = false;
            s.fatal = fatal;
        });
    }
}
