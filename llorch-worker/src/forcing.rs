//! Teacher forcing: the model's next-token distribution after every prefix of a
//! token sequence (`llorch logprobs`, accuracy checks against references).

use crate::backend::{BackendError, ComputeBackend, LogitsWant, SeqOutput, SeqStep};
use crate::sampling::{log_sum_exp, top_logprobs};

/// For each `k`, the `top` most likely next tokens given `tokens[..=k]`, as
/// `(id, logprob)` best first. Runs in chunks of `chunk` tokens on pages `0..`.
pub fn teacher_force(
    backend: &mut dyn ComputeBackend,
    tokens: &[u32],
    top: usize,
    chunk: usize,
) -> Result<Vec<Vec<(u32, f32)>>, BackendError> {
    let ps = backend.page_size();
    let need = tokens.len().div_ceil(ps);
    if need > backend.num_pages() {
        return Err(BackendError::InvalidStep(format!(
            "{} tokens need {need} KV pages; the backend has {}",
            tokens.len(),
            backend.num_pages()
        )));
    }
    let pages: Vec<u32> = (0..need as u32).collect();
    let vocab = backend.vocab_size();
    let mut result = Vec::with_capacity(tokens.len());
    let mut out: Vec<SeqOutput> = Vec::new();
    let mut start = 0;
    while start < tokens.len() {
        let end = (start + chunk.max(1)).min(tokens.len());
        let step = SeqStep {
            tokens: &tokens[start..end],
            start_pos: start,
            pages: &pages,
            logits: LogitsWant::All,
            sample: None,
        };
        backend.step(&[step], &mut out)?;
        let logits = out.first().map(|o| o.logits.as_slice()).unwrap_or_default();
        for row in logits.chunks_exact(vocab) {
            result.push(top_logprobs(row, log_sum_exp(row), top));
        }
        start = end;
    }
    Ok(result)
}
