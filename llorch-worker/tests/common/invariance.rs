//! The batch-invariance harness (SYS-0003 EXT): 16 seeded requests alone, all at
//! once and staggered with other chunk sizes must give identical bits, on any device.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use llorch_core::wire::events::{StopReason, TaskEvent};
use llorch_core::{Device, JobId};
use llorch_worker::engine::{Engine, EngineConfig, SeqRequest, VecSink};
use llorch_worker::model::load::load;
use llorch_worker::sampling::SamplingParams;

pub fn engine(path: &Path, max_seqs: usize, chunk: usize, device: Device) -> Engine {
    let cfg = EngineConfig {
        max_seqs,
        max_ctx: 192,
        prefill_chunk: chunk,
        max_step_tokens: 4 * chunk.max(16),
        ..EngineConfig::default()
    };
    load(path).unwrap().into_engine(device, cfg).unwrap()
}

/// One job's outcome: token ids, logprob bits of each token and its alternatives, stop reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    tokens: Vec<u32>,
    bits: Vec<u32>,
    stop: Option<StopReason>,
}

fn outcome(events: &[TaskEvent]) -> Outcome {
    let mut o = Outcome {
        tokens: vec![],
        bits: vec![],
        stop: None,
    };
    let mut terminal = 0;
    for e in events {
        match e {
            TaskEvent::Token(t) => {
                o.tokens.push(t.t);
                o.bits.push(t.logprob.unwrap().to_bits());
                o.bits.extend(
                    t.top_logprobs
                        .iter()
                        .flat_map(|a| [a.id, a.logprob.to_bits()]),
                );
            }
            TaskEvent::End(end) => {
                terminal += 1;
                o.stop = Some(end.stop_reason);
            }
            TaskEvent::Error(e) => panic!("job failed: {e:?}"),
            _ => {}
        }
    }
    assert_eq!(terminal, 1, "exactly one terminal event");
    o
}

/// Sixteen requests with different prompt lengths and sampling settings.
pub fn requests(vocab: u32) -> Vec<SeqRequest> {
    (0..16u32)
        .map(|i| {
            let len = 3 + (i as usize * 7) % 41;
            let prompt: Vec<u32> = (0..len as u32)
                .map(|k| 2 + (k * 131 + i * 977) % (vocab - 2))
                .collect();
            let params = SamplingParams {
                temperature: [0.0, 0.7, 1.0, 1.3][i as usize % 4],
                top_k: [0, 40, 5, 0][i as usize % 4],
                top_p: [1.0, 0.9, 1.0, 0.8][(i as usize / 4) % 4],
                min_p: if i % 5 == 0 { 0.05 } else { 0.0 },
                repetition_penalty: if i % 3 == 0 { 1.1 } else { 1.0 },
                presence_penalty: if i % 7 == 0 { 0.3 } else { 0.0 },
                frequency_penalty: 0.0,
                seed: 1000 + u64::from(i),
                top_logprobs: 2,
                want_logprobs: true,
            };
            SeqRequest {
                job_id: JobId::new(format!("job-{i}")).unwrap(),
                prompt,
                max_tokens: 6 + i % 5,
                params,
                stop: vec![],
                ignore_eos: false,
            }
        })
        .collect()
}

/// Runs `reqs`, submitting request `k` before step `arrive[k]`; returns each outcome.
pub fn run(engine: &mut Engine, reqs: &[SeqRequest], arrive: &[usize]) -> Vec<Outcome> {
    let sinks: Vec<VecSink> = reqs.iter().map(|_| VecSink::default()).collect();
    let mut step = 0;
    let mut submitted = 0;
    while submitted < reqs.len() || engine.has_work() {
        for k in 0..reqs.len() {
            if arrive[k] == step {
                engine
                    .submit(reqs[k].clone(), Box::new(sinks[k].clone()))
                    .unwrap();
                submitted += 1;
            }
        }
        engine.step().unwrap();
        step += 1;
        assert!(step < 10_000, "engine made no progress");
    }
    assert_eq!(
        engine.free_pages(),
        engine.backend().num_pages(),
        "all KV pages returned"
    );
    sinks.iter().map(|s| outcome(&s.0.lock())).collect()
}

pub fn check_invariance(path: &Path, device: Device) {
    let vocab = load(path).unwrap().weights.vocab as u32;
    let reqs = requests(vocab);
    // Alone, one at a time, prefill chunks of 16.
    let mut alone = Vec::new();
    let mut e = engine(path, 1, 16, device);
    for r in &reqs {
        alone.extend(run(&mut e, std::slice::from_ref(r), &[0]));
    }
    assert!(alone.iter().all(|o| !o.tokens.is_empty()));
    // All at once, chunks of 7.
    let mut e = engine(path, 16, 7, device);
    assert_eq!(run(&mut e, &reqs, &[0; 16]), alone, "all at once, chunk 7");
    // Staggered arrivals, chunks of 64, fewer slots (some wait).
    let arrive: Vec<usize> = (0..16).map(|k| (k * 5) % 23).collect();
    let mut e = engine(path, 6, 64, device);
    assert_eq!(run(&mut e, &reqs, &arrive), alone, "staggered, chunk 64");
}
