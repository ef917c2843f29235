//! The scheduler's inputs and outputs: [`JobRequest`] in, [`Submitted`] or
//! [`SubmitRefused`] back, and the [`Action`]s a scheduling round asks the caller to
//! carry out.

use llorch_core::wire::pool::StartWorkerRequest;
use llorch_core::wire::task::Priority;
use llorch_core::{Error, JobId, NodeId, WorkerId};

use crate::admission::{AdmissionError, Admitted};
use crate::affinity::AffinityKey;
use crate::queue::{PushError, QueuedJob, TenantId};

/// A job submitted to [`Scheduler::submit`](crate::Scheduler::submit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    /// Its id (minted by the caller).
    pub id: JobId,
    /// Its priority.
    pub priority: Priority,
    /// Catalog id or canonical reference of the model.
    pub model: String,
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// Requested max_tokens.
    pub max_tokens: Option<u32>,
    /// Its tenant.
    pub tenant: Option<TenantId>,
    /// Session or prefix affinity.
    pub affinity: Option<AffinityKey>,
}

/// Why a submission failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// Admission refused it (`ADMISSION_REJECT`).
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The queue refused it (`QUEUE_FULL`, ORCH-1012) or the id is taken.
    #[error(transparent)]
    Queue(#[from] PushError),
}

impl SubmitError {
    /// The error for the client.
    pub fn to_error(&self) -> Error {
        match self {
            SubmitError::Admission(e) => e.to_error(),
            SubmitError::Queue(PushError::Full(f)) => f.to_error(),
            SubmitError::Queue(e @ PushError::Duplicate(_)) => {
                Error::new(llorch_core::ErrorCode::InvalidParams, e.to_string())
            }
        }
    }
}

/// A refused submission: the reason and the caller's payload, handed back.
#[derive(Debug)]
pub struct SubmitRefused<T> {
    /// Why.
    pub error: SubmitError,
    /// The payload.
    pub payload: T,
}

/// An accepted submission.
#[derive(Debug)]
pub struct Submitted<T> {
    /// Jobs ahead of it (ORCH-1100 `queue_position`).
    pub position: usize,
    /// Expected milliseconds until it starts (ORCH-1071 `predicted_start_ms`).
    pub predicted_start_ms: u64,
    /// The admission result.
    pub admitted: Admitted,
    /// A job shed to make room (`drop-lru`): tell its client `QUEUE_FULL`.
    pub shed: Option<QueuedJob<T>>,
}

/// What the caller must do after a scheduling round.
#[derive(Debug)]
pub enum Action<T> {
    /// Send the job to the worker (ORCH-1060).
    Dispatch {
        /// The job, out of the queue.
        job: QueuedJob<T>,
        /// The worker.
        worker: WorkerId,
        /// Its node.
        node: NodeId,
        /// Whether affinity chose the worker.
        affine: bool,
    },
    /// `POST /v2/workers/start` on the node (ORCH-1041).
    StartWorker {
        /// The node.
        node: NodeId,
        /// The request (with the worker id the scheduler chose).
        request: StartWorkerRequest,
        /// Bytes reserved for it.
        need_bytes: u64,
    },
    /// Drain a worker (ORCH-1052): it finishes its jobs; a later round stops it.
    Drain {
        /// The node.
        node: NodeId,
        /// The worker.
        worker: WorkerId,
    },
    /// Stop an idle worker (ORCH-1051).
    Stop {
        /// The node.
        node: NodeId,
        /// The worker.
        worker: WorkerId,
    },
    /// Tell the job's client it failed (`POOL_UNAVAILABLE`, …).
    Reject {
        /// The job, out of the queue.
        job: QueuedJob<T>,
        /// The error for its client.
        error: Error,
    },
    /// A start was not ready in time (ORCH-1042); stop that worker. Jobs still waiting
    /// for the model cause one new start; after that a second timeout rejects them.
    StartTimedOut {
        /// The node.
        node: NodeId,
        /// The worker that did not become ready.
        worker: WorkerId,
    },
}
