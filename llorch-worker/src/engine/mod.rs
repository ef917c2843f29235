//! The engine: sequences, continuous batching, event streaming.

mod core;
mod sequence;
mod sink;

pub use core::{Engine, EngineConfig};
pub use sequence::{OUTBOX_LIMIT, SeqRequest};
pub use sink::{EventSink, SinkError, VecSink};
