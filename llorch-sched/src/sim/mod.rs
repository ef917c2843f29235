//! A seeded discrete-event simulator that drives the [`Scheduler`] through synthetic
//! traffic against a mock pool and engine.
//!
//! The mock cluster has nodes with GPUs (memory), workers with slots, models with
//! sizes and load times, and jobs whose service time is prefill + decode per token
//! (slowed a little per extra sequence in the batch). Arrivals are Poisson with a
//! periodic burst. Simulated time advances from event to event, so hours of traffic
//! take seconds; the same seed gives the same [`SimReport`]. The mock pool refuses
//! and counts every command that breaks an invariant ([`Violations`]).
//!
//! ```
//! use llorch_sched::sim::{SimConfig, simulate};
//! let mut cfg = SimConfig::demo(7);
//! cfg.duration_ms = 60_000;
//! let report = simulate(&cfg)?;
//! assert_eq!(report.violations.total(), 0);
//! println!("{report}");
//! # Ok::<(), llorch_sched::sim::SimError>(())
//! ```

mod cluster;
mod report;
mod rng;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;

use llorch_core::wire::pool::WorkerStatus;
use llorch_core::wire::task::Priority;
use llorch_core::{ErrorCode, JobId, ModelRef, SessionId, WorkerId};

pub use cluster::Violations;
pub use report::{ClassReport, Percentiles, SimReport};
pub use rng::SplitMix64;

use crate::affinity::AffinityKey;
use crate::catalog::{Catalog, CatalogEntry};
use crate::queue::{PushError, TenantId};
use crate::scheduler::{Action, JobRequest, Scheduler, SchedulerConfig, SubmitError};
use crate::tick::Tick;
use cluster::MockCluster;

const GIB: u64 = 1 << 30;

/// One simulated model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Catalog id.
    pub name: String,
    /// File size, bytes.
    pub size_bytes: u64,
    /// Memory a worker of it really holds, bytes.
    pub vram_bytes: u64,
    /// Context length, tokens.
    pub context_length: u32,
    /// Start-to-ready time, ms.
    pub load_ms: u64,
    /// Prefill time per prompt token, µs.
    pub prefill_us_per_token: u64,
    /// Decode time per generated token, µs.
    pub decode_us_per_token: u64,
    /// Slots per worker.
    pub slots: u32,
    /// Relative share of the traffic.
    pub share: f64,
}

/// The synthetic traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSpec {
    /// Mean arrivals per second outside bursts.
    pub jobs_per_sec: f64,
    /// Fraction of interactive jobs.
    pub interactive_share: f64,
    /// Prompt tokens, uniform in this range.
    pub prompt_tokens: (u32, u32),
    /// max_tokens, uniform in this range.
    pub max_tokens: (u32, u32),
    /// Tenants jobs are spread over (0 = none).
    pub tenants: u32,
    /// Sessions per model jobs are spread over, for affinity (0 = none).
    pub sessions: u32,
    /// Length of one burst cycle, ms (0 = no bursts).
    pub burst_period_ms: u64,
    /// Arrival-rate multiplier during the first quarter of each cycle.
    pub burst_factor: f64,
}

/// A simulation: cluster, models, traffic, scheduler settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of all randomness.
    pub seed: u64,
    /// Simulated time, ms.
    pub duration_ms: u64,
    /// Nodes.
    pub nodes: u32,
    /// GPUs per node.
    pub gpus_per_node: u32,
    /// Memory per GPU, bytes.
    pub gpu_vram: u64,
    /// Models.
    pub models: Vec<ModelSpec>,
    /// Traffic.
    pub traffic: TrafficSpec,
    /// Scheduler settings.
    pub scheduler: SchedulerConfig,
    /// Interval of the periodic scheduling round, ms.
    pub tick_ms: u64,
    /// Decode slowdown per extra sequence in a batch, per thousand.
    pub batch_slowdown_permille: u64,
}

impl SimConfig {
    /// One hour on 2 nodes × 2 GPUs of 24 GiB, six models of 1-18 GiB (more than fit at
    /// once with replicas), 4 jobs/s with 3× bursts in the first 2.5 min of every 10:
    /// enough pressure for starts, evictions and some queue-full refusals.
    pub fn demo(seed: u64) -> Self {
        let model = |name: &str, gib: u64, load_ms, decode_us, share| ModelSpec {
            name: name.into(),
            size_bytes: gib * GIB,
            vram_bytes: gib * GIB + gib * GIB / 10 + (256 << 20),
            context_length: 8192,
            load_ms,
            prefill_us_per_token: 200 + 50 * gib,
            decode_us_per_token: decode_us,
            slots: 8,
            share,
        };
        let mut scheduler = SchedulerConfig::default();
        scheduler.queue.capacity = 200;
        Self {
            seed,
            duration_ms: 3_600_000,
            nodes: 2,
            gpus_per_node: 2,
            gpu_vram: 24 * GIB,
            models: vec![
                model("tiny", 1, 2_000, 8_000, 0.30),
                model("small", 4, 6_000, 15_000, 0.25),
                model("medium", 8, 12_000, 25_000, 0.15),
                model("code", 8, 12_000, 25_000, 0.10),
                model("large", 14, 20_000, 40_000, 0.12),
                model("xl", 18, 30_000, 50_000, 0.08),
            ],
            traffic: TrafficSpec {
                jobs_per_sec: 4.0,
                interactive_share: 0.7,
                prompt_tokens: (16, 1024),
                max_tokens: (16, 256),
                tenants: 8,
                sessions: 50,
                burst_period_ms: 600_000,
                burst_factor: 3.0,
            },
            scheduler,
            tick_ms: 500,
            batch_slowdown_permille: 50,
        }
    }
}

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The scheduler settings are invalid.
    #[error(transparent)]
    Config(#[from] crate::scheduler::ConfigError),
    /// The mock pools' states were inconsistent (a simulator bug).
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// A generated id was invalid.
    #[error(transparent)]
    Id(#[from] llorch_core::IdError),
    /// The model list is unusable.
    #[error("invalid model list: {0}")]
    Models(String),
}

/// The canonical reference of simulated model `i`.
pub(crate) fn model_ref(i: usize) -> ModelRef {
    ModelRef::File(PathBuf::from(format!("/models/sim-{i}.gguf")))
}

/// A simulated job (the scheduler's payload).
#[derive(Debug, Clone, Copy)]
struct SimJob {
    arrival: Tick,
    priority: Priority,
    model: usize,
    prompt: u32,
    max_tokens: u32,
}

#[derive(Debug)]
enum Ev {
    Arrival,
    Done(WorkerId),
    Ready(WorkerId),
    Tick,
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    rng: SplitMix64,
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Ev>,
    seq: u64,
    cluster: MockCluster,
    sched: Scheduler<SimJob>,
    catalog: Catalog,
    model_ix: HashMap<ModelRef, usize>,
    waits: [Vec<u64>; 2],
    ttfts: [Vec<u64>; 2],
    running: u64,
    report: SimReport,
}

impl Sim<'_> {
    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn next_arrival(&mut self, now: u64) {
        let tr = &self.cfg.traffic;
        let burst = tr.burst_period_ms > 0 && now % tr.burst_period_ms < tr.burst_period_ms / 4;
        let rate = tr.jobs_per_sec * if burst { tr.burst_factor } else { 1.0 };
        if rate > 0.0 {
            let dt = self.rng.exp(1000.0 / rate).ceil() as u64;
            self.at(now + dt.max(1), Ev::Arrival);
        }
    }

    fn arrive(&mut self, now: Tick) -> Result<(), SimError> {
        self.report.arrivals += 1;
        let tr = &self.cfg.traffic;
        let total: f64 = self.cfg.models.iter().map(|m| m.share).sum();
        let mut pick = self.rng.unit() * total;
        let mut model = 0;
        for (i, m) in self.cfg.models.iter().enumerate() {
            model = i;
            if pick <= m.share {
                break;
            }
            pick -= m.share;
        }
        let priority = if self.rng.chance(tr.interactive_share) {
            Priority::Interactive
        } else {
            Priority::Batch
        };
        let prompt = self.rng.range(tr.prompt_tokens.0, tr.prompt_tokens.1);
        let max_tokens = self.rng.range(tr.max_tokens.0, tr.max_tokens.1);
        let tenant =
            (tr.tenants > 0).then(|| TenantId(format!("t{}", self.rng.range(0, tr.tenants - 1))));
        let affinity = if tr.sessions > 0 {
            // A session sticks to one model, as chat sessions do.
            let s = SessionId::new(format!("s{model}-{}", self.rng.range(0, tr.sessions - 1)))?;
            Some(AffinityKey::session(&s))
        } else {
            None
        };
        let req = JobRequest {
            id: JobId::new(format!("job-{}", self.report.arrivals))?,
            priority,
            model: self.cfg.models[model].name.clone(),
            prompt_tokens: prompt,
            max_tokens: Some(max_tokens),
            tenant,
            affinity,
        };
        let job = SimJob {
            arrival: now,
            priority,
            model,
            prompt,
            max_tokens,
        };
        match self.sched.submit(&self.catalog, req, job, now) {
            Ok(s) => {
                self.report.shed += u64::from(s.shed.is_some());
                self.report.max_queue_depth =
                    self.report.max_queue_depth.max(self.sched.queue().len());
            }
            Err(r) => match r.error {
                SubmitError::Queue(PushError::Full(_)) => self.report.rejected_queue_full += 1,
                SubmitError::Admission(_) => self.report.rejected_admission += 1,
                SubmitError::Queue(_) => self.report.rejected_pool += 1,
            },
        }
        Ok(())
    }

    fn apply(&mut self, action: Action<SimJob>, now: Tick) {
        match action {
            Action::Dispatch {
                job,
                worker,
                affine,
                ..
            } => {
                let j = job.payload;
                if !self.cluster.dispatch(&worker, j.model) {
                    return;
                }
                let active = self.cluster.worker_mut(&worker).map_or(1, |w| w.active);
                let spec = &self.cfg.models[j.model];
                let prefill = u64::from(j.prompt) * spec.prefill_us_per_token / 1000;
                let slow =
                    1000 + self.cfg.batch_slowdown_permille * u64::from(active.saturating_sub(1));
                let decode = u64::from(j.max_tokens) * spec.decode_us_per_token * slow / 1_000_000;
                let c = usize::from(j.priority == Priority::Batch);
                let wait = now.since(j.arrival);
                self.waits[c].push(wait);
                self.ttfts[c].push(wait + prefill);
                self.report.affine_dispatches += u64::from(affine);
                self.running += 1;
                self.at(now.0 + (prefill + decode).max(1), Ev::Done(worker));
            }
            Action::StartWorker { node, request, .. } => {
                self.report.starts += 1;
                let (Some(&m), Some(id)) = (self.model_ix.get(&request.model), request.worker_id)
                else {
                    self.cluster.violations.unknown_target += 1;
                    return;
                };
                let spec = &self.cfg.models[m];
                if self
                    .cluster
                    .start(&node, request.device, id.clone(), m, spec)
                    .is_some()
                {
                    self.at(now.0 + spec.load_ms, Ev::Ready(id));
                }
            }
            Action::Stop { worker, .. } => {
                if self.cluster.stop(&worker, false) {
                    self.report.evictions += 1;
                }
            }
            Action::Drain { worker, .. } => {
                self.report.drains += 1;
                if let Some(w) = self.cluster.worker_mut(&worker) {
                    w.status = WorkerStatus::Draining;
                }
            }
            Action::StartTimedOut { worker, .. } => {
                self.report.start_timeouts += 1;
                self.cluster.stop(&worker, true);
            }
            Action::Reject { error, .. } => match error.code {
                ErrorCode::AdmissionReject => self.report.rejected_admission += 1,
                _ => self.report.rejected_pool += 1,
            },
        }
    }

    fn handle(&mut self, ev: Ev, now: Tick) -> Result<(), SimError> {
        match ev {
            Ev::Arrival => {
                self.arrive(now)?;
                self.next_arrival(now.0);
            }
            Ev::Done(worker) => {
                if let Some(w) = self.cluster.worker_mut(&worker) {
                    w.active = w.active.saturating_sub(1);
                }
                self.sched.complete(&worker, now);
                self.running = self.running.saturating_sub(1);
                self.report.completed += 1;
            }
            Ev::Ready(worker) => {
                if let Some(w) = self
                    .cluster
                    .worker_mut(&worker)
                    .filter(|w| w.status == WorkerStatus::Starting)
                {
                    w.status = WorkerStatus::Ready;
                }
            }
            Ev::Tick => self.at(now.0 + self.cfg.tick_ms.max(1), Ev::Tick),
        }
        Ok(())
    }

    fn run(mut self) -> Result<SimReport, SimError> {
        self.next_arrival(0);
        self.at(self.cfg.tick_ms.max(1), Ev::Tick);
        while let Some(Reverse((t, _))) = self.heap.peek().copied() {
            if t > self.cfg.duration_ms {
                break;
            }
            let now = Tick(t);
            while let Some(&Reverse((t2, seq))) = self.heap.peek() {
                if t2 != t {
                    break;
                }
                self.heap.pop();
                if let Some(ev) = self.events.remove(&seq) {
                    self.handle(ev, now)?;
                }
            }
            if self.sched.is_idle() {
                continue;
            }
            let pools = self.cluster.pool_states();
            for a in self.sched.schedule(&pools, &self.catalog, now)? {
                self.apply(a, now);
            }
        }
        let mut r = self.report;
        r.simulated_ms = self.cfg.duration_ms;
        r.queue_capacity = self.sched.queue().config().capacity;
        r.unfinished = self.sched.queue().len() as u64 + self.running;
        r.violations = self.cluster.violations;
        let [wi, wb] = &mut self.waits;
        let [ti, tb] = &mut self.ttfts;
        r.interactive = ClassReport {
            queue_wait: Percentiles::of(wi),
            ttft: Percentiles::of(ti),
        };
        r.batch = ClassReport {
            queue_wait: Percentiles::of(wb),
            ttft: Percentiles::of(tb),
        };
        Ok(r)
    }
}

/// Runs one simulation.
pub fn simulate(cfg: &SimConfig) -> Result<SimReport, SimError> {
    if cfg.models.is_empty()
        || cfg
            .models
            .iter()
            .any(|m| !m.share.is_finite() || m.share < 0.0 || m.slots == 0)
    {
        return Err(SimError::Models(
            "need at least one model, each with slots > 0 and share >= 0".into(),
        ));
    }
    let mut catalog = Catalog::new();
    let mut model_ix = HashMap::new();
    for (i, m) in cfg.models.iter().enumerate() {
        catalog
            .insert(CatalogEntry::new(
                m.name.clone(),
                model_ref(i),
                m.context_length,
                m.size_bytes,
            ))
            .map_err(|e| SimError::Models(e.to_string()))?;
        model_ix.insert(model_ref(i), i);
    }
    let sim = Sim {
        cfg,
        rng: SplitMix64::new(cfg.seed),
        heap: BinaryHeap::new(),
        events: HashMap::new(),
        seq: 0,
        cluster: MockCluster::new(cfg.nodes, cfg.gpus_per_node, cfg.gpu_vram)?,
        sched: Scheduler::new(cfg.scheduler.clone())?,
        catalog,
        model_ix,
        waits: [Vec::new(), Vec::new()],
        ttfts: [Vec::new(), Vec::new()],
        running: 0,
        report: SimReport {
            seed: cfg.seed,
            ..SimReport::default()
        },
    };
    sim.run()
}
