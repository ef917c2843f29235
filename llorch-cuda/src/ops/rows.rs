//! Launchers of the row kernels: norms, rotary embedding and the KV store, biases,
//! gates, gathers.
#![allow(unsafe_code)]

use cudarc::driver::{CudaView, CudaViewMut, PushKernelArg};

use super::qmm_q::quant_args;
use super::*;
use crate::error::Result;
use crate::gpu::{Gpu, IndexBuf};
use crate::kernels::{Kernel, NORM_REGS, NORM_WARPS};

/// Shapes and settings of [`Gpu::qkv_rope_store`].
#[derive(Debug, Clone, Copy)]
pub struct QkvOp<'a> {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Query/key head width.
    pub head_dim: usize,
    /// Value head width.
    pub v_head_dim: usize,
    /// Per-head RMS-norm weights of queries, if any.
    pub q_norm: Option<&'a CudaView<'a, f32>>,
    /// Per-head RMS-norm weights of keys, if any.
    pub k_norm: Option<&'a CudaView<'a, f32>>,
    /// Norm epsilon.
    pub eps: f32,
    /// Inverse frequencies (`rope_dims / 2` values).
    pub inv_freq: &'a CudaView<'a, f64>,
    /// Rotated dimensions.
    pub rope_dims: usize,
    /// NeoX pairing `(i, i + d/2)` rather than `(2i, 2i+1)`.
    pub neox: bool,
    /// Multiplier on queries (before their rounding to half precision).
    pub q_scale: f32,
}

/// Threads of a norm block over rows of `width` and the blocks of 32 a warp holds: a
/// warp per block of 32 values up to the kernel's warps, each warp holding at most the
/// first of `NORM_REGS` that covers the row (`rows.cu`).
fn norm_shape(kernel: &'static str, width: usize) -> Result<(usize, u8)> {
    let blocks = width.div_ceil(32).max(1);
    let fit = NORM_REGS
        .into_iter()
        .zip(NORM_WARPS)
        .find(|&(r, w)| w * usize::from(r) >= blocks);
    let Some((regs, warps)) = fit else {
        return Err(crate::CudaError::Shape {
            kernel,
            why: format!("rows of {width} values, over the norms' 32768"),
        });
    };
    Ok((blocks.min(warps) * 32, regs))
}

impl Gpu {
    /// `y = rms_norm(x) · w` for `n` rows of `width`; with `q`, `y` quantized into it
    /// too (as [`Gpu::quantize_acts`] would).
    #[allow(clippy::too_many_arguments)]
    pub fn rms_norm(
        &self,
        x: &CudaView<'_, f32>,
        w: &CudaView<'_, f32>,
        y: &mut CudaViewMut<'_, f32>,
        n: usize,
        width: usize,
        eps: f32,
        mut q: Option<&mut QActs>,
    ) -> Result<()> {
        shape(
            "rms_norm",
            x.len() >= n * width && y.len() >= n * width && w.len() >= width,
            || "buffers too short".into(),
        )?;
        if n == 0 {
            return Ok(());
        }
        if let Some(q) = q.as_deref_mut() {
            q.prepare("rms_norm", n, width)?;
        }
        let (threads, regs) = norm_shape("rms_norm", width)?;
        let c = cfg((n, 1), threads)?;
        let width = int(width)?;
        let mut b = self.stream.launch_builder(self.func(Kernel::RmsNorm(regs)));
        b.arg(x).arg(w).arg(y).arg(&width).arg(&eps);
        quant_args(&mut b, q);
        // SAFETY: n rows of width in x and y, width weights: checked above; the
        // quantized output holds n rows of width (`prepare`).
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// `x += w.map_or(o, |w| rms_norm(o) · w)` for `n` rows of `width`.
    pub fn add_normed(
        &self,
        x: &mut CudaViewMut<'_, f32>,
        o: &CudaView<'_, f32>,
        w: Option<&CudaView<'_, f32>>,
        n: usize,
        width: usize,
        eps: f32,
    ) -> Result<()> {
        shape(
            "add_normed",
            x.len() >= n * width && o.len() >= n * width && w.is_none_or(|w| w.len() >= width),
            || "buffers too short".into(),
        )?;
        if n == 0 {
            return Ok(());
        }
        let (threads, regs) = norm_shape("add_normed", width)?;
        let c = cfg((n, 1), threads)?;
        let width = int(width)?;
        let mut b = self
            .stream
            .launch_builder(self.func(Kernel::AddNormed(regs)));
        b.arg(x).arg(o);
        opt_arg(&mut b, w);
        b.arg(&width).arg(&eps);
        // SAFETY: sizes checked above; a null norm is handled by the kernel.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// `x += w.map_or(o, |w| rms_norm(o) · w)`, then `h = rms_norm(x) · next_w`, for `n`
    /// rows of `width` (a residual connection and the next input norm in one pass); with
    /// `q`, `h` quantized into it too.
    #[allow(clippy::too_many_arguments)]
    pub fn add_norm_rms(
        &self,
        x: &mut CudaViewMut<'_, f32>,
        o: &CudaView<'_, f32>,
        w: Option<&CudaView<'_, f32>>,
        next_w: &CudaView<'_, f32>,
        h: &mut CudaViewMut<'_, f32>,
        n: usize,
        width: usize,
        eps: f32,
        mut q: Option<&mut QActs>,
    ) -> Result<()> {
        shape(
            "add_norm_rms",
            x.len() >= n * width
                && o.len() >= n * width
                && h.len() >= n * width
                && next_w.len() >= width
                && w.is_none_or(|w| w.len() >= width),
            || "buffers too short".into(),
        )?;
        if n == 0 {
            return Ok(());
        }
        if let Some(q) = q.as_deref_mut() {
            q.prepare("add_norm_rms", n, width)?;
        }
        let (threads, regs) = norm_shape("add_norm_rms", width)?;
        let c = cfg((n, 1), threads)?;
        let width = int(width)?;
        let mut b = self
            .stream
            .launch_builder(self.func(Kernel::AddNormRms(regs)));
        b.arg(x).arg(o);
        opt_arg(&mut b, w);
        b.arg(next_w).arg(h).arg(&width).arg(&eps);
        quant_args(&mut b, q);
        // SAFETY: sizes checked above; a null first norm is handled by the kernel; the
        // quantized output holds n rows of width (`prepare`).
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// For each of `pos.len()` rows: query heads normed, rotated at the row's position,
    /// scaled and rounded to half precision (in place in `q`); key heads normed, rotated
    /// and stored at half precision in the row's cache slot (`slots`), value heads too.
    #[allow(clippy::too_many_arguments)]
    pub fn qkv_rope_store(
        &self,
        q: &mut CudaViewMut<'_, f32>,
        k: &CudaView<'_, f32>,
        v: &CudaView<'_, f32>,
        cache: &mut CudaViewMut<'_, u16>,
        pos: &IndexBuf,
        slots: &IndexBuf,
        op: &QkvOp<'_>,
    ) -> Result<()> {
        let n = pos.len();
        let kw = op.n_kv_heads * op.head_dim;
        let vw = op.n_kv_heads * op.v_head_dim;
        shape(
            "qkv_rope_store",
            op.head_dim <= MAX_HEAD_DIM
                && op.v_head_dim <= MAX_HEAD_DIM
                && op.rope_dims <= op.head_dim
                && op.rope_dims.is_multiple_of(2)
                && slots.len() == n
                && q.len() >= n * op.n_heads * op.head_dim
                && k.len() >= n * kw
                && v.len() >= n * vw
                && cache.len() >= slots.bound() as usize * (kw + vw)
                && op.inv_freq.len() >= op.rope_dims / 2
                && op.q_norm.is_none_or(|w| w.len() >= op.head_dim)
                && op.k_norm.is_none_or(|w| w.len() >= op.head_dim),
            || format!("bad shape {op:?}"),
        )?;
        if n == 0 {
            return Ok(());
        }
        let c = cfg((n, op.n_heads + 2 * op.n_kv_heads), 128)?;
        let dims = [
            int(op.n_heads)?,
            int(op.n_kv_heads)?,
            int(op.head_dim)?,
            int(op.v_head_dim)?,
        ];
        let (rd, neox) = (int(op.rope_dims)?, i32::from(op.neox));
        let mut b = self.stream.launch_builder(self.func(Kernel::QkvRopeStore));
        b.arg(q)
            .arg(k)
            .arg(v)
            .arg(cache)
            .arg(pos.device()?)
            .arg(slots.device()?);
        for d in &dims {
            b.arg(d);
        }
        for w in [op.q_norm, op.k_norm] {
            opt_arg(&mut b, w);
        }
        b.arg(&op.eps)
            .arg(op.inv_freq)
            .arg(&rd)
            .arg(&neox)
            .arg(&op.q_scale);
        // SAFETY: rows of q, k and v and the cache slots (below the bound) checked
        // above; head widths fit the kernel's shared buffer; null norms are skipped.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// `x[r][i] += bias[i]` for rows of `bias.len()`.
    pub fn add_bias(
        &self,
        x: &mut CudaViewMut<'_, f32>,
        bias: &CudaView<'_, f32>,
        n: usize,
    ) -> Result<()> {
        let width = bias.len();
        let total = n * width;
        shape("add_bias", x.len() >= total && width > 0, || {
            "buffers too short".into()
        })?;
        if total == 0 {
            return Ok(());
        }
        let c = cfg((total.div_ceil(256), 1), 256)?;
        let (width, total) = (int(width)?, total as i64);
        let mut b = self.stream.launch_builder(self.func(Kernel::AddBias));
        b.arg(x).arg(bias).arg(&width).arg(&total);
        // SAFETY: total values in x, width in bias.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// `g = act(g) · u` over `rows` rows of `width`, GELU (tanh) or SiLU; with `q`, the
    /// result quantized into it too.
    pub fn act_mul(
        &self,
        gelu: bool,
        g: &mut CudaViewMut<'_, f32>,
        u: &CudaView<'_, f32>,
        rows: usize,
        width: usize,
        mut q: Option<&mut QActs>,
    ) -> Result<()> {
        let n = rows * width;
        shape("act_mul", g.len() >= n && u.len() >= n, || {
            "buffers too short".into()
        })?;
        if n == 0 {
            return Ok(());
        }
        if let Some(q) = q.as_deref_mut() {
            q.prepare("act_mul", rows, width)?;
        }
        let c = cfg((n.div_ceil(256), 1), 256)?;
        let k = if gelu {
            Kernel::GeluMul
        } else {
            Kernel::SiluMul
        };
        let n = n as i64;
        let mut b = self.stream.launch_builder(self.func(k));
        b.arg(g).arg(u).arg(&n);
        quant_args(&mut b, q);
        // SAFETY: n values in both; the quantized output holds `rows` of `width`.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// `y[i] = x[idx[i]]`, rows of `width`; `x` holds `idx.bound()` rows at least.
    pub fn gather_rows(
        &self,
        x: &CudaView<'_, f32>,
        idx: &IndexBuf,
        y: &mut CudaViewMut<'_, f32>,
        width: usize,
    ) -> Result<()> {
        let n = idx.len();
        shape(
            "gather_rows",
            x.len() >= idx.bound() as usize * width && y.len() >= n * width,
            || "buffers too short".into(),
        )?;
        if n == 0 {
            return Ok(());
        }
        let c = cfg((n, 1), 256)?;
        let width = int(width)?;
        let mut b = self.stream.launch_builder(self.func(Kernel::GatherRows));
        b.arg(x).arg(idx.device()?).arg(y).arg(&width);
        // SAFETY: indices below the bound, rows checked above.
        unsafe { b.launch(c) }?;
        Ok(())
    }
}
