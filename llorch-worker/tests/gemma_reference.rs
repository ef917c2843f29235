//! Accuracy of the CPU engine on the real gemma-3-270m against llama.cpp's
//! teacher-forced reference fixture (issue 5): mean |Δ logprob| of the chosen token
//! below 0.03.
//!
//! The fixture's own noise bounds what any engine can reach. llama.cpp itself, built
//! here for AVX2 and run on the fixture's sequences (`scripts/llama-cpp-logprobs/run.sh`),
//! differs from it by a mean 0.031 (0.028 with flash attention) and picks another
//! top-1 on 4 (3) of the 320 steps whose reference top-1/top-2 gap exceeds 0.1; an
//! exact f32 forward pass gets 0.025 and 3 such steps: this model's logprobs move by
//! up to ~0.2 with rounding. The engine multiplies against 16-bit activations (8-bit
//! only for Q8_0 weights), which brings it to 0.027; at most 3 clear-step flips.
#![allow(clippy::unwrap_used)]

mod common;

use llorch_worker::demo::require_demo_model;
use llorch_worker::model::load::cpu_backend;

#[test]
fn teacher_forced_logprobs_match_llama_cpp() {
    let mut backend = cpu_backend(&require_demo_model(), 512).unwrap();
    let a = common::reference::compare(&mut backend);
    assert!(a.clear >= 300, "the fixture has {} clear steps", a.clear);
    assert!(
        a.clear - a.agree <= 3,
        "top-1 disagrees on {} clear steps",
        a.clear - a.agree
    );
    assert!(a.mean < 0.03, "mean |Δ logprob| = {}", a.mean);
}
