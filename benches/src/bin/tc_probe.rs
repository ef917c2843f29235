//! Device time of the F16 tensor-core product at one token, the engine's kernel beside
//! load-issue variants of it (`tc_probe.cu`) and a plain streaming read of the same
//! bytes (the bandwidth ceiling), on the Llama-3-8B F16 matrices, alone and grouped
//! (q+k+v, gate+up as one launch). CUDA graphs over enough weight copies that L2 holds
//! none between two reads.
//!
//! `tc_probe [--reps 20]` prints one markdown row per (matrix, kernel): µs and GB/s.
//! `tc_probe --topk` times the engine's top-k (`Gpu::row_topk`, k 40) alone in graphs,
//! for 1 and 64 rows of the 8B and gemma vocabularies.
#![allow(clippy::print_stdout, clippy::unwrap_used, unsafe_code)]

use cudarc::driver::sys::{CUevent_flags, CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use llorch_benches::engine_load::arg;
use std::sync::Arc;

const PROBE_SRC: &str = include_str!("tc_probe.cu");
/// A null device pointer (absent parts of a grouped launch).
const NULL: u64 = 0;

/// (name, rows, cols): the 8B shape's matrices and its grouped launches.
const CASES: &[(&str, usize, usize)] = &[
    ("k/v", 1024, 4096),
    ("q/o", 4096, 4096),
    ("q+k+v", 6144, 4096),
    ("gate/up", 14_336, 4096),
    ("gate+up", 28_672, 4096),
    ("down", 4096, 14_336),
];

const KERNELS: &[&str] = &[
    "qmm_tc_f16_n8",
    "probe_u4_m0",
    "probe_u2_m0",
    "probe_u8_m0",
    "probe_u16_m0",
    "probe_u4_m1",
    "probe_u4_m2",
    "probe_u2_m2",
    "probe_u4_m4",
    "probe_u4_m8",
    "probe_u8_m4",
    "probe_u4_m6",
    "probe_u4_m3",
];

/// The engine's tensor-core product and the probe's variants, one program.
fn source() -> String {
    [
        include_str!("../../../llorch-cuda/src/kernels/common.cuh"),
        include_str!("../../../llorch-cuda/src/kernels/quant.cuh"),
        include_str!("../../../llorch-cuda/src/kernels/mma.cu"),
        PROBE_SRC,
    ]
    .join("\n")
}

/// Finite half-precision bits of moderate size from a fixed stream.
fn halves(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(n * 2);
    for _ in 0..n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let sign = (s & 1) << 15;
        let exp = (10 + (s >> 1) % 5) << 10;
        let mant = (s >> 8) & 0x3ff;
        let h = (sign | exp | mant) as u16;
        out.extend_from_slice(&h.to_le_bytes());
    }
    out
}

/// Device milliseconds of `reps` replays of `launches` (captured once).
fn time(stream: &Arc<CudaStream>, reps: usize, mut launches: impl FnMut()) -> f64 {
    stream
        .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .unwrap();
    launches();
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
    f64::from(t0.elapsed_ms(&t1).unwrap())
}

fn main() {
    let reps: usize = arg("--reps").and_then(|r| r.parse().ok()).unwrap_or(20);
    if let Some(arch) = arg("--compile-only") {
        // Checks the sources compile for ARCH (no GPU needed).
        llorch_cuda::compile::compile(&source(), &arch).unwrap();
        println!("compiled for {arch}");
        return;
    }
    if std::env::args().any(|a| a == "--topk") {
        topk(reps);
        return;
    }
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
    let ptx = llorch_cuda::compile::compile(&source(), &arch).unwrap();
    let module = ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx)).unwrap();
    let funcs: Vec<(&str, CudaFunction)> = KERNELS
        .iter()
        .map(|k| (*k, module.load_function(k).unwrap()))
        .collect();
    let stream_read = module.load_function("stream_read").unwrap();
    let sms = ctx
        .attribute(
            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
        )
        .unwrap() as u32;
    println!(
        "{} ({arch}, {sms} SMs), {reps} replays",
        ctx.name().unwrap()
    );
    println!("| matrix | rows × cols | kernel | µs | GB/s | max abs diff vs engine |");
    println!("|---|---|---|---|---|---|");
    for &(name, rows, cols) in CASES {
        let bytes = rows * cols * 2;
        let host = halves(rows * cols, rows as u64 * 31 + cols as u64);
        let n_copies = (512usize << 20).div_ceil(bytes).clamp(2, 64);
        let copies: Vec<CudaSlice<u8>> = (0..n_copies)
            .map(|_| stream.clone_htod(&host).unwrap())
            .collect();
        let xs: Vec<f32> = (0..cols)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 500.0)
            .collect();
        let x = stream.clone_htod(&xs).unwrap();
        let mut y = stream.alloc_zeros::<f32>(rows).unwrap();
        let mut sink = stream.alloc_zeros::<u32>(1).unwrap();
        let (r, c, one) = (rows as i32, cols as i32, 1i32);
        let cfg = LaunchConfig {
            grid_dim: (rows.div_ceil(16) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut reference: Option<Vec<f32>> = None;
        for (kname, f) in &funcs {
            let launch = |w: &CudaSlice<u8>, y: &mut CudaSlice<f32>| {
                let mut b = stream.launch_builder(f);
                if kname.starts_with("qmm_tc") {
                    // The engine's kernel: (weights, outputs, rows) × 3, absent parts empty.
                    b.arg(w).arg(&mut *y).arg(&r);
                    for _ in 0..2 {
                        b.arg(&NULL).arg(&NULL).arg(&0i32);
                    }
                    b.arg(&c).arg(&x).arg(&one);
                } else {
                    b.arg(w).arg(&r).arg(&c).arg(&x).arg(&one).arg(y);
                }
                // SAFETY: reads rows × cols halves and cols inputs, writes rows outputs.
                unsafe { b.launch(cfg) }.unwrap();
            };
            launch(&copies[0], &mut y);
            let out = stream.clone_dtoh(&y).unwrap();
            let diff = match &reference {
                None => {
                    reference = Some(out);
                    0.0
                }
                Some(rf) => rf
                    .iter()
                    .zip(&out)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max),
            };
            let ms = time(&stream, reps, || {
                for w in &copies {
                    launch(w, &mut y);
                }
            });
            let us = ms * 1e3 / (reps * n_copies) as f64;
            println!(
                "| {name} | {rows} × {cols} | {kname} | {us:.2} | {:.0} | {diff:.3e} |",
                bytes as f64 / us / 1e3
            );
        }
        let n16 = (bytes / 16) as i64;
        let scfg = LaunchConfig {
            grid_dim: (sms * 8, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let ms = time(&stream, reps, || {
            for w in &copies {
                let mut b = stream.launch_builder(&stream_read);
                b.arg(w).arg(&n16).arg(&mut sink);
                // SAFETY: reads the copy's bytes as 16-byte words, writes one word.
                unsafe { b.launch(scfg) }.unwrap();
            }
        });
        let us = ms * 1e3 / (reps * n_copies) as f64;
        println!(
            "| {name} | {rows} × {cols} | stream_read | {us:.2} | {:.0} | - |",
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
            let graph = gpu
                .capture(|g| {
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
                })
                .unwrap();
            gpu.replay(&graph).unwrap();
            gpu.sync().unwrap();
            let t0 = gpu.mark().unwrap();
            for _ in 0..reps {
                gpu.replay(&graph).unwrap();
            }
            let t1 = gpu.mark().unwrap();
            let us = f64::from(t1.ms_since(&t0).unwrap()) * 1e3 / (reps * per) as f64;
            println!("| {vocab} | {rows} | {k} | {us:.2} |");
        }
    }
}
