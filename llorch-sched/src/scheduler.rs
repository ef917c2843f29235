//! [`Scheduler`]: queue, admission, placement, starts and eviction in one value.
//!
//! It holds the scheduler's own state (the queue, budgets, placement cursor and
//! affinity, per-worker loads, starts in flight, workers being retired) and turns
//! `(pool states, catalog, now)` into [`Action`]s for the caller to carry out. It
//! performs no I/O and reads no clock, so the same code runs in the orchestrator
//! daemon, in an embedding application and in the [simulator](crate::sim).

use std::collections::{HashMap, HashSet};

use llorch_core::wire::pool::{PoolState, StartWorkerRequest, WorkerStatus};
use llorch_core::{Device, Error, GpuId, JobId, ModelRef, NodeId, WorkerId};

use crate::admission::{self, AdmissionConfig, AdmissionRequest, BudgetConfig, TokenBudgets};
use crate::catalog::Catalog;
use crate::decide::{self, DecideContext, Decision};
use crate::eviction::{EvictionConfig, VictimAction};
use crate::placement::{PlacementConfig, PlacementRequest, PlacementState};
use crate::queue::{JobMeta, JobQueue, QueueConfig, QueuedJob, TenantId};
use crate::snapshot::{ClusterSnapshot, SnapshotError, WorkerLoad};
use crate::start::{GpuChoice, MemoryEstimate};
use crate::tick::Tick;

/// All scheduler settings (ORCH-1140).
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Queue capacity, full policy, aging, fair share.
    pub queue: QueueConfig,
    /// Admission defaults.
    pub admission: AdmissionConfig,
    /// Token budgets.
    pub budgets: BudgetConfig,
    /// Placement algorithm and affinity.
    pub placement: PlacementConfig,
    /// GPU choice for starts.
    pub gpu_choice: GpuChoice,
    /// Memory estimate for unmeasured models.
    pub memory: MemoryEstimate,
    /// Eviction policy.
    pub eviction: EvictionConfig,
    /// A start not ready after this long is given up (ORCH-1042, default 60 000 ms).
    pub start_timeout_ms: u64,
    /// Start another replica of a model when this many jobs wait for it; `None` = never.
    pub scale_out_backlog: Option<usize>,
    /// Prefix of the ids the scheduler gives new workers (`{prefix}-{n}`).
    pub worker_id_prefix: String,
    /// `max_seqs` asked of new workers, or the worker's default.
    pub max_seqs: Option<u32>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            queue: QueueConfig::default(),
            admission: AdmissionConfig::default(),
            budgets: BudgetConfig::default(),
            placement: PlacementConfig::default(),
            gpu_choice: GpuChoice::BestFit,
            memory: MemoryEstimate::default(),
            eviction: EvictionConfig::default(),
            start_timeout_ms: 60_000,
            scale_out_backlog: Some(8),
            worker_id_prefix: "worker".into(),
            max_seqs: None,
        }
    }
}

/// Invalid settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The worker id prefix does not make valid worker ids.
    #[error("worker_id_prefix {0:?} does not make valid worker ids (1-100 of [A-Za-z0-9._:-])")]
    WorkerIdPrefix(String),
    /// The queue capacity is zero.
    #[error("queue capacity must be at least 1")]
    ZeroCapacity,
}

pub use crate::io::{Action, JobRequest, SubmitError, SubmitRefused, Submitted};

#[derive(Debug, Clone)]
struct PendingStart {
    worker: WorkerId,
    model: ModelRef,
    node: NodeId,
    gpu: GpuId,
    need: u64,
    issued: Tick,
}

/// The scheduler. `T` is the caller's per-job payload.
#[derive(Debug)]
pub struct Scheduler<T> {
    cfg: SchedulerConfig,
    queue: JobQueue<T>,
    budgets: TokenBudgets,
    placement: PlacementState,
    loads: HashMap<WorkerId, WorkerLoad>,
    pinned: HashSet<WorkerId>,
    manual: Vec<WorkerId>,
    pending: Vec<PendingStart>,
    retiring: HashMap<WorkerId, bool>,
    timed_out: HashMap<ModelRef, u32>,
    demand: HashMap<ModelRef, usize>,
    next_worker: u64,
}

impl<T> Scheduler<T> {
    /// A scheduler with these settings.
    pub fn new(cfg: SchedulerConfig) -> Result<Self, ConfigError> {
        if cfg.worker_id_prefix.len() > 100
            || WorkerId::new(format!("{}-0", cfg.worker_id_prefix)).is_err()
        {
            return Err(ConfigError::WorkerIdPrefix(cfg.worker_id_prefix));
        }
        if cfg.queue.capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        Ok(Self {
            queue: JobQueue::new(cfg.queue.clone()),
            budgets: TokenBudgets::new(cfg.budgets.clone()),
            placement: PlacementState::default(),
            loads: HashMap::new(),
            pinned: HashSet::new(),
            manual: Vec::new(),
            pending: Vec::new(),
            retiring: HashMap::new(),
            timed_out: HashMap::new(),
            demand: HashMap::new(),
            next_worker: 0,
            cfg,
        })
    }

    /// The settings.
    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    /// The queue (read-only: depth, positions, service rate).
    pub fn queue(&self) -> &JobQueue<T> {
        &self.queue
    }

    /// The orchestrator's per-worker loads.
    pub fn loads(&self) -> &HashMap<WorkerId, WorkerLoad> {
        &self.loads
    }

    /// Nothing queued, starting or being retired: a round would do nothing.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.pending.is_empty() && self.retiring.is_empty()
    }

    /// Token budgets.
    pub fn budgets(&self) -> &TokenBudgets {
        &self.budgets
    }

    /// Pins or unpins a worker: pinned workers are never evicted (ORCH-1050).
    pub fn set_pinned(&mut self, worker: WorkerId, pinned: bool) {
        if pinned {
            self.pinned.insert(worker);
        } else {
            self.pinned.remove(&worker);
        }
    }

    /// The workers the `manual` eviction policy may pick, in order.
    pub fn set_manual_victims(&mut self, workers: Vec<WorkerId>) {
        self.manual = workers;
    }

    /// Admits and enqueues a job (ORCH-1010..1012) and charges its tenant's budget.
    pub fn submit(
        &mut self,
        catalog: &Catalog,
        req: JobRequest,
        payload: T,
        now: Tick,
    ) -> Result<Submitted<T>, SubmitRefused<T>> {
        let areq = AdmissionRequest {
            model: &req.model,
            prompt_tokens: req.prompt_tokens,
            max_tokens: req.max_tokens,
            tenant: req.tenant.as_ref(),
        };
        let admitted =
            match admission::admit(catalog, &self.cfg.admission, &self.budgets, &areq, now) {
                Ok(a) => a,
                Err(e) => {
                    return Err(SubmitRefused {
                        error: e.into(),
                        payload,
                    });
                }
            };
        let meta = JobMeta {
            id: req.id,
            priority: req.priority,
            model: admitted.model.clone(),
            tenant: req.tenant,
            cost_tokens: admitted.cost_tokens,
            affinity: req.affinity,
        };
        let tenant = meta.tenant.clone();
        match self.queue.push(meta, payload, now) {
            Ok(p) => {
                *self.demand.entry(admitted.model.clone()).or_insert(0) += 1;
                if let Some(t) = &tenant {
                    self.budgets.charge(t, u64::from(admitted.cost_tokens), now);
                }
                if let Some(shed) = &p.shed {
                    self.refund(shed, now);
                }
                Ok(Submitted {
                    position: p.position,
                    predicted_start_ms: self.queue.predicted_start_ms(p.position, now),
                    admitted,
                    shed: p.shed,
                })
            }
            Err(r) => Err(SubmitRefused {
                error: r.error.into(),
                payload: r.job.payload,
            }),
        }
    }

    /// Bookkeeping for a job that left the queue without running: demand and budget.
    fn refund(&mut self, job: &QueuedJob<T>, now: Tick) {
        self.unqueued(&job.meta.model);
        if let Some(t) = &job.meta.tenant {
            self.budgets.refund(t, u64::from(job.meta.cost_tokens), now);
        }
    }

    fn unqueued(&mut self, model: &ModelRef) {
        if let Some(n) = self.demand.get_mut(model) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.demand.remove(model);
            }
        }
    }

    /// Removes a queued job (client cancel or disconnect); idempotent. Refunds its budget.
    pub fn cancel(&mut self, job: &JobId, now: Tick) -> Option<QueuedJob<T>> {
        let j = self.queue.remove(job)?;
        self.refund(&j, now);
        Some(j)
    }

    /// Reports that a dispatched job ended on `worker` (any outcome): frees its slot and
    /// feeds the service rate behind `Retry-After`.
    pub fn complete(&mut self, worker: &WorkerId, now: Tick) {
        if let Some(l) = self.loads.get_mut(worker) {
            l.active_jobs = l.active_jobs.saturating_sub(1);
        }
        self.queue.record_completion(now);
    }

    /// Gives back budget a job charged but did not use (it generated fewer tokens).
    pub fn refund_tokens(&mut self, tenant: &TenantId, tokens: u64, now: Tick) {
        self.budgets.refund(tenant, tokens, now);
    }

    /// Forgets a worker's load and affinity (it is gone; the pool state says so too).
    fn forget_worker(&mut self, id: &WorkerId) {
        self.loads.remove(id);
        self.placement.affinity.forget_worker(id);
        self.retiring.remove(id);
    }

    /// Brings the scheduler's own state in line with the pools' facts; returns the
    /// actions that follow (timed-out starts, drained workers to stop).
    fn reconcile(&mut self, pools: &[PoolState], now: Tick, actions: &mut Vec<Action<T>>) {
        // Per worker: status, node, and whether the pool reports all its slots free.
        let mut seen: HashMap<&WorkerId, (WorkerStatus, &NodeId, bool)> = HashMap::new();
        for p in pools {
            for w in &p.workers {
                let pool_idle = w.status != WorkerStatus::Busy && w.slots_free >= w.slots_total;
                seen.insert(&w.id, (w.status, &p.node_id, pool_idle));
            }
        }
        let gone: Vec<WorkerId> = self
            .loads
            .keys()
            .chain(self.retiring.keys())
            .filter(|id| !seen.contains_key(id))
            .cloned()
            .collect();
        for id in &gone {
            self.forget_worker(id);
        }
        let timeout = self.cfg.start_timeout_ms;
        let mut keep = Vec::with_capacity(self.pending.len());
        for p in std::mem::take(&mut self.pending) {
            match seen.get(&p.worker).map(|s| s.0) {
                Some(WorkerStatus::Ready | WorkerStatus::Busy) => {
                    let l = self.loads.entry(p.worker.clone()).or_default();
                    l.load_time_ms = Some(now.since(p.issued));
                    l.ready_at = Some(now);
                    l.last_used = now;
                    self.timed_out.remove(&p.model);
                }
                Some(WorkerStatus::Failed | WorkerStatus::Draining) => {}
                _ if now.since(p.issued) > timeout => {
                    *self.timed_out.entry(p.model.clone()).or_insert(0) += 1;
                    self.retiring.insert(p.worker.clone(), true);
                    actions.push(Action::StartTimedOut {
                        node: p.node.clone(),
                        worker: p.worker.clone(),
                    });
                }
                _ => keep.push(p),
            }
        }
        self.pending = keep;
        for (id, stop_sent) in self.retiring.iter_mut() {
            let Some(&(_, node, pool_idle)) = seen.get(id) else {
                continue;
            };
            // Our own count when we dispatched to it, else the pool's slots (SYS-0021).
            let idle = self.loads.get(id).map_or(pool_idle, |l| l.active_jobs == 0);
            if !*stop_sent && idle {
                *stop_sent = true;
                actions.push(Action::Stop {
                    node: node.clone(),
                    worker: id.clone(),
                });
            }
        }
    }

    /// One scheduling round at `now` (ORCH-1020..1052): dispatches every queued job that
    /// a worker can take, in queue order, and decides starts, evictions, waits and
    /// rejections for the rest. Each model is decided at most once per round when it
    /// cannot be served, so a round costs O(jobs dispatched + models).
    pub fn schedule(
        &mut self,
        pools: &[PoolState],
        catalog: &Catalog,
        now: Tick,
    ) -> Result<Vec<Action<T>>, SnapshotError> {
        let mut actions = Vec::new();
        self.reconcile(pools, now, &mut actions);
        let mut snap = ClusterSnapshot::build(pools, &self.loads, &self.pinned)?;
        for w in &mut snap.workers {
            if self.retiring.contains_key(&w.id) {
                w.status = WorkerStatus::Draining;
            }
        }
        for p in &self.pending {
            if snap.worker_index(&p.worker).is_none() {
                let gpu = snap
                    .node_index(&p.node)
                    .and_then(|n| snap.gpu_index(n, p.gpu));
                if let Some(g) = gpu {
                    snap.reserve_vram(g, p.need);
                }
            }
        }
        let mut blocked: Vec<ModelRef> = Vec::new();
        while let Some(job) = self.queue.select(now, |m| !blocked.contains(&m.model)) {
            let waited_ms = now.since(job.enqueued_at);
            let (id, model, affinity) = (
                job.meta.id.clone(),
                job.meta.model.clone(),
                job.meta.affinity,
            );
            let ctx = DecideContext {
                catalog,
                placement: &self.cfg.placement,
                gpu_choice: self.cfg.gpu_choice,
                memory: &self.cfg.memory,
                eviction: &self.cfg.eviction,
                manual: &self.manual,
                start_pending: self.pending.iter().any(|p| p.model == model),
                demand: &self.demand,
                scale_out_backlog: self.cfg.scale_out_backlog,
                waited_ms,
            };
            let req = PlacementRequest {
                model: &model,
                affinity,
            };
            let decision = decide::decide(&snap, &ctx, req, &mut self.placement, now);
            match decision {
                Decision::Dispatch { index, affine } => {
                    let Some(job) = self.queue.take(&id) else {
                        break;
                    };
                    self.unqueued(&job.meta.model);
                    snap.take_slot(index, now);
                    let w = &snap.workers[index];
                    let l = self.loads.entry(w.id.clone()).or_default();
                    l.active_jobs = l.active_jobs.saturating_add(1);
                    l.jobs_served = l.jobs_served.saturating_add(1);
                    l.last_used = now;
                    actions.push(Action::Dispatch {
                        job,
                        worker: w.id.clone(),
                        node: snap.nodes[w.node].id.clone(),
                        affine,
                    });
                }
                Decision::Start(plan) if self.timed_out.get(&model).copied().unwrap_or(0) >= 2 => {
                    let _ = plan;
                    self.reject_model(
                        &model,
                        "worker start timed out twice (ORCH-1042)",
                        now,
                        &mut actions,
                    );
                }
                Decision::Start(plan) => {
                    let worker = WorkerId::new(format!(
                        "{}-{}",
                        self.cfg.worker_id_prefix, self.next_worker
                    ));
                    let (Ok(worker), true) = (worker, snap.reserve_vram(plan.gpu, plan.need))
                    else {
                        blocked.push(model);
                        continue;
                    };
                    self.next_worker += 1;
                    let gpu = snap.gpus[plan.gpu].id;
                    let node = snap.nodes[plan.node].id.clone();
                    self.pending.push(PendingStart {
                        worker: worker.clone(),
                        model: model.clone(),
                        node: node.clone(),
                        gpu,
                        need: plan.need,
                        issued: now,
                    });
                    actions.push(Action::StartWorker {
                        node,
                        request: StartWorkerRequest {
                            model: model.clone(),
                            device: Device::Cuda(gpu),
                            worker_id: Some(worker),
                            max_seqs: self.cfg.max_seqs,
                            ctx: None,
                        },
                        need_bytes: plan.need,
                    });
                    blocked.push(model);
                }
                Decision::Evict(plan) => {
                    for v in plan.victims {
                        let w = &mut snap.workers[v.worker];
                        w.status = WorkerStatus::Draining;
                        let (worker, node) = (w.id.clone(), snap.nodes[w.node].id.clone());
                        let stop = v.action == VictimAction::Stop;
                        self.retiring.insert(worker.clone(), stop);
                        actions.push(if stop {
                            Action::Stop { node, worker }
                        } else {
                            Action::Drain { node, worker }
                        });
                    }
                    blocked.push(model);
                }
                Decision::Wait(_) => blocked.push(model),
                Decision::Reject(reason) => {
                    if let Some(job) = self.queue.take(&id) {
                        self.refund(&job, now);
                        actions.push(Action::Reject {
                            job,
                            error: reason.to_error(),
                        });
                    }
                }
            }
        }
        Ok(actions)
    }

    fn reject_model(
        &mut self,
        model: &ModelRef,
        why: &str,
        now: Tick,
        actions: &mut Vec<Action<T>>,
    ) {
        self.timed_out.remove(model);
        for job in self.queue.remove_where(|m| &m.model == model) {
            self.refund(&job, now);
            let error = Error::new(llorch_core::ErrorCode::WorkerStartTimeout, why);
            actions.push(Action::Reject { job, error });
        }
    }
}
