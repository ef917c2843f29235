//! [`ServiceRate`]: the measured completion rate behind `Retry-After` (ORCH-1012).
//!
//! The caller reports each job completion with its tick; the estimator keeps an
//! exponentially weighted moving average (EWMA) of the interval between completions.
//! While the queue has work and nothing completes, the time since the later of the
//! last completion and the moment the queue last became non-empty is a floor on the
//! interval, so a stalled cluster advertises a growing delay instead of a stale one.

use crate::tick::Tick;

/// Settings of the estimator and of the advertised delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// Weight of the newest interval in the EWMA, in (0, 1].
    pub alpha: f64,
    /// Interval assumed before the first two completions, milliseconds.
    pub prior_interval_ms: f64,
    /// Smallest advertised retry delay, milliseconds.
    pub min_retry_ms: u64,
    /// Largest advertised retry delay, milliseconds.
    pub max_retry_ms: u64,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            alpha: 0.2,
            prior_interval_ms: 1000.0,
            min_retry_ms: 100,
            max_retry_ms: 60_000,
        }
    }
}

/// EWMA of the interval between job completions.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRate {
    cfg: RateConfig,
    ewma_interval_ms: Option<f64>,
    last_completion: Option<Tick>,
}

impl ServiceRate {
    /// An estimator with no measurement yet.
    pub fn new(cfg: RateConfig) -> Self {
        Self {
            cfg,
            ewma_interval_ms: None,
            last_completion: None,
        }
    }

    /// Records one completion at `now` (completions at the same tick count as a burst).
    pub fn record_completion(&mut self, now: Tick) {
        if let Some(last) = self.last_completion {
            let dt = now.since(last) as f64;
            let a = self.cfg.alpha.clamp(f64::MIN_POSITIVE, 1.0);
            self.ewma_interval_ms = Some(match self.ewma_interval_ms {
                Some(e) => a * dt + (1.0 - a) * e,
                None => dt,
            });
        }
        self.last_completion = Some(self.last_completion.map_or(now, |l| l.max(now)));
    }

    /// The interval estimate at `now`, milliseconds. `busy_since` is when the queue last
    /// became non-empty (`None` when it is empty); see the module docs.
    pub fn interval_ms(&self, now: Tick, busy_since: Option<Tick>) -> f64 {
        let ewma = self.ewma_interval_ms.unwrap_or(self.cfg.prior_interval_ms);
        let stall = match (busy_since, self.last_completion) {
            (Some(b), Some(l)) => now.since(b.max(l)) as f64,
            (Some(b), None) => now.since(b) as f64,
            (None, _) => 0.0,
        };
        ewma.max(stall)
    }

    /// Completions per second at `now` (for metrics and predictions).
    pub fn per_second(&self, now: Tick, busy_since: Option<Tick>) -> f64 {
        1000.0 / self.interval_ms(now, busy_since).max(1e-3)
    }

    /// The advertised delay for a job with `ahead` jobs in front of it:
    /// `clamp(ceil(ahead × interval), min_retry_ms, max_retry_ms)`.
    pub fn retry_after_ms(&self, ahead: usize, now: Tick, busy_since: Option<Tick>) -> u64 {
        let ms = (ahead as f64 * self.interval_ms(now, busy_since)).ceil();
        let ms = if ms.is_finite() && ms >= 0.0 {
            ms.min(u64::MAX as f64) as u64
        } else {
            self.cfg.max_retry_ms
        };
        ms.clamp(
            self.cfg.min_retry_ms,
            self.cfg.max_retry_ms.max(self.cfg.min_retry_ms),
        )
    }
}

impl Default for ServiceRate {
    fn default() -> Self {
        Self::new(RateConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_tracks_completions_and_scales_with_depth() {
        let mut r = ServiceRate::default();
        assert_eq!(r.interval_ms(Tick(0), None), 1000.0);
        for t in (0..=1000).step_by(50) {
            r.record_completion(Tick(t));
        }
        let i = r.interval_ms(Tick(1000), Some(Tick(900)));
        assert!((i - 50.0).abs() < 1.0, "{i}");
        assert_eq!(r.retry_after_ms(100, Tick(1000), Some(Tick(900))), 5000);
        assert_eq!(r.retry_after_ms(1, Tick(1000), Some(Tick(900))), 100);
        assert_eq!(r.retry_after_ms(1_000_000, Tick(1000), None), 60_000);
        // A stall raises the estimate.
        assert_eq!(r.interval_ms(Tick(4000), Some(Tick(0))), 3000.0);
        assert!(r.per_second(Tick(1000), None) > 19.0);
    }
}
