//! Token sampling: parameters, the counter-based RNG, the sampler and stop strings.

mod params;
mod rng;
mod sampler;
mod stop;

pub use params::{PENALTY_WINDOW, SamplingParams};
pub use rng::{mix64, uniform};
pub use sampler::{
    Sampled, SamplerScratch, TopRow, argmax, log_sum_exp, sample, sample_top, sampled_from_top,
    top_logprobs, top_suffices,
};
pub use stop::StopMatcher;
