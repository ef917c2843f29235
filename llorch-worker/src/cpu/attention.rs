//! Attention over the paged KV cache, one query row at a time.
//!
//! Keys are visited in position order and the softmax is exact (max, then sum),
//! so a row's output is the same whether its keys were written in this step or
//! earlier ones, and whatever the prefill chunking (SYS-0003).

use rayon::prelude::*;

/// Where one query row's keys live.
#[derive(Debug, Clone, Copy)]
pub struct RowKeys<'a> {
    /// The row's position (it attends to positions `..=pos`).
    pub pos: usize,
    /// Its sequence's page table.
    pub pages: &'a [u32],
}

/// The KV layout of one layer: `[page][slot][K heads | V heads]`.
#[derive(Debug, Clone, Copy)]
pub struct KvLayout {
    /// Tokens per page.
    pub page_size: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Key head width.
    pub head_dim: usize,
    /// Value head width.
    pub v_head_dim: usize,
}

impl KvLayout {
    /// Floats per token.
    pub fn width(&self) -> usize {
        self.n_kv_heads * (self.head_dim + self.v_head_dim)
    }

    /// Offset of position `pos` of a sequence with these pages.
    #[inline]
    pub fn slot(&self, pages: &[u32], pos: usize) -> usize {
        (pages[pos / self.page_size] as usize * self.page_size + pos % self.page_size)
            * self.width()
    }
}

/// Dot product in 8 fixed lanes.
#[inline(always)]
pub fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut l = [0.0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            l[i] += ca[i] * cb[i];
        }
    }
    let mut tail = 0.0;
    for i in a.len() / 8 * 8..a.len() {
        tail += a[i] * b[i];
    }
    ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7])) + tail
}

/// The attention of one layer.
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    /// KV layout.
    pub lay: KvLayout,
    /// Query heads.
    pub n_heads: usize,
    /// How far back a row looks (sliding layers).
    pub window: Option<usize>,
    /// Multiplier on the scores.
    pub scale: f32,
}

/// Computes attention for every row: `out[r]` gets `n_heads * v_head_dim` values
/// from `q`'s `n_heads * head_dim` values per row.
pub fn attend(q: &[f32], rows: &[RowKeys<'_>], kv: &[f32], shape: &AttnShape, out: &mut [f32]) {
    let qw = shape.n_heads * shape.lay.head_dim;
    let ow = shape.n_heads * shape.lay.v_head_dim;
    out.par_chunks_mut(ow)
        .zip(q.par_chunks(qw))
        .zip(rows.par_iter())
        .for_each(|((o, qr), row)| {
            super::simd::run(
                #[inline(always)]
                || attend_row(o, qr, row, kv, shape),
            );
        });
}

/// [`attend`] for one row (inlined into [`super::simd::run`]'s vector code).
#[inline(always)]
fn attend_row(o: &mut [f32], qr: &[f32], row: &RowKeys<'_>, kv: &[f32], shape: &AttnShape) {
    let AttnShape {
        lay,
        n_heads,
        window,
        scale,
    } = *shape;
    let group = n_heads / lay.n_kv_heads;
    let k_width = lay.n_kv_heads * lay.head_dim;
    let lo = window.map_or(0, |w| (row.pos + 1).saturating_sub(w));
    let mut scores = Vec::with_capacity(row.pos + 1 - lo);
    for h in 0..n_heads {
        let g = h / group;
        let qh = &qr[h * lay.head_dim..(h + 1) * lay.head_dim];
        scores.clear();
        let mut max = f32::NEG_INFINITY;
        for p in lo..=row.pos {
            let at = lay.slot(row.pages, p) + g * lay.head_dim;
            let s = dot8(qh, &kv[at..at + lay.head_dim]) * scale;
            max = max.max(s);
            scores.push(s);
        }
        let mut sum = 0.0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let inv = 1.0 / sum;
        let oh = &mut o[h * lay.v_head_dim..(h + 1) * lay.v_head_dim];
        oh.fill(0.0);
        for (i, p) in (lo..=row.pos).enumerate() {
            let at = lay.slot(row.pages, p) + k_width + g * lay.v_head_dim;
            // Probabilities at half precision, as llama.cpp multiplies them with V.
            let w = half::f16::from_f32(scores[i] * inv).to_f32();
            for (acc, &v) in oh.iter_mut().zip(&kv[at..at + lay.v_head_dim]) {
                *acc += w * v;
            }
        }
    }
}
