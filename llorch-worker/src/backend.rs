//! The compute seam: one model step over a batch of sequences.
//!
//! A step takes, per sequence, the tokens to process now (a prefill chunk or one
//! decode token), their first position and the sequence's KV page table, and
//! gives back logits for the rows asked for and, where asked, the sampled token.
//! The seam is at the level of a whole step, not of operations, so a backend is
//! free to fuse kernels and replay graphs. Backends must be batch-invariant: a
//! sequence's results may not depend on the other sequences of the step (SYS-0003).

use crate::model::ModelConfig;
use crate::sampling::{Sampled, SamplingParams};

/// Which logits a sequence needs from a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsWant {
    /// None (a prefill chunk that does not reach the end of the prompt).
    None,
    /// The last row's (the next token).
    Last,
    /// Every row's (teacher forcing, prompt logprobs).
    All,
}

/// A draw to make from the last row's logits.
#[derive(Debug, Clone, Copy)]
pub struct SampleRequest<'a> {
    /// The sequence's sampling settings.
    pub params: &'a SamplingParams,
    /// The sequence so far (penalties look at the last tokens).
    pub recent: &'a [u32],
    /// Index of this draw in the sequence's random stream.
    pub draw: u64,
}

/// One sequence's share of a step.
#[derive(Debug, Clone, Copy)]
pub struct SeqStep<'a> {
    /// Tokens to process (at least one).
    pub tokens: &'a [u32],
    /// Position of `tokens[0]`.
    pub start_pos: usize,
    /// KV pages holding positions `0..start_pos + tokens.len()`, in order.
    pub pages: &'a [u32],
    /// Logits wanted.
    pub logits: LogitsWant,
    /// Draw a token from the last row (requires `logits != None`).
    pub sample: Option<SampleRequest<'a>>,
}

/// What a step produced for one sequence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeqOutput {
    /// Logit rows (vocabulary-sized each), as asked.
    pub logits: Vec<f32>,
    /// The sampled token, when asked.
    pub sampled: Option<Sampled>,
}

/// A failure of the device (the engine ends the affected jobs with it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// A token id outside the vocabulary.
    #[error("token id {0} is outside the vocabulary")]
    BadToken(u32),
    /// The batch is malformed (page table too short, empty token list, …).
    #[error("invalid step: {0}")]
    InvalidStep(String),
    /// The device failed (CUDA errors, out of memory).
    #[error("device error: {0}")]
    Device(String),
}

/// A device that runs model steps.
pub trait ComputeBackend: Send {
    /// The model's configuration.
    fn config(&self) -> &ModelConfig;
    /// Vocabulary size (logit row length).
    fn vocab_size(&self) -> usize;
    /// Tokens per KV page.
    fn page_size(&self) -> usize;
    /// KV pages the backend holds.
    fn num_pages(&self) -> usize;
    /// Bytes of memory the backend holds (weights it owns + KV + scratch).
    fn memory_bytes(&self) -> u64;
    /// A short device description (`cpu (avx2)`, `cuda:0 NVIDIA H100`).
    fn device_name(&self) -> String;
    /// Runs one step; `out` gets one entry per sequence, in order.
    fn step(&mut self, batch: &[SeqStep<'_>], out: &mut Vec<SeqOutput>)
    -> Result<(), BackendError>;
}
