//! Random clusters for the property tests.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};

use llorch_core::wire::pool::{GpuState, PoolState, WorkerInfo, WorkerStatus};
use llorch_core::{Device, GpuId, ModelRef, NodeId, WorkerId};
use llorch_sched::sim::SplitMix64;
use llorch_sched::{Catalog, CatalogEntry, ClusterSnapshot, Tick, WorkerLoad};

pub const GIB: u64 = 1 << 30;

pub fn model(i: usize) -> ModelRef {
    format!("file:/m/model-{i}.gguf").parse().unwrap()
}

pub fn catalog(models: usize) -> Catalog {
    let mut c = Catalog::new();
    for i in 0..models {
        let mut e = CatalogEntry::new(format!("m{i}"), model(i), 4096, (1 + 3 * i as u64) * GIB);
        if i % 2 == 1 {
            e.vram_bytes = Some((2 + 4 * i as u64) * GIB);
        }
        c.insert(e).unwrap();
    }
    c
}

/// A random, consistent cluster: pool states, loads and pins.
pub struct Cluster {
    pub pools: Vec<PoolState>,
    pub loads: HashMap<WorkerId, WorkerLoad>,
    pub pinned: HashSet<WorkerId>,
}

impl Cluster {
    pub fn snapshot(&self) -> ClusterSnapshot {
        ClusterSnapshot::build(&self.pools, &self.loads, &self.pinned).unwrap()
    }
}

pub fn cluster(seed: u64, nodes: usize, gpus: usize, workers: usize, models: usize) -> Cluster {
    let mut r = SplitMix64::new(seed);
    let sizes = [8, 16, 24, 80];
    let mut pools: Vec<PoolState> = (0..nodes)
        .map(|n| PoolState {
            node_id: NodeId::new(format!("n{n}")).unwrap(),
            gpus: (0..gpus)
                .map(|g| {
                    let total = sizes[r.range(0, 3) as usize] * GIB;
                    GpuState {
                        id: GpuId(g as u32),
                        name: String::new(),
                        total_vram: total,
                        allocated_vram: 0,
                        available_vram: total,
                        workers: vec![],
                    }
                })
                .collect(),
            workers: vec![],
        })
        .collect();
    let mut loads = HashMap::new();
    let mut pinned = HashSet::new();
    let statuses = [
        WorkerStatus::Starting,
        WorkerStatus::Ready,
        WorkerStatus::Ready,
        WorkerStatus::Ready,
        WorkerStatus::Busy,
        WorkerStatus::Draining,
        WorkerStatus::Failed,
    ];
    for w in 0..workers {
        let n = r.range(0, nodes as u32 - 1) as usize;
        let g = r.range(0, gpus as u32 - 1) as usize;
        let gpu = &mut pools[n].gpus[g];
        let vram = u64::from(r.range(1, 12)) * GIB;
        if gpu.available_vram < vram {
            continue;
        }
        gpu.available_vram -= vram;
        gpu.allocated_vram += vram;
        let id = WorkerId::new(format!("w{w}")).unwrap();
        gpu.workers.push(id.clone());
        let slots = r.range(0, 8);
        let info = WorkerInfo {
            id: id.clone(),
            model: model(r.range(0, models as u32 - 1) as usize),
            gpu: Device::Cuda(GpuId(g as u32)),
            vram_used: vram,
            uri: String::new(),
            status: statuses[r.range(0, statuses.len() as u32 - 1) as usize],
            started_at: 0,
            slots_total: slots,
            slots_free: r.range(0, slots),
        };
        if r.chance(0.7) {
            loads.insert(
                id.clone(),
                WorkerLoad {
                    active_jobs: r.range(0, slots.max(1)),
                    last_used: Tick(u64::from(r.range(0, 100_000))),
                    jobs_served: u64::from(r.range(0, 1000)),
                    load_time_ms: r.chance(0.5).then(|| u64::from(r.range(100, 60_000))),
                    ready_at: r.chance(0.5).then(|| Tick(u64::from(r.range(0, 100_000)))),
                },
            );
        }
        if r.chance(0.2) {
            pinned.insert(id);
        }
        pools[n].workers.push(info);
    }
    // Sometimes memory is used by something the pool does not attribute to workers.
    for p in &mut pools {
        for g in &mut p.gpus {
            if r.chance(0.2) {
                g.available_vram /= 2;
            }
        }
    }
    Cluster {
        pools,
        loads,
        pinned,
    }
}
