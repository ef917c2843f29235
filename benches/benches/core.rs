//! Micro-benchmarks of llorch-core's edge parsing (model references, events).
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use llorch_core::ModelRef;
use llorch_core::wire::events::{TaskEvent, Token};
use std::hint::black_box;

fn model_ref(c: &mut Criterion) {
    let text = "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF@main::file=qwen2.5-0.5b-instruct-q4_k_m.gguf";
    c.bench_function("model_ref_parse_hf", |b| {
        b.iter(|| black_box(text).parse::<ModelRef>())
    });
}

fn token_event(c: &mut Criterion) {
    let e = TaskEvent::Token(Token {
        t: 1234,
        i: 17,
        text: " world".into(),
        logprob: Some(-0.25),
        top_logprobs: vec![],
    });
    c.bench_function("token_event_to_sse_data", |b| {
        b.iter(|| black_box(&e).data_json())
    });
}

criterion_group!(benches, model_ref, token_event);
criterion_main!(benches);
