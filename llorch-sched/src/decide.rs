//! One scheduling decision for one job: dispatch, start, evict, wait or reject
//! (ORCH-1030..1033, ORCH-1040, ORCH-1050..1052).
//!
//! 1. A worker that can take the job → [`Decision::Dispatch`] (see [`crate::placement`]).
//! 2. A worker of the model is starting → [`Decision::Wait`] (`StartInProgress`).
//! 3. Workers of the model serve but are full → wait for a slot, or, when its queued
//!    jobs reach `scale_out_backlog` and a GPU fits, start another replica.
//! 4. No worker of the model: a GPU with the memory free → [`Decision::Start`]; else
//!    victims that free enough on one GPU → [`Decision::Evict`] (the last worker of a
//!    model used within `min_idle_ms` is spared until the job has waited that long
//!    itself); else wait while eviction could succeed later, else
//!    [`Decision::Reject`] `POOL_UNAVAILABLE` (no GPU is large enough, or what blocks
//!    it is pinned). A start never exceeds a GPU's free memory.

use std::collections::HashMap;

use llorch_core::{Error, ErrorCode, ModelRef, WorkerId};

use crate::catalog::Catalog;
use crate::eviction::{self, EvictionConfig, EvictionContext, EvictionPlan};
use crate::placement::{self, Placement, PlacementConfig, PlacementRequest, PlacementState};
use crate::snapshot::ClusterSnapshot;
use crate::start::{self, GpuChoice, MemoryEstimate, StartPlan};
use crate::tick::Tick;

/// Everything a decision reads besides the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct DecideContext<'a> {
    /// The catalog (model sizes).
    pub catalog: &'a Catalog,
    /// Placement settings.
    pub placement: &'a PlacementConfig,
    /// GPU choice for starts.
    pub gpu_choice: GpuChoice,
    /// Memory estimate for unmeasured models.
    pub memory: &'a MemoryEstimate,
    /// Eviction settings.
    pub eviction: &'a EvictionConfig,
    /// Operator-listed victims (manual eviction).
    pub manual: &'a [WorkerId],
    /// A start of this model is already in flight.
    pub start_pending: bool,
    /// Queued jobs per model (scale-out, demand-aware eviction).
    pub demand: &'a HashMap<ModelRef, usize>,
    /// Start another replica when the backlog reaches this; `None` = never.
    pub scale_out_backlog: Option<usize>,
    /// How long the job has waited, ms: past `min_idle_ms` the anti-thrash guard yields.
    pub waited_ms: u64,
}

/// Why a job waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitReason {
    /// A worker of the model is starting.
    StartInProgress,
    /// Its workers are full; a slot will free up.
    WorkersBusy,
    /// Memory is held by workers that are busy, draining or used too recently.
    MemoryBusy,
}

/// Why a job is refused now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The model left the catalog after admission.
    #[error("model is no longer in the catalog")]
    NotInCatalog,
    /// No GPU in the cluster has `need` bytes in total.
    #[error("no GPU can hold the model ({need} bytes needed, largest GPU has {largest})")]
    NoDeviceLargeEnough {
        /// Bytes needed.
        need: u64,
        /// Largest GPU's total memory.
        largest: u64,
    },
    /// Every GPU large enough is held by pinned (or non-evictable) workers.
    #[error("no GPU can be freed for the model ({need} bytes needed)")]
    NoEvictableMemory {
        /// Bytes needed.
        need: u64,
    },
}

impl RejectReason {
    /// `POOL_UNAVAILABLE` (ORCH-1033), or `ADMISSION_REJECT` for a vanished model.
    pub fn to_error(&self) -> Error {
        let code = match self {
            RejectReason::NotInCatalog => ErrorCode::AdmissionReject,
            _ => ErrorCode::PoolUnavailable,
        };
        Error::new(code, self.to_string())
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run on this worker.
    Dispatch {
        /// Index into [`ClusterSnapshot::workers`].
        index: usize,
        /// Whether affinity chose it.
        affine: bool,
    },
    /// Start a worker of the model here.
    Start(StartPlan),
    /// Stop or drain these workers; the start follows once memory is free.
    Evict(EvictionPlan),
    /// Keep the job queued.
    Wait(WaitReason),
    /// Refuse the job.
    Reject(RejectReason),
}

/// Decides for one job (see the module docs).
pub fn decide(
    snapshot: &ClusterSnapshot,
    ctx: &DecideContext<'_>,
    req: PlacementRequest<'_>,
    state: &mut PlacementState,
    now: Tick,
) -> Decision {
    let nf = match placement::place(snapshot, req, ctx.placement, state, now) {
        Placement::Worker { index, affine } => return Decision::Dispatch { index, affine },
        Placement::NoFit(nf) => nf,
    };
    if nf.starting > 0 || ctx.start_pending {
        return Decision::Wait(WaitReason::StartInProgress);
    }
    let Some(entry) = ctx.catalog.by_ref(req.model) else {
        return Decision::Reject(RejectReason::NotInCatalog);
    };
    let need = start::vram_need(entry, snapshot, ctx.memory);
    if nf.serving > 0 {
        let backlog = ctx.demand.get(req.model).copied().unwrap_or(0);
        let scale = ctx.scale_out_backlog.is_some_and(|n| backlog >= n);
        return match start::choose_gpu(snapshot, req.model, need, ctx.gpu_choice) {
            Some(plan) if scale => Decision::Start(plan),
            _ => Decision::Wait(WaitReason::WorkersBusy),
        };
    }
    if !start::could_ever_fit(snapshot, need) {
        let largest = snapshot
            .gpus
            .iter()
            .map(|g| g.total_vram)
            .max()
            .unwrap_or(0);
        return Decision::Reject(RejectReason::NoDeviceLargeEnough { need, largest });
    }
    if let Some(plan) = start::choose_gpu(snapshot, req.model, need, ctx.gpu_choice) {
        return Decision::Start(plan);
    }
    let guard_yields = EvictionConfig {
        min_idle_ms: 0,
        ..*ctx.eviction
    };
    let ecfg = if ctx.waited_ms >= ctx.eviction.min_idle_ms {
        &guard_yields
    } else {
        ctx.eviction
    };
    let ectx = EvictionContext {
        manual: ctx.manual,
        demand: ctx.demand,
        now,
    };
    if let Some(plan) = eviction::plan(snapshot, need, ecfg, &ectx) {
        // No victims: memory of workers already draining will cover it.
        return if plan.victims.is_empty() {
            Decision::Wait(WaitReason::MemoryBusy)
        } else {
            Decision::Evict(plan)
        };
    }
    if could_free_later(snapshot, need, ctx) {
        Decision::Wait(WaitReason::MemoryBusy)
    } else {
        Decision::Reject(RejectReason::NoEvictableMemory { need })
    }
}

/// Whether some GPU would have `need` bytes once every worker eviction may ever pick
/// (unpinned; listed, under the manual policy; busy, starting or recently used alike)
/// were gone.
fn could_free_later(snapshot: &ClusterSnapshot, need: u64, ctx: &DecideContext<'_>) -> bool {
    use crate::eviction::EvictionPolicy;
    snapshot.gpus.iter().any(|g| {
        let reclaimable: u64 = g
            .workers
            .iter()
            .map(|&w| &snapshot.workers[w])
            .filter(|w| !w.pinned)
            .filter(|w| ctx.eviction.policy != EvictionPolicy::Manual || ctx.manual.contains(&w.id))
            .map(|w| w.vram_used)
            .sum();
        g.available_vram.saturating_add(reclaimable) >= need
    })
}
