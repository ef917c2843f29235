//! Engine throughput on a GPU (or the CPU): prefill of one long prompt, batch-1
//! decode and the aggregate decode of many concurrent sequences.
//!
//! `gpu_bench --model PATH|demo [--device cuda:0] [--prefill 512] [--seqs 64]
//! [--steps 128] [--simt] [--no-overlap] [--overlap-rows 8] [--synth llama3-8b-q4km|llama3-8b-f16|gemma3-270m-q5 [--out-dir DIR]]`
//! (`--simt`: f32 lanes instead of tensor cores; `--no-overlap`: graphs without
//! programmatic edges; `--synth`: a synthetic model of that
//! shape, written first) prints one markdown row per figure; the figures of
//! benches/reports/cuda.md come from it.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Instant;

use llorch_benches::engine_load::{arg, drain, prompt, request};
use llorch_core::Device;
use llorch_worker::backend::StepTiming;
use llorch_worker::cuda::CudaOptions;
use llorch_worker::engine::{Engine, EngineConfig, VecSink};
use llorch_worker::model::load::{PAGE_SIZE, load};
use llorch_worker::quant::GgmlType;
use llorch_worker::synth::{SynthConfig, WeightFill, write_file};

fn num(name: &str, default: usize) -> usize {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Per-step milliseconds of each phase since `before`, when the backend measures them.
fn phases(e: &Engine, before: Option<StepTiming>) -> String {
    match (e.backend().timing(), before) {
        (Some(a), Some(b)) if a.steps > b.steps => {
            let n = (a.steps - b.steps) as f64;
            let ms = |x: f64, y: f64| (x - y) * 1e3 / n;
            format!(
                "prepare {:.3} ms, device {:.3} ms, wait {:.3} ms, finish {:.3} ms per step",
                ms(a.prepare_s, b.prepare_s),
                ms(a.device_s, b.device_s),
                ms(a.wait_s, b.wait_s),
                ms(a.finish_s, b.finish_s)
            )
        }
        _ => String::new(),
    }
}

/// Aggregate decode tokens/s of `n` sequences over `steps` steps after their prompts.
fn decode(e: &mut Engine, n: usize, steps: u32, salt: usize) -> f64 {
    let vocab = e.backend().vocab_size();
    for i in 0..n {
        e.submit(
            request(salt + i, prompt(16, salt + i, vocab), steps + 1),
            Box::new(VecSink::default()),
        )
        .unwrap();
    }
    e.step().unwrap(); // every prompt and its first token
    let before = e.backend().timing();
    let tps = (n as f64 * f64::from(steps)) / drain(e).1;
    println!("decode {n}: {}", phases(e, before));
    tps
}

/// A synthetic model of a real shape (`llama3-8b-q4km`, `llama3-8b-f16`,
/// `gemma3-270m-q5`), written to `--out-dir` (default /tmp/models) unless already there.
/// Q4_K_M here means Q4_K matrices and embeddings with a Q6_K output, as llama.cpp's
/// Q4_K_M mostly is; `gemma3-270m-q5` has gemma-3-270m's shape with Q5_0 matrices (most
/// of the real file's) and the Q8_0 tied embedding/output (a stand-in for the real
/// model where it cannot be copied).
fn synth_model(name: &str) -> PathBuf {
    let mut cfg = SynthConfig::llama3_8b();
    match name {
        "llama3-8b-q4km" => {
            cfg.weight_type = GgmlType::Q4_K;
            cfg.embed_type = GgmlType::Q4_K;
            cfg.output_type = GgmlType::Q6_K;
        }
        "llama3-8b-f16" => {}
        "gemma3-270m-q5" => {
            cfg = SynthConfig::gemma3_270m();
            cfg.weight_type = GgmlType::Q5_0;
        }
        other => panic!(
            "unknown synthetic model {other} (llama3-8b-q4km, llama3-8b-f16, gemma3-270m-q5)"
        ),
    }
    cfg.fill = WeightFill::Tiled { seed: 8, std: 0.02 };
    let dir = PathBuf::from(arg("--out-dir").unwrap_or_else(|| "/tmp/models".into()));
    let path = dir.join(format!("{name}.gguf"));
    if !path.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let t = Instant::now();
        let bytes = write_file(&cfg, &path).unwrap();
        println!(
            "wrote {} ({} MiB) in {:.1} s",
            path.display(),
            bytes >> 20,
            t.elapsed().as_secs_f64()
        );
    }
    path
}

fn main() {
    let model = match (arg("--synth"), arg("--model")) {
        (Some(name), _) => synth_model(&name),
        (None, None) => llorch_worker::demo::require_demo_model(),
        (None, Some(p)) if p == "demo" => llorch_worker::demo::require_demo_model(),
        (None, Some(p)) => PathBuf::from(p),
    };
    let device: Device = arg("--device")
        .unwrap_or_else(|| "cuda:0".into())
        .parse()
        .unwrap();
    let (pre, seqs, steps) = (
        num("--prefill", 512),
        num("--seqs", 64),
        num("--steps", 128),
    );
    let cfg = EngineConfig {
        max_seqs: seqs,
        max_ctx: (pre + 8).max(16 + steps + 8).max(64),
        prefill_chunk: pre,
        max_step_tokens: pre.max(seqs * 16),
        ..EngineConfig::default()
    };
    let t = Instant::now();
    let simt = std::env::args().any(|a| a == "--simt");
    let loaded = load(&model).unwrap();
    let mut e = match device {
        Device::Cuda(g) => {
            let kv = cfg.max_seqs * cfg.max_ctx.next_multiple_of(PAGE_SIZE);
            let opts = CudaOptions {
                ordinal: g.0 as usize,
                num_pages: kv.div_ceil(PAGE_SIZE),
                page_size: PAGE_SIZE,
                max_step_tokens: cfg.max_step_tokens.max(cfg.max_seqs),
                max_logit_rows: 64,
                kernel_cache: Some(llorch_worker::demo::kernel_cache_dir()),
                tensor_cores: !simt,
                graph_overlap: !std::env::args().any(|a| a == "--no-overlap"),
                overlap_max_rows: num("--overlap-rows", llorch_worker::cuda::OVERLAP_MAX_ROWS),
            };
            let (b, tok) = loaded.into_cuda_backend_with(&opts).unwrap();
            Engine::new(Box::new(b), tok, cfg)
        }
        Device::Cpu => loaded.into_cpu_engine(cfg),
    };
    let load_s = t.elapsed().as_secs_f64();
    let vocab = e.backend().vocab_size();
    // Warm-up (kernel loads, first allocations).
    e.submit(
        request(0, prompt(32, 0, vocab), 4),
        Box::new(VecSink::default()),
    )
    .unwrap();
    drain(&mut e);
    let mut prefill = f64::MAX;
    let before = e.backend().timing();
    for i in 0..5 {
        e.submit(
            request(1 + i, prompt(pre, i + 1, vocab), 1),
            Box::new(VecSink::default()),
        )
        .unwrap();
        prefill = prefill.min(drain(&mut e).1);
    }
    println!("prefill {pre}: {}", phases(&e, before));
    let d1 = decode(&mut e, 1, steps as u32, 100);
    let dn = decode(&mut e, seqs, steps as u32, 1000);
    println!(
        "model: {}, device: {}, memory held: {} MiB, start {load_s:.1} s",
        model.display(),
        e.backend().device_name(),
        e.backend().memory_bytes() >> 20
    );
    println!("| figure | tok/s |\n|---|---|");
    println!("| prefill {pre} (one step) | {:.0} |", pre as f64 / prefill);
    println!("| decode batch 1 | {d1:.1} |");
    println!("| decode {seqs} sequences, aggregate | {dn:.0} |");
}
