//! Activation rows quantized for integer dot products, laid out tile by tile.
//!
//! The kernels meet each weight block with a tile of 8 (then 4, then 1) activation
//! rows. Within a tile the rows' pieces are interleaved (`[piece][row][32 values]`),
//! so a kernel walks one pointer per tile and every row sits at a constant offset:
//! no per-row pointers to keep in registers, no bounds checks in the loop.

use rayon::prelude::*;

/// Values per piece (and per 32-value activation scale).
pub const QK: usize = 32;

/// Rows per tile, largest first: a batch of `n` rows is cut into tiles of 8, then at
/// most one of 4, then single rows. Each row's result never depends on its tile.
pub const TILE_SIZES: [usize; 3] = [8, 4, 1];

/// `(first row, rows)` of each tile of a batch of `rows` rows.
pub fn tiles(rows: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let left = rows - at;
        let r = TILE_SIZES.into_iter().find(|&t| t <= left)?;
        at += r;
        Some((at - r, r))
    })
}

/// An integer element of quantized activations.
pub trait QElem: Copy + Default + Send + Sync {
    /// `v` (already rounded and within range) as this type.
    fn from_rounded(v: f32) -> Self;
    /// The value as `i32`.
    fn to_i32(self) -> i32;
}

/// 8-bit activations stored offset by 128 (`q + 128`), as `dpbusd` takes them.
impl QElem for u8 {
    #[inline(always)]
    fn from_rounded(v: f32) -> Self {
        (v as i32 + 128) as u8
    }
    #[inline(always)]
    fn to_i32(self) -> i32 {
        i32::from(self) - 128
    }
}

impl QElem for i16 {
    #[inline(always)]
    fn from_rounded(v: f32) -> Self {
        v as i16
    }
    #[inline(always)]
    fn to_i32(self) -> i32 {
        i32::from(self)
    }
}

/// How rows are quantized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantSpec {
    /// Values sharing one scale (32, or 256 for k-quant weights).
    pub per: usize,
    /// Largest quantized magnitude.
    pub range: f32,
    /// Whether the stored scale is rounded to f16 (llama.cpp's `Q8_0` activations).
    pub f16_scale: bool,
}

/// Rows quantized as `x[r][i] ≈ d · q` with one scale per [`QuantSpec::per`] values,
/// in tile layout (see the module docs).
#[derive(Debug, Default)]
pub struct QuantBatch<T> {
    /// Quantized values, `[tile][piece][row in tile][32]`.
    pub q: Vec<T>,
    /// The scale of each (piece, row), same order (repeated over a block's pieces).
    pub d: Vec<f32>,
    /// The sum of each piece's 32 values (for weight formats with a min), ordered
    /// `[scale block][row][piece in block]`: a row's sums for one weight block are adjacent.
    pub sum: Vec<i32>,
    rows: usize,
    pieces: usize,
}

/// One tile of a [`QuantBatch`]: `rows` rows of `pieces` pieces each.
#[derive(Debug, Clone, Copy)]
pub struct Tile<'a, T> {
    /// First row of the batch in this tile.
    pub start: usize,
    /// Rows in the tile (one of [`TILE_SIZES`]).
    pub rows: usize,
    /// `[piece][row][32]` values.
    pub q: &'a [T],
    /// `[piece][row]` scales.
    pub d: &'a [f32],
    /// `[scale block][row][piece in block]` sums.
    pub sum: &'a [i32],
}

impl<T: QElem> QuantBatch<T> {
    /// Quantizes the `x.len() / cols` rows of `x` (`cols` a multiple of `spec.per`,
    /// itself a multiple of 32), rows in parallel.
    pub fn quantize(&mut self, x: &[f32], cols: usize, spec: QuantSpec) {
        let rows = x.len().checked_div(cols).unwrap_or(0);
        let pieces = cols / QK;
        self.rows = rows;
        self.pieces = pieces;
        self.q.resize(rows * cols, T::default());
        self.d.resize(rows * pieces, 0.0);
        self.sum.resize(rows * pieces, 0);
        // Split the buffers at tile boundaries, then quantize tiles in parallel.
        let mut parts = Vec::new();
        let (mut q, mut d, mut sum) = (&mut self.q[..], &mut self.d[..], &mut self.sum[..]);
        for (start, r) in tiles(rows) {
            let (tq, rq) = q.split_at_mut(r * cols);
            let (td, rd) = d.split_at_mut(r * pieces);
            let (ts, rs) = sum.split_at_mut(r * pieces);
            parts.push((start, r, tq, td, ts));
            (q, d, sum) = (rq, rd, rs);
        }
        parts.into_par_iter().for_each(|(start, r, tq, td, ts)| {
            // Vector code for the rounding (the same bits on every path).
            super::simd::run(
                #[inline(always)]
                || {
                    for rr in 0..r {
                        let xr = &x[(start + rr) * cols..(start + rr + 1) * cols];
                        quantize_row(xr, rr, r, spec, tq, td, ts);
                    }
                },
            );
        });
    }

    /// The tiles, in row order.
    pub fn tiles(&self) -> impl Iterator<Item = Tile<'_, T>> {
        let (cols, pieces) = (self.pieces * QK, self.pieces);
        tiles(self.rows).map(move |(start, rows)| Tile {
            start,
            rows,
            q: &self.q[start * cols..(start + rows) * cols],
            d: &self.d[start * pieces..(start + rows) * pieces],
            sum: &self.sum[start * pieces..(start + rows) * pieces],
        })
    }
}

/// Quantizes one row into row `rr` of a tile of `r` rows.
#[inline(always)]
fn quantize_row<T: QElem>(
    x: &[f32],
    rr: usize,
    r: usize,
    spec: QuantSpec,
    q: &mut [T],
    d: &mut [f32],
    sum: &mut [i32],
) {
    let per_block = spec.per / QK;
    for (b, xs) in x.chunks_exact(spec.per).enumerate() {
        let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = amax / spec.range;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let stored = if spec.f16_scale {
            half::f16::from_f32(scale).to_f32()
        } else {
            scale
        };
        for (j, xp) in xs.chunks_exact(QK).enumerate() {
            let at = (b * per_block + j) * r + rr;
            let qp = &mut q[at * QK..(at + 1) * QK];
            let mut s = 0i32;
            for (o, &v) in qp.iter_mut().zip(xp) {
                let v = T::from_rounded((v * inv).round_ties_even().clamp(-spec.range, spec.range));
                s += v.to_i32();
                *o = v;
            }
            d[at] = stored;
            sum[(b * r + rr) * per_block + j] = s;
        }
    }
}

/// How far ahead of the block being read the kernels prefetch weights, in bytes.
pub const PREFETCH_AHEAD: usize = 2048;

/// A kernel that meets one weight row with a tile of `R` activation rows.
pub trait TileKernel<T> {
    /// `out[r]` for each of the tile's `R` rows.
    fn tile<const R: usize>(w: &[u8], t: Tile<'_, T>, out: &mut [f32]);
}

/// `K` over every tile of `x`, each writing its rows of `out`.
#[inline(always)]
pub fn each_tile<T: Copy, K: TileKernel<T>>(w: &[u8], x: &[Tile<'_, T>], out: &mut [f32]) {
    for &t in x {
        let o = &mut out[t.start..t.start + t.rows];
        match t.rows {
            8 => K::tile::<8>(w, t, o),
            4 => K::tile::<4>(w, t, o),
            _ => K::tile::<1>(w, t, o),
        }
    }
}

/// Test support: `$with::<L>` on every lane arithmetic this CPU has and the dispatching
/// `$best` give the same bits for the rows of `$x` (`$n` wide, quantized with `$spec` as
/// `$t`), and each row alone gives what it gives in the batch.
#[cfg(test)]
macro_rules! assert_lanes_agree {
    ($with:ident, $best:ident, $t:ty, $fmt:expr, $raw:expr, $x:expr, $n:expr, $spec:expr) => {{
        use $crate::cpu::qbatch::QuantBatch;
        use $crate::cpu::simd::{Isa, isa, run};
        let (fmt, raw, x, n, spec) = ($fmt, $raw, $x, $n, $spec);
        let rows = x.len() / n;
        let mut xs = QuantBatch::<$t>::default();
        xs.quantize(x, n, spec);
        let tiles: Vec<_> = xs.tiles().collect();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let mut portable = vec![0.0; rows];
        $with::<$crate::cpu::lanes::Portable>(fmt, raw, &tiles, &mut portable);
        let mut best = vec![0.0; rows];
        run(|| $best(fmt, raw, &tiles, &mut best));
        assert_eq!(bits(&portable), bits(&best), "{fmt:?}");
        #[cfg(target_arch = "x86_64")]
        if isa() != Isa::Portable {
            let mut avx2 = vec![0.0; rows];
            run(|| $with::<$crate::cpu::lanes::Avx2>(fmt, raw, &tiles, &mut avx2));
            assert_eq!(bits(&portable), bits(&avx2), "{fmt:?} avx2");
        }
        for r in 0..rows {
            let mut one = QuantBatch::<$t>::default();
            one.quantize(&x[r * n..(r + 1) * n], n, spec);
            let mut alone = [0.0f32];
            $best(fmt, raw, &one.tiles().collect::<Vec<_>>(), &mut alone);
            assert_eq!(alone[0].to_bits(), portable[r].to_bits(), "{fmt:?} row {r}");
        }
    }};
}
#[cfg(test)]
pub(crate) use assert_lanes_agree;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_every_row_once_in_order() {
        for rows in 0..40 {
            let t: Vec<(usize, usize)> = tiles(rows).collect();
            let mut next = 0;
            for &(s, r) in &t {
                assert_eq!(s, next);
                assert!(TILE_SIZES.contains(&r));
                next += r;
            }
            assert_eq!(next, rows);
            assert!(t.iter().filter(|t| t.1 == 4).count() <= 1);
        }
    }

    #[test]
    fn quantized_rows_round_trip() {
        let cols = 512;
        let x: Vec<f32> = (0..13 * cols)
            .map(|i| ((i * 37) % 101) as f32 - 50.0)
            .collect();
        let mut b = QuantBatch::<i16>::default();
        let spec = QuantSpec {
            per: 256,
            range: 16383.0,
            f16_scale: false,
        };
        b.quantize(&x, cols, spec);
        for t in b.tiles() {
            for rr in 0..t.rows {
                for p in 0..cols / QK {
                    let at = p * t.rows + rr;
                    for i in 0..QK {
                        let want = x[(t.start + rr) * cols + p * QK + i];
                        let got = t.d[at] * f32::from(t.q[at * QK + i]);
                        assert!((got - want).abs() <= 50.0 / 16383.0, "{got} {want}");
                    }
                    let s: i32 = t.q[at * QK..(at + 1) * QK]
                        .iter()
                        .map(|&v| i32::from(v))
                        .sum();
                    let (b, j) = (p / 8, p % 8);
                    assert_eq!(t.sum[(b * t.rows + rr) * 8 + j], s);
                }
            }
        }
    }
}
