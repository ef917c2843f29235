//! Times one quantized matrix-vector product (development aid).
#![allow(missing_docs, clippy::unwrap_used)]
use llorch_worker::cpu::matmul::{Activations, QMatrix, matmul};
use llorch_worker::cpu::qdot::WeightFormat;
use std::time::Instant;

fn main() {
    let fmt = match std::env::args().nth(1).as_deref() {
        Some("q5_0") => WeightFormat::Q5_0,
        Some("q4k") => WeightFormat::Q4K,
        Some("q6k") => WeightFormat::Q6K,
        _ => WeightFormat::Q8_0,
    };
    let rows: usize = std::env::args().nth(2).map_or(1, |s| s.parse().unwrap());
    let (n, k) = (
        262_144,
        640 / fmt.block_elems().min(32) * fmt.block_elems().min(32),
    );
    let k = if fmt.block_elems() == 256 { 768 } else { k };
    let bytes = n * fmt.row_bytes(k);
    let mut data = vec![0u8; bytes];
    let mut s = 1u64;
    for (i, b) in data.iter_mut().enumerate() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *b = (s >> 56) as u8;
        // keep f16 scales finite: clear exponent high bits periodically
        if i % fmt.block_bytes() < 2 || (fmt == WeightFormat::Q6K && i % 210 >= 208) {
            *b &= 0x1f;
        }
    }
    let w = QMatrix {
        fmt,
        rows: n,
        cols: k,
        data: &data,
    };
    let x: Vec<f32> = (0..k * rows)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let mut act = Activations::default();
    let (mut out, mut tmp) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        act.load(&x, k);
        matmul(&w, &mut act, &mut out, &mut tmp);
    }
    let iters = 20;
    let t = Instant::now();
    for _ in 0..iters {
        act.load(&x, k);
        matmul(&w, &mut act, &mut out, &mut tmp);
    }
    let dt = t.elapsed().as_secs_f64() / iters as f64;
    println!(
        "{fmt:?} {n}x{k} rows={rows}: {:.2} ms, {:.1} GB/s, {:.1} GMAC/s",
        dt * 1e3,
        bytes as f64 / dt / 1e9,
        (n * k * rows) as f64 / dt / 1e9
    );
}
