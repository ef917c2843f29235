//! A counter-based random stream per sequence.
//!
//! The `n`-th draw of a sequence is a pure function of `(seed, n)`, so a sequence's
//! random numbers do not depend on what else runs, in which order, or on which device
//! (SYS-0003). The mixing is SplitMix64's finalizer, cheap on CPUs and GPUs alike.

/// SplitMix64's output function: a bijective 64-bit mix.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `counter`-th uniform draw of the stream `seed`, in `[0, 1)` with 53 bits.
#[inline]
pub fn uniform(seed: u64, counter: u64) -> f64 {
    let bits = mix64(mix64(seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_add(mix64(counter)));
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_pure_and_spread() {
        assert_eq!(uniform(7, 3).to_bits(), uniform(7, 3).to_bits());
        assert_ne!(uniform(7, 3), uniform(7, 4));
        assert_ne!(uniform(7, 3), uniform(8, 3));
        let n = 100_000;
        let mut buckets = [0u32; 10];
        let mut sum = 0.0;
        for i in 0..n {
            let u = uniform(42, i);
            assert!((0.0..1.0).contains(&u));
            buckets[(u * 10.0) as usize] += 1;
            sum += u;
        }
        assert!((sum / n as f64 - 0.5).abs() < 0.01);
        for b in buckets {
            assert!((9_000..11_000).contains(&b), "{buckets:?}");
        }
    }
}
