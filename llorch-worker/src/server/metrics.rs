//! The worker's Prometheus metrics (WORK-3080).
//!
//! SPEC names: `worker_vram_bytes`, `worker_requests_total{outcome}`,
//! `worker_tokens_in_total`, `worker_tokens_out_total`,
//! `worker_inference_duration_seconds`, `worker_uptime_seconds`. Added for continuous
//! batching: `worker_slots_total`, `worker_slots_free`, `worker_kv_pages_total`,
//! `worker_kv_pages_free`, `worker_jobs_active`.
//!
//! Requests are counted once each, by what the client saw: `ok` (an `end` event),
//! `cancelled`, `timeout`, `error` (an `error` event), `rejected` (refused before the
//! stream started: bad request, shutting down, full). Tokens out are tokens handed to
//! a client's stream.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use llorch_core::ErrorCode;
use llorch_core::wire::events::TaskEvent;

/// How a request ended, as its client saw it.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    /// The stream ended with `end`.
    ok,
    /// Cancelled: `/cancel`, a disconnect, a stalled reader, or shutdown past its grace.
    cancelled,
    /// `INFERENCE_TIMEOUT`.
    timeout,
    /// Any other `error` event.
    error,
    /// Refused before a stream started (4xx, 503).
    rejected,
}

impl Outcome {
    /// The outcome a terminal event stands for (`None` for other events).
    pub fn of(ev: &TaskEvent) -> Option<Self> {
        match ev {
            TaskEvent::End(_) => Some(Self::ok),
            TaskEvent::Error(e) => Some(match e.error_code {
                ErrorCode::Cancelled => Self::cancelled,
                ErrorCode::InferenceTimeout => Self::timeout,
                _ => Self::error,
            }),
            _ => None,
        }
    }

    /// The label text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ok => "ok",
            Self::cancelled => "cancelled",
            Self::timeout => "timeout",
            Self::error => "error",
            Self::rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

/// The worker's metrics; cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    started: Instant,
    vram_bytes: Gauge,
    requests: Family<OutcomeLabels, Counter>,
    tokens_in: Counter,
    tokens_out: Counter,
    duration: Histogram,
    uptime: Gauge<f64, AtomicU64>,
    slots_total: Gauge,
    slots_free: Gauge,
    pages_total: Gauge,
    pages_free: Gauge,
    jobs_active: Gauge,
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut m = Self {
            registry: Registry::default(),
            started: Instant::now(),
            vram_bytes: Gauge::default(),
            requests: Family::default(),
            tokens_in: Counter::default(),
            tokens_out: Counter::default(),
            // 10 ms … ~5.5 min (the default inference timeout is 5 min).
            duration: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            uptime: Gauge::default(),
            slots_total: Gauge::default(),
            slots_free: Gauge::default(),
            pages_total: Gauge::default(),
            pages_free: Gauge::default(),
            jobs_active: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "worker_vram_bytes",
            "Device memory the worker holds: weights, KV cache, scratch",
            m.vram_bytes.clone(),
        );
        r.register(
            "worker_requests",
            "Execute requests by outcome as the client saw it",
            m.requests.clone(),
        );
        r.register(
            "worker_tokens_in",
            "Prompt tokens of started jobs",
            m.tokens_in.clone(),
        );
        r.register(
            "worker_tokens_out",
            "Generated tokens handed to clients",
            m.tokens_out.clone(),
        );
        r.register(
            "worker_inference_duration_seconds",
            "Time from accepting a job to its terminal event",
            m.duration.clone(),
        );
        r.register(
            "worker_uptime_seconds",
            "Seconds since the worker started",
            m.uptime.clone(),
        );
        r.register(
            "worker_slots_total",
            "Sequences the worker runs at once",
            m.slots_total.clone(),
        );
        r.register(
            "worker_slots_free",
            "Slots not taken by running or waiting jobs",
            m.slots_free.clone(),
        );
        r.register(
            "worker_kv_pages_total",
            "KV cache pages",
            m.pages_total.clone(),
        );
        r.register(
            "worker_kv_pages_free",
            "KV cache pages not held by a sequence",
            m.pages_free.clone(),
        );
        r.register(
            "worker_jobs_active",
            "Jobs accepted and not yet ended",
            m.jobs_active.clone(),
        );
        m
    }

    /// Sets the fixed facts: memory held, slots and pages in all.
    pub fn set_capacity(&self, vram_bytes: u64, slots: usize, pages: usize) {
        self.vram_bytes.set(vram_bytes as i64);
        self.slots_total.set(slots as i64);
        self.pages_total.set(pages as i64);
    }

    /// Publishes the engine's occupancy.
    pub fn set_occupancy(&self, slots_free: usize, pages_free: usize, jobs_active: usize) {
        self.slots_free.set(slots_free as i64);
        self.pages_free.set(pages_free as i64);
        self.jobs_active.set(jobs_active as i64);
    }

    /// Counts one request's outcome.
    pub fn request(&self, outcome: Outcome) {
        self.requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts a started job's prompt tokens.
    pub fn tokens_in(&self, n: u64) {
        self.tokens_in.inc_by(n);
    }

    /// Counts one token handed to a client.
    pub fn token_out(&self) {
        self.tokens_out.inc();
    }

    /// Records how long a job took, accept to terminal event.
    pub fn inference_duration(&self, d: Duration) {
        self.duration.observe(d.as_secs_f64());
    }

    /// Seconds since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        self.uptime.set(self.started.elapsed().as_secs_f64());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The content type of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_names_are_exported() {
        let m = Metrics::new();
        m.request(Outcome::ok);
        m.tokens_in(3);
        m.token_out();
        m.inference_duration(Duration::from_millis(20));
        let text = m.encode();
        for name in [
            "worker_vram_bytes ",
            "worker_requests_total{outcome=\"ok\"} 1",
            "worker_tokens_in_total 3",
            "worker_tokens_out_total 1",
            "worker_inference_duration_seconds_count 1",
            "worker_uptime_seconds ",
            "worker_slots_free ",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }
}
