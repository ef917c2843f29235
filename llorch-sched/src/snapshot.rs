//! [`ClusterSnapshot`]: the cluster as one decision sees it (ORCH-1030, SYS-0021).
//!
//! Built from the pool managers' [`PoolState`]s (facts: GPUs, memory, workers) and the
//! orchestrator's own per-worker [`WorkerLoad`] (what it dispatched: active jobs, last
//! use, jobs served, measured load time). Policies read it; the scheduler updates it in
//! place as it commits decisions within one round ([`ClusterSnapshot::take_slot`],
//! [`ClusterSnapshot::reserve_vram`]) so that two decisions never claim the same slot or
//! the same bytes.

use std::collections::{HashMap, HashSet};

use llorch_core::wire::pool::{PoolState, WorkerStatus};
use llorch_core::{Device, GpuId, ModelRef, NodeId, WorkerId};

use crate::tick::Tick;

/// What the orchestrator knows about a worker's load (it dispatched the jobs itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerLoad {
    /// Jobs dispatched to the worker and not finished.
    pub active_jobs: u32,
    /// When a job was last dispatched to it (LRU eviction).
    pub last_used: Tick,
    /// Jobs dispatched to it so far (LFU eviction).
    pub jobs_served: u64,
    /// Measured start-to-ready time, milliseconds (cost-aware eviction).
    pub load_time_ms: Option<u64>,
    /// When it became ready, if the orchestrator saw it start (residency guard).
    pub ready_at: Option<Tick>,
}

/// One pool manager host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The host.
    pub id: NodeId,
    /// Indices of its GPUs in [`ClusterSnapshot::gpus`].
    pub gpus: Vec<usize>,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuView {
    /// Index of its host in [`ClusterSnapshot::nodes`].
    pub node: usize,
    /// Ordinal on the host.
    pub id: GpuId,
    /// Total memory, bytes.
    pub total_vram: u64,
    /// Memory free for new workers, bytes (less reservations made in this snapshot).
    pub available_vram: u64,
    /// Indices of its workers in [`ClusterSnapshot::workers`].
    pub workers: Vec<usize>,
}

/// One worker, pool facts and orchestrator load together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerView {
    /// The worker.
    pub id: WorkerId,
    /// Index of its host.
    pub node: usize,
    /// Index of its GPU, `None` for a CPU worker.
    pub gpu: Option<usize>,
    /// Its device.
    pub device: Device,
    /// The model it holds.
    pub model: ModelRef,
    /// Lifecycle state as the pool manager reports it.
    pub status: WorkerStatus,
    /// Device memory it holds, bytes.
    pub vram_used: u64,
    /// Concurrent sequences it can run (at least 1).
    pub slots_total: u32,
    /// Slots free now.
    pub free_slots: u32,
    /// Jobs running on it.
    pub active_jobs: u32,
    /// Last dispatch to it.
    pub last_used: Tick,
    /// Jobs dispatched to it so far.
    pub jobs_served: u64,
    /// Measured load time, milliseconds.
    pub load_time_ms: Option<u64>,
    /// When it became ready, if known.
    pub ready_at: Option<Tick>,
    /// Pinned by the operator: never evicted (ORCH-1050).
    pub pinned: bool,
    /// Start time as the pool reports it.
    pub started_at: u64,
}

impl WorkerView {
    /// Loaded and serving: `ready` or `busy`.
    pub fn is_serving(&self) -> bool {
        matches!(self.status, WorkerStatus::Ready | WorkerStatus::Busy)
    }

    /// Serving with a free slot: it can take one more job now (ORCH-1031).
    pub fn can_take_job(&self) -> bool {
        self.is_serving() && self.free_slots > 0
    }

    /// Busy slots per thousand slots (0..=1000).
    pub fn load_permille(&self) -> u32 {
        let total = u64::from(self.slots_total.max(1));
        let busy = total.saturating_sub(u64::from(self.free_slots));
        u32::try_from(busy * 1000 / total).unwrap_or(1000)
    }
}

/// Why pool states do not make a consistent snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Two pools reported the same node id.
    #[error("node {0} is reported twice")]
    DuplicateNode(NodeId),
    /// Two workers have the same id.
    #[error("worker {0} is reported twice")]
    DuplicateWorker(WorkerId),
    /// A worker sits on a GPU its node does not report.
    #[error("worker {worker} is on {device}, which node {node} does not report")]
    UnknownGpu {
        /// The worker.
        worker: WorkerId,
        /// Its node.
        node: NodeId,
        /// The device it claims.
        device: Device,
    },
}

/// The cluster as one scheduling round sees it.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    /// Hosts, in the order given.
    pub nodes: Vec<NodeView>,
    /// GPUs of all hosts.
    pub gpus: Vec<GpuView>,
    /// Workers of all hosts.
    pub workers: Vec<WorkerView>,
    by_model: HashMap<ModelRef, Vec<usize>>,
    by_id: HashMap<WorkerId, usize>,
}

impl ClusterSnapshot {
    /// Builds a snapshot from pool states, the orchestrator's loads and the pinned set.
    ///
    /// Free slots: `slots_total − active_jobs` where the orchestrator has a load entry
    /// for the worker, else the pool's `slots_free` (0 when it reports `busy`). A worker
    /// reporting no slot count is taken to have one slot (WORK-3060, M0).
    pub fn build(
        pools: &[PoolState],
        loads: &HashMap<WorkerId, WorkerLoad>,
        pinned: &HashSet<WorkerId>,
    ) -> Result<Self, SnapshotError> {
        let mut s = ClusterSnapshot::default();
        let mut node_ids = HashSet::new();
        for pool in pools {
            if !node_ids.insert(pool.node_id.clone()) {
                return Err(SnapshotError::DuplicateNode(pool.node_id.clone()));
            }
            let node = s.nodes.len();
            let first_gpu = s.gpus.len();
            for g in &pool.gpus {
                s.gpus.push(GpuView {
                    node,
                    id: g.id,
                    total_vram: g.total_vram,
                    available_vram: g.available_vram.min(g.total_vram),
                    workers: Vec::new(),
                });
            }
            s.nodes.push(NodeView {
                id: pool.node_id.clone(),
                gpus: (first_gpu..s.gpus.len()).collect(),
            });
            for w in &pool.workers {
                let gpu = match w.gpu {
                    Device::Cpu => None,
                    Device::Cuda(id) => Some(
                        (first_gpu..s.gpus.len())
                            .find(|&ix| s.gpus[ix].id == id)
                            .ok_or_else(|| SnapshotError::UnknownGpu {
                                worker: w.id.clone(),
                                node: pool.node_id.clone(),
                                device: w.gpu,
                            })?,
                    ),
                };
                let ix = s.workers.len();
                if s.by_id.insert(w.id.clone(), ix).is_some() {
                    return Err(SnapshotError::DuplicateWorker(w.id.clone()));
                }
                let slots_total = w.slots_total.max(1);
                let load = loads.get(&w.id);
                let free_slots = match load {
                    Some(l) => slots_total.saturating_sub(l.active_jobs),
                    None if w.status == WorkerStatus::Busy => 0,
                    None if w.slots_total == 0 => 1,
                    None => w.slots_free.min(slots_total),
                };
                let load = load.copied().unwrap_or_default();
                if let Some(g) = gpu {
                    s.gpus[g].workers.push(ix);
                }
                s.by_model.entry(w.model.clone()).or_default().push(ix);
                s.workers.push(WorkerView {
                    id: w.id.clone(),
                    node,
                    gpu,
                    device: w.gpu,
                    model: w.model.clone(),
                    status: w.status,
                    vram_used: w.vram_used,
                    slots_total,
                    free_slots,
                    active_jobs: load.active_jobs,
                    last_used: load.last_used,
                    jobs_served: load.jobs_served,
                    load_time_ms: load.load_time_ms,
                    ready_at: load.ready_at,
                    pinned: pinned.contains(&w.id),
                    started_at: w.started_at,
                });
            }
        }
        Ok(s)
    }

    /// Indices of the workers that hold `model` (any status).
    pub fn workers_for(&self, model: &ModelRef) -> &[usize] {
        self.by_model.get(model).map_or(&[], Vec::as_slice)
    }

    /// The index of a worker by id.
    pub fn worker_index(&self, id: &WorkerId) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Free memory of a worker's GPU (0 for a CPU worker).
    pub fn gpu_free_of(&self, worker: usize) -> u64 {
        self.workers
            .get(worker)
            .and_then(|w| w.gpu)
            .and_then(|g| self.gpus.get(g))
            .map_or(0, |g| g.available_vram)
    }

    /// Commits one job to a worker: one slot fewer, one active job more.
    /// `false` (and no change) when the worker cannot take a job.
    pub fn take_slot(&mut self, worker: usize, now: Tick) -> bool {
        match self.workers.get_mut(worker) {
            Some(w) if w.can_take_job() => {
                w.free_slots -= 1;
                w.active_jobs = w.active_jobs.saturating_add(1);
                w.jobs_served = w.jobs_served.saturating_add(1);
                w.last_used = now;
                true
            }
            _ => false,
        }
    }

    /// Reserves `bytes` on a GPU for a start decided in this round (or in flight).
    /// `false` (and no change) when the GPU lacks them: a start never over-commits (ORCH-1040).
    pub fn reserve_vram(&mut self, gpu: usize, bytes: u64) -> bool {
        match self.gpus.get_mut(gpu) {
            Some(g) if g.available_vram >= bytes => {
                g.available_vram -= bytes;
                true
            }
            _ => false,
        }
    }

    /// The largest device memory a worker of `model` holds, a measurement of its need.
    pub fn measured_vram(&self, model: &ModelRef) -> Option<u64> {
        self.workers_for(model)
            .iter()
            .map(|&ix| self.workers[ix].vram_used)
            .filter(|&b| b > 0)
            .max()
    }

    /// The index of a GPU by node index and ordinal.
    pub fn gpu_index(&self, node: usize, id: GpuId) -> Option<usize> {
        self.nodes
            .get(node)?
            .gpus
            .iter()
            .copied()
            .find(|&g| self.gpus[g].id == id)
    }

    /// The index of a node by id.
    pub fn node_index(&self, id: &NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| &n.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llorch_core::wire::pool::{GpuState, WorkerInfo};

    pub(crate) fn pool(node: &str, workers: &[(&str, &str, u32, WorkerStatus)]) -> PoolState {
        PoolState {
            node_id: NodeId::new(node).unwrap(),
            gpus: vec![GpuState {
                id: GpuId(0),
                name: String::new(),
                total_vram: 80,
                allocated_vram: 30,
                available_vram: 50,
                workers: vec![],
            }],
            workers: workers
                .iter()
                .map(|(id, model, slots, status)| WorkerInfo {
                    id: WorkerId::new(*id).unwrap(),
                    model: model.parse().unwrap(),
                    gpu: Device::Cuda(GpuId(0)),
                    vram_used: 10,
                    uri: String::new(),
                    status: *status,
                    started_at: 0,
                    slots_total: *slots,
                    slots_free: *slots,
                })
                .collect(),
        }
    }

    #[test]
    fn builds_indices_and_free_slots() {
        let p = pool(
            "n1",
            &[
                ("w1", "file:/a.gguf", 4, WorkerStatus::Ready),
                ("w2", "file:/b.gguf", 0, WorkerStatus::Ready),
                ("w3", "file:/a.gguf", 2, WorkerStatus::Busy),
            ],
        );
        let mut loads = HashMap::new();
        loads.insert(
            WorkerId::new("w1").unwrap(),
            WorkerLoad {
                active_jobs: 3,
                ..Default::default()
            },
        );
        let pinned = HashSet::from([WorkerId::new("w2").unwrap()]);
        let mut s = ClusterSnapshot::build(&[p], &loads, &pinned).unwrap();
        let a: ModelRef = "file:/a.gguf".parse().unwrap();
        assert_eq!(s.workers_for(&a), &[0, 2]);
        assert_eq!(s.workers[0].free_slots, 1);
        assert_eq!(s.workers[1].free_slots, 1);
        assert_eq!(s.workers[2].free_slots, 0);
        assert!(s.workers[1].pinned);
        assert_eq!(s.workers[0].load_permille(), 750);
        assert!(s.take_slot(0, Tick(9)));
        assert!(!s.take_slot(0, Tick(9)));
        assert_eq!(s.workers[0].last_used, Tick(9));
        assert!(s.reserve_vram(0, 50));
        assert!(!s.reserve_vram(0, 1));
        assert_eq!(s.measured_vram(&a), Some(10));
    }

    #[test]
    fn rejects_inconsistent_states() {
        let p = pool("n1", &[("w1", "file:/a.gguf", 1, WorkerStatus::Ready)]);
        let none = HashMap::new();
        let e = ClusterSnapshot::build(&[p.clone(), p.clone()], &none, &HashSet::new());
        assert!(matches!(e, Err(SnapshotError::DuplicateNode(_))));
        let mut q = pool("n2", &[("w1", "file:/a.gguf", 1, WorkerStatus::Ready)]);
        let e = ClusterSnapshot::build(&[p.clone(), q.clone()], &none, &HashSet::new());
        assert!(matches!(e, Err(SnapshotError::DuplicateWorker(_))));
        q.workers[0].gpu = Device::Cuda(GpuId(3));
        let e = ClusterSnapshot::build(&[q], &none, &HashSet::new());
        assert!(matches!(e, Err(SnapshotError::UnknownGpu { .. })));
    }
}
