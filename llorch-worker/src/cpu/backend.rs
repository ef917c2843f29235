//! The CPU backend: the whole model step on host memory, all cores.
//!
//! One forward pass serves every architecture; flags of [`ModelConfig`] and the
//! optional tensors of [`Layer`] select norms, biases, activations and windows.

use rayon::prelude::*;

use super::attention::{AttnShape, KvLayout, RowKeys, attend};
use super::matmul::{Activations, matmul};
use super::ops::{Rope, RopeStyle, gate, rms_norm};
use super::simd;
use crate::backend::{
    BackendError, ComputeBackend, LogitsWant, SeqOutput, SeqStep, finish_step, validate_batch,
};
use crate::model::{Arch, Layer, ModelConfig, Weights};

/// Scratch buffers reused across steps.
#[derive(Debug, Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    tmp: Vec<f32>,
    /// Logit rows of the step (kept: a fresh vocabulary-wide buffer per step costs
    /// page faults and zeroing).
    logits: Vec<f32>,
    act: Activations,
}

/// Logit rows whose buffers stay allocated between steps.
const KEEP_LOGIT_ROWS: usize = 64;

/// The model on the CPU, with its KV cache in host memory.
#[derive(Debug)]
pub struct CpuBackend {
    cfg: ModelConfig,
    w: Weights,
    rope_global: Rope,
    rope_local: Rope,
    lay: KvLayout,
    num_pages: usize,
    kv: Vec<Vec<f32>>,
    s: Scratch,
}

impl CpuBackend {
    /// A backend for `weights` with `num_pages` KV pages of `page_size` tokens.
    pub fn new(cfg: ModelConfig, w: Weights, num_pages: usize, page_size: usize) -> Self {
        let style = match cfg.arch {
            Arch::Llama => RopeStyle::Interleaved,
            Arch::Gemma3 | Arch::Qwen2 => RopeStyle::Neox,
        };
        let freqs = w.rope_freqs.as_deref();
        let rope_global = Rope::new(style, cfg.rope_dims, cfg.rope_base, freqs, cfg.rope_linear);
        let rope_local = Rope::new(
            style,
            cfg.rope_dims,
            cfg.rope_base_local.unwrap_or(cfg.rope_base),
            freqs,
            1.0,
        );
        let lay = KvLayout {
            page_size,
            n_kv_heads: cfg.n_kv_heads,
            head_dim: cfg.head_dim,
            v_head_dim: cfg.v_head_dim,
        };
        let kv = (0..cfg.n_layers)
            .map(|_| vec![0.0f32; num_pages * page_size * lay.width()])
            .collect();
        Self {
            cfg,
            w,
            rope_global,
            rope_local,
            lay,
            num_pages,
            kv,
            s: Scratch::default(),
        }
    }

    fn check(&self, batch: &[SeqStep<'_>]) -> Result<(), BackendError> {
        validate_batch(batch, self.w.vocab, self.lay.page_size, self.num_pages)
    }
}

/// Rounds every value to the nearest IEEE half (kept as f32), with the CPU's
/// vector conversions where it has them.
fn round_f16(xs: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    let mut buf = [half::f16::ZERO; 256];
    for c in xs.chunks_mut(256) {
        let b = &mut buf[..c.len()];
        b.convert_from_f32_slice(c);
        b.convert_to_f32_slice(c);
    }
}

/// RMS-normalises each `width`-long row of `x` with `w`, in parallel.
fn norm_rows(x: &mut [f32], w: &[f32], width: usize, eps: f32) {
    x.par_chunks_mut(width).for_each(|r| rms_norm(r, w, eps));
}

fn add_bias(x: &mut [f32], b: Option<&Vec<f32>>) {
    if let Some(b) = b {
        for row in x.chunks_mut(b.len()) {
            for (v, &bb) in row.iter_mut().zip(b) {
                *v += bb;
            }
        }
    }
}

impl CpuBackend {
    /// Runs one block over all rows of the step (`x` is updated in place).
    fn layer(&mut self, l: usize, rows: &[RowKeys<'_>]) {
        let cfg = &self.cfg;
        let layer: &Layer = &self.w.layers[l];
        let s = &mut self.s;
        let d = cfg.d_model;
        s.h.clone_from(&s.x);
        norm_rows(&mut s.h, &layer.attn_norm, d, cfg.eps);
        s.act.load(&s.h, d);
        matmul(&self.w.view(&layer.wq), &mut s.act, &mut s.q, &mut s.tmp);
        matmul(&self.w.view(&layer.wk), &mut s.act, &mut s.k, &mut s.tmp);
        matmul(&self.w.view(&layer.wv), &mut s.act, &mut s.v, &mut s.tmp);
        add_bias(&mut s.q, layer.bq.as_ref());
        add_bias(&mut s.k, layer.bk.as_ref());
        add_bias(&mut s.v, layer.bv.as_ref());
        let hd = cfg.head_dim;
        let rope = if cfg.is_sliding(l) {
            &self.rope_local
        } else {
            &self.rope_global
        };
        let (q_norm, k_norm, eps) = (layer.q_norm.as_deref(), layer.k_norm.as_deref(), cfg.eps);
        let per_head = |row: &mut [f32], pos: usize, norm: Option<&[f32]>| {
            for head in row.chunks_mut(hd) {
                if let Some(n) = norm {
                    rms_norm(head, n, eps);
                }
                rope.apply(head, pos);
            }
        };
        let scale = cfg.attn_scale;
        s.q.par_chunks_mut(cfg.n_heads * hd)
            .zip(rows.par_iter())
            .for_each(|(r, row)| {
                per_head(r, row.pos, q_norm);
                // Scaled queries meet the half-precision keys at half precision.
                r.iter_mut().for_each(|v| *v *= scale);
                round_f16(r);
            });
        s.k.par_chunks_mut(cfg.n_kv_heads * hd)
            .zip(rows.par_iter())
            .for_each(|(r, row)| per_head(r, row.pos, k_norm));
        // Store this step's keys and values at half precision (the KV cache's
        // precision in llama.cpp too), then attend from the cache.
        let kv = &mut self.kv[l];
        let (kw, vw) = (cfg.n_kv_heads * hd, cfg.n_kv_heads * cfg.v_head_dim);
        for (i, row) in rows.iter().enumerate() {
            let at = self.lay.slot(row.pages, row.pos);
            kv[at..at + kw].copy_from_slice(&s.k[i * kw..(i + 1) * kw]);
            kv[at + kw..at + kw + vw].copy_from_slice(&s.v[i * vw..(i + 1) * vw]);
            round_f16(&mut kv[at..at + kw + vw]);
        }
        let shape = AttnShape {
            lay: self.lay,
            n_heads: cfg.n_heads,
            window: cfg.sliding_window.filter(|_| cfg.is_sliding(l)),
            scale: 1.0,
        };
        s.att.resize(rows.len() * cfg.n_heads * cfg.v_head_dim, 0.0);
        attend(&s.q, rows, kv, &shape, &mut s.att);
        s.act.load(&s.att, cfg.n_heads * cfg.v_head_dim);
        matmul(&self.w.view(&layer.wo), &mut s.act, &mut s.o, &mut s.tmp);
        if let Some(n) = &layer.post_attn_norm {
            norm_rows(&mut s.o, n, d, eps);
        }
        for (x, o) in s.x.iter_mut().zip(&s.o) {
            *x += o;
        }
        // Feed-forward.
        s.h.clone_from(&s.x);
        norm_rows(&mut s.h, &layer.ffn_norm, d, eps);
        s.act.load(&s.h, d);
        matmul(
            &self.w.view(&layer.gate),
            &mut s.act,
            &mut s.gate,
            &mut s.tmp,
        );
        matmul(&self.w.view(&layer.up), &mut s.act, &mut s.up, &mut s.tmp);
        let gelu = cfg.arch == Arch::Gemma3;
        s.gate
            .par_chunks_mut(cfg.d_ff)
            .zip(s.up.par_chunks(cfg.d_ff))
            .for_each(|(g, u)| simd::run(|| gate(g, u, gelu)));
        s.act.load(&s.gate, cfg.d_ff);
        matmul(&self.w.view(&layer.down), &mut s.act, &mut s.o, &mut s.tmp);
        if let Some(n) = &layer.post_ffn_norm {
            norm_rows(&mut s.o, n, d, eps);
        }
        for (x, o) in s.x.iter_mut().zip(&s.o) {
            *x += o;
        }
    }
}

impl ComputeBackend for CpuBackend {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn vocab_size(&self) -> usize {
        self.w.vocab
    }

    fn page_size(&self) -> usize {
        self.lay.page_size
    }

    fn num_pages(&self) -> usize {
        self.num_pages
    }

    fn memory_bytes(&self) -> u64 {
        let kv: usize = self.kv.iter().map(|l| l.len() * 4).sum();
        (self.w.file.len() as usize + kv) as u64
    }

    fn device_name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn step(
        &mut self,
        batch: &[SeqStep<'_>],
        out: &mut Vec<SeqOutput>,
    ) -> Result<(), BackendError> {
        self.check(batch)?;
        let d = self.cfg.d_model;
        let rows: Vec<RowKeys<'_>> = batch
            .iter()
            .flat_map(|sq| {
                (0..sq.tokens.len()).map(move |i| RowKeys {
                    pos: sq.start_pos + i,
                    pages: sq.pages,
                })
            })
            .collect();
        let tokens: Vec<u32> = batch
            .iter()
            .flat_map(|sq| sq.tokens.iter().copied())
            .collect();
        self.s.x.resize(tokens.len() * d, 0.0);
        let scale = self.cfg.embed_scale;
        for (t, xr) in tokens.iter().zip(self.s.x.chunks_mut(d)) {
            if !self.w.embed_row(*t, xr) {
                return Err(BackendError::BadToken(*t));
            }
            if let Some(sc) = scale {
                xr.iter_mut().for_each(|v| *v *= sc);
            }
        }
        for l in 0..self.cfg.n_layers {
            self.layer(l, &rows);
        }
        // Final norm and output projection for the rows that need logits.
        let mut want_rows = Vec::new();
        let mut first = 0;
        for sq in batch {
            let n = sq.tokens.len();
            match sq.logits {
                LogitsWant::None => {}
                LogitsWant::Last => want_rows.push(first + n - 1),
                LogitsWant::All => want_rows.extend(first..first + n),
            }
            first += n;
        }
        let s = &mut self.s;
        s.h.clear();
        for &r in &want_rows {
            s.h.extend_from_slice(&s.x[r * d..(r + 1) * d]);
        }
        norm_rows(&mut s.h, &self.w.output_norm, d, self.cfg.eps);
        s.act.load(&s.h, d);
        matmul(
            &self.w.view(&self.w.output),
            &mut s.act,
            &mut s.logits,
            &mut s.tmp,
        );
        finish_step(batch, &s.logits, self.w.vocab, out);
        // Keep the buffers of a decode batch; give back those of a step that asked
        // for every position's logits (teacher forcing: up to a GB).
        if s.logits.len() > KEEP_LOGIT_ROWS * self.w.vocab {
            s.logits = Vec::new();
            s.tmp = Vec::new();
        }
        Ok(())
    }
}
