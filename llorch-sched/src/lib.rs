//! The brain of llama-orch as a library (SPEC ORCH-1010..1052).
//!
//! Queueing, admission, placement, worker starts and eviction, each a pure
//! function of a cluster snapshot, the queue and `now`. It depends on
//! `llorch-core` only and never on the pool or worker crates, so a Rust
//! application can link it alone.

pub mod admission;
pub mod affinity;
pub mod catalog;
pub mod decide;
pub mod eviction;
pub mod placement;
pub mod queue;
pub mod rate;
pub mod scheduler;
pub mod sim;
pub mod snapshot;
pub mod start;
pub mod tick;
