//! Token sampling: parameters, the counter-based RNG, the sampler and stop strings.

mod params;
mod rng;
mod sampler;
mod stop;

pub use params::{PENALTY_WINDOW, SamplingParams};
pub use rng::{mix64, uniform};
pub use sampler::{Sampled, SamplerScratch, argmax, log_sum_exp, sample, top_logprobs};
pub use stop::StopMatcher;
