//! The llama-orch worker engine (SPEC WORK-3xxx).
//!
//! Loads one GGUF model, tokenizes, and runs many sequences at once with
//! continuous batching behind a step-level compute backend (CPU reference, or
//! CUDA through `llorch-cuda`). It implements `llorch_core::WorkerExecutor`
//! in process and behind `worker-orcd`.

pub mod backend;
pub mod cpu;
pub mod demo;
pub mod demo_fetch;
pub mod engine;
pub mod forcing;
pub mod gguf;
pub mod kv;
pub mod model;
pub mod quant;
pub mod sampling;
pub mod synth;
pub mod tokenizer;
