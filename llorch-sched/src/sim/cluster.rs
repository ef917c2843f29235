//! The mock pool managers and engines of the simulator: GPUs with memory, workers
//! with slots, model load times. It checks the scheduler's commands the way a real
//! pool manager would and counts every command that breaks an invariant.

use std::collections::HashMap;

use llorch_core::wire::pool::{GpuState, PoolState, WorkerInfo, WorkerStatus};
use llorch_core::{Device, GpuId, NodeId, WorkerId};

use super::ModelSpec;

/// One simulated worker.
#[derive(Debug, Clone)]
pub(crate) struct MockWorker {
    pub id: WorkerId,
    pub model: usize,
    pub node: usize,
    pub gpu: usize,
    pub vram: u64,
    pub status: WorkerStatus,
    pub slots: u32,
    pub active: u32,
}

/// Commands that broke an invariant (all must stay 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Violations {
    /// A job sent to a worker that was not serving, lacked the model or had no free slot.
    pub bad_dispatch: u64,
    /// A start the GPU's free memory could not hold.
    pub start_overcommit: u64,
    /// A stop of a worker with jobs in flight (it must be drained first).
    pub killed_busy: u64,
    /// A command naming an unknown node, GPU or worker.
    pub unknown_target: u64,
}

impl Violations {
    /// Sum of all counters.
    pub fn total(&self) -> u64 {
        self.bad_dispatch + self.start_overcommit + self.killed_busy + self.unknown_target
    }
}

/// The simulated cluster.
#[derive(Debug)]
pub(crate) struct MockCluster {
    pub nodes: Vec<NodeId>,
    /// (node, ordinal, total, allocated)
    pub gpus: Vec<(usize, u32, u64, u64)>,
    pub workers: Vec<Option<MockWorker>>,
    pub by_id: HashMap<WorkerId, usize>,
    pub violations: Violations,
}

impl MockCluster {
    pub fn new(nodes: u32, gpus_per_node: u32, vram: u64) -> Result<Self, llorch_core::IdError> {
        let mut c = MockCluster {
            nodes: Vec::new(),
            gpus: Vec::new(),
            workers: Vec::new(),
            by_id: HashMap::new(),
            violations: Violations::default(),
        };
        for n in 0..nodes {
            c.nodes.push(NodeId::new(format!("node-{n}"))?);
            for g in 0..gpus_per_node {
                c.gpus.push((n as usize, g, vram, 0));
            }
        }
        Ok(c)
    }

    /// The pool states the scheduler reads.
    pub fn pool_states(&self) -> Vec<PoolState> {
        let mut pools: Vec<PoolState> = self
            .nodes
            .iter()
            .map(|n| PoolState {
                node_id: n.clone(),
                gpus: Vec::new(),
                workers: Vec::new(),
            })
            .collect();
        for &(node, ord, total, alloc) in &self.gpus {
            pools[node].gpus.push(GpuState {
                id: GpuId(ord),
                name: String::new(),
                total_vram: total,
                allocated_vram: alloc,
                available_vram: total.saturating_sub(alloc),
                workers: Vec::new(),
            });
        }
        for w in self.workers.iter().flatten() {
            let ord = self.gpus[w.gpu].1;
            let p = &mut pools[w.node];
            if let Some(g) = p.gpus.iter_mut().find(|g| g.id == GpuId(ord)) {
                g.workers.push(w.id.clone());
            }
            p.workers.push(WorkerInfo {
                id: w.id.clone(),
                model: super::model_ref(w.model),
                gpu: Device::Cuda(GpuId(ord)),
                vram_used: w.vram,
                uri: String::new(),
                status: w.status,
                started_at: 0,
                slots_total: w.slots,
                slots_free: w.slots.saturating_sub(w.active),
            });
        }
        pools
    }

    /// Starts a worker; `Some(index)` when it fits (it becomes ready later).
    pub fn start(
        &mut self,
        node: &NodeId,
        device: Device,
        id: WorkerId,
        model: usize,
        spec: &ModelSpec,
    ) -> Option<usize> {
        let n = self.nodes.iter().position(|x| x == node);
        let g = match (n, device) {
            (Some(n), Device::Cuda(GpuId(ord))) => {
                self.gpus.iter().position(|g| g.0 == n && g.1 == ord)
            }
            _ => None,
        };
        let (Some(n), Some(g)) = (n, g) else {
            self.violations.unknown_target += 1;
            return None;
        };
        let (_, _, total, alloc) = &mut self.gpus[g];
        if total.saturating_sub(*alloc) < spec.vram_bytes {
            self.violations.start_overcommit += 1;
            return None;
        }
        *alloc += spec.vram_bytes;
        let ix = self.workers.len();
        self.by_id.insert(id.clone(), ix);
        self.workers.push(Some(MockWorker {
            id,
            model,
            node: n,
            gpu: g,
            vram: spec.vram_bytes,
            status: WorkerStatus::Starting,
            slots: spec.slots,
            active: 0,
        }));
        Some(ix)
    }

    pub fn worker_mut(&mut self, id: &WorkerId) -> Option<&mut MockWorker> {
        let ix = *self.by_id.get(id)?;
        self.workers.get_mut(ix)?.as_mut()
    }

    /// Takes one slot of a worker for a job of `model`; `false` counts a violation.
    pub fn dispatch(&mut self, id: &WorkerId, model: usize) -> bool {
        let ok = self.worker_mut(id).is_some_and(|w| {
            let ok = matches!(w.status, WorkerStatus::Ready | WorkerStatus::Busy)
                && w.model == model
                && w.active < w.slots;
            if ok {
                w.active += 1;
            }
            ok
        });
        if !ok {
            self.violations.bad_dispatch += 1;
        }
        ok
    }

    /// Stops a worker, freeing its memory. `force` (a timed-out start) may kill.
    pub fn stop(&mut self, id: &WorkerId, force: bool) -> bool {
        let Some(&ix) = self.by_id.get(id) else {
            self.violations.unknown_target += 1;
            return false;
        };
        let Some(w) = self.workers[ix].as_ref() else {
            return false;
        };
        if w.active > 0 && !force {
            self.violations.killed_busy += 1;
            return false;
        }
        let (g, vram) = (w.gpu, w.vram);
        self.gpus[g].3 = self.gpus[g].3.saturating_sub(vram);
        self.workers[ix] = None;
        self.by_id.remove(id);
        true
    }
}
