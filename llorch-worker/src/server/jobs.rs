//! Per-job bookkeeping around the engine: which jobs are live, which ended lately, and
//! the sink that feeds a job's stream while counting what its client receives.
//!
//! Every accepted job is counted exactly once in `worker_requests_total{outcome}`
//! (WORK-3080): when its terminal event is handed to the stream, or, if that never
//! happens (the reader left, or was dropped for stalling), when the engine lets go
//! of the sink.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use llorch_core::JobId;
use llorch_core::wire::events::TaskEvent;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::WorkerIdent;
use super::metrics::{Metrics, Outcome};
use crate::engine::{EventSink, SinkError};

/// Job ids remembered after they end, so a late or repeated cancel answers 202.
pub const RECENT_JOBS: usize = 4096;

/// Live and recently ended jobs.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    next_serial: u64,
    /// Accepted jobs not ended yet, by submission serial.
    active: HashMap<u64, JobId>,
    /// Ended jobs, oldest first.
    recent: VecDeque<JobId>,
}

impl Ledger {
    /// A serial for a submission (serials tell apart two submissions of one id).
    pub(crate) fn next_serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// Marks a submission accepted by the engine.
    pub(crate) fn accept(&mut self, serial: u64, job: JobId) {
        self.active.insert(serial, job);
    }

    /// Ends a submission; false when it was not live (never accepted, or ended before).
    fn end(&mut self, serial: u64) -> bool {
        let Some(job) = self.active.remove(&serial) else {
            return false;
        };
        if self.recent.len() == RECENT_JOBS {
            self.recent.pop_front();
        }
        self.recent.push_back(job);
        true
    }

    /// Whether a submission is live.
    fn is_active(&self, serial: u64) -> bool {
        self.active.contains_key(&serial)
    }

    /// Whether `job` ended lately.
    pub(crate) fn ended_lately(&self, job: &JobId) -> bool {
        self.recent.iter().rev().any(|j| j == job)
    }

    /// Live jobs.
    pub(crate) fn active_jobs(&self) -> Vec<JobId> {
        self.active.values().cloned().collect()
    }

    /// Number of live jobs.
    pub(crate) fn active_len(&self) -> usize {
        self.active.len()
    }
}

/// What the sinks share: metrics, the ledger and the worker's identity for logs.
#[derive(Debug)]
pub(crate) struct JobsCtx {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) ledger: Mutex<Ledger>,
    pub(crate) ident: Arc<WorkerIdent>,
}

/// The engine's sink for one job: a bounded channel to the job's stream, counted.
pub(crate) struct JobSink {
    tx: mpsc::Sender<TaskEvent>,
    serial: u64,
    job_id: JobId,
    correlation_id: String,
    ctx: Arc<JobsCtx>,
    accepted: Instant,
    tokens_in: u32,
    tokens_out: u32,
    ended: bool,
}

impl JobSink {
    pub(crate) fn new(
        tx: mpsc::Sender<TaskEvent>,
        serial: u64,
        job_id: JobId,
        correlation_id: String,
        ctx: Arc<JobsCtx>,
    ) -> Self {
        Self {
            tx,
            serial,
            job_id,
            correlation_id,
            ctx,
            accepted: Instant::now(),
            tokens_in: 0,
            tokens_out: 0,
            ended: false,
        }
    }

    /// Counts the job's end once, and logs it (WORK-3080 fields; never the prompt).
    fn end(&mut self, outcome: Outcome, terminal: Option<&TaskEvent>) {
        if self.ended {
            return;
        }
        self.ended = true;
        // Count first, then leave the ledger, under its lock: whoever sees the job gone
        // (health's `jobs_active`) also sees it counted.
        let mut ledger = self.ctx.ledger.lock();
        if !ledger.is_active(self.serial) {
            return; // never accepted: the engine refused the submission
        }
        let m = &self.ctx.metrics;
        m.request(outcome);
        let took = self.accepted.elapsed();
        m.inference_duration(took);
        ledger.end(self.serial);
        drop(ledger);
        let (decode_time_ms, stop_reason, error_code) = match terminal {
            Some(TaskEvent::End(e)) => (
                e.decode_time_ms,
                serde_json::to_value(e.stop_reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                String::new(),
            ),
            Some(TaskEvent::Error(e)) => (0, String::new(), e.error_code.to_string()),
            _ => (0, String::new(), "CANCELLED".to_owned()),
        };
        let id = &self.ctx.ident;
        tracing::info!(
            event = "job_end",
            worker_id = %id.worker_id,
            model_ref = %id.model_ref,
            gpu_device = %id.device,
            vram_bytes = id.vram_bytes,
            job_id = %self.job_id,
            correlation_id = %self.correlation_id,
            outcome = outcome.as_str(),
            error_code = %error_code,
            stop_reason = %stop_reason,
            tokens_in = self.tokens_in,
            tokens_out = self.tokens_out,
            decode_time_ms,
            duration_ms = took.as_millis() as u64,
            "job ended"
        );
    }
}

impl EventSink for JobSink {
    fn try_send(&mut self, ev: TaskEvent) -> Result<(), SinkError> {
        use tokio::sync::mpsc::error::TrySendError;
        // Reserve the slot first and count before handing the event over, so a client
        // that has seen an event also sees it in the metrics (WORK-3080).
        let permit = match self.tx.clone().try_reserve_owned() {
            Ok(p) => p,
            Err(TrySendError::Full(_)) => return Err(SinkError::Full(ev)), // sent again later
            Err(TrySendError::Closed(_)) => {
                if Outcome::of(&ev).is_some() {
                    // A terminal event the reader never got counts as cancelled.
                    self.end(Outcome::cancelled, Some(&ev));
                }
                return Err(SinkError::Closed);
            }
        };
        match &ev {
            TaskEvent::Started(s) => {
                if let Some(n) = s.tokens_in {
                    self.tokens_in = n;
                    self.ctx.metrics.tokens_in(u64::from(n));
                }
            }
            TaskEvent::Token(_) => {
                self.tokens_out += 1;
                self.ctx.metrics.token_out();
            }
            _ => {}
        }
        if let Some(o) = Outcome::of(&ev) {
            self.end(o, Some(&ev));
        }
        permit.send(ev);
        Ok(())
    }
}

impl Drop for JobSink {
    fn drop(&mut self) {
        // The engine let go without delivering a terminal event: the reader left or
        // stalled, or the worker stopped.
        self.end(Outcome::cancelled, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_remembers_ended_jobs_and_ignores_unaccepted_ones() {
        let mut l = Ledger::default();
        let a = JobId::new("job-a").unwrap();
        let s1 = l.next_serial();
        let s2 = l.next_serial();
        assert_ne!(s1, s2);
        l.accept(s1, a.clone());
        assert_eq!(l.active_len(), 1);
        assert!(!l.end(s2), "never accepted");
        assert!(!l.ended_lately(&a));
        assert!(l.end(s1));
        assert!(!l.end(s1), "ends once");
        assert!(l.ended_lately(&a));
        assert_eq!(l.active_len(), 0);
        for i in 0..RECENT_JOBS {
            let s = l.next_serial();
            l.accept(s, JobId::new(format!("job-{i}")).unwrap());
            l.end(s);
        }
        assert!(
            !l.ended_lately(&a),
            "forgotten after {RECENT_JOBS} newer ends"
        );
    }
}
