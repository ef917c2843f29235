//! [`CudaBackend`]: one forward pass for every architecture, on the GPU.

use std::path::PathBuf;

use llorch_cuda::{AttnDims, AttnPlan, CudaError, CudaSlice, Gpu, HeadOp, IndexBuf, MAX_HEAD_DIM};

use super::weights::{DeviceWeights, plan};
use crate::backend::{
    BackendError, ComputeBackend, SeqOutput, SeqStep, finish_step, logit_rows, validate_batch,
};
use crate::cpu::ops::{Rope, RopeStyle};
use crate::model::{Arch, ModelConfig, Weights};

/// How to build a [`CudaBackend`].
#[derive(Debug, Clone)]
pub struct CudaOptions {
    /// Device ordinal (`cuda:N`).
    pub ordinal: usize,
    /// KV pages to hold.
    pub num_pages: usize,
    /// Tokens per page.
    pub page_size: usize,
    /// Most tokens in one step (activation buffers are sized for it up front).
    pub max_step_tokens: usize,
    /// Most rows of logits in one step (sizes the logits buffer up front; more grow it).
    pub max_logit_rows: usize,
    /// Where compiled kernels are cached (none: compile at every start).
    pub kernel_cache: Option<PathBuf>,
}

/// Device memory reserved beyond our buffers (context, module, driver).
const RESERVE: u64 = 256 << 20;

/// Activation buffers for `rows` tokens and `logit_rows` rows of logits.
struct Scratch {
    rows: usize,
    logit_rows: usize,
    x: CudaSlice<f32>,
    h: CudaSlice<f32>,
    q: CudaSlice<f32>,
    k: CudaSlice<f32>,
    v: CudaSlice<f32>,
    att: CudaSlice<f32>,
    o: CudaSlice<f32>,
    gate: CudaSlice<f32>,
    up: CudaSlice<f32>,
    lin: CudaSlice<f32>,
    lnorm: CudaSlice<f32>,
    logits: CudaSlice<f32>,
}

/// Widths of one token's activations.
#[derive(Clone, Copy)]
struct Widths {
    d: usize,
    q: usize,
    k: usize,
    v: usize,
    att: usize,
    ff: usize,
}

impl Widths {
    fn of(c: &ModelConfig) -> Self {
        Self {
            d: c.d_model,
            q: c.n_heads * c.head_dim,
            k: c.n_kv_heads * c.head_dim,
            v: c.n_kv_heads * c.v_head_dim,
            att: c.n_heads * c.v_head_dim,
            ff: c.d_ff,
        }
    }

    fn per_row(&self) -> usize {
        3 * self.d + self.q + self.k + self.v + self.att + 2 * self.ff
    }
}

impl Scratch {
    fn bytes(w: Widths, vocab: usize, rows: usize, logit_rows: usize) -> u64 {
        ((rows * w.per_row() + logit_rows * (2 * w.d + vocab)) * 4) as u64
    }

    fn new(
        gpu: &Gpu,
        w: Widths,
        vocab: usize,
        rows: usize,
        logit_rows: usize,
    ) -> Result<Self, CudaError> {
        Ok(Self {
            rows,
            logit_rows,
            x: gpu.alloc(rows * w.d)?,
            h: gpu.alloc(rows * w.d)?,
            q: gpu.alloc(rows * w.q)?,
            k: gpu.alloc(rows * w.k)?,
            v: gpu.alloc(rows * w.v)?,
            att: gpu.alloc(rows * w.att)?,
            o: gpu.alloc(rows * w.d)?,
            gate: gpu.alloc(rows * w.ff)?,
            up: gpu.alloc(rows * w.ff)?,
            lin: gpu.alloc(logit_rows * w.d)?,
            lnorm: gpu.alloc(logit_rows * w.d)?,
            logits: gpu.alloc(logit_rows * vocab)?,
        })
    }
}

/// Per-step indices, validated on the host before they reach a kernel.
#[derive(Default)]
struct Indices {
    tokens: IndexBuf,
    pos: IndexBuf,
    slots: IndexBuf,
    want: IndexBuf,
    plan: AttnPlan,
}

/// The model on one GPU, with its KV cache in device memory.
pub struct CudaBackend {
    cfg: ModelConfig,
    gpu: Gpu,
    w: DeviceWeights,
    vocab: usize,
    page_size: usize,
    num_pages: usize,
    neox: bool,
    inv_global: CudaSlice<f64>,
    inv_local: CudaSlice<f64>,
    kv: Vec<CudaSlice<u16>>,
    s: Scratch,
    ix: Indices,
    host_logits: Vec<f32>,
    fixed_bytes: u64,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("device", &self.gpu.describe())
            .field("num_pages", &self.num_pages)
            .finish_non_exhaustive()
    }
}

fn dev(e: CudaError) -> BackendError {
    BackendError::Device(e.to_string())
}

impl CudaBackend {
    /// Opens the GPU, checks it has the memory (weights + KV + activations), and
    /// copies the weights over. Fails fast, naming bytes needed and free.
    pub fn new(cfg: ModelConfig, weights: &Weights, opts: &CudaOptions) -> Result<Self, CudaError> {
        if cfg.head_dim > MAX_HEAD_DIM || cfg.v_head_dim > MAX_HEAD_DIM {
            return Err(CudaError::Shape {
                kernel: "attention",
                why: format!(
                    "head width {} / {} over the kernels' {MAX_HEAD_DIM}",
                    cfg.head_dim, cfg.v_head_dim
                ),
            });
        }
        let gpu = Gpu::open(opts.ordinal, opts.kernel_cache.as_deref())?;
        let layout = plan(weights);
        let widths = Widths::of(&cfg);
        let vocab = weights.vocab;
        let page_size = opts.page_size.max(1);
        let num_pages = opts.num_pages.max(1);
        let kv_len = num_pages * page_size * cfg.kv_width();
        let kv_bytes = (kv_len * 2 * cfg.n_layers) as u64;
        let rows = opts.max_step_tokens.max(1);
        let logit_rows = opts.max_logit_rows.max(1);
        let scratch = Scratch::bytes(widths, vocab, rows, logit_rows);
        let weight_bytes = layout.0.device_bytes();
        let need = weight_bytes + kv_bytes + scratch + RESERVE;
        gpu.ensure_free(
            need,
            &format!(
                "weights {weight_bytes} + KV cache {kv_bytes} + activations {scratch} + reserve {RESERVE}"
            ),
        )?;
        let w = DeviceWeights::upload(&gpu, weights, layout)?;
        let style = match cfg.arch {
            Arch::Llama => RopeStyle::Interleaved,
            Arch::Gemma3 | Arch::Qwen2 => RopeStyle::Neox,
        };
        let freqs = weights.rope_freqs.as_deref();
        let global = Rope::new(style, cfg.rope_dims, cfg.rope_base, freqs, cfg.rope_linear);
        let local_base = cfg.rope_base_local.unwrap_or(cfg.rope_base);
        let local = Rope::new(style, cfg.rope_dims, local_base, freqs, 1.0);
        let pad = |v: Vec<f64>| if v.is_empty() { vec![0.0] } else { v };
        let inv_global = gpu.upload(&pad(global.inv_freq))?;
        let inv_local = gpu.upload(&pad(local.inv_freq))?;
        let kv = (0..cfg.n_layers)
            .map(|_| gpu.alloc::<u16>(kv_len))
            .collect::<Result<Vec<_>, _>>()?;
        let s = Scratch::new(&gpu, widths, vocab, rows, logit_rows)?;
        Ok(Self {
            neox: style == RopeStyle::Neox,
            cfg,
            gpu,
            w,
            vocab,
            page_size,
            num_pages,
            inv_global,
            inv_local,
            kv,
            s,
            ix: Indices::default(),
            host_logits: Vec::new(),
            fixed_bytes: weight_bytes + kv_bytes,
        })
    }

    /// Grows the activation buffers when a step needs more rows than they hold.
    fn reserve(&mut self, rows: usize, logit_rows: usize) -> Result<(), CudaError> {
        if rows <= self.s.rows && logit_rows <= self.s.logit_rows {
            return Ok(());
        }
        let rows = rows.max(self.s.rows);
        let logit_rows = logit_rows.max(self.s.logit_rows);
        let w = Widths::of(&self.cfg);
        // Free the old buffers first: both sets may not fit at once.
        let old_bytes = Scratch::bytes(w, self.vocab, self.s.rows, self.s.logit_rows);
        let new_bytes = Scratch::bytes(w, self.vocab, rows, logit_rows);
        self.gpu
            .ensure_free(new_bytes.saturating_sub(old_bytes), "activations")?;
        self.s = Scratch::new(&self.gpu, w, self.vocab, rows, logit_rows)?;
        Ok(())
    }

    /// Sets the step's indices from the batch (validated on the host).
    fn index(&mut self, batch: &[SeqStep<'_>], n: usize) -> Result<usize, CudaError> {
        let ps = self.page_size;
        let mut tokens = Vec::with_capacity(n);
        let mut pos = Vec::with_capacity(n);
        let mut slots = Vec::with_capacity(n);
        let mut rows = Vec::with_capacity(n);
        let mut table = Vec::new();
        let mut want = Vec::new();
        let mut first = 0u32;
        for sq in batch {
            let off = table.len() as u32;
            table.extend_from_slice(sq.pages);
            for (i, &t) in sq.tokens.iter().enumerate() {
                let p = sq.start_pos + i;
                tokens.push(t);
                pos.push(p as u32);
                slots.push(sq.pages[p / ps] * ps as u32 + (p % ps) as u32);
                rows.push((p as u32, off));
            }
            let len = sq.tokens.len() as u32;
            let k = logit_rows(sq) as u32;
            want.extend(first + len - k..first + len);
            first += len;
        }
        let g = &self.gpu;
        self.ix.tokens.set(g, &tokens, self.vocab as u32)?;
        self.ix.pos.set(g, &pos, i32::MAX as u32)?;
        self.ix.slots.set(g, &slots, (self.num_pages * ps) as u32)?;
        self.ix.want.set(g, &want, n as u32)?;
        self.ix.plan.set(g, &rows, &table, ps, self.num_pages)?;
        Ok(want.len())
    }

    /// The forward pass over `n` rows; logits of the wanted rows end in `host_logits`.
    fn forward(&mut self, n: usize, wanted: usize) -> Result<(), CudaError> {
        let c = &self.cfg;
        let (g, w, s, ix, kv) = (&self.gpu, &self.w, &mut self.s, &self.ix, &mut self.kv);
        let wd = Widths::of(c);
        let (d, eps) = (wd.d, c.eps);
        g.embed(
            w.embed.fmt,
            &w.m(&w.embed),
            w.embed.rows,
            d,
            &ix.tokens,
            c.embed_scale.unwrap_or(1.0),
            &mut s.x.slice_mut(..n * d),
        )?;
        for (l, layer) in w.layers.iter().enumerate() {
            g.rms_norm(
                &s.x.slice(..n * d),
                &w.v(&layer.attn_norm),
                &mut s.h.slice_mut(..n * d),
                n,
                d,
                eps,
            )?;
            {
                let h = s.h.slice(..n * d);
                let mm = |m: &super::weights::DMatrix, out: &mut CudaSlice<f32>| {
                    g.qmm(
                        m.fmt,
                        &w.m(m),
                        m.rows,
                        m.cols,
                        &h,
                        n,
                        &mut out.slice_mut(..n * m.rows),
                    )
                };
                mm(&layer.wq, &mut s.q)?;
                mm(&layer.wk, &mut s.k)?;
                mm(&layer.wv, &mut s.v)?;
            }
            for (b, out, width) in [
                (&layer.bq, &mut s.q, wd.q),
                (&layer.bk, &mut s.k, wd.k),
                (&layer.bv, &mut s.v, wd.v),
            ] {
                if let Some(b) = b {
                    g.add_bias(&mut out.slice_mut(..n * width), &w.v(b), n)?;
                }
            }
            let sliding = c.is_sliding(l);
            let inv = if sliding {
                &self.inv_local
            } else {
                &self.inv_global
            };
            let inv = inv.slice(..);
            let qn = layer.q_norm.as_ref().map(|v| w.v(v));
            let kn = layer.k_norm.as_ref().map(|v| w.v(v));
            let op = HeadOp {
                n_heads: c.n_heads,
                head_dim: c.head_dim,
                norm: qn.as_ref(),
                eps,
                inv_freq: &inv,
                rope_dims: c.rope_dims,
                neox: self.neox,
                // Scaled queries meet the half-precision keys at half precision (as the CPU).
                scale: c.attn_scale,
                round_half: true,
            };
            g.head_norm_rope(&mut s.q.slice_mut(..n * wd.q), &ix.pos, &op)?;
            let op = HeadOp {
                n_heads: c.n_kv_heads,
                norm: kn.as_ref(),
                scale: 1.0,
                round_half: false,
                ..op
            };
            g.head_norm_rope(&mut s.k.slice_mut(..n * wd.k), &ix.pos, &op)?;
            let cache = &mut kv[l];
            g.kv_store(
                &s.k.slice(..n * wd.k),
                &s.v.slice(..n * wd.v),
                &mut cache.slice_mut(..),
                &ix.slots,
                wd.k,
                wd.v,
            )?;
            let dims = AttnDims {
                n_heads: c.n_heads,
                n_kv_heads: c.n_kv_heads,
                head_dim: c.head_dim,
                v_head_dim: c.v_head_dim,
                window: c.sliding_window.filter(|_| sliding),
            };
            g.attention(
                &s.q.slice(..n * wd.q),
                &cache.slice(..),
                &mut s.att.slice_mut(..n * wd.att),
                &ix.plan,
                &dims,
            )?;
            g.qmm(
                layer.wo.fmt,
                &w.m(&layer.wo),
                d,
                wd.att,
                &s.att.slice(..n * wd.att),
                n,
                &mut s.o.slice_mut(..n * d),
            )?;
            let pn = layer.post_attn_norm.as_ref().map(|v| w.v(v));
            g.add_normed(
                &mut s.x.slice_mut(..n * d),
                &s.o.slice(..n * d),
                pn.as_ref(),
                n,
                d,
                eps,
            )?;
            // Feed-forward.
            g.rms_norm(
                &s.x.slice(..n * d),
                &w.v(&layer.ffn_norm),
                &mut s.h.slice_mut(..n * d),
                n,
                d,
                eps,
            )?;
            {
                let h = s.h.slice(..n * d);
                g.qmm(
                    layer.gate.fmt,
                    &w.m(&layer.gate),
                    wd.ff,
                    d,
                    &h,
                    n,
                    &mut s.gate.slice_mut(..n * wd.ff),
                )?;
                g.qmm(
                    layer.up.fmt,
                    &w.m(&layer.up),
                    wd.ff,
                    d,
                    &h,
                    n,
                    &mut s.up.slice_mut(..n * wd.ff),
                )?;
            }
            g.act_mul(
                c.arch == Arch::Gemma3,
                &mut s.gate.slice_mut(..n * wd.ff),
                &s.up.slice(..n * wd.ff),
                n * wd.ff,
            )?;
            g.qmm(
                layer.down.fmt,
                &w.m(&layer.down),
                d,
                wd.ff,
                &s.gate.slice(..n * wd.ff),
                n,
                &mut s.o.slice_mut(..n * d),
            )?;
            let pn = layer.post_ffn_norm.as_ref().map(|v| w.v(v));
            g.add_normed(
                &mut s.x.slice_mut(..n * d),
                &s.o.slice(..n * d),
                pn.as_ref(),
                n,
                d,
                eps,
            )?;
        }
        if wanted == 0 {
            return g.sync();
        }
        g.gather_rows(
            &s.x.slice(..n * d),
            &ix.want,
            &mut s.lin.slice_mut(..wanted * d),
            d,
        )?;
        g.rms_norm(
            &s.lin.slice(..wanted * d),
            &w.v(&w.output_norm),
            &mut s.lnorm.slice_mut(..wanted * d),
            wanted,
            d,
            eps,
        )?;
        let vocab = self.vocab;
        g.qmm(
            w.output.fmt,
            &w.m(&w.output),
            vocab,
            d,
            &s.lnorm.slice(..wanted * d),
            wanted,
            &mut s.logits.slice_mut(..wanted * vocab),
        )?;
        self.host_logits.resize(wanted * vocab, 0.0);
        g.read(&s.logits.slice(..wanted * vocab), &mut self.host_logits)
    }
}

impl ComputeBackend for CudaBackend {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn page_size(&self) -> usize {
        self.page_size
    }

    fn num_pages(&self) -> usize {
        self.num_pages
    }

    fn memory_bytes(&self) -> u64 {
        let w = Widths::of(&self.cfg);
        self.fixed_bytes + Scratch::bytes(w, self.vocab, self.s.rows, self.s.logit_rows)
    }

    fn device_name(&self) -> String {
        self.gpu.describe()
    }

    fn step(
        &mut self,
        batch: &[SeqStep<'_>],
        out: &mut Vec<SeqOutput>,
    ) -> Result<(), BackendError> {
        validate_batch(batch, self.vocab, self.page_size, self.num_pages)?;
        let n: usize = batch.iter().map(|sq| sq.tokens.len()).sum();
        let wanted: usize = batch.iter().map(logit_rows).sum();
        self.reserve(n, wanted).map_err(dev)?;
        self.index(batch, n).map_err(dev)?;
        self.forward(n, wanted).map_err(dev)?;
        finish_step(
            batch,
            &self.host_logits[..wanted * self.vocab],
            self.vocab,
            out,
        );
        Ok(())
    }
}
