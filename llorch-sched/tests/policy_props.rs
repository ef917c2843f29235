#![allow(clippy::unwrap_used)]
//! Property tests of placement (ORCH-1030..1033), starts (ORCH-1040) and eviction
//! (ORCH-1050..1052) over random clusters.

mod common;

use std::collections::HashMap;

use common::{GIB, catalog, cluster, model};
use llorch_core::WorkerId;
use llorch_sched::decide::{self, DecideContext, Decision};
use llorch_sched::eviction::{self, EvictionConfig, EvictionContext, EvictionPolicy, VictimAction};
use llorch_sched::placement::{
    self, AffinityConfig, Algorithm, Placement, PlacementConfig, PlacementRequest, PlacementState,
};
use llorch_sched::start::{self, GpuChoice, MemoryEstimate};
use llorch_sched::{AffinityKey, Tick};
use proptest::prelude::*;

const ALGOS: [Algorithm; 3] = [
    Algorithm::LeastLoaded,
    Algorithm::MostVramFree,
    Algorithm::RoundRobin,
];
const POLICIES: [EvictionPolicy; 4] = [
    EvictionPolicy::Lru,
    EvictionPolicy::Lfu,
    EvictionPolicy::Manual,
    EvictionPolicy::CostAware,
];

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// ORCH-1031: a placed job lands on a serving worker that holds its model and has a
    /// free slot; NoFit only when no such worker exists. Repeated decisions in one round
    /// never oversubscribe a worker.
    #[test]
    fn placement_only_on_eligible_workers(
        seed in any::<u64>(), nodes in 1usize..5, gpus in 1usize..4, workers in 0usize..40,
        models in 1usize..4, algo in 0usize..3, affine in any::<bool>(), jobs in 1usize..40,
    ) {
        let c = cluster(seed, nodes, gpus, workers, models);
        let mut snap = c.snapshot();
        let cfg = PlacementConfig {
            algorithm: ALGOS[algo],
            affinity: affine.then(AffinityConfig::default),
        };
        let mut state = PlacementState::default();
        for j in 0..jobs {
            let m = model(j % models);
            let key = Some(AffinityKey((j % 5) as u64));
            let eligible = snap.workers_for(&m).iter().any(|&i| snap.workers[i].can_take_job());
            match placement::place(&snap, PlacementRequest { model: &m, affinity: key }, &cfg, &mut state, Tick(j as u64)) {
                Placement::Worker { index, .. } => {
                    let w = &snap.workers[index];
                    prop_assert_eq!(&w.model, &m);
                    prop_assert!(w.is_serving());
                    prop_assert!(w.free_slots > 0);
                    prop_assert!(snap.take_slot(index, Tick(j as u64)));
                }
                Placement::NoFit(_) => prop_assert!(!eligible),
            }
        }
        for w in &snap.workers {
            prop_assert!(w.free_slots <= w.slots_total);
        }
    }

    /// ORCH-1040: a start is planned only where the GPU's free memory covers the need, and
    /// reserving it never fails; every decision obeys the placement, start and eviction rules.
    #[test]
    fn decisions_never_overcommit_or_evict_wrongly(
        seed in any::<u64>(), nodes in 1usize..4, gpus in 1usize..4, workers in 0usize..30,
        models in 1usize..5, algo in 0usize..3, pol in 0usize..4, choice in any::<bool>(),
        scale in any::<bool>(), backlog in 0usize..20, now in 0u64..200_000,
    ) {
        let c = cluster(seed, nodes, gpus, workers, models);
        let cat = catalog(models);
        let mut snap = c.snapshot();
        let manual: Vec<WorkerId> = snap.workers.iter().step_by(2).map(|w| w.id.clone()).collect();
        let pcfg = PlacementConfig { algorithm: ALGOS[algo], affinity: None };
        let ecfg = EvictionConfig { policy: POLICIES[pol], min_idle_ms: 1_000, min_residency_ms: 5_000, default_load_ms: 10_000 };
        let demand: HashMap<_, _> = (0..models).map(|i| (model(i), (i * backlog) % 7)).collect();
        let memory = MemoryEstimate::default();
        let mut state = PlacementState::default();
        for j in 0..models * 2 {
            let m = model(j % models);
            let ctx = DecideContext {
                catalog: &cat,
                placement: &pcfg,
                gpu_choice: if choice { GpuChoice::BestFit } else { GpuChoice::MostFree },
                memory: &memory,
                eviction: &ecfg,
                manual: &manual,
                start_pending: false,
                demand: &demand,
                scale_out_backlog: scale.then_some(4),
                waited_ms: now % 3_000,
            };
            let d = decide::decide(&snap, &ctx, PlacementRequest { model: &m, affinity: None }, &mut state, Tick(now));
            match d {
                Decision::Dispatch { index, .. } => {
                    prop_assert!(snap.workers[index].can_take_job());
                    prop_assert_eq!(&snap.workers[index].model, &m);
                    snap.take_slot(index, Tick(now));
                }
                Decision::Start(plan) => {
                    let need = start::vram_need(cat.by_ref(&m).unwrap(), &snap, &memory);
                    prop_assert_eq!(plan.need, need);
                    prop_assert!(snap.gpus[plan.gpu].available_vram >= plan.need);
                    prop_assert_eq!(snap.gpus[plan.gpu].node, plan.node);
                    prop_assert!(snap.reserve_vram(plan.gpu, plan.need));
                }
                Decision::Evict(plan) => {
                    prop_assert!(!plan.victims.is_empty());
                    for v in &plan.victims {
                        let w = &snap.workers[v.worker];
                        prop_assert!(!w.pinned, "pinned worker chosen");
                        prop_assert_eq!(w.gpu, Some(plan.gpu));
                        prop_assert_eq!(v.action == VictimAction::Drain, eviction::is_busy(w));
                        if ecfg.policy == EvictionPolicy::Manual {
                            prop_assert!(manual.contains(&w.id));
                        }
                    }
                }
                Decision::Wait(_) | Decision::Reject(_) => {}
            }
        }
    }

    /// ORCH-1050..1052: eviction never picks a pinned worker, drains busy ones instead of
    /// stopping them, spares guarded sole workers, ranks undemanded before demanded and
    /// idle before busy, and a plan frees what it promises.
    #[test]
    fn eviction_never_picks_pinned_or_kills_busy(
        seed in any::<u64>(), nodes in 1usize..4, gpus in 1usize..4, workers in 0usize..40,
        pol in 0usize..4, need_gib in 1u64..80, now in 0u64..200_000, min_idle in 0u64..20_000,
        residency in 0u64..60_000,
    ) {
        let c = cluster(seed, nodes, gpus, workers, 3);
        let snap = c.snapshot();
        let manual: Vec<WorkerId> = snap.workers.iter().rev().step_by(3).map(|w| w.id.clone()).collect();
        let cfg = EvictionConfig { policy: POLICIES[pol], min_idle_ms: min_idle, min_residency_ms: residency, default_load_ms: 10_000 };
        let demand: HashMap<_, _> = [(model(0), 3usize), (model(2), 1)].into_iter().collect();
        let ctx = EvictionContext { manual: &manual, demand: &demand, now: Tick(now) };
        let ranked = eviction::rank(&snap, &cfg, &ctx);
        let mut last_tier = (false, false);
        for v in &ranked {
            let w = &snap.workers[v.worker];
            prop_assert!(!w.pinned);
            prop_assert!(w.is_serving());
            let replica = eviction::is_replica(&snap, v.worker);
            let idle = Tick(now).since(w.last_used) >= min_idle;
            let resident = w.ready_at.is_none_or(|r| Tick(now).since(r) >= residency);
            prop_assert!(replica || (idle && resident), "guarded sole worker chosen");
            if pol == 2 { prop_assert!(manual.contains(&w.id)); }
            let busy = eviction::is_busy(w);
            prop_assert_eq!(v.action == VictimAction::Drain, busy);
            let demanded = !replica && demand.get(&w.model).is_some_and(|&n| n > 0);
            prop_assert!((demanded, busy) >= last_tier, "tiers out of order");
            last_tier = (demanded, busy);
        }
        if let Some(plan) = eviction::plan(&snap, need_gib * GIB, &cfg, &ctx) {
            let g = &snap.gpus[plan.gpu];
            let draining: u64 = g.workers.iter().map(|&w| &snap.workers[w])
                .filter(|w| w.status == llorch_core::wire::pool::WorkerStatus::Draining)
                .map(|w| w.vram_used).sum();
            let freed: u64 = plan.victims.iter().map(|v| snap.workers[v.worker].vram_used).sum();
            prop_assert!(g.available_vram + draining + freed >= need_gib * GIB);
            for v in &plan.victims {
                prop_assert!(ranked.contains(v));
            }
        }
    }
}
