//! Time as a value: [`Tick`], milliseconds on the caller's monotonic clock.
//!
//! No policy in this crate reads a clock. The caller passes `now` in, which makes
//! every decision reproducible, property-testable and simulable at any speed.

use std::fmt;

/// A point in time: milliseconds since an origin the caller chooses (process start,
/// the Unix epoch, or 0 in a simulation). Only differences between ticks matter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tick(pub u64);

impl Tick {
    /// The origin.
    pub const ZERO: Tick = Tick(0);

    /// Milliseconds since the origin.
    pub fn as_ms(self) -> u64 {
        self.0
    }

    /// Milliseconds from `earlier` to `self`, 0 when `earlier` is later.
    pub fn since(self, earlier: Tick) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This tick plus `ms` milliseconds (saturating).
    pub fn plus(self, ms: u64) -> Tick {
        Tick(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Tick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Tick(5).since(Tick(2)), 3);
        assert_eq!(Tick(2).since(Tick(5)), 0);
        assert_eq!(Tick(u64::MAX).plus(1), Tick(u64::MAX));
        assert_eq!(Tick(7).to_string(), "7ms");
    }
}
