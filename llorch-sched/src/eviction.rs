//! Eviction: which workers to stop to make room (ORCH-1050..1052).
//!
//! Candidates are serving workers that are not pinned (and, under the manual policy,
//! listed by the operator). Two anti-thrash guards spare the *last* serving worker of a
//! model, never its replicas: it must have been idle [`EvictionConfig::min_idle_ms`]
//! and resident (ready) [`EvictionConfig::min_residency_ms`]. A candidate with jobs in
//! flight is never killed: its action is [`VictimAction::Drain`] (finish jobs, take no
//! new ones, then stop); an idle one gets [`VictimAction::Stop`].
//!
//! Order: workers whose model has no queued demand (or that are replicas) first, then
//! idle before busy, then by policy, then snapshot order:
//! - [`EvictionPolicy::Lru`]: least recently dispatched to first.
//! - [`EvictionPolicy::Lfu`]: fewest jobs served first, then least recent.
//! - [`EvictionPolicy::Manual`]: only the workers the operator listed, in that order.
//! - [`EvictionPolicy::CostAware`]: smallest `load_time_ms × vram_used / (1 + idle_ms)`
//!   first: the memory-time a reload would waste, discounted by how long the worker
//!   has been idle (unmeasured load times count as [`EvictionConfig::default_load_ms`]).

use std::cmp::Ordering;
use std::collections::HashMap;

use llorch_core::{ModelRef, WorkerId};

use crate::snapshot::{ClusterSnapshot, WorkerView};
use crate::tick::Tick;

/// What eviction reads besides the snapshot and its settings.
#[derive(Debug, Clone, Copy)]
pub struct EvictionContext<'a> {
    /// Workers the `manual` policy may pick, in order.
    pub manual: &'a [WorkerId],
    /// Queued jobs per model (models absent have none).
    pub demand: &'a HashMap<ModelRef, usize>,
    /// The decision's time.
    pub now: Tick,
}

/// The eviction policy (ORCH-1050).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvictionPolicy {
    /// Least recently used.
    Lru,
    /// Least frequently used.
    Lfu,
    /// Only operator-named workers.
    Manual,
    /// Cheapest to reload per idle time: load time × memory.
    CostAware,
}

impl EvictionPolicy {
    /// The config label: `lru`, `lfu`, `manual`, `cost-aware`.
    pub fn label(self) -> &'static str {
        match self {
            EvictionPolicy::Lru => "lru",
            EvictionPolicy::Lfu => "lfu",
            EvictionPolicy::Manual => "manual",
            EvictionPolicy::CostAware => "cost-aware",
        }
    }
}

/// Eviction settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictionConfig {
    /// The policy.
    pub policy: EvictionPolicy,
    /// The last worker of a model used less than this many ms ago is spared.
    pub min_idle_ms: u64,
    /// The last worker of a model ready less than this many ms ago is spared (amortises
    /// its load time; 0 disables).
    pub min_residency_ms: u64,
    /// Load time assumed for workers whose load was not measured, milliseconds.
    pub default_load_ms: u64,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        Self {
            policy: EvictionPolicy::Lru,
            min_idle_ms: 5_000,
            min_residency_ms: 60_000,
            default_load_ms: 30_000,
        }
    }
}

/// What to do with a victim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VictimAction {
    /// Idle: stop it now.
    Stop,
    /// Jobs in flight: drain it (it stops once its jobs end). Never killed (ORCH-1052).
    Drain,
}

/// One worker to evict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Victim {
    /// Index into [`ClusterSnapshot::workers`].
    pub worker: usize,
    /// Stop or drain.
    pub action: VictimAction,
}

/// Victims on one GPU that free enough memory for a start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionPlan {
    /// Index of the GPU.
    pub gpu: usize,
    /// Workers to stop or drain, in order.
    pub victims: Vec<Victim>,
}

impl EvictionPlan {
    /// Whether the plan drains a busy worker (room comes only after its jobs end).
    pub fn needs_drain(&self) -> bool {
        self.victims.iter().any(|v| v.action == VictimAction::Drain)
    }
}

/// A worker has jobs in flight (by the orchestrator's count or the pool's slots).
pub fn is_busy(w: &WorkerView) -> bool {
    w.active_jobs > 0 || w.free_slots < w.slots_total
}

/// Whether another serving worker holds the same model (evicting this one keeps the
/// model available).
pub fn is_replica(snapshot: &ClusterSnapshot, worker: usize) -> bool {
    let w = &snapshot.workers[worker];
    snapshot
        .workers_for(&w.model)
        .iter()
        .any(|&o| o != worker && snapshot.workers[o].is_serving())
}

/// Whether a worker may be evicted: serving, never pinned (ORCH-1050), listed under the
/// manual policy, and past both guards unless it is a replica.
pub fn is_candidate(
    snapshot: &ClusterSnapshot,
    worker: usize,
    cfg: &EvictionConfig,
    ctx: &EvictionContext<'_>,
) -> bool {
    let w = &snapshot.workers[worker];
    let guarded = || {
        ctx.now.since(w.last_used) < cfg.min_idle_ms
            || w.ready_at
                .is_some_and(|r| ctx.now.since(r) < cfg.min_residency_ms)
    };
    !w.pinned
        && w.is_serving()
        && (cfg.policy != EvictionPolicy::Manual || ctx.manual.contains(&w.id))
        && (!guarded() || is_replica(snapshot, worker))
}

/// Whether evicting the worker would leave queued jobs of its model without a worker.
fn has_demand(snapshot: &ClusterSnapshot, worker: usize, ctx: &EvictionContext<'_>) -> bool {
    let w = &snapshot.workers[worker];
    ctx.demand.get(&w.model).is_some_and(|&n| n > 0) && !is_replica(snapshot, worker)
}

fn compare(
    a: &WorkerView,
    b: &WorkerView,
    cfg: &EvictionConfig,
    ctx: &EvictionContext<'_>,
) -> Ordering {
    match cfg.policy {
        EvictionPolicy::Lru => a.last_used.cmp(&b.last_used),
        EvictionPolicy::Lfu => a
            .jobs_served
            .cmp(&b.jobs_served)
            .then(a.last_used.cmp(&b.last_used)),
        EvictionPolicy::Manual => {
            let pos = |w: &WorkerView| ctx.manual.iter().position(|m| m == &w.id);
            pos(a).cmp(&pos(b))
        }
        EvictionPolicy::CostAware => {
            let score = |w: &WorkerView| {
                let load = u128::from(w.load_time_ms.unwrap_or(cfg.default_load_ms));
                load * u128::from(w.vram_used) / (1 + u128::from(ctx.now.since(w.last_used)))
            };
            score(a).cmp(&score(b))
        }
    }
}

/// All candidates in eviction order (see the module docs).
pub fn rank(
    snapshot: &ClusterSnapshot,
    cfg: &EvictionConfig,
    ctx: &EvictionContext<'_>,
) -> Vec<Victim> {
    rank_among(snapshot, 0..snapshot.workers.len(), cfg, ctx)
}

fn rank_among(
    snapshot: &ClusterSnapshot,
    workers: impl Iterator<Item = usize>,
    cfg: &EvictionConfig,
    ctx: &EvictionContext<'_>,
) -> Vec<Victim> {
    let ws = &snapshot.workers;
    let mut ix: Vec<(bool, bool, usize)> = workers
        .filter(|&i| is_candidate(snapshot, i, cfg, ctx))
        .map(|i| (has_demand(snapshot, i, ctx), is_busy(&ws[i]), i))
        .collect();
    ix.sort_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| compare(&ws[a.2], &ws[b.2], cfg, ctx))
            .then(a.2.cmp(&b.2))
    });
    ix.into_iter()
        .map(|(_, busy, worker)| Victim {
            worker,
            action: if busy {
                VictimAction::Drain
            } else {
                VictimAction::Stop
            },
        })
        .collect()
}

/// Victims on GPU `gpu` that bring its free memory to `need` bytes, counting memory of
/// workers already draining there as coming back. `None` when the candidates cannot.
pub fn plan_for_gpu(
    snapshot: &ClusterSnapshot,
    gpu: usize,
    need: u64,
    cfg: &EvictionConfig,
    ctx: &EvictionContext<'_>,
) -> Option<EvictionPlan> {
    use llorch_core::wire::pool::WorkerStatus;
    let g = snapshot.gpus.get(gpu)?;
    let mut freed = g.available_vram.saturating_add(
        g.workers
            .iter()
            .map(|&w| &snapshot.workers[w])
            .filter(|w| w.status == WorkerStatus::Draining)
            .map(|w| w.vram_used)
            .sum(),
    );
    let mut victims = Vec::new();
    for v in rank_among(snapshot, g.workers.iter().copied(), cfg, ctx) {
        if freed >= need {
            break;
        }
        freed = freed.saturating_add(snapshot.workers[v.worker].vram_used);
        victims.push(v);
    }
    (freed >= need).then_some(EvictionPlan { gpu, victims })
}

/// The best plan over all GPUs to make `need` bytes free: fewest victims with queued
/// demand, then fewest drains, then fewest victims, then snapshot order. `None` when
/// no GPU can be freed enough.
pub fn plan(
    snapshot: &ClusterSnapshot,
    need: u64,
    cfg: &EvictionConfig,
    ctx: &EvictionContext<'_>,
) -> Option<EvictionPlan> {
    (0..snapshot.gpus.len())
        .filter(|&g| snapshot.gpus[g].total_vram >= need)
        .filter_map(|g| plan_for_gpu(snapshot, g, need, cfg, ctx))
        .min_by_key(|p| {
            let demanded = p
                .victims
                .iter()
                .filter(|v| has_demand(snapshot, v.worker, ctx))
                .count();
            (demanded, p.needs_drain(), p.victims.len(), p.gpu)
        })
}
