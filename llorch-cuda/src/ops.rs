//! Safe launchers: each checks that its buffers hold what the kernel will touch,
//! then queues the kernel on the GPU's stream. Index contents are checked when an
//! [`IndexBuf`] or [`AttnPlan`] is filled, so no launch reads or writes outside its
//! buffers.
#![allow(unsafe_code)]

use cudarc::driver::{CudaView, CudaViewMut, LaunchConfig, PushKernelArg};

use crate::error::{CudaError, Result};
use crate::gpu::{Gpu, IndexBuf};
use crate::kernels::{Kernel, QFormat};

/// Threads per block of the matrix kernel, rows per warp and tokens per block
/// (must match `matmul.cu`).
const QMM_WARPS: usize = 4;
const QMM_TT: usize = 8;
/// Warps of a tensor-core block (`mma.cu`).
const TC_WARPS: usize = 8;
/// Matrices with at least this many rows (output projections) use f32 lanes.
const QMM_TALL: usize = 16_384;
/// Rows of at most this many values are read by one warp; longer ones by four.
const QMM_SHORT_ROW: usize = 1024;
/// Most candidates [`Gpu::row_topk`] keeps per row (`topk.cu`).
pub const TOPK_MAX: usize = 64;
/// Logits per slice of the first top-k pass (`topk.cu`).
const TOPK_SLICE: usize = 4096;
/// Largest head width the row and attention kernels take.
pub const MAX_HEAD_DIM: usize = 256;

fn shape(kernel: &'static str, ok: bool, why: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(CudaError::Shape { kernel, why: why() })
    }
}

fn cfg(grid: (usize, usize), block: usize) -> Result<LaunchConfig> {
    shape(
        "launch",
        grid.0 <= i32::MAX as usize && grid.1 <= 65_535,
        || format!("grid {grid:?} too large"),
    )?;
    Ok(LaunchConfig {
        grid_dim: (grid.0.max(1) as u32, grid.1.max(1) as u32, 1),
        block_dim: (block as u32, 1, 1),
        shared_mem_bytes: 0,
    })
}

fn int(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| CudaError::Shape {
        kernel: "launch",
        why: format!("{v} does not fit a 32-bit index"),
    })
}

/// Null for an absent optional pointer argument.
const NULL: u64 = 0;

/// Where each query row's keys live: its position and its page table, checked
/// against the cache's page count when set.
#[derive(Debug, Default)]
pub struct AttnPlan {
    meta: IndexBuf,
    pages: IndexBuf,
    page_size: usize,
    num_pages: usize,
}

impl AttnPlan {
    /// Sets the rows: `rows[i] = (position, offset of the row's page table in
    /// page_table)`; every position must be covered by its table.
    pub fn set(
        &mut self,
        gpu: &Gpu,
        rows: &[(u32, u32)],
        page_table: &[u32],
        page_size: usize,
        num_pages: usize,
    ) -> Result<()> {
        shape("attention", page_size > 0, || "page size 0".into())?;
        for &(pos, off) in rows {
            let need = pos as usize / page_size + 1;
            shape("attention", off as usize + need <= page_table.len(), || {
                format!("position {pos} needs {need} pages from offset {off}")
            })?;
        }
        let flat: Vec<u32> = rows.iter().flat_map(|&(p, o)| [p, o]).collect();
        self.meta.set(gpu, &flat, i32::MAX as u32)?;
        self.pages.set(
            gpu,
            page_table,
            u32::try_from(num_pages).unwrap_or(u32::MAX),
        )?;
        self.page_size = page_size;
        self.num_pages = num_pages;
        Ok(())
    }

    /// Query rows.
    pub fn rows(&self) -> usize {
        self.meta.len() / 2
    }

    /// Makes room for `rows` rows and `pages` page-table entries (see [`IndexBuf::reserve`]).
    pub fn reserve(&mut self, gpu: &Gpu, rows: usize, pages: usize) -> Result<()> {
        self.meta.reserve(gpu, 2 * rows)?;
        self.pages.reserve(gpu, pages)
    }

    /// Changes whenever a device buffer moves.
    pub fn generation(&self) -> u64 {
        self.meta.generation() + self.pages.generation()
    }
}

/// Shape of one attention launch.
#[derive(Debug, Clone, Copy)]
pub struct AttnDims {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Key head width.
    pub head_dim: usize,
    /// Value head width.
    pub v_head_dim: usize,
    /// Sliding window (tokens), if any.
    pub window: Option<usize>,
}

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

impl Gpu {
    /// `y[t][j] = Σ_k w[j][k] · x[t][k]` for `ntok` rows of `x` and `rows` rows of `w`
    /// (GGUF blocks of `fmt`, `cols` values each). Batch-invariant.
    #[allow(clippy::too_many_arguments)]
    pub fn qmm(
        &self,
        fmt: QFormat,
        w: &CudaView<'_, u8>,
        rows: usize,
        cols: usize,
        x: &CudaView<'_, f32>,
        ntok: usize,
        y: &mut CudaViewMut<'_, f32>,
    ) -> Result<()> {
        let rb = fmt.row_bytes(cols);
        shape("qmm", rb.is_some(), || format!("{cols} columns in {fmt:?}"))?;
        let rb = rb.unwrap_or(0);
        shape("qmm", w.len() >= rows * rb, || {
            format!("{} weight bytes for {rows} rows of {rb}", w.len())
        })?;
        shape("qmm", x.len() >= ntok * cols, || {
            format!("{} inputs for {ntok} rows of {cols}", x.len())
        })?;
        shape("qmm", y.len() >= ntok * rows, || {
            format!("{} outputs for {ntok} × {rows}", y.len())
        })?;
        if rows == 0 || ntok == 0 {
            return Ok(());
        }
        // Tensor cores for every matrix but the tall output projection, which only ever
        // sees a few rows per sequence (the choice depends on the matrix alone).
        if self.tensor_cores() && rows < QMM_TALL {
            return self.qmm_tc(fmt, w, rows, cols, x, ntok, y);
        }
        // Warps sharing a row from the matrix's shape alone (batch invariance): four
        // for long rows, one for short. Rows per warp group from the step: one for
        // decode-sized steps (more blocks), four for larger ones (inputs reused).
        let split: u8 = if cols > QMM_SHORT_ROW { 4 } else { 1 };
        let group_rows: u8 = if ntok <= QMM_TT { 1 } else { 4 };
        let rows_per_block = usize::from(group_rows) * QMM_WARPS / usize::from(split);
        // One dimension, token tiles fastest (see matmul.cu).
        let blocks = ntok.div_ceil(QMM_TT) * rows.div_ceil(rows_per_block);
        let c = cfg((blocks, 1), QMM_WARPS * 32)?;
        let (rows, cols, ntok) = (int(rows)?, int(cols)?, int(ntok)?);
        let f = self.func(Kernel::Qmm {
            fmt,
            split,
            rows: group_rows,
        });
        let mut b = self.stream.launch_builder(f);
        b.arg(w).arg(&rows).arg(&cols).arg(x).arg(&ntok).arg(y);
        // SAFETY: the kernel reads `rows * row_bytes` weight bytes, `ntok * cols`
        // inputs and writes `ntok * rows` outputs, all checked above.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// [`Gpu::qmm`] on tensor cores (half-precision operands, f32 sums); checked by the caller.
    #[allow(clippy::too_many_arguments)]
    fn qmm_tc(
        &self,
        fmt: QFormat,
        w: &CudaView<'_, u8>,
        rows: usize,
        cols: usize,
        x: &CudaView<'_, f32>,
        ntok: usize,
        y: &mut CudaViewMut<'_, f32>,
    ) -> Result<()> {
        shape("qmm", cols.is_multiple_of(32), || {
            format!("{cols} columns, not whole 32s")
        })?;
        // Tokens per block from the step: it changes no sum.
        let tile: u8 = if ntok <= 16 { 8 } else { 64 };
        let blocks = ntok.div_ceil(usize::from(tile)) * rows.div_ceil(16);
        let c = cfg((blocks, 1), TC_WARPS * 32)?;
        let (rows, cols, ntok) = (int(rows)?, int(cols)?, int(ntok)?);
        let mut b = self
            .stream
            .launch_builder(self.func(Kernel::QmmTc { fmt, tile }));
        b.arg(w).arg(&rows).arg(&cols).arg(x).arg(&ntok).arg(y);
        // SAFETY: as for `qmm` (sizes checked there): the kernel reads `rows * row_bytes`
        // weight bytes and `ntok * cols` inputs and writes `ntok * rows` outputs.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// `x[i] = table[tokens[i]] · scale` (`d` values per row, table of `vocab` rows).
    #[allow(clippy::too_many_arguments)]
    pub fn embed(
        &self,
        fmt: QFormat,
        table: &CudaView<'_, u8>,
        vocab: usize,
        d: usize,
        tokens: &IndexBuf,
        scale: f32,
        x: &mut CudaViewMut<'_, f32>,
    ) -> Result<()> {
        let rb = fmt.row_bytes(d);
        shape("embed", rb.is_some(), || format!("{d} columns in {fmt:?}"))?;
        shape("embed", table.len() >= vocab * rb.unwrap_or(0), || {
            "table too short".into()
        })?;
        shape("embed", tokens.bound() as usize <= vocab, || {
            format!("token bound {} over {vocab}", tokens.bound())
        })?;
        let n = tokens.len();
        shape("embed", x.len() >= n * d, || "output too short".into())?;
        if n == 0 {
            return Ok(());
        }
        let c = cfg((n, 1), 128)?;
        let d = int(d)?;
        let mut b = self.stream.launch_builder(self.func(Kernel::Embed(fmt)));
        b.arg(table)
            .arg(&d)
            .arg(tokens.device()?)
            .arg(&scale)
            .arg(x);
        // SAFETY: token ids are below `vocab` (IndexBuf bound), rows and output sizes
        // checked above.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// `y = rms_norm(x) · w` for `n` rows of `width`.
    pub fn rms_norm(
        &self,
        x: &CudaView<'_, f32>,
        w: &CudaView<'_, f32>,
        y: &mut CudaViewMut<'_, f32>,
        n: usize,
        width: usize,
        eps: f32,
    ) -> Result<()> {
        shape(
            "rms_norm",
            x.len() >= n * width && y.len() >= n * width && w.len() >= width,
            || "buffers too short".into(),
        )?;
        if n == 0 {
            return Ok(());
        }
        let c = cfg((n, 1), 256)?;
        let width = int(width)?;
        let mut b = self.stream.launch_builder(self.func(Kernel::RmsNorm));
        b.arg(x).arg(w).arg(y).arg(&width).arg(&eps);
        // SAFETY: n rows of width in x and y, width weights: checked above.
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
        let c = cfg((n, 1), 256)?;
        let width = int(width)?;
        let mut b = self.stream.launch_builder(self.func(Kernel::AddNormed));
        b.arg(x).arg(o);
        match w {
            Some(w) => b.arg(w),
            None => b.arg(&NULL),
        };
        b.arg(&width).arg(&eps);
        // SAFETY: sizes checked above; a null norm is handled by the kernel.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// `x += w.map_or(o, |w| rms_norm(o) · w)`, then `h = rms_norm(x) · next_w`, for `n`
    /// rows of `width` (a residual connection and the next input norm in one pass).
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
        let c = cfg((n, 1), 256)?;
        let width = int(width)?;
        let mut b = self.stream.launch_builder(self.func(Kernel::AddNormRms));
        b.arg(x).arg(o);
        match w {
            Some(w) => b.arg(w),
            None => b.arg(&NULL),
        };
        b.arg(next_w).arg(h).arg(&width).arg(&eps);
        // SAFETY: sizes checked above; a null first norm is handled by the kernel.
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
            match w {
                Some(w) => b.arg(w),
                None => b.arg(&NULL),
            };
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

    /// `g = act(g) · u` over `n` values, GELU (tanh) or SiLU.
    pub fn act_mul(
        &self,
        gelu: bool,
        g: &mut CudaViewMut<'_, f32>,
        u: &CudaView<'_, f32>,
        n: usize,
    ) -> Result<()> {
        shape("act_mul", g.len() >= n && u.len() >= n, || {
            "buffers too short".into()
        })?;
        if n == 0 {
            return Ok(());
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
        // SAFETY: n values in both.
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

    /// Attention of every planned row and head over the paged cache of one layer
    /// (`[page][slot][K heads | V heads]`, half precision).
    pub fn attention(
        &self,
        q: &CudaView<'_, f32>,
        cache: &CudaView<'_, u16>,
        out: &mut CudaViewMut<'_, f32>,
        plan: &AttnPlan,
        dims: &AttnDims,
    ) -> Result<()> {
        let n = plan.rows();
        let kv_width = dims.n_kv_heads * (dims.head_dim + dims.v_head_dim);
        shape(
            "attention",
            dims.head_dim <= MAX_HEAD_DIM
                && dims.v_head_dim <= MAX_HEAD_DIM
                && dims.head_dim.is_multiple_of(2)
                && dims.v_head_dim.is_multiple_of(2)
                && dims.n_kv_heads > 0
                && dims.n_heads.is_multiple_of(dims.n_kv_heads)
                && q.len() >= n * dims.n_heads * dims.head_dim
                && out.len() >= n * dims.n_heads * dims.v_head_dim
                && cache.len() >= plan.num_pages * plan.page_size * kv_width,
            || format!("bad shape {dims:?}"),
        )?;
        if n == 0 {
            return Ok(());
        }
        let c = cfg((n, dims.n_heads), 128)?;
        let args = [
            int(dims.n_heads)?,
            int(dims.n_kv_heads)?,
            int(dims.head_dim)?,
            int(dims.v_head_dim)?,
            int(plan.page_size)?,
            int(dims.window.unwrap_or(0))?,
        ];
        let mut b = self.stream.launch_builder(self.func(Kernel::Attention));
        b.arg(q)
            .arg(cache)
            .arg(out)
            .arg(plan.meta.device()?)
            .arg(plan.pages.device()?);
        for a in &args {
            b.arg(a);
        }
        // SAFETY: each row's positions are covered by its page table and page ids are
        // below the cache's page count (checked when the plan was set); head widths
        // fit the kernel's shared buffers; q and out sizes checked above.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// For each of `rows` rows of `vocab` logits: the `k` best values and ids, best
    /// first with ties to the lower id (`vals`, `ids`: `rows * k`), and the row's
    /// log-sum-exp (`lse`: `rows`). `k` at most [`TOPK_MAX`] and `vocab`.
    #[allow(clippy::too_many_arguments)]
    pub fn row_topk(
        &self,
        logits: &CudaView<'_, f32>,
        rows: usize,
        vocab: usize,
        k: usize,
        scratch: &mut TopKScratch,
        vals: &mut CudaViewMut<'_, f32>,
        ids: &mut CudaViewMut<'_, i32>,
        lse: &mut CudaViewMut<'_, f32>,
    ) -> Result<()> {
        let slices = vocab.div_ceil(TOPK_SLICE);
        shape(
            "row_topk",
            (1..=TOPK_MAX.min(vocab)).contains(&k)
                && rows <= scratch.rows
                && vocab <= scratch.vocab
                && logits.len() >= rows * vocab
                && vals.len() >= rows * k
                && ids.len() >= rows * k
                && lse.len() >= rows,
            || format!("k {k}, {rows} rows of {vocab}"),
        )?;
        if rows == 0 {
            return Ok(());
        }
        let (vocab_i, k_i, slices_i) = (int(vocab)?, int(k)?, int(slices)?);
        let c = cfg((slices, rows), 1024)?;
        let mut b = self.stream.launch_builder(self.func(Kernel::TopkSlices));
        b.arg(logits)
            .arg(&vocab_i)
            .arg(&k_i)
            .arg(&mut scratch.val)
            .arg(&mut scratch.id)
            .arg(&mut scratch.max)
            .arg(&mut scratch.sum);
        // SAFETY: rows × vocab inputs; the scratch holds rows × slices × TOPK_MAX
        // candidates and rows × slices sums (checked above, sized by `TopKScratch::new`).
        unsafe { b.launch(c) }?;
        let c = cfg((rows, 1), 1024)?;
        let mut b = self.stream.launch_builder(self.func(Kernel::TopkMerge));
        b.arg(&scratch.val)
            .arg(&scratch.id)
            .arg(&slices_i)
            .arg(&k_i)
            .arg(&scratch.max)
            .arg(&scratch.sum)
            .arg(vals)
            .arg(ids)
            .arg(lse);
        // SAFETY: reads what the launch above wrote; rows × k outputs and rows sums
        // checked above.
        unsafe { b.launch(c) }?;
        Ok(())
    }
}

/// Device scratch of [`Gpu::row_topk`] for up to `rows` rows of `vocab` logits.
#[derive(Debug)]
pub struct TopKScratch {
    rows: usize,
    vocab: usize,
    val: cudarc::driver::CudaSlice<f32>,
    id: cudarc::driver::CudaSlice<i32>,
    max: cudarc::driver::CudaSlice<f32>,
    sum: cudarc::driver::CudaSlice<f64>,
}

impl TopKScratch {
    /// Room for `rows` rows of `vocab` logits.
    pub fn new(gpu: &Gpu, rows: usize, vocab: usize) -> Result<Self> {
        let slices = vocab.div_ceil(TOPK_SLICE);
        Ok(Self {
            rows,
            vocab,
            val: gpu.alloc(rows * slices * TOPK_MAX)?,
            id: gpu.alloc(rows * slices * TOPK_MAX)?,
            max: gpu.alloc(rows * slices)?,
            sum: gpu.alloc(rows * slices)?,
        })
    }

    /// Device bytes it holds for `rows` rows of `vocab`.
    pub fn bytes(rows: usize, vocab: usize) -> u64 {
        let slices = vocab.div_ceil(TOPK_SLICE);
        (rows * slices * (TOPK_MAX * 8 + 12)) as u64
    }
}
