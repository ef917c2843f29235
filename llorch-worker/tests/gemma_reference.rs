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

use llorch_worker::demo::require_demo_model;
use llorch_worker::forcing::teacher_force;
use llorch_worker::model::load::cpu_backend;

#[test]
fn teacher_forced_logprobs_match_llama_cpp() {
    let path = require_demo_model();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/gemma3-270m/reference_generation.json"
    ))
    .unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut backend = cpu_backend(&path, 512).unwrap();
    let (mut diffs, mut n, mut clear, mut agree) = (0.0f64, 0usize, 0usize, 0usize);
    for case in cases.as_array().unwrap() {
        let mut tokens: Vec<u32> = case["prompt_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let n_prompt = tokens.len();
        let steps = case["steps"].as_array().unwrap();
        for s in steps {
            tokens.push(s["id"].as_u64().unwrap() as u32);
        }
        let ours = teacher_force(&mut backend, &tokens[..tokens.len() - 1], 5, 64).unwrap();
        for (k, s) in steps.iter().enumerate() {
            let row = &ours[n_prompt - 1 + k];
            let chosen = s["id"].as_u64().unwrap() as u32;
            let top = s["top"].as_array().unwrap();
            let gap = top[0]["logprob"].as_f64().unwrap() - top[1]["logprob"].as_f64().unwrap();
            if gap > 0.1 {
                clear += 1;
                if row[0].0 == top[0]["id"].as_u64().unwrap() as u32 {
                    agree += 1;
                }
            }
            // Our logprob of the reference's chosen token (from our top-5 when present).
            if let Some(&(_, lp)) = row.iter().find(|(id, _)| *id == chosen) {
                let dd = (f64::from(lp) - s["logprob"].as_f64().unwrap()).abs();
                if std::env::var("DEBUG_REF").is_ok() {
                    eprintln!(
                        "pos {} d {dd:.4} gap {gap:.3} ours {:?} ref {}",
                        n_prompt + k,
                        &row[..2],
                        top[0]["id"]
                    );
                }
                diffs += dd;
                n += 1;
            }
        }
    }
    let mean = diffs / n as f64;
    eprintln!("clear steps {clear}, top-1 agreement {agree}; mean |Δ logprob| {mean:.4} over {n}");
    assert!(clear >= 300, "the fixture has {clear} clear steps");
    assert!(
        clear - agree <= 4,
        "top-1 disagrees on {} clear steps",
        clear - agree
    );
    assert!(mean < 0.035, "mean |Δ logprob| = {mean}");
}
