//! The two seams the system is built on: controlling a pool and executing on a worker.
//!
//! Each has an HTTP client implementation (remote daemons) and an in-process one
//! (`llorch serve`, embedding), so the orchestrator's code is the same either way.

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

use crate::error::Result;
use crate::ids::{JobId, WorkerId};
use crate::wire::events::TaskEvent;
use crate::wire::pool::{
    PoolState, StartWorkerRequest, StartWorkerResponse, StopWorkerRequest, WorkerHealth,
};
use crate::wire::task::ValidJob;

/// A job's events. It ends after exactly one terminal event (`end` or `error`);
/// dropping it before then cancels the job (WORK-3053).
pub type EventStream = Pin<Box<dyn Stream<Item = TaskEvent> + Send + 'static>>;

/// Control of one pool (one host's GPUs and workers): facts and commands, no policy.
#[async_trait]
pub trait PoolControl: Send + Sync {
    /// The pool's current state (POOL-2012).
    async fn state(&self) -> Result<PoolState>;
    /// Starts a worker (POOL-2040); it reports `ready` later.
    async fn start_worker(&self, req: StartWorkerRequest) -> Result<StartWorkerResponse>;
    /// Stops a worker: drain, grace period, then kill (POOL-2041).
    async fn stop_worker(&self, req: StopWorkerRequest) -> Result<()>;
    /// Lets a worker finish its jobs while taking no new ones.
    async fn drain_worker(&self, worker_id: &WorkerId) -> Result<()>;
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was running and is being stopped; its stream ends with `CANCELLED`.
    Cancelled,
    /// The job had already ended (cancel is idempotent).
    AlreadyFinished,
}

/// Execution on one worker: a job in, a stream of events out.
#[async_trait]
pub trait WorkerExecutor: Send + Sync {
    /// Starts a job. Errors here mean it never started; later failures arrive as an
    /// `error` event on the stream.
    async fn execute(&self, job: ValidJob) -> Result<EventStream>;
    /// Cancels a job by id; an unknown id is `NOT_FOUND`.
    async fn cancel(&self, job_id: &JobId) -> Result<CancelOutcome>;
    /// Liveness and free slots (WORK-3041).
    async fn health(&self) -> Result<WorkerHealth>;
}
