#![allow(clippy::unwrap_used)]
//! The simulator drives the whole scheduler through synthetic traffic against a mock
//! pool that refuses and counts any command breaking ORCH-1031 (dispatch only to a
//! serving worker with the model and a free slot), ORCH-1040 (no start beyond free
//! memory) or ORCH-1052 (never stop a busy worker).

use llorch_sched::eviction::EvictionPolicy;
use llorch_sched::placement::{AffinityConfig, Algorithm};
use llorch_sched::queue::{FairShare, FullPolicy};
use llorch_sched::sim::{SimConfig, SimReport, simulate};
use llorch_sched::start::GpuChoice;
use proptest::prelude::*;

/// Every arrival is accounted for exactly once.
fn assert_accounted(r: &SimReport) {
    let out = r.completed
        + r.unfinished
        + r.rejected_queue_full
        + r.rejected_admission
        + r.rejected_pool
        + r.shed;
    assert_eq!(out, r.arrivals, "{r}");
    assert_eq!(r.violations.total(), 0, "{r}");
    assert!(r.max_queue_depth <= r.queue_capacity);
}

#[test]
fn demo_is_deterministic_and_clean() {
    let mut cfg = SimConfig::demo(42);
    cfg.duration_ms = 15 * 60_000;
    let a = simulate(&cfg).unwrap();
    println!("{a}");
    assert_accounted(&a);
    assert!(a.completed > 1000 && a.starts > 0, "{a}");
    assert_eq!(simulate(&cfg).unwrap(), a);
    cfg.seed = 43;
    assert_ne!(simulate(&cfg).unwrap(), a);
}

#[test]
fn memory_pressure_evicts_and_never_overcommits() {
    let mut cfg = SimConfig::demo(5);
    cfg.duration_ms = 10 * 60_000;
    cfg.nodes = 1;
    cfg.scheduler.eviction.min_idle_ms = 1_000;
    let r = simulate(&cfg).unwrap();
    println!("{r}");
    assert_accounted(&r);
    assert!(r.evictions > 0, "{r}");
}

#[test]
fn a_model_larger_than_every_gpu_is_rejected_pool_unavailable() {
    let mut cfg = SimConfig::demo(9);
    cfg.duration_ms = 60_000;
    cfg.gpu_vram = 8 << 30;
    let r = simulate(&cfg).unwrap();
    assert_accounted(&r);
    assert!(r.rejected_pool > 0, "{r}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any policy mix, any seed: no invariant breaks and no job is lost or duplicated.
    #[test]
    fn any_policy_mix_keeps_the_invariants(
        seed in any::<u64>(), algo in 0usize..3, evict in 0usize..4, drop_lru in any::<bool>(),
        fair in any::<bool>(), affine in any::<bool>(), best_fit in any::<bool>(), gib in 12u64..40,
    ) {
        let mut cfg = SimConfig::demo(seed);
        cfg.duration_ms = 3 * 60_000;
        cfg.nodes = 1;
        cfg.gpu_vram = gib << 30;
        cfg.traffic.burst_period_ms = 60_000;
        let s = &mut cfg.scheduler;
        s.queue.capacity = 50;
        s.queue.full_policy = if drop_lru { FullPolicy::DropLru } else { FullPolicy::Reject };
        s.queue.fair_share = fair.then_some(FairShare { slack_ms: 5_000 });
        s.placement.algorithm = [Algorithm::LeastLoaded, Algorithm::MostVramFree, Algorithm::RoundRobin][algo];
        s.placement.affinity = affine.then(AffinityConfig::default);
        s.eviction.policy = [EvictionPolicy::Lru, EvictionPolicy::Lfu, EvictionPolicy::Manual, EvictionPolicy::CostAware][evict];
        s.eviction.min_idle_ms = 2_000;
        s.gpu_choice = if best_fit { GpuChoice::BestFit } else { GpuChoice::MostFree };
        let r = simulate(&cfg).unwrap();
        assert_accounted(&r);
    }
}
