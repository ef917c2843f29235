#![allow(clippy::unwrap_used)]
//! Worked examples of each decision rule (ORCH-1030..1052) and of the scheduler's
//! start timeout (ORCH-1042) and drain-then-stop (ORCH-1052) flows.

use std::collections::{HashMap, HashSet};

use llorch_core::wire::pool::{GpuState, PoolState, WorkerInfo, WorkerStatus};
use llorch_core::wire::task::Priority;
use llorch_core::{Device, ErrorCode, GpuId, JobId, ModelRef, NodeId, WorkerId};
use llorch_sched::decide::{self, DecideContext, Decision, RejectReason, WaitReason};
use llorch_sched::eviction::VictimAction;
use llorch_sched::placement::{
    self, AffinityConfig, Algorithm, Placement, PlacementConfig, PlacementRequest, PlacementState,
};
use llorch_sched::queue::FullPolicy;
use llorch_sched::{
    Action, AffinityKey, Catalog, CatalogEntry, ClusterSnapshot, EvictionConfig, GpuChoice,
    JobRequest, MemoryEstimate, Scheduler, SchedulerConfig, Tick, WorkerLoad,
};

const GIB: u64 = 1 << 30;

fn m(i: u32) -> ModelRef {
    format!("file:/m/{i}.gguf").parse().unwrap()
}

fn wid(s: &str) -> WorkerId {
    WorkerId::new(s).unwrap()
}

/// One node; GPUs of `gpus` GiB; workers `(id, model, gpu, GiB, slots)`, all ready.
fn pool(gpus: &[u64], workers: &[(&str, u32, u32, u64, u32)]) -> PoolState {
    let mut p = PoolState {
        node_id: NodeId::new("n0").unwrap(),
        gpus: gpus
            .iter()
            .enumerate()
            .map(|(i, &g)| GpuState {
                id: GpuId(i as u32),
                name: String::new(),
                total_vram: g * GIB,
                allocated_vram: 0,
                available_vram: g * GIB,
                workers: vec![],
            })
            .collect(),
        workers: vec![],
    };
    for &(id, model, gpu, gib, slots) in workers {
        let g = &mut p.gpus[gpu as usize];
        g.available_vram -= gib * GIB;
        g.allocated_vram += gib * GIB;
        g.workers.push(wid(id));
        p.workers.push(WorkerInfo {
            id: wid(id),
            model: m(model),
            gpu: Device::Cuda(GpuId(gpu)),
            vram_used: gib * GIB,
            uri: String::new(),
            status: WorkerStatus::Ready,
            started_at: 0,
            slots_total: slots,
            slots_free: slots,
        });
    }
    p
}

fn active(pairs: &[(&str, u32)], last_used: u64) -> HashMap<WorkerId, WorkerLoad> {
    pairs
        .iter()
        .map(|&(w, a)| {
            (
                wid(w),
                WorkerLoad {
                    active_jobs: a,
                    last_used: Tick(last_used),
                    ..Default::default()
                },
            )
        })
        .collect()
}

fn catalog() -> Catalog {
    let mut c = Catalog::new();
    for (i, gib) in [(1, 10), (2, 10), (3, 100)] {
        let mut e = CatalogEntry::new(format!("m{i}"), m(i), 4096, gib * GIB);
        e.vram_bytes = Some(gib * GIB);
        c.insert(e).unwrap();
    }
    c
}

#[test]
fn affinity_gives_up_only_when_overloaded_and_the_alternative_is_lighter() {
    let p = pool(&[80], &[("a", 1, 0, 5, 4), ("b", 1, 0, 5, 4)]);
    let cfg = PlacementConfig {
        algorithm: Algorithm::LeastLoaded,
        affinity: Some(AffinityConfig::default()),
    };
    let key = Some(AffinityKey(7));
    let place = |loads: &[(&str, u32)]| {
        let snap =
            ClusterSnapshot::build(std::slice::from_ref(&p), &active(loads, 0), &HashSet::new())
                .unwrap();
        let mut st = PlacementState::default();
        st.affinity.bind(AffinityKey(7), wid("a"), Tick(0));
        match placement::place(
            &snap,
            PlacementRequest {
                model: &m(1),
                affinity: key,
            },
            &cfg,
            &mut st,
            Tick(1),
        ) {
            Placement::Worker { index, affine } => (snap.workers[index].id.to_string(), affine),
            Placement::NoFit(_) => panic!("no fit"),
        }
    };
    assert_eq!(
        place(&[("a", 2), ("b", 0)]),
        ("a".into(), true),
        "50 % is not overloaded"
    );
    assert_eq!(
        place(&[("a", 3), ("b", 0)]),
        ("b".into(), false),
        "75 % vs 0 %: give up"
    );
    assert_eq!(
        place(&[("a", 3), ("b", 2)]),
        ("b".into(), false),
        "75 % vs 50 %: still 250 ‰ lighter"
    );
    assert_eq!(
        place(&[("a", 3), ("b", 3)]),
        ("a".into(), true),
        "everyone busy: stay"
    );
    assert_eq!(
        place(&[("a", 4), ("b", 3)]),
        ("b".into(), false),
        "preferred full"
    );
}

#[test]
fn base_algorithms() {
    let p = pool(
        &[80, 40],
        &[
            ("a", 1, 0, 5, 4),
            ("b", 1, 1, 5, 4),
            ("c", 1, 1, 5, 8),
            ("d", 2, 0, 5, 4),
        ],
    );
    let snap = ClusterSnapshot::build(
        &[p],
        &active(&[("a", 1), ("b", 2), ("c", 2)], 0),
        &HashSet::new(),
    )
    .unwrap();
    let pick = |algo, st: &mut PlacementState| {
        let cfg = PlacementConfig {
            algorithm: algo,
            affinity: None,
        };
        match placement::place(
            &snap,
            PlacementRequest {
                model: &m(1),
                affinity: None,
            },
            &cfg,
            st,
            Tick(0),
        ) {
            Placement::Worker { index, .. } => snap.workers[index].id.to_string(),
            Placement::NoFit(_) => panic!(),
        }
    };
    let mut st = PlacementState::default();
    assert_eq!(
        pick(Algorithm::LeastLoaded, &mut st),
        "c",
        "1/4 ties 2/8; c has more free slots"
    );
    assert_eq!(
        pick(Algorithm::MostVramFree, &mut st),
        "a",
        "GPU 0 has 70 GiB free"
    );
    let rr: Vec<String> = (0..4)
        .map(|_| pick(Algorithm::RoundRobin, &mut st))
        .collect();
    assert_eq!(rr, ["a", "b", "c", "a"]);
}

fn ctx<'a>(
    cat: &'a Catalog,
    eviction: &'a EvictionConfig,
    demand: &'a HashMap<ModelRef, usize>,
    waited_ms: u64,
) -> DecideContext<'a> {
    static PLACEMENT: PlacementConfig = PlacementConfig {
        algorithm: Algorithm::LeastLoaded,
        affinity: None,
    };
    static MEMORY: MemoryEstimate = MemoryEstimate {
        overhead_permille: 200,
        fixed_bytes: 0,
    };
    DecideContext {
        catalog: cat,
        placement: &PLACEMENT,
        gpu_choice: GpuChoice::BestFit,
        memory: &MEMORY,
        eviction,
        manual: &[],
        start_pending: false,
        demand,
        scale_out_backlog: Some(4),
        waited_ms,
    }
}

#[test]
fn no_worker_starts_evicts_waits_or_rejects() {
    let cat = catalog();
    let ev = EvictionConfig {
        min_idle_ms: 5_000,
        min_residency_ms: 0,
        ..EvictionConfig::default()
    };
    let none = HashMap::new();
    let decide_for = |p: &PoolState,
                      loads: &[(&str, u32)],
                      pinned: &[&str],
                      model: u32,
                      now: u64,
                      waited: u64| {
        let pinned: HashSet<WorkerId> = pinned.iter().map(|w| wid(w)).collect();
        let snap =
            ClusterSnapshot::build(std::slice::from_ref(p), &active(loads, 0), &pinned).unwrap();
        let d = decide::decide(
            &snap,
            &ctx(&cat, &ev, &none, waited),
            PlacementRequest {
                model: &m(model),
                affinity: None,
            },
            &mut PlacementState::default(),
            Tick(now),
        );
        (snap, d)
    };
    // Best fit: the 12 GiB GPU is the tightest that holds 10 GiB.
    let (_, d) = decide_for(&pool(&[24, 12, 8], &[]), &[], &[], 1, 0, 0);
    assert!(
        matches!(d, Decision::Start(p) if p.gpu == 1 && p.need == 10 * GIB),
        "{d:?}"
    );
    // Full GPU, idle worker of another model: stop it.
    let p = pool(&[12], &[("x", 2, 0, 10, 4)]);
    let (snap, d) = decide_for(&p, &[("x", 0)], &[], 1, 10_000, 0);
    let Decision::Evict(plan) = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        (
            snap.workers[plan.victims[0].worker].id.as_str(),
            plan.victims[0].action
        ),
        ("x", VictimAction::Stop)
    );
    // Busy: drain, never stop.
    let (_, d) = decide_for(&p, &[("x", 1)], &[], 1, 10_000, 0);
    assert!(
        matches!(&d, Decision::Evict(plan) if plan.victims[0].action == VictimAction::Drain),
        "{d:?}"
    );
    // Used a moment ago: wait, unless the job has waited as long as the guard.
    let (_, d) = decide_for(&p, &[("x", 0)], &[], 1, 1_000, 0);
    assert_eq!(d, Decision::Wait(WaitReason::MemoryBusy));
    let (_, d) = decide_for(&p, &[("x", 0)], &[], 1, 1_000, 5_000);
    assert!(matches!(d, Decision::Evict(_)), "{d:?}");
    // Pinned: nothing can ever make room → POOL_UNAVAILABLE.
    let (_, d) = decide_for(&p, &[("x", 0)], &["x"], 1, 10_000, 0);
    assert!(
        matches!(d, Decision::Reject(RejectReason::NoEvictableMemory { .. })),
        "{d:?}"
    );
    // Larger than every GPU.
    let (_, d) = decide_for(&p, &[], &[], 3, 0, 0);
    let Decision::Reject(r) = d else { panic!() };
    assert_eq!(r.to_error().code, ErrorCode::PoolUnavailable);
    assert!(matches!(r, RejectReason::NoDeviceLargeEnough { largest, .. } if largest == 12 * GIB));
    // Full workers of the model: wait for a slot.
    let p = pool(&[12], &[("y", 1, 0, 10, 1)]);
    let (_, d) = decide_for(&p, &[("y", 1)], &[], 1, 0, 0);
    assert_eq!(d, Decision::Wait(WaitReason::WorkersBusy));
}

fn job(n: u32, model: &str) -> JobRequest {
    JobRequest {
        id: JobId::new(format!("job-{n}")).unwrap(),
        priority: Priority::Interactive,
        model: model.into(),
        prompt_tokens: 10,
        max_tokens: Some(10),
        tenant: None,
        affinity: None,
    }
}

#[test]
fn start_times_out_once_then_retries_then_rejects() {
    let cat = catalog();
    let mut s: Scheduler<()> = Scheduler::new(SchedulerConfig::default()).unwrap();
    s.submit(&cat, job(1, "m1"), (), Tick(0)).unwrap();
    let p = pool(&[24], &[]);
    let a = s.schedule(std::slice::from_ref(&p), &cat, Tick(0)).unwrap();
    assert!(matches!(&a[..], [Action::StartWorker { .. }]), "{a:?}");
    assert!(
        s.schedule(std::slice::from_ref(&p), &cat, Tick(30_000))
            .unwrap()
            .is_empty(),
        "waits for the start"
    );
    let a = s
        .schedule(std::slice::from_ref(&p), &cat, Tick(60_001))
        .unwrap();
    assert!(
        matches!(
            &a[..],
            [Action::StartTimedOut { .. }, Action::StartWorker { .. }]
        ),
        "{a:?}"
    );
    let a = s
        .schedule(std::slice::from_ref(&p), &cat, Tick(120_002))
        .unwrap();
    assert!(
        matches!(&a[..], [Action::StartTimedOut { .. }, Action::Reject { error, .. }] if error.code == ErrorCode::WorkerStartTimeout),
        "{a:?}"
    );
    assert!(s.queue().is_empty());
}

#[test]
fn busy_victim_is_drained_then_stopped_when_idle() {
    let cat = catalog();
    let cfg = SchedulerConfig {
        eviction: EvictionConfig {
            min_idle_ms: 0,
            min_residency_ms: 0,
            ..EvictionConfig::default()
        },
        ..SchedulerConfig::default()
    };
    let mut s: Scheduler<u32> = Scheduler::new(cfg).unwrap();
    let mut p = pool(&[12], &[("x", 2, 0, 10, 1)]);
    s.submit(&cat, job(1, "m2"), 1, Tick(0)).unwrap();
    let a = s.schedule(std::slice::from_ref(&p), &cat, Tick(0)).unwrap();
    assert!(matches!(&a[..], [Action::Dispatch { .. }]));
    s.submit(&cat, job(2, "m1"), 2, Tick(1)).unwrap();
    let a = s.schedule(std::slice::from_ref(&p), &cat, Tick(1)).unwrap();
    assert!(
        matches!(&a[..], [Action::Drain { worker, .. }] if worker.as_str() == "x"),
        "{a:?}"
    );
    p.workers[0].status = WorkerStatus::Draining;
    assert!(
        s.schedule(std::slice::from_ref(&p), &cat, Tick(2))
            .unwrap()
            .is_empty(),
        "no double drain, no stop while busy"
    );
    s.complete(&wid("x"), Tick(3));
    let a = s.schedule(std::slice::from_ref(&p), &cat, Tick(3)).unwrap();
    assert!(
        matches!(&a[..], [Action::Stop { worker, .. }] if worker.as_str() == "x"),
        "{a:?}"
    );
    let p = pool(&[12], &[]);
    let a = s.schedule(std::slice::from_ref(&p), &cat, Tick(4)).unwrap();
    assert!(
        matches!(&a[..], [Action::StartWorker { request, .. }] if request.model == m(1)),
        "{a:?}"
    );
}

#[test]
fn submit_refusals_hand_the_payload_back() {
    let cat = catalog();
    let mut cfg = SchedulerConfig::default();
    cfg.queue.capacity = 1;
    let mut s: Scheduler<u32> = Scheduler::new(cfg.clone()).unwrap();
    s.submit(&cat, job(1, "m1"), 1, Tick(0)).unwrap();
    let r = s.submit(&cat, job(2, "m1"), 2, Tick(0)).unwrap_err();
    assert_eq!(
        (r.payload, r.error.to_error().code),
        (2, ErrorCode::QueueFull)
    );
    let r = s.submit(&cat, job(3, "nope"), 3, Tick(0)).unwrap_err();
    assert_eq!(
        (r.payload, r.error.to_error().code),
        (3, ErrorCode::AdmissionReject)
    );
    assert_eq!(
        s.cancel(&JobId::new("job-1").unwrap(), Tick(1))
            .map(|j| j.payload),
        Some(1)
    );
    assert!(
        s.cancel(&JobId::new("job-1").unwrap(), Tick(1)).is_none(),
        "idempotent"
    );
    cfg.queue.full_policy = FullPolicy::DropLru;
    let mut s: Scheduler<u32> = Scheduler::new(cfg).unwrap();
    let mut b = job(1, "m1");
    b.priority = Priority::Batch;
    s.submit(&cat, b, 1, Tick(0)).unwrap();
    let shed = s
        .submit(&cat, job(2, "m1"), 2, Tick(0))
        .unwrap()
        .shed
        .unwrap();
    assert_eq!(shed.payload, 1);
    assert!(
        Scheduler::<()>::new(SchedulerConfig {
            worker_id_prefix: "bad/".into(),
            ..SchedulerConfig::default()
        })
        .is_err()
    );
}

/// SYS-0021: after an orchestrator restart it has no load figures; the pool's slot
/// counts decide whether a victim is busy, and a busy one is never stopped.
#[test]
fn after_restart_the_pools_slots_keep_busy_workers_alive() {
    let cat = catalog();
    let mut s: Scheduler<u32> = Scheduler::new(SchedulerConfig::default()).unwrap();
    let mut p = pool(&[12], &[("x", 2, 0, 10, 2)]);
    p.workers[0].slots_free = 1;
    s.submit(&cat, job(1, "m1"), 1, Tick(100_000)).unwrap();
    let a = s
        .schedule(std::slice::from_ref(&p), &cat, Tick(100_000))
        .unwrap();
    assert!(matches!(&a[..], [Action::Drain { .. }]), "{a:?}");
    p.workers[0].status = WorkerStatus::Draining;
    assert!(
        s.schedule(std::slice::from_ref(&p), &cat, Tick(100_001))
            .unwrap()
            .is_empty()
    );
    p.workers[0].slots_free = 2;
    let a = s
        .schedule(std::slice::from_ref(&p), &cat, Tick(100_002))
        .unwrap();
    assert!(matches!(&a[..], [Action::Stop { .. }]), "{a:?}");
}
