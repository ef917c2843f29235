//! Sampling parameters with defaults applied.

use llorch_core::wire::task::GenerationParams;

/// How many recent tokens (prompt and output) the repetition penalties look at.
pub const PENALTY_WINDOW: usize = 64;

/// Resolved sampling settings of one sequence. `temperature == 0` is greedy.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; 0 picks the most likely token.
    pub temperature: f32,
    /// Keep the K most likely tokens; 0 keeps all.
    pub top_k: u32,
    /// Keep the smallest set of most likely tokens whose mass reaches `top_p`.
    pub top_p: f32,
    /// Drop tokens below `min_p` × the top probability.
    pub min_p: f32,
    /// CTRL-style penalty (divide positive logits, multiply negative) for recent tokens.
    pub repetition_penalty: f32,
    /// Subtracted once from the logit of every recent token.
    pub presence_penalty: f32,
    /// Subtracted per occurrence of a recent token.
    pub frequency_penalty: f32,
    /// The random stream's seed.
    pub seed: u64,
    /// Alternatives to report per token (0 = only the chosen token's logprob when `want_logprobs`).
    pub top_logprobs: u32,
    /// Whether to report logprobs at all.
    pub want_logprobs: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: 0,
            top_logprobs: 0,
            want_logprobs: false,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Resolves wire parameters (already validated) with defaults; `fallback_seed`
    /// is used when the request names none.
    pub fn from_wire(p: &GenerationParams, fallback_seed: u64) -> Self {
        let d = Self::default();
        Self {
            temperature: p.temperature.unwrap_or(d.temperature),
            top_k: p.top_k.unwrap_or(d.top_k),
            top_p: p.top_p.unwrap_or(d.top_p),
            min_p: p.min_p.unwrap_or(d.min_p),
            repetition_penalty: p.repetition_penalty.unwrap_or(d.repetition_penalty),
            presence_penalty: p.presence_penalty.unwrap_or(d.presence_penalty),
            frequency_penalty: p.frequency_penalty.unwrap_or(d.frequency_penalty),
            seed: p.seed.unwrap_or(fallback_seed),
            top_logprobs: p.logprobs.unwrap_or(0),
            want_logprobs: p.logprobs.is_some(),
        }
    }

    /// Whether any repetition penalty is active.
    pub fn has_penalties(&self) -> bool {
        self.repetition_penalty != 1.0
            || self.presence_penalty != 0.0
            || self.frequency_penalty != 0.0
    }
}
