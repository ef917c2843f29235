//! Accuracy of the CPU engine on the real gemma-3-270m against llama.cpp's
//! teacher-forced reference fixture (issue 5).
//!
//! The fixture's own noise sets the bar. llama.cpp itself, built here for AVX2 and run
//! on the fixture's sequences (`scripts/llama-cpp-logprobs/run.sh`), differs from it
//! by a mean |Δ logprob| of 0.031 (0.028 with flash attention) and picks another
//! top-1 on 4 (3) of the 320 steps whose reference top-1/top-2 gap exceeds 0.1:
//! 8-bit activations and half-precision attention move this model's logprobs by up
//! to ~0.2 depending on reduction order. This test holds the engine to llama.cpp's
//! own level: mean below 0.035, at most 4 top-1 disagreements on clear steps.
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
        a.clear - a.agree <= 4,
        "top-1 disagrees on {} clear steps",
        a.clear - a.agree
    );
    assert!(a.mean < 0.035, "mean |Δ logprob| = {}", a.mean);
}
