//! The shared vocabulary of llama-orch.
//!
//! - [`ids`]: typed ids ([`JobId`], [`WorkerId`], [`NodeId`], [`GpuId`], [`SessionId`]) and [`Device`].
//! - [`model_ref`]: [`ModelRef`], the strict parser of `hf:`, `file:` and alias references.
//! - [`error`]: the stable [`ErrorCode`]s, [`ErrorBody`] and the seams' [`Error`].
//! - [`wire`]: serde types of the task, event, pool and worker APIs.
//! - [`seams`]: the [`PoolControl`] and [`WorkerExecutor`] traits.
//!
//! A worker implementation in a few lines: every job answers with one token.
//!
//! ```
//! use async_trait::async_trait;
//! use futures::StreamExt;
//! use llorch_core::wire::events::{End, StopReason, TaskEvent, Token};
//! use llorch_core::wire::pool::WorkerHealth;
//! use llorch_core::wire::task::{GenerationParams, PromptInput, ValidJob};
//! use llorch_core::{CancelOutcome, Error, ErrorCode, EventStream, JobId, WorkerExecutor};
//!
//! struct Echo;
//!
//! #[async_trait]
//! impl WorkerExecutor for Echo {
//!     async fn execute(&self, _job: ValidJob) -> llorch_core::Result<EventStream> {
//!         let events = vec![
//!             TaskEvent::Token(Token { t: 1, i: 0, text: "ok".into(), logprob: None, top_logprobs: vec![] }),
//!             TaskEvent::End(End { tokens_in: 1, tokens_out: 1, decode_time_ms: 0, stop_reason: StopReason::MaxTokens }),
//!         ];
//!         Ok(Box::pin(futures::stream::iter(events)))
//!     }
//!     async fn cancel(&self, job_id: &JobId) -> llorch_core::Result<CancelOutcome> {
//!         Err(Error::new(ErrorCode::NotFound, format!("no job {job_id}")))
//!     }
//!     async fn health(&self) -> llorch_core::Result<WorkerHealth> {
//!         Err(Error::new(ErrorCode::Internal, "not reported"))
//!     }
//! }
//!
//! # futures::executor::block_on(async {
//! let worker: Box<dyn WorkerExecutor> = Box::new(Echo);
//! let job = ValidJob::new(JobId::mint(), PromptInput::Text { prompt: "hi".into() }, GenerationParams::default())?;
//! let events: Vec<TaskEvent> = worker.execute(job).await?.collect().await;
//! assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1);
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```

pub mod error;
pub mod ids;
pub mod model_ref;
pub mod seams;
pub mod wire;

pub use error::{Error, ErrorBody, ErrorCode, Result};
pub use ids::{Device, GpuId, IdError, JobId, NodeId, SessionId, WorkerId};
pub use model_ref::{HfRef, ModelRef, ModelRefError};
pub use seams::{CancelOutcome, EventStream, PoolControl, WorkerExecutor};
