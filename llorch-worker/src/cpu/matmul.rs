//! Matrix products on all cores, weights read straight from their GGUF blocks.
//!
//! Work is split over output features only, never over the reduction, so every
//! output value is computed by the same sequence of operations whatever the batch
//! size or thread count (SYS-0003).

use rayon::prelude::*;

use super::qdot::{QuantRow, WeightFormat, dot_row_f, dot_rows_q};
use super::qdot16::{ActFormat, QuantRow16, dot_rows_q16};
use super::simd;

/// A weight matrix in its GGUF encoding: `rows` output features of `cols` inputs each.
#[derive(Debug, Clone, Copy)]
pub struct QMatrix<'a> {
    /// Encoding of the rows.
    pub fmt: WeightFormat,
    /// Output features.
    pub rows: usize,
    /// Inputs per feature (the reduction length).
    pub cols: usize,
    /// `rows * fmt.row_bytes(cols)` bytes.
    pub data: &'a [u8],
}

impl<'a> QMatrix<'a> {
    /// The bytes of output feature `j`.
    #[inline(always)]
    pub fn row(&self, j: usize) -> &'a [u8] {
        let rb = self.fmt.row_bytes(self.cols);
        &self.data[j * rb..(j + 1) * rb]
    }
}

/// Activation rows prepared for a product: as floats and, when needed, quantized.
#[derive(Debug, Default)]
pub struct Activations {
    /// Row length.
    pub cols: usize,
    /// `rows * cols` floats.
    pub f: Vec<f32>,
    /// The same rows quantized to `i8` per 32 values (filled on demand).
    pub q: Vec<QuantRow>,
    /// The same rows quantized to `i16` per 32 values (filled on demand).
    pub q16: Vec<QuantRow16>,
    /// The same rows quantized to `i16` per 256 values for k-quant weights (filled on demand).
    pub q16k: Vec<QuantRow16>,
    /// Which quantized forms are up to date.
    done: [bool; 3],
}

impl Activations {
    /// Loads `rows` rows of length `cols` from `x`.
    pub fn load(&mut self, x: &[f32], cols: usize) {
        self.cols = cols;
        self.f.clear();
        self.f.extend_from_slice(x);
        self.done = [false; 3];
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.f.len().checked_div(self.cols).unwrap_or(0)
    }

    /// Quantizes the rows as `fmt`'s products need (once per loaded activations).
    fn quantize_for(&mut self, fmt: WeightFormat) {
        let cols = self.cols;
        let rows = self.rows();
        let (slot, f) = match fmt.activations() {
            ActFormat::F32 => return,
            ActFormat::I8 => (0, &self.f),
            ActFormat::I16x32 => (1, &self.f),
            ActFormat::I16x256 => (2, &self.f),
        };
        if self.done[slot] {
            return;
        }
        // Inside `simd::run` so rounding compiles to vector instructions.
        simd::run(|| {
            if slot == 0 {
                self.q.resize_with(rows, QuantRow::default);
                self.q
                    .par_iter_mut()
                    .zip(f.par_chunks(cols))
                    .for_each(|(q, x)| q.quantize(x));
            } else {
                let q = if slot == 1 {
                    &mut self.q16
                } else {
                    &mut self.q16k
                };
                q.resize_with(rows, QuantRow16::default);
                q.par_iter_mut()
                    .zip(f.par_chunks(cols))
                    .for_each(|(q, x)| q.quantize_for(fmt, x));
            }
        });
        self.done[slot] = true;
    }
}

/// Features per parallel task.
fn chunk_features(n: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (n / (threads * 8)).clamp(4, 256).min(n.max(1))
}

/// `out[r][j] = Σ_k w[j][k] · x[r][k]` for every activation row `r` and feature `j`.
///
/// `out` holds `x.rows() * w.rows` values, row-major; `tmp` is scratch.
pub fn matmul(w: &QMatrix<'_>, x: &mut Activations, out: &mut Vec<f32>, tmp: &mut Vec<f32>) {
    let rows = x.rows();
    let n = w.rows;
    x.quantize_for(w.fmt);
    // Every value is overwritten below: resizing keeps old contents (no zeroing pass).
    out.resize(rows * n, 0.0);
    if rows == 0 || n == 0 {
        return;
    }
    let chunk = chunk_features(n);
    let x: &Activations = x;
    // Dots of the features `j0..` into `tile`, feature-major: `tile[dj * rows + r]`.
    let dots = |j0: usize, tile: &mut [f32]| {
        simd::run(
            #[inline(always)]
            || {
                for (dj, per_row) in tile.chunks_mut(rows).enumerate() {
                    let wr = w.row(j0 + dj);
                    match w.fmt.activations() {
                        ActFormat::I8 => dot_rows_q(w.fmt, wr, &x.q, per_row),
                        ActFormat::I16x32 => dot_rows_q16(w.fmt, wr, &x.q16, per_row),
                        ActFormat::I16x256 => dot_rows_q16(w.fmt, wr, &x.q16k, per_row),
                        ActFormat::F32 => {
                            for (r, o) in per_row.iter_mut().enumerate() {
                                *o = dot_row_f(w.fmt, wr, &x.f[r * x.cols..(r + 1) * x.cols]);
                            }
                        }
                    }
                }
            },
        )
    };
    if rows == 1 {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(c, tile)| dots(c * chunk, tile));
        return;
    }
    // Each task owns a run of features: it fills its tile, then writes the tile into
    // its pieces of every output row (while the tile is still in cache).
    let mut per_row: Vec<std::slice::ChunksMut<'_, f32>> =
        out.chunks_mut(n).map(|row| row.chunks_mut(chunk)).collect();
    let mut pieces: Vec<&mut [f32]> = Vec::with_capacity(n.div_ceil(chunk) * rows);
    for _ in 0..n.div_ceil(chunk) {
        pieces.extend(per_row.iter_mut().filter_map(Iterator::next));
    }
    tmp.resize(rows * n, 0.0);
    pieces
        .par_chunks_mut(rows)
        .zip(tmp.par_chunks_mut(chunk * rows))
        .enumerate()
        .for_each(|(c, (dst, tile))| {
            dots(c * chunk, tile);
            for (r, d) in dst.iter_mut().enumerate() {
                for (dj, o) in d.iter_mut().enumerate() {
                    *o = tile[dj * rows + r];
                }
            }
        });
}
