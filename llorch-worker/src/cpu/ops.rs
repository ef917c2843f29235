//! Row-wise operations: normalisation, rotary embedding, activations.
//!
//! Each works on one row at a time with a fixed order of operations, so a row's
//! result does not depend on the other rows of the batch (SYS-0003).

/// `x ← x / rms(x) · w`, in place (RMSNorm; the sum of squares in f64, in index order).
pub fn rms_norm(x: &mut [f32], w: &[f32], eps: f32) {
    let ss: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    let scale = (1.0 / (ss / x.len() as f64 + f64::from(eps)).sqrt()) as f32;
    for (v, &g) in x.iter_mut().zip(w) {
        *v = *v * scale * g;
    }
}

/// How rotary embedding pairs dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i+1)` (llama).
    Interleaved,
    /// Halves `(i, i + d/2)` (NeoX: gemma, qwen2).
    Neox,
}

/// Precomputed inverse frequencies of one rotary setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    /// Pairing of dimensions.
    pub style: RopeStyle,
    /// Rotated dimensions (the head dimension, or fewer).
    pub dims: usize,
    /// `1 / (base^(2i/dims) · factor_i)` per pair.
    pub inv_freq: Vec<f64>,
}

impl Rope {
    /// Frequencies for `base`, optional per-pair divisors (`rope_freqs`) and a linear scale.
    pub fn new(
        style: RopeStyle,
        dims: usize,
        base: f64,
        freq_factors: Option<&[f32]>,
        linear: f64,
    ) -> Self {
        let inv_freq = (0..dims / 2)
            .map(|i| {
                let f = freq_factors
                    .and_then(|f| f.get(i))
                    .map_or(1.0, |&v| f64::from(v));
                1.0 / (base.powf(2.0 * i as f64 / dims as f64) * f * linear)
            })
            .collect();
        Self {
            style,
            dims,
            inv_freq,
        }
    }

    /// Rotates one head vector for position `pos`, in place.
    pub fn apply(&self, x: &mut [f32], pos: usize) {
        let half = self.dims / 2;
        for (i, &f) in self.inv_freq.iter().enumerate() {
            let theta = pos as f64 * f;
            let (s, c) = (theta.sin() as f32, theta.cos() as f32);
            let (a, b) = match self.style {
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + half),
            };
            let (x0, x1) = (x[a], x[b]);
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    }
}

/// `e^z` for `z` clamped to [-87, 88], within a few ulp (Cephes' polynomial).
/// Branch-free, so loops over it vectorize, and plain arithmetic (never fused), so
/// every instruction set gives the same bits.
#[inline(always)]
pub fn exp(z: f32) -> f32 {
    // 1.5 · 2^23: adding and subtracting it rounds to an integer (ties to even).
    const ROUND: f32 = 12_582_912.0;
    let z = z.clamp(-87.0, 88.0);
    let k = (z * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // z - k·ln 2 in two parts (Cody-Waite), exact enough for |r| ≤ ln 2 / 2.
    let r = (z - k * 0.693_359_4) - k * -2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    // k ∈ [-126, 127]: a normal power of two.
    e * f32::from_bits(((k as i32 + 127) as u32) << 23)
}

/// GELU, tanh approximation (gemma): `0.5 x (1 + tanh(y)) = x / (1 + e^(-2y))`.
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let y = SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x);
    x / (1.0 + exp(-2.0 * y))
}

/// SiLU (llama, qwen2).
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// The gated activation of a feed-forward block: `g ← act(g) · u`.
#[inline(always)]
pub fn gate(g: &mut [f32], u: &[f32], gelu: bool) {
    if gelu {
        g.iter_mut()
            .zip(u)
            .for_each(|(g, &u)| *g = gelu_tanh(*g) * u);
    } else {
        g.iter_mut().zip(u).for_each(|(g, &u)| *g = silu(*g) * u);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_unit_rms() {
        let mut x = vec![3.0, 4.0];
        rms_norm(&mut x, &[1.0, 2.0], 0.0);
        let rms = (12.5f32).sqrt();
        assert!((x[0] - 3.0 / rms).abs() < 1e-6 && (x[1] - 8.0 / rms).abs() < 1e-6);
    }

    #[test]
    fn rope_keeps_norm_and_relative_angle() {
        for style in [RopeStyle::Interleaved, RopeStyle::Neox] {
            let rope = Rope::new(style, 8, 10_000.0, None, 1.0);
            let v: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
            let mut a = v.clone();
            rope.apply(&mut a, 5);
            let n0: f32 = v.iter().map(|x| x * x).sum();
            let n1: f32 = a.iter().map(|x| x * x).sum();
            assert!((n0 - n1).abs() < 1e-4);
            // q(p)·k(p') depends only on p - p'.
            let (mut q1, mut k1, mut q2, mut k2) = (v.clone(), v.clone(), v.clone(), v.clone());
            rope.apply(&mut q1, 7);
            rope.apply(&mut k1, 3);
            rope.apply(&mut q2, 14);
            rope.apply(&mut k2, 10);
            let d1: f32 = q1.iter().zip(&k1).map(|(a, b)| a * b).sum();
            let d2: f32 = q2.iter().zip(&k2).map(|(a, b)| a * b).sum();
            assert!((d1 - d2).abs() < 1e-3, "{style:?}");
        }
    }

    #[test]
    fn exp_tracks_the_library_exp() {
        let mut worst = 0.0f64;
        for i in -8700..8800 {
            let z = i as f32 / 100.0 + 0.003;
            let want = f64::from(z).exp();
            let rel = ((f64::from(exp(z)) - want) / want).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 4e-7, "{worst}");
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn activations() {
        for x in [-30.0f32, -3.0, -0.5, -1e-3, 1e-3, 0.5, 3.0, 30.0] {
            let t = 0.5 * x * (1.0 + (0.797_884_6 * x * (1.0 + 0.044_715 * x * x)).tanh());
            assert!((gelu_tanh(x) - t).abs() <= 1e-6 * (1.0 + t.abs()), "{x}");
            let s = x / (1.0 + (-x).exp());
            assert!((silu(x) - s).abs() <= 1e-6 * (1.0 + s.abs()), "{x}");
        }
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-5);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert_eq!(gelu_tanh(0.0), 0.0);
    }
}
