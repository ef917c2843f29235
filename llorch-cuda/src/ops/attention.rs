//! Paged attention: the per-row plan and the launcher.
#![allow(unsafe_code)]

use cudarc::driver::{CudaSlice, CudaView, CudaViewMut, PushKernelArg};

use super::qmm_q::{QActs, QGroup};
use super::*;
use crate::error::Result;
use crate::gpu::{Gpu, IndexBuf};
use crate::kernels::Kernel;

/// Where each query row's keys live: its position and its page table, checked
/// against the cache's page count when set. Only [`AttnPlan::set`]'s host copies,
/// queued before a step's kernels, write it — never a kernel — so the attention
/// kernel reads it before its graph wait.
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

/// Segments a row's positions are cut in at most (`attention.cu`'s `ATT_MAX_SEG`).
const ATT_MAX_SEG: usize = 16;

/// Where the attention of small steps keeps its segments' partial results: with it,
/// a launch of at most the pairs it has room for ([`AttnSplit::PAIRS`] from
/// [`AttnSplit::new`]) gives every segment of a (row, head) pair its own block (decode
/// latency: a batch-1 step has one block per head otherwise); larger launches walk the
/// segments in one block. Both merge the same values in the
/// same order (the same bits: SYS-0003), so the choice follows the step's size.
#[derive(Debug)]
pub struct AttnSplit {
    part: CudaSlice<f32>,
    /// One counter per pair: its length is the pairs a split launch may have.
    count: CudaSlice<i32>,
    v_head_dim: usize,
}

impl AttnSplit {
    /// (row, head) pairs a split launch may have.
    pub const PAIRS: usize = 256;

    /// Room for [`AttnSplit::PAIRS`] pairs of value heads up to `v_head_dim` wide.
    pub fn new(gpu: &Gpu, v_head_dim: usize) -> Result<Self> {
        Self::with_pairs(gpu, v_head_dim, Self::PAIRS)
    }

    /// Room for `pairs` pairs (0: launches never split).
    pub fn with_pairs(gpu: &Gpu, v_head_dim: usize, pairs: usize) -> Result<Self> {
        Ok(Self {
            part: gpu.alloc(Self::floats(v_head_dim, pairs))?,
            // Zeroed; each split launch leaves its counters at zero again.
            count: gpu.alloc(pairs)?,
            v_head_dim,
        })
    }

    fn floats(v_head_dim: usize, pairs: usize) -> usize {
        // Per segment: its max and sum, then its value sums.
        pairs * ATT_MAX_SEG * (2 + v_head_dim)
    }

    /// Device bytes of [`AttnSplit::new`].
    pub fn bytes(v_head_dim: usize) -> u64 {
        ((Self::floats(v_head_dim, Self::PAIRS) + Self::PAIRS) * 4) as u64
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

impl Gpu {
    /// Attention of every planned row and head over the paged cache of one layer
    /// (`[page][slot][K heads | V heads]`, half precision); with `xq`, the output
    /// quantized into it too (as [`Gpu::quantize_acts`] would: by the attention
    /// kernel itself for value heads of a multiple of 64, or of 256 for groups of 256,
    /// else by a second launch).
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &self,
        q: &CudaView<'_, f32>,
        cache: &CudaView<'_, u16>,
        out: &mut CudaViewMut<'_, f32>,
        plan: &AttnPlan,
        dims: &AttnDims,
        split: &mut AttnSplit,
        xq: Option<&mut QActs>,
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
        let width = dims.n_heads * dims.v_head_dim;
        // The kernel quantizes whole 64-value halves of its warps' output, or groups
        // of 256 that are one head.
        let fits = |x: &QActs| match x.group() {
            QGroup::Per32 => dims.v_head_dim.is_multiple_of(64),
            QGroup::Per256 => dims.v_head_dim == 256,
        };
        let (mut fused, after) = match xq {
            Some(x) if fits(x) => (Some(x), None),
            other => (None, other),
        };
        if let Some(x) = fused.as_deref_mut() {
            x.prepare("attention", n, width)?;
        }
        if n == 0 {
            if let Some(x) = after {
                self.quantize_acts(&out.slice(..), 0, width, x)?;
            }
            return Ok(());
        }
        // One block per segment for steps of few (row, head) pairs; the kernel's
        // partials hold each pair's segments, `2 + v_head_dim` floats each.
        let segs = if n * dims.n_heads <= split.count.len() && dims.v_head_dim <= split.v_head_dim {
            ATT_MAX_SEG
        } else {
            1
        };
        let mut c = cfg((n, dims.n_heads), 128)?;
        c.grid_dim.2 = segs as u32;
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
            .arg(&mut *out)
            .arg(plan.meta.device()?)
            .arg(plan.pages.device()?);
        for a in &args {
            b.arg(a);
        }
        super::qmm_q::quant_args(&mut b, fused);
        b.arg(&mut split.part).arg(&mut split.count);
        // SAFETY: split launches have at most `split.count.len()` (row, head) pairs, each
        // with ATT_MAX_SEG partials of `2 + v_head_dim` floats and one counter (held
        // by `split`, sized for this value head); each row's positions are covered by
        // its page table and page ids are below the cache's page count (checked when
        // the plan was set); head widths
        // fit the kernel's shared buffers; q and out sizes checked above, and the
        // quantized output holds n rows of the output (`prepare`).
        unsafe { b.launch(c) }?;
        if let Some(x) = after {
            self.quantize_acts(&out.slice(..n * width), n, width, x)?;
        }
        Ok(())
    }
}
