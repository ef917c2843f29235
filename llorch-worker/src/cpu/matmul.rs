//! Matrix products on all cores, weights read straight from their GGUF blocks.
//!
//! Work is split over output features only, never over the reduction, so every
//! output value is computed by the same sequence of operations whatever the batch
//! size or thread count (SYS-0003).

use rayon::prelude::*;

use super::qbatch::QuantBatch;
use super::qdot::{ActFormat, Q8_SPEC, WeightFormat, dot_row_f, dot_rows_q};
use super::qdot16::{dot_rows_q16, spec};
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
    pub q: QuantBatch<u8>,
    /// The same rows quantized to `i16` per 32 values (filled on demand).
    pub q16: QuantBatch<i16>,
    /// The same rows quantized to `i16` per 256 values for k-quant weights (filled on demand).
    pub q16k: QuantBatch<i16>,
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
        let slot = match fmt.activations() {
            ActFormat::F32 => return,
            ActFormat::I8 => 0,
            ActFormat::I16x32 => 1,
            ActFormat::I16x256 => 2,
        };
        if self.done[slot] {
            return;
        }
        let (f, cols) = (&self.f, self.cols);
        match slot {
            0 => self.q.quantize(f, cols, Q8_SPEC),
            1 => self.q16.quantize(f, cols, spec(fmt)),
            _ => self.q16k.quantize(f, cols, spec(fmt)),
        }
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
    // The tiles of the quantized rows, cut once per product.
    let (t8, t16): (Vec<_>, Vec<_>) = match w.fmt.activations() {
        ActFormat::I8 => (x.q.tiles().collect(), Vec::new()),
        ActFormat::I16x32 => (Vec::new(), x.q16.tiles().collect()),
        ActFormat::I16x256 => (Vec::new(), x.q16k.tiles().collect()),
        ActFormat::F32 => (Vec::new(), Vec::new()),
    };
    // Dots of the features `j0..` into `tile`, feature-major: `tile[dj * rows + r]`.
    let dots = |j0: usize, tile: &mut [f32]| {
        simd::run(
            #[inline(always)]
            || {
                for (dj, per_row) in tile.chunks_mut(rows).enumerate() {
                    let wr = w.row(j0 + dj);
                    match w.fmt.activations() {
                        ActFormat::I8 => dot_rows_q(w.fmt, wr, &t8, per_row),
                        ActFormat::I16x32 | ActFormat::I16x256 => {
                            dot_rows_q16(w.fmt, wr, &t16, per_row)
                        }
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
