//! Wire types (serde) of the three HTTP APIs.
//!
//! - [`task`]: client ↔ orchestrator (ORCH-1100) and orchestrator → worker `/execute` (WORK-3040).
//! - [`events`]: the SSE events both streams carry (ORCH-1070, WORK-3050).
//! - [`pool`]: orchestrator ↔ pool manager (POOL-2012, ORCH-1110) and the worker's ready callback.

pub mod events;
pub mod pool;
pub mod task;
