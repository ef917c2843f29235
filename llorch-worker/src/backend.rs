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
    /// Where the time of the steps so far went, for backends that measure it.
    fn timing(&self) -> Option<StepTiming> {
        None
    }
}

/// Seconds spent in each phase of the steps so far (benchmarks, diagnostics).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTiming {
    /// Steps measured.
    pub steps: u64,
    /// Host: checking the batch and sending its indices.
    pub prepare_s: f64,
    /// Device: the forward pass (device clock).
    pub device_s: f64,
    /// Host: queueing the pass and waiting for its results to come back.
    pub wait_s: f64,
    /// Host: draws and outputs.
    pub finish_s: f64,
}

/// Checks a batch against a backend's vocabulary and KV pages (shared by backends).
pub(crate) fn validate_batch(
    batch: &[SeqStep<'_>],
    vocab: usize,
    page_size: usize,
    num_pages: usize,
) -> Result<(), BackendError> {
    for (i, sq) in batch.iter().enumerate() {
        let bad = |m: &str| Err(BackendError::InvalidStep(format!("sequence {i}: {m}")));
        if sq.tokens.is_empty() {
            return bad("no tokens");
        }
        if let Some(&t) = sq.tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(BackendError::BadToken(t));
        }
        let end = sq.start_pos + sq.tokens.len();
        if sq.pages.len() * page_size < end {
            return bad("page table shorter than the positions");
        }
        if sq.pages.iter().any(|&p| p as usize >= num_pages) {
            return bad("page id out of range");
        }
        if sq.sample.is_some() && sq.logits == LogitsWant::None {
            return bad("sampling needs logits");
        }
    }
    Ok(())
}

/// Row counts of each sequence's logits (`None` → 0, `Last` → 1, `All` → its tokens).
pub(crate) fn logit_rows(sq: &SeqStep<'_>) -> usize {
    match sq.logits {
        LogitsWant::None => 0,
        LogitsWant::Last => 1,
        LogitsWant::All => sq.tokens.len(),
    }
}

/// One sequence's output from its logit rows (`rows`: [`logit_rows`] rows): the draw
/// where asked, and the rows where they are wanted beyond the draw.
pub(crate) fn finish_seq(
    sq: &SeqStep<'_>,
    rows: &[f32],
    vocab: usize,
    scratch: &mut crate::sampling::SamplerScratch,
) -> SeqOutput {
    let sampled = sq.sample.map(|req| {
        let last = &rows[rows.len() - vocab..];
        crate::sampling::sample(last, req.params, req.recent, req.draw, scratch)
    });
    let logits = if sq.logits == LogitsWant::Last && sampled.is_some() {
        Vec::new()
    } else {
        rows.to_vec()
    };
    SeqOutput { logits, sampled }
}

/// Fills `out` from the logit rows of a step (sequence order, [`logit_rows`] each),
/// sequences in parallel (they are independent, so results do not change).
pub(crate) fn finish_step(
    batch: &[SeqStep<'_>],
    logits: &[f32],
    vocab: usize,
    out: &mut Vec<SeqOutput>,
) {
    use crate::sampling::SamplerScratch;
    use rayon::prelude::*;
    let mut spans = Vec::with_capacity(batch.len());
    let mut next = 0;
    for sq in batch {
        let n = logit_rows(sq);
        spans.push(next * vocab..(next + n) * vocab);
        next += n;
    }
    batch
        .par_iter()
        .zip(spans.into_par_iter())
        .map_init(SamplerScratch::default, |scratch, (sq, span)| {
            finish_seq(sq, &logits[span], vocab, scratch)
        })
        .collect_into_vec(out);
}
