//! Dot products straight from GGUF blocks, against activations quantized to 8 bits.
//!
//! Activations are quantized per 32 values ([`Q8_SPEC`], tiles of
//! [`super::qbatch`]); each weight block is
//! unpacked to `i8` and multiplied with integer arithmetic, then scaled once per
//! block. A row's result is a sum over blocks in index order, so it is the same
//! whatever else is in the batch (SYS-0003). Float weights (F32/F16/BF16) use a
//! plain f32 dot with 8 fixed lanes.

use half::{bf16, f16};

use super::lanes::Lanes;
pub use super::qbatch::QK;
#[cfg(test)]
use super::qbatch::QuantBatch;
use super::qbatch::{PREFETCH_AHEAD, QuantSpec, Tile, TileKernel, each_tile};
use super::unpack::{Pieces, Unpack};

/// Weight formats the CPU kernels multiply from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// 32-bit floats.
    F32,
    /// IEEE half floats.
    F16,
    /// bfloat16.
    Bf16,
    /// 32 values, f16 scale, 8-bit quants.
    Q8_0,
    /// 32 values, f16 scale, 4-bit quants offset by 8.
    Q4_0,
    /// 32 values, f16 scale and min, 4-bit quants.
    Q4_1,
    /// 32 values, f16 scale, 5-bit quants offset by 16.
    Q5_0,
    /// 32 values, f16 scale and min, 5-bit quants.
    Q5_1,
    /// 256 values: 8 sub-blocks with 6-bit scales and mins, 4-bit quants.
    Q4K,
    /// 256 values: as Q4_K with a fifth bit.
    Q5K,
    /// 256 values: 16 sub-blocks with 8-bit scales, 6-bit quants.
    Q6K,
}

impl WeightFormat {
    /// The same encoding as the GPU kernels name it (one table of block sizes for both).
    pub fn device(self) -> llorch_cuda::QFormat {
        use llorch_cuda::QFormat as D;
        match self {
            Self::F32 => D::F32,
            Self::F16 => D::F16,
            Self::Bf16 => D::Bf16,
            Self::Q8_0 => D::Q8_0,
            Self::Q4_0 => D::Q4_0,
            Self::Q4_1 => D::Q4_1,
            Self::Q5_0 => D::Q5_0,
            Self::Q5_1 => D::Q5_1,
            Self::Q4K => D::Q4K,
            Self::Q5K => D::Q5K,
            Self::Q6K => D::Q6K,
        }
    }

    /// Values per block.
    pub fn block_elems(self) -> usize {
        self.device().block_elems()
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        self.device().block_bytes()
    }

    /// Bytes of one row of `cols` values (`cols` a multiple of the block size).
    pub fn row_bytes(self, cols: usize) -> usize {
        cols / self.block_elems() * self.block_bytes()
    }

    /// Whether rows multiply against quantized activations.
    pub fn is_quantized(self) -> bool {
        !matches!(self, Self::F32 | Self::F16 | Self::Bf16)
    }
}

/// How a weight format's products take their activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActFormat {
    /// Floats (float weights).
    F32,
    /// `i8` per 32 values with an f16-rounded scale, as llama.cpp's `Q8_0` (Q8_0 weights).
    I8,
    /// `i16` per 32 values ([`super::qdot16::RANGE_32`]).
    I16x32,
    /// `i16` per 256 values ([`super::qdot16::RANGE_256`]).
    I16x256,
}

impl WeightFormat {
    /// The activations this format's products use. Q8_0 keeps 8-bit activations:
    /// its products are the output projection, the widest and most compute-bound
    /// (every vocabulary row, each sequence), where 16 bits gain least accuracy.
    pub fn activations(self) -> ActFormat {
        match self {
            Self::F32 | Self::F16 | Self::Bf16 => ActFormat::F32,
            Self::Q8_0 => ActFormat::I8,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 => ActFormat::I16x32,
            Self::Q4K | Self::Q5K | Self::Q6K => ActFormat::I16x256,
        }
    }
}

/// How rows are quantized for Q8_0 products: `i8` per 32 values with the scale
/// rounded to f16, as llama.cpp's `Q8_0` activations.
pub const Q8_SPEC: QuantSpec = QuantSpec {
    per: QK,
    range: 127.0,
    f16_scale: true,
};

/// Dots of one Q8_0 weight row (the format that takes 8-bit activations:
/// [`WeightFormat::activations`]) with every row of `x` (quantized with [`Q8_SPEC`]),
/// with the lane arithmetic `L`. Each weight block is unpacked once per tile; every
/// `out[r]` depends only on row `r` and the weights (SYS-0003). Other formats give
/// zeros (they take other activations).
#[inline(always)]
pub fn dot_rows_q_with<L: Lanes>(fmt: WeightFormat, w: &[u8], x: &[Tile<'_, u8>], out: &mut [f32]) {
    use super::unpack::*;
    match fmt {
        WeightFormat::Q8_0 => rows::<L, Q8_0>(w, x, out),
        _ => out.fill(0.0),
    }
}

/// The kernel of one format and lane arithmetic, for [`each_tile`].
struct Dot8<L, F>(std::marker::PhantomData<(L, F)>);

impl<L: Lanes, F: Unpack> TileKernel<u8> for Dot8<L, F> {
    #[inline(always)]
    fn tile<const R: usize>(w: &[u8], t: Tile<'_, u8>, out: &mut [f32]) {
        tile::<L, F, R>(w, t, out);
    }
}

#[inline(always)]
fn rows<L: Lanes, F: Unpack>(w: &[u8], x: &[Tile<'_, u8>], out: &mut [f32]) {
    each_tile::<u8, Dot8<L, F>>(w, x, out);
}

/// `R` rows against one weight row of a format without mins (one piece per block);
/// accumulators stay in registers.
#[inline(always)]
fn tile<L: Lanes, F: Unpack, const R: usize>(w: &[u8], t: Tile<'_, u8>, out: &mut [f32]) {
    const { assert!(!F::HAS_MIN, "8-bit products serve formats without mins") };
    let mut acc = [L::zero(); R];
    let mut up = Pieces::<L>::new();
    let blocks = w
        .chunks_exact(F::BYTES)
        .zip(t.q.chunks_exact(R * QK))
        .zip(t.d.chunks_exact(R));
    for ((blk, xq), xd) in blocks {
        L::prefetch(blk.as_ptr().wrapping_add(PREFETCH_AHEAD));
        F::load::<L>(blk, &mut up);
        let u = L::prep(up.u[0]);
        for r in 0..R {
            let ints = L::dot8(u, &xq[r * QK..(r + 1) * QK]);
            L::add_scaled(&mut acc[r], up.d * xd[r], ints);
        }
    }
    for r in 0..R {
        out[r] = L::sum(&acc[r]);
    }
}

/// [`dot_rows_q_with`] on the best lane arithmetic of this CPU.
#[inline(always)]
pub fn dot_rows_q(fmt: WeightFormat, w: &[u8], x: &[Tile<'_, u8>], out: &mut [f32]) {
    super::simd::with_best_lanes!(dot_rows_q_with(fmt, w, x, out));
}

#[inline(always)]
fn float_at(fmt: WeightFormat, w: &[u8], i: usize) -> f32 {
    match fmt {
        WeightFormat::F32 => {
            f32::from_le_bytes([w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]])
        }
        WeightFormat::Bf16 => {
            bf16::from_bits(u16::from_le_bytes([w[2 * i], w[2 * i + 1]])).to_f32()
        }
        _ => f16::from_bits(u16::from_le_bytes([w[2 * i], w[2 * i + 1]])).to_f32(),
    }
}

/// Dot of one float weight row with an f32 activation row, in 8 fixed lanes
/// (the same order as [`crate::cpu::attention::dot8`]).
#[inline(always)]
pub fn dot_row_f(fmt: WeightFormat, w: &[u8], x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let full = x.len() / 8 * 8;
    for (c, xs) in x[..full].chunks_exact(8).enumerate() {
        for (l, (acc, &xv)) in lanes.iter_mut().zip(xs).enumerate() {
            *acc += float_at(fmt, w, 8 * c + l) * xv;
        }
    }
    let tail: f32 = x[full..]
        .iter()
        .enumerate()
        .map(|(i, &xv)| float_at(fmt, w, full + i) * xv)
        .sum();
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))
        + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(name: &str) -> Option<WeightFormat> {
        Some(match name {
            "F32" => WeightFormat::F32,
            "F16" => WeightFormat::F16,
            "BF16" => WeightFormat::Bf16,
            "Q8_0" => WeightFormat::Q8_0,
            "Q4_0" => WeightFormat::Q4_0,
            "Q4_1" => WeightFormat::Q4_1,
            "Q5_0" => WeightFormat::Q5_0,
            "Q5_1" => WeightFormat::Q5_1,
            "Q4_K" => WeightFormat::Q4K,
            "Q5_K" => WeightFormat::Q5K,
            "Q6_K" => WeightFormat::Q6K,
            _ => return None,
        })
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A one-hot activation picks one weight: the kernels must reproduce llama.cpp's
    /// dequantized value of every element (vectors from `scripts/gen_quant_vectors.py`).
    #[test]
    fn one_hot_dots_reproduce_reference_dequantization() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/quant_vectors.json")).unwrap();
        let mut checked = 0;
        for case in v["cases"].as_array().unwrap() {
            let Some(fmt) = format_of(case["type"].as_str().unwrap()) else {
                continue;
            };
            let mut raw = hex(case["raw_hex"].as_str().unwrap());
            let mut want: Vec<f32> = case["dequant_f32_bits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| f32::from_bits(b.as_u64().unwrap() as u32))
                .collect();
            let n = want.len();
            assert_eq!(raw.len(), fmt.row_bytes(n));
            if !fmt.is_quantized() {
                // One-hot products multiply the other elements by 0: keep them finite.
                let w = fmt.block_bytes();
                for (i, y) in want.iter_mut().enumerate() {
                    if !y.is_finite() {
                        *y = 0.0;
                        raw[i * w..(i + 1) * w].fill(0);
                    }
                }
            }
            let w = crate::cpu::matmul::QMatrix {
                fmt,
                rows: 1,
                cols: n,
                data: &raw,
            };
            let mut act = crate::cpu::matmul::Activations::default();
            let (mut out, mut tmp) = (Vec::new(), Vec::new());
            let mut x = vec![0.0f32; n];
            for i in 0..n {
                x.fill(0.0);
                x[i] = 1.0;
                act.load(&x, n);
                crate::cpu::matmul::matmul(&w, &mut act, &mut out, &mut tmp);
                let got = out[0];
                // Q8_0-style activations keep their scale as f16 (as llama.cpp does): 2^-11 relative.
                let rel = if fmt.activations() == ActFormat::I8 {
                    1e-3
                } else {
                    1e-5
                };
                let tol = (rel * want[i].abs()).max(1e-7);
                assert!(
                    (got - want[i]).abs() <= tol,
                    "{fmt:?} element {i}: got {got}, want {}",
                    want[i]
                );
                checked += 1;
            }
        }
        assert!(checked > 2000, "{checked}");
    }

    #[test]
    fn every_lane_implementation_gives_the_same_bits() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/quant_vectors.json")).unwrap();
        for case in v["cases"].as_array().unwrap() {
            let Some(fmt) = format_of(case["type"].as_str().unwrap()) else {
                continue;
            };
            // The 8-bit kernels serve the formats that take 8-bit activations.
            if fmt.activations() != ActFormat::I8 {
                continue;
            }
            let raw = hex(case["raw_hex"].as_str().unwrap());
            let n = case["n_elems"].as_u64().unwrap() as usize;
            let x: Vec<f32> = (0..11 * n)
                .map(|i| (((i % n) * 31 + (i / n) * 17) % 97) as f32 / 7.0 - 48.0 / 7.0)
                .collect();
            super::super::qbatch::assert_lanes_agree!(
                dot_rows_q_with,
                dot_rows_q,
                u8,
                fmt,
                &raw,
                &x,
                n,
                Q8_SPEC
            );
        }
    }

    #[test]
    fn quantized_dot_tracks_the_float_dot() {
        // Q8_0 weights equal to a known pattern; activation quantization error only.
        let n = 256;
        let w: Vec<f32> = (0..n)
            .map(|i| ((i * 7 % 23) as f32 - 11.0) / 11.0)
            .collect();
        let x: Vec<f32> = (0..n).map(|i| ((i * 13 % 17) as f32 - 8.0) / 3.0).collect();
        let mut raw = Vec::new();
        for b in w.chunks(32) {
            let amax = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            raw.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
            for v in b {
                raw.push((v / d).round() as i8 as u8);
            }
        }
        let exact: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
        let magnitude: f32 = w.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
        let mut q = QuantBatch::<u8>::default();
        q.quantize(&x, n, Q8_SPEC);
        let mut got = [0.0f32];
        dot_rows_q(
            WeightFormat::Q8_0,
            &raw,
            &q.tiles().collect::<Vec<_>>(),
            &mut got,
        );
        let got = got[0];
        assert!(
            (got - exact).abs() < 1e-3 * magnitude,
            "{got} vs {exact} ({magnitude})"
        );
    }
}
