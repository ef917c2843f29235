//! The simulator's figures: percentiles per priority and event counts.

use std::fmt;

use super::cluster::Violations;

/// Percentiles of a sample of milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Sample size.
    pub count: usize,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest value.
    pub max: u64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `sample` (sorted in place).
    pub fn of(sample: &mut [u64]) -> Self {
        sample.sort_unstable();
        let n = sample.len();
        let at = |q: usize| {
            if n == 0 {
                0
            } else {
                sample[((n * q).div_ceil(100)).clamp(1, n) - 1]
            }
        };
        Self {
            count: n,
            p50: at(50),
            p90: at(90),
            p99: at(99),
            max: sample.last().copied().unwrap_or(0),
        }
    }
}

/// Figures of one priority class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassReport {
    /// Time from arrival to dispatch, ms.
    pub queue_wait: Percentiles,
    /// Time from arrival to first token, ms.
    pub ttft: Percentiles,
}

/// Everything one simulation run measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Simulated time, ms.
    pub simulated_ms: u64,
    /// Jobs that arrived.
    pub arrivals: u64,
    /// Jobs that ran to the end.
    pub completed: u64,
    /// Interactive figures.
    pub interactive: ClassReport,
    /// Batch figures.
    pub batch: ClassReport,
    /// Worker starts commanded.
    pub starts: u64,
    /// Starts that did not become ready in time.
    pub start_timeouts: u64,
    /// Idle workers stopped to make room.
    pub evictions: u64,
    /// Busy workers drained to make room.
    pub drains: u64,
    /// Refusals with `QUEUE_FULL`.
    pub rejected_queue_full: u64,
    /// Refusals with `ADMISSION_REJECT`.
    pub rejected_admission: u64,
    /// Refusals with `POOL_UNAVAILABLE` (or another code) after queueing.
    pub rejected_pool: u64,
    /// Jobs shed by `drop-lru`.
    pub shed: u64,
    /// Jobs still queued or running at the end.
    pub unfinished: u64,
    /// Largest queue depth seen.
    pub max_queue_depth: usize,
    /// Queue capacity.
    pub queue_capacity: usize,
    /// Jobs dispatched with affinity.
    pub affine_dispatches: u64,
    /// Commands that broke an invariant.
    pub violations: Violations,
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "simulated {:.1} h (seed {}): {} arrivals, {} completed, {} unfinished",
            self.simulated_ms as f64 / 3_600_000.0,
            self.seed,
            self.arrivals,
            self.completed,
            self.unfinished
        )?;
        writeln!(
            f,
            "{:<12} {:>7} | {:>25} | {:>25}",
            "priority", "jobs", "queue wait ms p50/p90/p99/max", "TTFT ms p50/p90/p99/max"
        )?;
        for (name, c) in [("interactive", &self.interactive), ("batch", &self.batch)] {
            let q = c.queue_wait;
            let t = c.ttft;
            writeln!(
                f,
                "{:<12} {:>7} | {:>25} | {:>25}",
                name,
                q.count,
                format!("{}/{}/{}/{}", q.p50, q.p90, q.p99, q.max),
                format!("{}/{}/{}/{}", t.p50, t.p90, t.p99, t.max)
            )?;
        }
        writeln!(
            f,
            "workers: {} starts, {} start timeouts, {} evictions (stop), {} drains",
            self.starts, self.start_timeouts, self.evictions, self.drains
        )?;
        writeln!(
            f,
            "rejections: {} queue full, {} admission, {} pool unavailable; {} shed (drop-lru)",
            self.rejected_queue_full, self.rejected_admission, self.rejected_pool, self.shed
        )?;
        writeln!(
            f,
            "queue depth max {}/{}; affine dispatches {}",
            self.max_queue_depth, self.queue_capacity, self.affine_dispatches
        )?;
        write!(
            f,
            "invariant violations: {} (bad dispatch {}, start overcommit {}, killed busy {}, unknown target {})",
            self.violations.total(),
            self.violations.bad_dispatch,
            self.violations.start_overcommit,
            self.violations.killed_busy,
            self.violations.unknown_target
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let p = Percentiles::of(&mut v);
        assert_eq!(
            (p.count, p.p50, p.p90, p.p99, p.max),
            (100, 50, 90, 99, 100)
        );
        assert_eq!(Percentiles::of(&mut []).max, 0);
        assert_eq!(Percentiles::of(&mut [7]).p50, 7);
    }
}
