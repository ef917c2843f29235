//! The brain of llama-orch as a library (SPEC ORCH-1010..1052).
//!
//! Embedding the scheduler in another program: describe the models, feed it jobs and
//! the pool managers' states, carry out the [`Action`]s it returns, report completions.
//! It reads no clock and does no I/O; `now` is a [`Tick`] you pass in.
//!
//! ```
//! use llorch_core::wire::pool::{GpuState, PoolState, WorkerInfo, WorkerStatus};
//! use llorch_core::wire::task::Priority;
//! use llorch_core::{Device, GpuId, JobId, NodeId};
//! use llorch_sched::{Action, Catalog, CatalogEntry, JobRequest, Scheduler, SchedulerConfig, Tick};
//!
//! // The catalog: one 4 GiB model with an 8k context.
//! let mut catalog = Catalog::new();
//! let model = "hf:org/demo-GGUF@main::file=demo-q4_k_m.gguf".parse()?;
//! catalog.insert(CatalogEntry::new("demo", model, 8192, 4 << 30))?;
//!
//! // One host with one empty 24 GiB GPU, as its pool manager reports it (POOL-2012).
//! let gpu = GpuState { id: GpuId(0), name: String::new(), total_vram: 24 << 30,
//!                      allocated_vram: 0, available_vram: 24 << 30, workers: vec![] };
//! let mut pool = PoolState { node_id: NodeId::new("host-a")?, gpus: vec![gpu], workers: vec![] };
//!
//! // The payload type is yours: here, the client's prompt.
//! let mut sched: Scheduler<&str> = Scheduler::new(SchedulerConfig::default())?;
//! let job = JobRequest { id: JobId::new("job-1")?, priority: Priority::Interactive,
//!                        model: "demo".into(), prompt_tokens: 12, max_tokens: Some(64),
//!                        tenant: None, affinity: None };
//! let queued = sched.submit(&catalog, job, "Hello", Tick(0)).map_err(|r| r.error)?;
//! assert_eq!(queued.position, 0);
//!
//! // No worker holds the model yet: the scheduler asks for one where it fits (ORCH-1040).
//! let actions = sched.schedule(std::slice::from_ref(&pool), &catalog, Tick(1))?;
//! let Some(Action::StartWorker { request, .. }) = actions.into_iter().next() else { panic!() };
//! assert_eq!(request.device, Device::Cuda(GpuId(0)));
//!
//! // Later the pool reports the worker ready; the next round dispatches the job.
//! pool.workers.push(WorkerInfo { id: request.worker_id.clone().unwrap(), model: request.model,
//!     gpu: request.device, vram_used: 5 << 30, uri: "http://host-a:9300".into(),
//!     status: WorkerStatus::Ready, started_at: 0, slots_total: 4, slots_free: 4 });
//! let actions = sched.schedule(std::slice::from_ref(&pool), &catalog, Tick(8_000))?;
//! let Some(Action::Dispatch { job, worker, .. }) = actions.into_iter().next() else { panic!() };
//! assert_eq!((job.payload, worker.as_str()), ("Hello", "worker-0"));
//!
//! // When the worker's stream ends, report it: it frees the slot and feeds Retry-After.
//! sched.complete(&worker, Tick(9_500));
//! assert!(sched.is_idle());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Parts
//! Every policy is a pure function of a [`ClusterSnapshot`], the queue and `now`; the
//! [`Scheduler`] composes them and keeps their state.
//! - [`queue`] and [`rate`]: bounded two-priority queue with aging, fair share and a
//!   measured retry-after (ORCH-1010..1012, 1020..1022).
//! - [`admission`] and [`catalog`]: catalog, context and token-budget checks (ORCH-1011).
//! - [`snapshot`]: pool states + the orchestrator's loads as one view (ORCH-1030).
//! - [`placement`] and [`affinity`]: which worker runs a job (ORCH-1030..1033).
//! - [`start`]: memory need and GPU choice for new workers (ORCH-1040).
//! - [`eviction`]: which workers make room; pinned never, busy drained (ORCH-1050..1052).
//! - [`decide`]: one job's decision: dispatch, start, evict, wait or reject.
//! - [`scheduler`] and [`io`]: the composition, its inputs and its [`Action`]s.
//! - [`tick`]: time as a value.
//! - [`sim`]: a seeded simulator that drives all of it through synthetic traffic.
//!
//! It depends on `llorch-core` only, so a Rust application can link it alone.

pub mod admission;
pub mod affinity;
pub mod catalog;
pub mod decide;
pub mod eviction;
pub mod io;
pub mod placement;
pub mod queue;
pub mod rate;
pub mod scheduler;
pub mod sim;
pub mod snapshot;
pub mod start;
pub mod tick;

pub use admission::{AdmissionConfig, AdmissionError, BudgetConfig, TokenBudgets};
pub use affinity::{AffinityKey, AffinityTable};
pub use catalog::{Catalog, CatalogEntry, Lifecycle};
pub use decide::{Decision, RejectReason, WaitReason};
pub use eviction::{EvictionConfig, EvictionPolicy};
pub use placement::{Algorithm, PlacementConfig, PlacementState};
pub use queue::{FullPolicy, JobMeta, JobQueue, QueueConfig, QueueFull, QueuedJob, TenantId};
pub use rate::ServiceRate;
pub use scheduler::{Action, JobRequest, Scheduler, SchedulerConfig, SubmitError, Submitted};
pub use snapshot::{ClusterSnapshot, WorkerLoad};
pub use start::{GpuChoice, MemoryEstimate};
pub use tick::Tick;
