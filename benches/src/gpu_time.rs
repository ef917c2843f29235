//! Device time of launches on a GPU: captured once into a CUDA graph, replayed.
#![allow(clippy::unwrap_used)]

use llorch_cuda::Gpu;

/// Microseconds per launch of `f`, which queues `per_graph` launches: one capture, one
/// warm-up replay, then `reps` replays between two stream marks.
pub fn graph_us(
    gpu: &Gpu,
    reps: usize,
    per_graph: usize,
    f: impl FnOnce(&Gpu) -> llorch_cuda::Result<()>,
) -> f64 {
    let graph = gpu.capture(f).unwrap();
    gpu.replay(&graph).unwrap();
    gpu.sync().unwrap();
    let t0 = gpu.mark().unwrap();
    for _ in 0..reps {
        gpu.replay(&graph).unwrap();
    }
    let t1 = gpu.mark().unwrap();
    f64::from(t1.ms_since(&t0).unwrap()) * 1e3 / (reps * per_graph) as f64
}
