//! What the engine's products and top-k are measured against on a GPU:
//!
//! - `tc_probe [--reps 20]`: the bandwidth ceiling, a plain streaming read
//!   (`tc_probe.cu`) of as many bytes as each Llama-3-8B F16 matrix (and the grouped
//!   q+k+v, gate+up launches) holds; `qmm_bench --filter f16 --tokens 1` times the
//!   engine's products on the same sizes. CUDA graphs over enough copies that L2 holds
//!   none between two reads.
//! - `tc_probe --topk`: the engine's top-k (`Gpu::row_topk`, k 40) alone in graphs, for
//!   1 and 64 rows of the 8B and gemma vocabularies (ncu's time for this kernel is not
//!   its time in a step: benches/reports/cuda.md, session 8).
//!
//! (The load-issue variants of the F16 product that session 8 compared are in this
//! file's history, commit a4c98b7.)
#![allow(clippy::print_stdout, clippy::unwrap_used, unsafe_code)]

use cudarc::driver::sys::{CUevent_flags, CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{CudaContext, CudaSlice, LaunchConfig, PushKernelArg};
use llorch_benches::engine_load::arg;
use llorch_benches::gpu_time::graph_us;

/// (name, rows, cols) of F16 matrices: the 8B shape's, alone and grouped.
const CASES: &[(&str, usize, usize)] = &[
    ("k/v", 1024, 4096),
    ("q/o", 4096, 4096),
    ("q+k+v", 6144, 4096),
    ("gate/up", 14_336, 4096),
    ("gate+up", 28_672, 4096),
    ("down", 4096, 14_336),
];

fn main() {
    let reps: usize = arg("--reps").and_then(|r| r.parse().ok()).unwrap_or(20);
    if let Some(arch) = arg("--compile-only") {
        // Checks the source compiles for ARCH (no GPU needed).
        llorch_cuda::compile::compile(include_str!("tc_probe.cu"), &arch).unwrap();
        println!("compiled for {arch}");
        return;
    }
    if std::env::args().any(|a| a == "--topk") {
        topk(reps);
    } else {
        ceiling(reps);
    }
}

/// µs and GB/s of a streaming read of each case's bytes.
fn ceiling(reps: usize) {
    let ctx = CudaContext::new(0).unwrap();
    // SAFETY: everything below runs on the one stream, so cudarc's cross-stream event
    // tracking (which graph capture rejects) is not needed.
    unsafe {
        ctx.disable_event_tracking();
    }
    let stream = ctx.new_stream().unwrap();
    let (major, minor) = ctx.compute_capability().unwrap();
    let arch = if major == 9 {
        format!("sm_{major}{minor}a")
    } else {
        format!("sm_{major}{minor}")
    };
    let ptx = llorch_cuda::compile::compile(include_str!("tc_probe.cu"), &arch).unwrap();
    let module = ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx)).unwrap();
    let read = module.load_function("stream_read").unwrap();
    let sms = ctx
        .attribute(
            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
        )
        .unwrap() as u32;
    println!(
        "{} ({arch}, {sms} SMs), {reps} replays",
        ctx.name().unwrap()
    );
    println!("| matrix | rows × cols (F16) | stream read µs | GB/s |");
    println!("|---|---|---|---|");
    let cfg = LaunchConfig {
        grid_dim: (sms * 8, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let mut sink = stream.alloc_zeros::<u32>(1).unwrap();
    for &(name, rows, cols) in CASES {
        let bytes = rows * cols * 2;
        let n_copies = (512usize << 20).div_ceil(bytes).clamp(2, 64);
        let copies: Vec<CudaSlice<u8>> = (0..n_copies)
            .map(|_| stream.alloc_zeros::<u8>(bytes).unwrap())
            .collect();
        let n16 = (bytes / 16) as i64;
        stream
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .unwrap();
        for w in &copies {
            let mut b = stream.launch_builder(&read);
            b.arg(w).arg(&n16).arg(&mut sink);
            // SAFETY: reads the copy's `bytes` as 16-byte words, writes one word.
            unsafe { b.launch(cfg) }.unwrap();
        }
        let graph = stream
            .end_capture(CUgraphInstantiate_flags(0))
            .unwrap()
            .unwrap();
        graph.launch().unwrap();
        stream.synchronize().unwrap();
        let t0 = stream
            .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .unwrap();
        for _ in 0..reps {
            graph.launch().unwrap();
        }
        let t1 = stream
            .record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
            .unwrap();
        t1.synchronize().unwrap();
        let us = f64::from(t0.elapsed_ms(&t1).unwrap()) * 1e3 / (reps * n_copies) as f64;
        println!(
            "| {name} | {rows} × {cols} | {us:.2} | {:.0} |",
            bytes as f64 / us / 1e3
        );
    }
}

/// `Gpu::row_topk` alone: µs per launch in a graph of 50.
fn topk(reps: usize) {
    use llorch_cuda::{Gpu, TopKScratch};
    let gpu = Gpu::open(0, Some(&llorch_worker::demo::kernel_cache_dir())).unwrap();
    println!("| vocab | rows | k | µs per top-k |");
    println!("|---|---|---|---|");
    for vocab in [128_256usize, 262_144] {
        for rows in [1usize, 64] {
            let k = 40;
            // Logit-like rows: smooth noise with a few large values.
            let host: Vec<f32> = (0..rows * vocab)
                .map(|i| {
                    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                    (h as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
                })
                .collect();
            let logits = gpu.upload(&host).unwrap();
            let mut scratch = TopKScratch::new(&gpu, rows, vocab).unwrap();
            let mut vals = gpu.alloc::<f32>(rows * k).unwrap();
            let mut ids = gpu.alloc::<i32>(rows * k).unwrap();
            let mut lse = gpu.alloc::<f32>(rows).unwrap();
            let per = 50;
            let us = graph_us(&gpu, reps, per, |g| {
                for _ in 0..per {
                    g.row_topk(
                        &logits.slice(..),
                        rows,
                        vocab,
                        k,
                        &mut scratch,
                        &mut vals.slice_mut(..),
                        &mut ids.slice_mut(..),
                        &mut lse.slice_mut(..),
                    )?;
                }
                Ok(())
            });
            println!("| {vocab} | {rows} | {k} | {us:.2} |");
        }
    }
}
