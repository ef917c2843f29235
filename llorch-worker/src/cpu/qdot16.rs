//! Dot products straight from GGUF blocks, against activations quantized to 16 bits.
//!
//! Eight-bit activations (llama.cpp's choice, [`super::qdot`]) round every value to
//! 1/254 of its block's largest: on gemma-3-270m that alone moves teacher-forced
//! logprobs by a mean 0.008 (issue 5). Sixteen-bit activations cost the same
//! instructions per row here (the weights are widened once per piece and shared by
//! every row of a tile; k-quant scales are folded into the widened weights, so no
//! per-row multiply remains) and are within 2^-14 of the floats.
//!
//! As in the 8-bit path a row's result is a sum over blocks in index order and every
//! lane implementation gives the same bits (SYS-0003).

use super::lanes::Lanes;
#[cfg(test)]
use super::qbatch::QuantBatch;
use super::qbatch::{PREFETCH_AHEAD, QK, QuantSpec, Tile, TileKernel, each_tile};
use super::qdot::{ActFormat, WeightFormat};
use super::unpack::{Pieces, Unpack};

/// Largest quantized magnitude of activations per 32 values (32-value weight blocks).
pub const RANGE_32: f32 = 32767.0;

/// Largest quantized magnitude of activations per 256 values (k-quant weights). A
/// lane sums 32 products of a widened weight (|u · s| ≤ 4096, Q6_K) and an
/// activation: 32 · 4096 · 16383 < 2^31, so the integer sums cannot overflow.
pub const RANGE_256: f32 = 16383.0;

/// How rows are quantized for `fmt`'s 16-bit products.
pub fn spec(fmt: WeightFormat) -> QuantSpec {
    if fmt.activations() == ActFormat::I16x256 {
        QuantSpec {
            per: 256,
            range: RANGE_256,
            f16_scale: false,
        }
    } else {
        QuantSpec {
            per: QK,
            range: RANGE_32,
            f16_scale: false,
        }
    }
}

/// Dots of one weight row with every row of `x` (quantized with [`spec`]`(fmt)`),
/// with the lane arithmetic `L`; every `out[r]` depends only on row `r` and the
/// weights (SYS-0003). Q8_0 and float formats give zeros (they take 8-bit or f32
/// activations: [`WeightFormat::activations`]).
#[inline(always)]
pub fn dot_rows_q16_with<L: Lanes>(
    fmt: WeightFormat,
    w: &[u8],
    x: &[Tile<'_, i16>],
    out: &mut [f32],
) {
    use super::unpack::*;
    match fmt {
        WeightFormat::Q4_0 => rows::<L, Q4_0>(w, x, out),
        WeightFormat::Q4_1 => rows::<L, Q4_1>(w, x, out),
        WeightFormat::Q5_0 => rows::<L, Q5_0>(w, x, out),
        WeightFormat::Q5_1 => rows::<L, Q5_1>(w, x, out),
        WeightFormat::Q4K => rows::<L, Q4K>(w, x, out),
        WeightFormat::Q5K => rows::<L, Q5K>(w, x, out),
        WeightFormat::Q6K => rows::<L, Q6K>(w, x, out),
        // Q8_0 takes 8-bit activations (`super::qdot`), floats f32 ones.
        WeightFormat::Q8_0 | WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16 => {
            out.fill(0.0)
        }
    }
}

/// The kernel of one format and lane arithmetic, for [`each_tile`].
struct Dot16<L, F>(std::marker::PhantomData<(L, F)>);

impl<L: Lanes, F: Unpack> TileKernel<i16> for Dot16<L, F> {
    #[inline(always)]
    fn tile<const R: usize>(w: &[u8], t: Tile<'_, i16>, out: &mut [f32]) {
        tile::<L, F, R>(w, t, out);
    }
}

#[inline(always)]
fn rows<L: Lanes, F: Unpack>(w: &[u8], x: &[Tile<'_, i16>], out: &mut [f32]) {
    each_tile::<i16, Dot16<L, F>>(w, x, out);
}

/// `R` rows against one weight row: each piece is widened once, then met by every row.
#[inline(always)]
fn tile<L: Lanes, F: Unpack, const R: usize>(w: &[u8], t: Tile<'_, i16>, out: &mut [f32]) {
    let stride = F::PIECES * R;
    let mut acc = [L::zero(); R];
    let mut mins = [0.0f32; R];
    let mut up = Pieces::<L>::new();
    let blocks = w
        .chunks_exact(F::BYTES)
        .zip(t.q.chunks_exact(stride * QK))
        .zip(t.d.chunks_exact(stride).zip(t.sum.chunks_exact(stride)));
    for ((blk, xq), (xd, xs)) in blocks {
        L::prefetch(blk.as_ptr().wrapping_add(PREFETCH_AHEAD));
        F::load::<L>(blk, &mut up);
        // Σ_j mn[j] · sum[j] per row, exact: in vector lanes for a tile of k-quant
        // rows (the mins are read once per block), in scalars otherwise.
        let vector_mins = F::PIECES == 8 && R > 1;
        let mut ints = [L::ints_zero(); R];
        let mut imin = [0i32; R];
        for j in 0..F::PIECES {
            let (s0, s1) = if F::SCALED { up.sc[j] } else { (1, 1) };
            let wide = L::widen(up.u[j], s0, s1);
            for r in 0..R {
                let at = j * R + r;
                ints[r] = L::dot16(ints[r], wide, &xq[at * QK..(at + 1) * QK]);
                if F::HAS_MIN && !vector_mins {
                    imin[r] += up.mn[j] * xs[r * F::PIECES + j];
                }
            }
        }
        for r in 0..R {
            // One activation scale per block (`xd[r]`: piece 0's, shared by a
            // k-quant block's pieces); row `r`'s piece sums are adjacent.
            L::add_scaled(&mut acc[r], up.d * xd[r], ints[r]);
            if F::HAS_MIN {
                if vector_mins {
                    imin[r] = L::idot8(&up.mn, &xs[r * F::PIECES..(r + 1) * F::PIECES]);
                }
                mins[r] += up.dmin * xd[r] * imin[r] as f32;
            }
        }
    }
    for r in 0..R {
        out[r] = L::sum(&acc[r]) + mins[r];
    }
}

/// [`dot_rows_q16_with`] on the best lane arithmetic of this CPU.
#[inline(always)]
pub fn dot_rows_q16(fmt: WeightFormat, w: &[u8], x: &[Tile<'_, i16>], out: &mut [f32]) {
    super::simd::with_best_lanes!(dot_rows_q16_with(fmt, w, x, out));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{GgmlType, dequantize_row};

    const FORMATS: [(WeightFormat, GgmlType); 7] = [
        (WeightFormat::Q4_0, GgmlType::Q4_0),
        (WeightFormat::Q4_1, GgmlType::Q4_1),
        (WeightFormat::Q5_0, GgmlType::Q5_0),
        (WeightFormat::Q5_1, GgmlType::Q5_1),
        (WeightFormat::Q4K, GgmlType::Q4_K),
        (WeightFormat::Q5K, GgmlType::Q5_K),
        (WeightFormat::Q6K, GgmlType::Q6_K),
    ];

    /// Pseudo-random bytes (a fixed LCG): every bit pattern of every field shows up.
    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 33) as u8
            })
            .collect()
    }

    /// Random blocks with their f16 scales forced finite and small.
    fn weights(fmt: WeightFormat, blocks: usize, seed: u64) -> Vec<u8> {
        let mut w = bytes(blocks * fmt.block_bytes(), seed);
        let (scale_at, n): (&[usize], usize) = match fmt {
            WeightFormat::Q6K => (&[208], 1),
            WeightFormat::Q4_1 | WeightFormat::Q5_1 | WeightFormat::Q4K | WeightFormat::Q5K => {
                (&[0, 2], 2)
            }
            _ => (&[0], 1),
        };
        for b in w.chunks_exact_mut(fmt.block_bytes()) {
            for &at in &scale_at[..n] {
                let h = half::f16::from_f32(0.01 + f32::from(b[at]) / 5000.0);
                b[at..at + 2].copy_from_slice(&h.to_bits().to_le_bytes());
            }
        }
        w
    }

    fn activations(n: usize, r: usize) -> Vec<f32> {
        // Wide dynamic range within blocks, as in real hidden states.
        (0..n)
            .map(|i| {
                let v = ((i * 31 + r * 17) % 97) as f32 - 48.0;
                if i % 37 == 5 { v * 40.0 } else { v / 7.0 }
            })
            .collect()
    }

    #[test]
    fn sixteen_bit_dots_track_the_float_dot() {
        for (fmt, ty) in FORMATS {
            let n = 512;
            let raw = weights(fmt, n / fmt.block_elems(), 7);
            let mut wf = vec![0.0f32; n];
            dequantize_row(ty, &raw, &mut wf).unwrap();
            let x = activations(n, 3);
            let exact: f64 = wf
                .iter()
                .zip(&x)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let magnitude: f64 = wf
                .iter()
                .zip(&x)
                .map(|(a, b)| f64::from((a * b).abs()))
                .sum();
            let mut q = QuantBatch::<i16>::default();
            q.quantize(&x, x.len(), spec(fmt));
            let mut got = [0.0f32];
            dot_rows_q16(fmt, &raw, &q.tiles().collect::<Vec<_>>(), &mut got);
            // 16-bit activations: error ~2^-15 of each block's largest value.
            let err = (f64::from(got[0]) - exact).abs();
            assert!(
                err < 2e-4 * magnitude,
                "{fmt:?}: {} vs {exact} ({magnitude})",
                got[0]
            );
        }
    }

    #[test]
    fn every_lane_implementation_gives_the_same_bits() {
        for (fmt, _) in FORMATS {
            let n = 1024;
            let raw = weights(fmt, n / fmt.block_elems(), 11);
            let x: Vec<f32> = (0..13).flat_map(|r| activations(n, r)).collect();
            super::super::qbatch::assert_lanes_agree!(
                dot_rows_q16_with,
                dot_rows_q16,
                i16,
                fmt,
                &raw,
                &x,
                n,
                spec(fmt)
            );
        }
    }

    /// The largest products every format allows, with activations at their range: the
    /// integer sums must not wrap (they would flip the sign).
    #[test]
    fn extreme_blocks_do_not_overflow() {
        // Q6_K: every value -32 (ql nibble 0, qh bits 0), every scale -128, d = 1.
        let mut q6 = vec![0u8; 210];
        q6[192..208].fill(0x80);
        q6[208..210].copy_from_slice(&half::f16::ONE.to_bits().to_le_bytes());
        // Q5_K: every value 31, every scale and min 63, d = 1, dmin = 0.
        let mut q5 = vec![0xFFu8; 176];
        q5[0..2].copy_from_slice(&half::f16::ONE.to_bits().to_le_bytes());
        q5[2..4].fill(0);
        for (fmt, ty, raw) in [
            (WeightFormat::Q6K, GgmlType::Q6_K, q6),
            (WeightFormat::Q5K, GgmlType::Q5_K, q5),
        ] {
            let mut wf = vec![0.0f32; 256];
            dequantize_row(ty, &raw, &mut wf).unwrap();
            let x: Vec<f32> = wf.iter().map(|w| w.signum() * 3.0).collect();
            let exact: f64 = wf
                .iter()
                .zip(&x)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let mut q = QuantBatch::<i16>::default();
            q.quantize(&x, x.len(), spec(fmt));
            let mut got = [0.0f32];
            dot_rows_q16(fmt, &raw, &q.tiles().collect::<Vec<_>>(), &mut got);
            assert!(exact > 0.0);
            assert!(
                (f64::from(got[0]) - exact).abs() < 1e-5 * exact,
                "{fmt:?}: {} vs {exact}",
                got[0]
            );
        }
    }
}
