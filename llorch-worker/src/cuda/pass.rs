//! One forward pass on the GPU: the launches of a model step, for every architecture.

use llorch_cuda::{
    AttnDims, AttnPlan, AttnSplit, CudaError, CudaSlice, CudaView, CudaViewMut, DrawBuf, Gpu,
    IndexBuf, ProductPart, QActs, QGroup, QkvOp, TOPK_MAX, TopKScratch,
};

use super::weights::{DMatrix, DeviceWeights};
use crate::model::{Arch, ModelConfig};

/// Activation buffers for `rows` tokens and `logit_rows` rows of logits.
pub(super) struct Scratch {
    pub rows: usize,
    pub logit_rows: usize,
    pub x: CudaSlice<f32>,
    pub h: CudaSlice<f32>,
    pub q: CudaSlice<f32>,
    pub k: CudaSlice<f32>,
    pub v: CudaSlice<f32>,
    pub att: CudaSlice<f32>,
    pub o: CudaSlice<f32>,
    pub gate: CudaSlice<f32>,
    pub up: CudaSlice<f32>,
    pub lin: CudaSlice<f32>,
    pub lnorm: CudaSlice<f32>,
    pub logits: CudaSlice<f32>,
    pub top_val: CudaSlice<f32>,
    pub top_id: CudaSlice<i32>,
    pub lse: CudaSlice<f32>,
    pub topk: TopKScratch,
    /// The current input of the integer products, quantized.
    pub xq: QActs,
    /// The device's draws, one per logit row.
    pub draws: DrawBuf,
    /// The attention's segment partials (small steps).
    pub attn: AttnSplit,
}

/// Widths of one token's activations.
#[derive(Clone, Copy)]
pub(super) struct Widths {
    pub d: usize,
    pub q: usize,
    pub k: usize,
    pub v: usize,
    pub att: usize,
    pub ff: usize,
    /// One value head.
    pub v_head: usize,
}

impl Widths {
    pub fn of(c: &ModelConfig) -> Self {
        Self {
            d: c.d_model,
            q: c.n_heads * c.head_dim,
            k: c.n_kv_heads * c.head_dim,
            v: c.n_kv_heads * c.v_head_dim,
            att: c.n_heads * c.v_head_dim,
            ff: c.d_ff,
            v_head: c.v_head_dim,
        }
    }

    fn per_row(&self) -> usize {
        3 * self.d + self.q + self.k + self.v + self.att + 2 * self.ff
    }

    /// The widest input of a product.
    fn widest_input(&self) -> usize {
        self.d.max(self.att).max(self.ff)
    }
}

impl Scratch {
    pub fn bytes(w: Widths, vocab: usize, rows: usize, logit_rows: usize) -> u64 {
        ((rows * w.per_row() + logit_rows * (2 * w.d + vocab + 2 * TOPK_MAX + 1)) * 4) as u64
            + TopKScratch::bytes(logit_rows, vocab)
            + QActs::bytes(Self::quantized_values(w, rows, logit_rows))
            + DrawBuf::bytes(logit_rows)
            + AttnSplit::bytes(w.v_head)
    }

    fn quantized_values(w: Widths, rows: usize, logit_rows: usize) -> usize {
        (rows * w.widest_input()).max(logit_rows * w.d)
    }

    pub fn new(
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
            top_val: gpu.alloc(logit_rows * TOPK_MAX)?,
            top_id: gpu.alloc(logit_rows * TOPK_MAX)?,
            lse: gpu.alloc(logit_rows)?,
            topk: TopKScratch::new(gpu, logit_rows, vocab)?,
            xq: QActs::new(gpu, Self::quantized_values(w, rows, logit_rows))?,
            draws: DrawBuf::new(gpu, logit_rows)?,
            attn: AttnSplit::new(gpu, w.v_head)?,
        })
    }
}

/// Per-step indices, validated on the host before they reach a kernel.
#[derive(Default)]
pub(super) struct Indices {
    pub tokens: IndexBuf,
    pub pos: IndexBuf,
    pub slots: IndexBuf,
    pub want: IndexBuf,
    pub plan: AttnPlan,
}

/// Everything one forward pass reads or writes on the device.
pub(super) struct Pass<'a> {
    pub c: &'a ModelConfig,
    pub w: &'a DeviceWeights,
    pub s: &'a mut Scratch,
    pub ix: &'a Indices,
    pub kv: &'a mut [CudaSlice<u16>],
    pub inv_global: &'a CudaSlice<f64>,
    pub inv_local: &'a CudaSlice<f64>,
    pub neox: bool,
    pub vocab: usize,
}

/// `out = x · mᵀ` for `n` rows: integer formats on the tensor cores take the quantized
/// inputs in `xq` (filled from `x` by the kernel that wrote `x`: see [`fused`]), the
/// others `x` itself.
fn product(
    g: &Gpu,
    w: &DeviceWeights,
    m: &DMatrix,
    x: &CudaView<'_, f32>,
    xq: &QActs,
    n: usize,
    out: &mut CudaViewMut<'_, f32>,
) -> Result<(), CudaError> {
    if g.takes_quantized(m.fmt) {
        g.qmm_q(m.fmt, &w.m(m), m.rows, m.cols, xq, n, out)
    } else {
        g.qmm(m.fmt, &w.m(m), m.rows, m.cols, x, n, out)
    }
}

/// `out_i = x · m_iᵀ` for matrices that share the input `x`: one grouped launch when
/// they are one format and width (q/k/v, gate/up), else one product each.
fn products(
    g: &Gpu,
    w: &DeviceWeights,
    ms: &mut [(&DMatrix, CudaViewMut<'_, f32>)],
    x: &CudaView<'_, f32>,
    xq: &QActs,
    n: usize,
) -> Result<(), CudaError> {
    let first = ms[0].0;
    let same = ms
        .iter()
        .all(|(m, _)| m.fmt == first.fmt && m.cols == first.cols);
    if !same {
        for (m, out) in ms.iter_mut() {
            product(g, w, m, x, xq, n, out)?;
        }
        return Ok(());
    }
    let views: Vec<_> = ms.iter().map(|(m, _)| w.m(m)).collect();
    let mut parts: Vec<ProductPart<'_, '_, '_>> = ms
        .iter_mut()
        .zip(&views)
        .map(|((m, out), v)| ProductPart {
            w: v,
            rows: m.rows,
            y: out,
        })
        .collect();
    if g.takes_quantized(first.fmt) {
        g.qmm_q_group(first.fmt, first.cols, xq, n, &mut parts)
    } else {
        g.qmm_group(first.fmt, first.cols, x, n, &mut parts)
    }
}

/// `xq` for a kernel whose output feeds `ms`, when one of them takes quantized inputs,
/// set to the group of columns per scale they need ([`QGroup`]).
fn fused<'q>(g: &Gpu, ms: &[&DMatrix], xq: &'q mut QActs) -> Option<&'q mut QActs> {
    if !ms.iter().any(|m| g.takes_quantized(m.fmt)) {
        return None;
    }
    xq.set_group(QGroup::for_formats(ms.iter().map(|m| m.fmt)));
    Some(xq)
}

impl Pass<'_> {
    /// Queues the forward pass over `n` rows: logits of the `wanted` rows and, when
    /// `k > 0`, their `k` best and log-sum-exp, and with `draw` each row's draw (with
    /// the settings of `Scratch::draws`). Launches only, so it can be captured.
    pub fn launch(
        &mut self,
        g: &Gpu,
        n: usize,
        wanted: usize,
        k: usize,
        draw: bool,
    ) -> Result<(), CudaError> {
        let c = self.c;
        let (w, s, ix, kv) = (self.w, &mut *self.s, self.ix, &mut *self.kv);
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
        // The first block's input norm; later ones come with the residual before them.
        if let Some(first) = w.layers.first() {
            g.rms_norm(
                &s.x.slice(..n * d),
                &w.v(&first.attn_norm),
                &mut s.h.slice_mut(..n * d),
                n,
                d,
                eps,
                fused(g, &[&first.wq, &first.wk, &first.wv], &mut s.xq),
            )?;
        }
        for (l, layer) in w.layers.iter().enumerate() {
            {
                // Quantized (where needed) by the norm that wrote `h`.
                let h = s.h.slice(..n * d);
                let mut qkv = [
                    (&layer.wq, s.q.slice_mut(..n * layer.wq.rows)),
                    (&layer.wk, s.k.slice_mut(..n * layer.wk.rows)),
                    (&layer.wv, s.v.slice_mut(..n * layer.wv.rows)),
                ];
                products(g, w, &mut qkv, &h, &s.xq, n)?;
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
                self.inv_local
            } else {
                self.inv_global
            };
            let inv = inv.slice(..);
            let qn = layer.q_norm.as_ref().map(|v| w.v(v));
            let kn = layer.k_norm.as_ref().map(|v| w.v(v));
            let op = QkvOp {
                n_heads: c.n_heads,
                n_kv_heads: c.n_kv_heads,
                head_dim: c.head_dim,
                v_head_dim: c.v_head_dim,
                q_norm: qn.as_ref(),
                k_norm: kn.as_ref(),
                eps,
                inv_freq: &inv,
                rope_dims: c.rope_dims,
                neox: self.neox,
                // Scaled queries meet the half-precision keys at half precision (as the CPU).
                q_scale: c.attn_scale,
            };
            let cache = &mut kv[l];
            g.qkv_rope_store(
                &mut s.q.slice_mut(..n * wd.q),
                &s.k.slice(..n * wd.k),
                &s.v.slice(..n * wd.v),
                &mut cache.slice_mut(..),
                &ix.pos,
                &ix.slots,
                &op,
            )?;
            let dims = AttnDims {
                n_heads: c.n_heads,
                n_kv_heads: c.n_kv_heads,
                head_dim: c.head_dim,
                v_head_dim: c.v_head_dim,
                window: c.sliding_window.filter(|_| sliding),
            };
            // Quantized (where needed) along with the attention.
            g.attention(
                &s.q.slice(..n * wd.q),
                &cache.slice(..),
                &mut s.att.slice_mut(..n * wd.att),
                &ix.plan,
                &dims,
                &mut s.attn,
                fused(g, &[&layer.wo], &mut s.xq),
            )?;
            let att = s.att.slice(..n * wd.att);
            product(g, w, &layer.wo, &att, &s.xq, n, &mut s.o.slice_mut(..n * d))?;
            let pn = layer.post_attn_norm.as_ref().map(|v| w.v(v));
            g.add_norm_rms(
                &mut s.x.slice_mut(..n * d),
                &s.o.slice(..n * d),
                pn.as_ref(),
                &w.v(&layer.ffn_norm),
                &mut s.h.slice_mut(..n * d),
                n,
                d,
                eps,
                fused(g, &[&layer.gate, &layer.up], &mut s.xq),
            )?;
            // Feed-forward.
            {
                let h = s.h.slice(..n * d);
                let mut gate_up = [
                    (&layer.gate, s.gate.slice_mut(..n * wd.ff)),
                    (&layer.up, s.up.slice_mut(..n * wd.ff)),
                ];
                products(g, w, &mut gate_up, &h, &s.xq, n)?;
            }
            g.act_mul(
                c.arch == Arch::Gemma3,
                &mut s.gate.slice_mut(..n * wd.ff),
                &s.up.slice(..n * wd.ff),
                n,
                wd.ff,
                fused(g, &[&layer.down], &mut s.xq),
            )?;
            let act = s.gate.slice(..n * wd.ff);
            product(
                g,
                w,
                &layer.down,
                &act,
                &s.xq,
                n,
                &mut s.o.slice_mut(..n * d),
            )?;
            let pn = layer.post_ffn_norm.as_ref().map(|v| w.v(v));
            match w.layers.get(l + 1) {
                // The residual and the next block's input norm in one pass.
                Some(next) => g.add_norm_rms(
                    &mut s.x.slice_mut(..n * d),
                    &s.o.slice(..n * d),
                    pn.as_ref(),
                    &w.v(&next.attn_norm),
                    &mut s.h.slice_mut(..n * d),
                    n,
                    d,
                    eps,
                    fused(g, &[&next.wq, &next.wk, &next.wv], &mut s.xq),
                )?,
                None => g.add_normed(
                    &mut s.x.slice_mut(..n * d),
                    &s.o.slice(..n * d),
                    pn.as_ref(),
                    n,
                    d,
                    eps,
                )?,
            }
        }
        if wanted == 0 {
            return Ok(());
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
            fused(g, &[&w.output], &mut s.xq),
        )?;
        let vocab = self.vocab;
        let ln = s.lnorm.slice(..wanted * d);
        let logits = &mut s.logits.slice_mut(..wanted * vocab);
        product(g, w, &w.output, &ln, &s.xq, wanted, logits)?;
        if k > 0 {
            g.row_topk(
                &s.logits.slice(..wanted * vocab),
                wanted,
                vocab,
                k,
                &mut s.topk,
                &mut s.top_val.slice_mut(..wanted * k),
                &mut s.top_id.slice_mut(..wanted * k),
                &mut s.lse.slice_mut(..wanted),
            )?;
            if draw {
                g.draw_rows_queued(
                    &s.top_val.slice(..wanted * k),
                    &s.top_id.slice(..wanted * k),
                    k,
                    wanted,
                    &mut s.draws,
                )?;
            }
        }
        Ok(())
    }
}
