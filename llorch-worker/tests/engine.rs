//! The CPU engine end to end (issue 5): every architecture generates, continuous
//! batching keeps each sequence's tokens and logprob bits whatever shares its steps
//! (SYS-0003 EXT), and finished or cancelled sequences give their KV pages back.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::invariance::{check_invariance, engine, requests};
use llorch_core::Device;
use llorch_core::wire::events::TaskEvent;
use llorch_worker::engine::VecSink;
use llorch_worker::synth::{Arch, SynthConfig, write_file};

fn tiny_model(arch: Arch, dir: &Path) -> PathBuf {
    let path = dir.join(format!("tiny-{arch:?}.gguf"));
    write_file(&SynthConfig::tiny(arch), &path).unwrap();
    path
}

#[test]
fn every_architecture_is_batch_invariant() {
    let dir = tempfile::tempdir().unwrap();
    for arch in [Arch::Gemma3, Arch::Llama, Arch::Qwen2, Arch::Mistral] {
        check_invariance(&tiny_model(arch, dir.path()), Device::Cpu);
    }
}

#[test]
fn the_real_model_is_batch_invariant() {
    check_invariance(&llorch_worker::demo::require_demo_model(), Device::Cpu);
}

#[test]
fn cancel_frees_pages_and_ends_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_model(Arch::Llama, dir.path());
    let mut e = engine(&path, 4, 16, Device::Cpu);
    let mut reqs = requests(100);
    reqs[0].max_tokens = 100;
    let sink = VecSink::default();
    e.submit(reqs[0].clone(), Box::new(sink.clone())).unwrap();
    for _ in 0..3 {
        e.step().unwrap();
    }
    let id = reqs[0].job_id.clone();
    assert_eq!(e.cancel(&id), Some(llorch_core::CancelOutcome::Cancelled));
    e.step().unwrap();
    assert!(!e.has_work());
    assert_eq!(e.free_pages(), e.backend().num_pages());
    let events = sink.0.lock();
    let last = events.last().unwrap();
    assert!(
        matches!(last, TaskEvent::Error(b) if b.error_code == llorch_core::ErrorCode::Cancelled)
    );
    assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1);
    assert_eq!(e.cancel(&id), None, "a retired job is unknown");
}

#[test]
fn bad_requests_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_model(Arch::Qwen2, dir.path());
    let mut e = engine(&path, 2, 16, Device::Cpu);
    let mut r = requests(100).remove(0);
    r.prompt = vec![u32::MAX];
    let err = e
        .submit(r.clone(), Box::new(VecSink::default()))
        .unwrap_err();
    assert_eq!(err.code, llorch_core::ErrorCode::InvalidRequest);
    r.prompt = vec![5; 500];
    assert!(
        e.submit(r.clone(), Box::new(VecSink::default())).is_err(),
        "longer than the context"
    );
    r.prompt = vec![];
    assert!(e.submit(r, Box::new(VecSink::default())).is_err());
}
