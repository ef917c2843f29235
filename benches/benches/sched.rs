//! Micro-benchmarks of llorch-sched: one placement decision over 10 / 100 / 1000
//! workers on 1 / 10 / 100 nodes (target < 20 µs at 1000 workers), and queue
//! enqueue + dequeue throughput (target > 1 M ops/s).
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use llorch_core::wire::pool::{GpuState, PoolState, WorkerInfo, WorkerStatus};
use llorch_core::wire::task::Priority;
use llorch_core::{Device, GpuId, JobId, ModelRef, NodeId, WorkerId};
use llorch_sched::placement::{
    self, AffinityConfig, Algorithm, PlacementConfig, PlacementRequest, PlacementState,
};
use llorch_sched::queue::{FairShare, JobMeta, JobQueue, QueueConfig, TenantId};
use llorch_sched::{AffinityKey, ClusterSnapshot, Tick, WorkerLoad};

const GIB: u64 = 1 << 30;

fn model() -> ModelRef {
    "hf:org/bench-GGUF@main::file=bench-q4_k_m.gguf"
        .parse()
        .unwrap()
}

/// `workers` workers of one model spread over `nodes` nodes of 8 GPUs, with varied load.
fn snapshot(workers: usize, nodes: usize) -> ClusterSnapshot {
    let (pools, loads) = cluster(workers, nodes);
    ClusterSnapshot::build(&pools, &loads, &HashSet::new()).unwrap()
}

fn cluster(workers: usize, nodes: usize) -> (Vec<PoolState>, HashMap<WorkerId, WorkerLoad>) {
    let mut pools: Vec<PoolState> = (0..nodes)
        .map(|n| PoolState {
            node_id: NodeId::new(format!("node-{n}")).unwrap(),
            gpus: (0..8)
                .map(|g| GpuState {
                    id: GpuId(g),
                    name: String::new(),
                    total_vram: 80 * GIB,
                    allocated_vram: 0,
                    available_vram: 80 * GIB - u64::from(g) * GIB,
                    workers: vec![],
                })
                .collect(),
            workers: vec![],
        })
        .collect();
    let mut loads = HashMap::new();
    for w in 0..workers {
        let (n, g) = (w % nodes, (w / nodes) % 8);
        let id = WorkerId::new(format!("worker-{w}")).unwrap();
        pools[n].gpus[g].workers.push(id.clone());
        pools[n].workers.push(WorkerInfo {
            id: id.clone(),
            model: model(),
            gpu: Device::Cuda(GpuId(g as u32)),
            vram_used: 5 * GIB,
            uri: String::new(),
            status: WorkerStatus::Ready,
            started_at: 0,
            slots_total: 16,
            slots_free: 16,
        });
        loads.insert(
            id,
            WorkerLoad {
                active_jobs: (w * 7 % 15) as u32,
                ..WorkerLoad::default()
            },
        );
    }
    (pools, loads)
}

fn placement(c: &mut Criterion) {
    let mut g = c.benchmark_group("placement");
    let m = model();
    for (workers, nodes) in [
        (10, 1),
        (100, 1),
        (100, 10),
        (1000, 1),
        (1000, 10),
        (1000, 100),
    ] {
        let snap = snapshot(workers, nodes);
        for algo in [
            Algorithm::LeastLoaded,
            Algorithm::MostVramFree,
            Algorithm::RoundRobin,
        ] {
            let cfg = PlacementConfig {
                algorithm: algo,
                affinity: None,
            };
            let mut state = PlacementState::default();
            let id = BenchmarkId::new(algo.label(), format!("{workers}w/{nodes}n"));
            g.bench_function(id, |b| {
                b.iter(|| {
                    let req = PlacementRequest {
                        model: &m,
                        affinity: None,
                    };
                    black_box(placement::place(
                        black_box(&snap),
                        req,
                        &cfg,
                        &mut state,
                        Tick(1),
                    ))
                })
            });
        }
        let cfg = PlacementConfig {
            algorithm: Algorithm::LeastLoaded,
            affinity: Some(AffinityConfig::default()),
        };
        let mut state = PlacementState::default();
        let mut k = 0u64;
        g.bench_function(
            BenchmarkId::new("least-loaded+affinity", format!("{workers}w/{nodes}n")),
            |b| {
                b.iter(|| {
                    k = (k + 1) % 10_000;
                    let req = PlacementRequest {
                        model: &m,
                        affinity: Some(AffinityKey(k)),
                    };
                    black_box(placement::place(
                        black_box(&snap),
                        req,
                        &cfg,
                        &mut state,
                        Tick(k),
                    ))
                })
            },
        );
    }
    g.finish();
    let mut g = c.benchmark_group("snapshot_build");
    let (pools, loads) = cluster(1000, 100);
    let pinned = HashSet::new();
    g.bench_function("1000w/100n", |b| {
        b.iter(|| black_box(ClusterSnapshot::build(black_box(&pools), &loads, &pinned)))
    });
    g.finish();
}

fn metas(n: usize) -> Vec<JobMeta> {
    (0..n)
        .map(|i| JobMeta {
            id: JobId::new(format!("job-{i}")).unwrap(),
            priority: if i % 4 == 0 {
                Priority::Batch
            } else {
                Priority::Interactive
            },
            model: model(),
            tenant: Some(TenantId(format!("t{}", i % 8))),
            cost_tokens: 256,
            affinity: None,
        })
        .collect()
}

fn queue(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue");
    g.throughput(Throughput::Elements(2));
    for (name, fair) in [
        ("enqueue+dequeue", None),
        (
            "enqueue+dequeue/fair-share",
            Some(FairShare { slack_ms: 5_000 }),
        ),
    ] {
        let jobs = metas(4096);
        let cfg = QueueConfig {
            capacity: 1000,
            fair_share: fair,
            ..QueueConfig::default()
        };
        let mut q: JobQueue<u32> = JobQueue::new(cfg);
        for (i, m) in jobs.iter().take(100).enumerate() {
            q.push(m.clone(), i as u32, Tick(i as u64)).unwrap();
        }
        let mut i = 100usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                let now = Tick(i as u64);
                let m = jobs[i % jobs.len()].clone();
                i += 1;
                let _ = black_box(q.push(m, i as u32, now));
                black_box(q.dequeue(now))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, placement, queue);
criterion_main!(benches);
