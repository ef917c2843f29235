//! The llama-orch worker engine (SPEC WORK-3xxx).
//!
//! Loads one GGUF model, tokenizes, and runs many sequences at once with
//! continuous batching behind a step-level compute backend (CPU reference, or
//! CUDA through `llorch-cuda`). With the `server` feature, the `server` module runs the
//! engine on its own thread behind `llorch_core::WorkerExecutor` (in process) and
//! the HTTP/SSE API of `worker-orcd`.

pub mod backend;
pub mod cpu;
pub mod cuda;
pub mod demo;
pub mod demo_fetch;
pub mod engine;
pub mod forcing;
pub mod gguf;
pub mod kv;
pub mod model;
pub mod quant;
pub mod sampling;
#[cfg(feature = "server")]
pub mod server;
pub mod synth;
pub mod tokenizer;
