//! What the engine benchmarks share: flags, requests, prompts, draining an engine.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use llorch_core::JobId;
use llorch_worker::engine::{Engine, SeqRequest};
use llorch_worker::sampling::SamplingParams;

/// The value after flag `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Request `i`: seed `i`, temperature 0.8, top-k 40, no EOS stop.
pub fn request(i: usize, prompt: Vec<u32>, max_tokens: u32) -> SeqRequest {
    SeqRequest {
        job_id: JobId::new(format!("bench-{i}")).unwrap(),
        prompt,
        max_tokens,
        params: SamplingParams {
            seed: i as u64,
            temperature: 0.8,
            top_k: 40,
            ..SamplingParams::default()
        },
        stop: vec![],
        ignore_eos: true,
    }
}

/// A BOS and `len - 1` ids spread over the vocabulary by `salt`.
pub fn prompt(len: usize, salt: usize, vocab: usize) -> Vec<u32> {
    let mut p = vec![2u32];
    p.extend((1..len).map(|k| (1000 + (k * 7919 + salt * 104_729) % (vocab - 2000)) as u32));
    p
}

/// Steps until no work is left; returns (steps, seconds).
pub fn drain(e: &mut Engine) -> (usize, f64) {
    let t = Instant::now();
    let mut n = 0;
    while e.has_work() {
        e.step().unwrap();
        n += 1;
    }
    (n, t.elapsed().as_secs_f64())
}
