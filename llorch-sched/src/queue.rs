//! [`JobQueue`]: the bounded two-priority queue (ORCH-1010..1012, ORCH-1020..1022).
//!
//! # Order
//! Every entry has an *order key*: its enqueue tick for `interactive` work, its enqueue
//! tick plus the aging allowance `A` ([`QueueConfig::batch_aging_ms`]) for `batch` work.
//! The next job is the one with the smallest key; ties go to interactive, then to the
//! earlier arrival. So interactive work goes first (ORCH-1021), each priority is FIFO,
//! and a batch job goes ahead of an interactive one exactly when it has waited `A`
//! longer than that interactive job has (aging, ORCH-1022).
//!
//! # Batch wait bound
//! A job enqueued at `t` has key `≤ t + A`; nothing enqueued after `t + A` can get a
//! smaller key. So once `t + A` (plus the fair-share slack `S`, below) has passed, at
//! most `capacity − 1` jobs can still leave by [`JobQueue::dequeue`] before it. If the
//! cluster dequeues at least once every `D` ms while work is queued, every job waits at
//! most `A + S + (capacity − 1)·D`. The property tests check the counting form.
//!
//! # Fair share (optional)
//! With [`FairShare`] on, the class (interactive or batch) is chosen as above, but within
//! it the job comes from the tenant with the fewest *virtual tokens* served (the job's
//! `cost_tokens` are charged when it leaves by dequeue); each tenant stays FIFO, and a
//! fair pick never jumps ahead of the other class's head (so interactive still goes
//! first except where aging says otherwise). A tenant
//! that becomes active starts at the smallest counter among active tenants, so idle time
//! is not banked. A job that is `S` ms past its key is served in key order regardless,
//! which keeps the bound above.
//!
//! # Full queue
//! `reject` refuses the new job; `drop-lru` sheds the oldest batch job (then, for an
//! interactive newcomer only, the oldest interactive job). Refusals carry a retry delay
//! from the queue depth and the measured service rate ([`ServiceRate`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;

use llorch_core::wire::task::Priority;
use llorch_core::{Error, ErrorCode, JobId, ModelRef};

use crate::affinity::AffinityKey;
use crate::rate::{RateConfig, ServiceRate};
use crate::tick::Tick;

/// A tenant (an API key, an account): the unit of budgets and fair share.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub String);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a full queue does with a new job (ORCH-1010).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FullPolicy {
    /// Refuse the new job with `QUEUE_FULL`.
    Reject,
    /// Shed the oldest batch job (then the oldest interactive one for an interactive job).
    DropLru,
}

impl FullPolicy {
    /// The `policy_label` of ORCH-1012: `reject` or `drop-lru`.
    pub fn label(self) -> &'static str {
        match self {
            FullPolicy::Reject => "reject",
            FullPolicy::DropLru => "drop-lru",
        }
    }
}

/// Fair share between tenants by tokens served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FairShare {
    /// Milliseconds past its order key after which a job is served in key order (`S`).
    pub slack_ms: u64,
}

/// Queue settings (ORCH-1140).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// Most queued jobs (default 100).
    pub capacity: usize,
    /// Full-queue behaviour.
    pub full_policy: FullPolicy,
    /// Aging allowance `A` of batch work, milliseconds (default 10 000).
    pub batch_aging_ms: u64,
    /// Fair share between tenants, off by default.
    pub fair_share: Option<FairShare>,
    /// Most entries one selection skips over before giving up (default 1024).
    pub scan_limit: usize,
    /// Service-rate estimator behind retry delays.
    pub rate: RateConfig,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 100,
            full_policy: FullPolicy::Reject,
            batch_aging_ms: 10_000,
            fair_share: None,
            scan_limit: 1024,
            rate: RateConfig::default(),
        }
    }
}

/// What the scheduler needs to know about a queued job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobMeta {
    /// The job.
    pub id: JobId,
    /// Its priority.
    pub priority: Priority,
    /// The canonical model it needs.
    pub model: ModelRef,
    /// Its tenant, if any (budgets and fair share).
    pub tenant: Option<TenantId>,
    /// Tokens it is expected to cost (prompt + max_tokens), for fair share.
    pub cost_tokens: u32,
    /// Session or prefix affinity, if any.
    pub affinity: Option<AffinityKey>,
}

/// A job in (or just out of) the queue, with the caller's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJob<T> {
    /// Scheduling facts.
    pub meta: JobMeta,
    /// Whatever the caller attached (the validated job, a response channel, …).
    pub payload: T,
    /// When it was enqueued.
    pub enqueued_at: Tick,
}

/// A full queue's refusal (ORCH-1012), carried to the client as HTTP 429.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue is full ({depth}/{capacity}, policy {}); retry after {retry_after_ms} ms", .policy.label())]
pub struct QueueFull {
    /// The policy in force.
    pub policy: FullPolicy,
    /// Advertised delay, from depth and measured service rate.
    pub retry_after_ms: u64,
    /// Jobs queued.
    pub depth: usize,
    /// Capacity.
    pub capacity: usize,
}

impl QueueFull {
    /// `QUEUE_FULL` with details `{policy_label, retriable, retry_after_ms}` (ORCH-1012).
    pub fn to_error(&self) -> Error {
        Error::new(ErrorCode::QueueFull, self.to_string()).with_details(serde_json::json!({
            "policy_label": self.policy.label(),
            "retriable": ErrorCode::QueueFull.retriable(),
            "retry_after_ms": self.retry_after_ms,
        }))
    }

    /// The `Retry-After` header value: whole seconds, rounded up.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_ms.div_ceil(1000)
    }
}

/// Why a push failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The queue is full and the policy refused the job.
    #[error(transparent)]
    Full(QueueFull),
    /// A job with this id is already queued.
    #[error("job {0} is already queued")]
    Duplicate(JobId),
}

/// A refused push: the reason and the job, handed back.
#[derive(Debug)]
pub struct Refused<T> {
    /// Why.
    pub error: PushError,
    /// The job that was not queued.
    pub job: Box<QueuedJob<T>>,
}

/// A successful push.
#[derive(Debug)]
pub struct Pushed<T> {
    /// Jobs ahead of it at push time (0 = next).
    pub position: usize,
    /// A job shed to make room (`drop-lru`); the caller tells its client `QUEUE_FULL`.
    pub shed: Option<QueuedJob<T>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Handle {
    slot: usize,
    seq: u64,
}

#[derive(Debug)]
struct Slot<T> {
    seq: u64,
    job: QueuedJob<T>,
}

type TenantKey = Option<TenantId>;

fn class(p: Priority) -> usize {
    match p {
        Priority::Interactive => 0,
        Priority::Batch => 1,
    }
}

/// The bounded queue. See the module docs for its order and guarantees.
#[derive(Debug)]
pub struct JobQueue<T> {
    cfg: QueueConfig,
    slots: Vec<Option<Slot<T>>>,
    free: Vec<usize>,
    fifo: [VecDeque<Handle>; 2],
    len: [usize; 2],
    index: HashMap<JobId, usize>,
    tenant_fifo: [HashMap<TenantKey, VecDeque<Handle>>; 2],
    tenant_live: HashMap<TenantKey, usize>,
    vtime: HashMap<TenantKey, u64>,
    next_seq: u64,
    busy_since: Option<Tick>,
    rate: ServiceRate,
}

impl<T> JobQueue<T> {
    /// An empty queue.
    pub fn new(cfg: QueueConfig) -> Self {
        let rate = ServiceRate::new(cfg.rate);
        Self {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            fifo: [VecDeque::new(), VecDeque::new()],
            len: [0, 0],
            index: HashMap::new(),
            tenant_fifo: [HashMap::new(), HashMap::new()],
            tenant_live: HashMap::new(),
            vtime: HashMap::new(),
            next_seq: 0,
            busy_since: None,
            rate,
        }
    }

    /// The settings.
    pub fn config(&self) -> &QueueConfig {
        &self.cfg
    }

    /// Jobs queued.
    pub fn len(&self) -> usize {
        self.len[0] + self.len[1]
    }

    /// Whether no job is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Jobs queued at one priority.
    pub fn len_of(&self, p: Priority) -> usize {
        self.len[class(p)]
    }

    /// Whether a job is queued.
    pub fn contains(&self, id: &JobId) -> bool {
        self.index.contains_key(id)
    }

    /// A queued job by id.
    pub fn get(&self, id: &JobId) -> Option<&QueuedJob<T>> {
        let slot = *self.index.get(id)?;
        self.slots[slot].as_ref().map(|s| &s.job)
    }

    /// All queued jobs, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &QueuedJob<T>> {
        self.slots.iter().flatten().map(|s| &s.job)
    }

    /// A tenant's virtual token counter (fair share).
    pub fn tenant_tokens(&self, tenant: Option<&TenantId>) -> u64 {
        self.vtime.get(&tenant.cloned()).copied().unwrap_or(0)
    }

    /// The completion-rate estimator.
    pub fn service_rate(&self) -> &ServiceRate {
        &self.rate
    }

    /// Reports one job completion at `now` (feeds the retry-after estimate).
    pub fn record_completion(&mut self, now: Tick) {
        self.rate.record_completion(now);
    }

    /// The retry delay advertised to a job of priority `p` refused at `now`:
    /// `(jobs ahead + 1) × measured interval between completions`, clamped.
    pub fn retry_after_ms(&self, p: Priority, now: Tick) -> u64 {
        let ahead = self.position_for(p, now) + 1;
        self.rate.retry_after_ms(ahead, now, self.busy_since)
    }

    /// Expected milliseconds until a job `position` places from the front starts.
    pub fn predicted_start_ms(&self, position: usize, now: Tick) -> u64 {
        let ms = position as f64 * self.rate.interval_ms(now, self.busy_since);
        if ms.is_finite() { ms as u64 } else { u64::MAX }
    }

    fn key(&self, job: &QueuedJob<T>) -> u64 {
        match job.meta.priority {
            Priority::Interactive => job.enqueued_at.0,
            Priority::Batch => job.enqueued_at.0.saturating_add(self.cfg.batch_aging_ms),
        }
    }

    fn live(&self, h: Handle) -> Option<&QueuedJob<T>> {
        match self.slots.get(h.slot) {
            Some(Some(s)) if s.seq == h.seq => Some(&s.job),
            _ => None,
        }
    }

    /// Jobs a new job of priority `p` would find ahead of it at `now`.
    fn position_for(&self, p: Priority, now: Tick) -> usize {
        match p {
            Priority::Batch => self.len(),
            Priority::Interactive => {
                let aged = self.fifo[1]
                    .iter()
                    .filter_map(|&h| self.live(h))
                    .take_while(|j| self.key(j) < now.0)
                    .count();
                self.len[0] + aged
            }
        }
    }

    /// Enqueues a job at `now` (ORCH-1010). Refusals hand the job back.
    pub fn push(&mut self, meta: JobMeta, payload: T, now: Tick) -> Result<Pushed<T>, Refused<T>> {
        let job = QueuedJob {
            meta,
            payload,
            enqueued_at: now,
        };
        if self.index.contains_key(&job.meta.id) {
            let error = PushError::Duplicate(job.meta.id.clone());
            return Err(Refused {
                error,
                job: Box::new(job),
            });
        }
        let mut shed = None;
        if self.len() >= self.cfg.capacity {
            let victim = match self.cfg.full_policy {
                FullPolicy::Reject => None,
                FullPolicy::DropLru => self.front(1).or_else(|| match job.meta.priority {
                    Priority::Interactive => self.front(0),
                    Priority::Batch => None,
                }),
            };
            match victim {
                Some(slot) if self.cfg.capacity > 0 => shed = self.take_slot(slot, false),
                _ => {
                    let error = PushError::Full(QueueFull {
                        policy: self.cfg.full_policy,
                        retry_after_ms: self.retry_after_ms(job.meta.priority, now),
                        depth: self.len(),
                        capacity: self.cfg.capacity,
                    });
                    return Err(Refused {
                        error,
                        job: Box::new(job),
                    });
                }
            }
        }
        let position = self.position_for(job.meta.priority, now);
        let c = class(job.meta.priority);
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let h = Handle { slot, seq };
        if self.cfg.fair_share.is_some() {
            let t = job.meta.tenant.clone();
            let live = self.tenant_live.entry(t.clone()).or_insert(0);
            if *live == 0 {
                let floor = self
                    .tenant_live
                    .iter()
                    .filter(|(k, n)| **n > 0 && **k != t)
                    .filter_map(|(k, _)| self.vtime.get(k))
                    .min()
                    .copied()
                    .unwrap_or(0);
                let v = self.vtime.entry(t.clone()).or_insert(0);
                *v = (*v).max(floor);
            }
            *self.tenant_live.entry(t.clone()).or_insert(0) += 1;
            self.tenant_fifo[c].entry(t).or_default().push_back(h);
        }
        self.index.insert(job.meta.id.clone(), slot);
        self.slots[slot] = Some(Slot { seq, job });
        self.fifo[c].push_back(h);
        self.len[c] += 1;
        if self.busy_since.is_none() {
            self.busy_since = Some(now);
        }
        Ok(Pushed { position, shed })
    }

    /// The slot of the oldest live job of a class (drops stale handles on the way).
    fn front(&mut self, c: usize) -> Option<usize> {
        while let Some(&h) = self.fifo[c].front() {
            if self.live(h).is_some() {
                return Some(h.slot);
            }
            self.fifo[c].pop_front();
        }
        None
    }

    fn first_accepted(
        &self,
        handles: &VecDeque<Handle>,
        accept: &mut impl FnMut(&JobMeta) -> bool,
    ) -> Option<Handle> {
        handles
            .iter()
            .filter(|&&h| self.live(h).is_some())
            .take(self.cfg.scan_limit.max(1))
            .find(|&&h| self.live(h).is_some_and(|j| accept(&j.meta)))
            .copied()
    }

    /// The job [`JobQueue::dequeue`] would take at `now`, among those `accept` lets
    /// through (the scheduler skips jobs whose model has no capacity this round).
    pub fn select(
        &mut self,
        now: Tick,
        mut accept: impl FnMut(&JobMeta) -> bool,
    ) -> Option<&QueuedJob<T>> {
        self.front(0);
        self.front(1);
        let heads = [
            self.first_accepted(&self.fifo[0], &mut accept),
            self.first_accepted(&self.fifo[1], &mut accept),
        ];
        let keyed = |c: usize| {
            heads[c]
                .and_then(|h| self.live(h))
                .map(|j| (self.key(j), c))
        };
        let (key, c) = match (keyed(0), keyed(1)) {
            (Some(i), Some(b)) => i.min(b),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => return None,
        };
        let head = heads[c]?;
        // A fair pick may not jump the other class: interactive ties win, batch must be
        // strictly older (in key terms) than the interactive head.
        let other = keyed(1 - c).map(|(k, _)| k);
        let within = |k: u64| match (c, other) {
            (_, None) => true,
            (0, Some(o)) => k <= o,
            (_, Some(o)) => k < o,
        };
        let chosen = match self.cfg.fair_share {
            Some(f) if key.saturating_add(f.slack_ms) > now.0 => self.tenant_fifo[c]
                .values()
                .filter_map(|q| self.first_accepted(q, &mut accept))
                .filter_map(|h| self.live(h).map(|j| (h, j)))
                .filter(|(_, j)| within(self.key(j)))
                .min_by_key(|(h, j)| (self.vtime.get(&j.meta.tenant).copied().unwrap_or(0), h.seq))
                .map_or(head, |(h, _)| h),
            _ => head,
        };
        self.live(chosen)
    }

    /// Takes the next job at `now` (ORCH-1020..1022).
    pub fn dequeue(&mut self, now: Tick) -> Option<QueuedJob<T>> {
        let id = self.select(now, |_| true)?.meta.id.clone();
        self.take(&id)
    }

    /// Takes a job out to run it: charges its tenant (fair share). Used after
    /// [`JobQueue::select`].
    pub fn take(&mut self, id: &JobId) -> Option<QueuedJob<T>> {
        let slot = *self.index.get(id)?;
        self.take_slot(slot, true)
    }

    /// Removes a job without running it (cancel, timeout). Idempotent: `None` when absent.
    pub fn remove(&mut self, id: &JobId) -> Option<QueuedJob<T>> {
        let slot = *self.index.get(id)?;
        self.take_slot(slot, false)
    }

    /// Removes every job `pred` selects (e.g. a retired model's), oldest first.
    pub fn remove_where(&mut self, mut pred: impl FnMut(&JobMeta) -> bool) -> Vec<QueuedJob<T>> {
        let mut ids: Vec<(Tick, u64, JobId)> = self
            .slots
            .iter()
            .flatten()
            .filter(|s| pred(&s.job.meta))
            .map(|s| (s.job.enqueued_at, s.seq, s.job.meta.id.clone()))
            .collect();
        ids.sort();
        ids.iter()
            .filter_map(|(_, _, id)| self.remove(id))
            .collect()
    }

    fn take_slot(&mut self, slot: usize, charge: bool) -> Option<QueuedJob<T>> {
        let Slot { job, .. } = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot);
        self.index.remove(&job.meta.id);
        let c = class(job.meta.priority);
        self.len[c] -= 1;
        if self.cfg.fair_share.is_some() {
            let t = &job.meta.tenant;
            if charge {
                let v = self.vtime.entry(t.clone()).or_insert(0);
                *v = v.saturating_add(u64::from(job.meta.cost_tokens));
            }
            let left = self.tenant_live.get_mut(t).map(|n| {
                *n = n.saturating_sub(1);
                *n
            });
            if left == Some(0) {
                self.tenant_live.remove(t);
                for q in &mut self.tenant_fifo {
                    q.remove(t);
                }
            } else if let Some(q) = self.tenant_fifo[c].get_mut(t) {
                let slots = &self.slots;
                let live =
                    |h: &Handle| matches!(slots.get(h.slot), Some(Some(s)) if s.seq == h.seq);
                while q.front().is_some_and(|h| !live(h)) {
                    q.pop_front();
                }
                if q.len() > 2 * left.unwrap_or(0) + 64 {
                    q.retain(live);
                }
            }
        }
        if self.fifo[c].len() > 2 * self.len[c] + 64 {
            let slots = &self.slots;
            self.fifo[c].retain(|h| matches!(slots.get(h.slot), Some(Some(s)) if s.seq == h.seq));
        }
        if self.is_empty() {
            self.busy_since = None;
        }
        Some(job)
    }
}
