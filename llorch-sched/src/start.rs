//! Worker starts: how much memory a model needs and which GPU gets it (ORCH-1040).
//!
//! A start is only ever planned on a GPU whose free memory covers the model's need:
//! the orchestrator never commands a start that cannot fit (it waits, evicts or
//! rejects instead). The need is, in order of preference, the catalog's declared
//! `vram_bytes`, the largest memory a running worker of the model was measured to hold,
//! or an estimate from the file size ([`MemoryEstimate`]).

use llorch_core::ModelRef;

use crate::catalog::CatalogEntry;
use crate::snapshot::ClusterSnapshot;

/// Estimate of a model's device memory from its file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Extra memory relative to the file size, per thousand (default 200 = +20 %).
    pub overhead_permille: u32,
    /// Fixed extra bytes for KV cache and activations (default 512 MiB).
    pub fixed_bytes: u64,
}

impl Default for MemoryEstimate {
    fn default() -> Self {
        Self {
            overhead_permille: 200,
            fixed_bytes: 512 << 20,
        }
    }
}

/// Device memory a new worker of `entry`'s model needs, bytes.
pub fn vram_need(entry: &CatalogEntry, snapshot: &ClusterSnapshot, est: &MemoryEstimate) -> u64 {
    entry
        .vram_bytes
        .or_else(|| snapshot.measured_vram(&entry.model))
        .unwrap_or_else(|| {
            let s = entry.size_bytes;
            s.saturating_add(s / 1000 * u64::from(est.overhead_permille))
                .saturating_add(est.fixed_bytes)
        })
}

/// How to pick among the GPUs that fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GpuChoice {
    /// The GPU left with the least free memory (packs models, keeps big holes).
    BestFit,
    /// The GPU with the most free memory (spreads load).
    MostFree,
}

/// A planned start: where, and the bytes it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartPlan {
    /// Index of the node in [`ClusterSnapshot::nodes`].
    pub node: usize,
    /// Index of the GPU in [`ClusterSnapshot::gpus`].
    pub gpu: usize,
    /// Bytes the worker needs.
    pub need: u64,
}

/// Picks a GPU with at least `need` free bytes for a worker of `model` (ORCH-1040).
///
/// GPUs that already host a worker of the model come last, so replicas spread over
/// GPUs; ties go to snapshot order. `None` when no GPU has the memory free now.
pub fn choose_gpu(
    snapshot: &ClusterSnapshot,
    model: &ModelRef,
    need: u64,
    choice: GpuChoice,
) -> Option<StartPlan> {
    let hosts = |g: usize| {
        snapshot.gpus[g]
            .workers
            .iter()
            .any(|&w| &snapshot.workers[w].model == model)
    };
    let (gpu, _) = snapshot
        .gpus
        .iter()
        .enumerate()
        .filter(|(_, g)| g.available_vram >= need)
        .map(|(i, g)| {
            let fit = match choice {
                GpuChoice::BestFit => g.available_vram - need,
                GpuChoice::MostFree => u64::MAX - g.available_vram,
            };
            (i, (hosts(i), fit, i))
        })
        .min_by_key(|(_, k)| *k)?;
    Some(StartPlan {
        node: snapshot.gpus[gpu].node,
        gpu,
        need,
    })
}

/// Whether any GPU of the cluster is big enough for `need` bytes at all (empty or not).
pub fn could_ever_fit(snapshot: &ClusterSnapshot, need: u64) -> bool {
    snapshot.gpus.iter().any(|g| g.total_vram >= need)
}
