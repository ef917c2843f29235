//! The llama-orch worker engine (SPEC WORK-3xxx).
//!
//! Loads one GGUF model, tokenizes, and runs many sequences at once with
//! continuous batching behind a step-level compute backend (CPU reference, or
//! CUDA through `llorch-cuda`). It implements `llorch_core::WorkerExecutor`
//! in process and behind `worker-orcd`.

pub mod demo;
pub mod gguf;
pub mod quant;
pub mod synth;
pub mod tokenizer;
