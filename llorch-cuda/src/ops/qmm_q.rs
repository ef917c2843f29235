//! Products of integer-coded weights with quantized inputs (`imma.cu`).
#![allow(unsafe_code)]

use cudarc::driver::{CudaSlice, CudaView, CudaViewMut, LaunchArgs, PushKernelArg};

use super::matmul::check_product;
use super::qmm_staged::WideProducts;
use super::*;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{Kernel, QFormat, TC_TILES};

/// Bytes of one quantized 32-value block (`imma.cu`).
const QBLOCK_BYTES: usize = 64;

/// How many columns of an input row share one scale in [`QActs`]: 32, or 256 for the
/// products of k-quant weights (`kquant.cu`: a 256-value block's integer sums are
/// weighted and added before any float step). Other formats take either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QGroup {
    /// One scale per 32 columns.
    #[default]
    Per32,
    /// One scale per 256 columns (each 32-value block still has its own sum).
    Per256,
}

impl QGroup {
    /// The group the products of `fmts` need: [`QGroup::Per256`] when one is a k-quant.
    pub fn for_formats(fmts: impl IntoIterator<Item = QFormat>) -> Self {
        if fmts.into_iter().any(QFormat::is_kquant) {
            Self::Per256
        } else {
            Self::Per32
        }
    }

    /// Columns per group.
    pub fn cols(self) -> usize {
        match self {
            Self::Per32 => 32,
            Self::Per256 => 256,
        }
    }
}

/// Rows of inputs quantized for [`Gpu::qmm_q`]: per token and group of columns
/// ([`QGroup`]) a scale, per 32 columns 16-bit integers (split in bytes in the tensor
/// cores' operand order) and their sum. Filled by [`Gpu::quantize_acts`] or a kernel
/// that fuses it, in the group set by [`QActs::set_group`]; records what it holds.
pub struct QActs {
    data: CudaSlice<u8>,
    meta: CudaSlice<i32>,
    cap_blocks: usize,
    ntok: usize,
    cols: usize,
    /// The group the next writer uses, as the kernels' argument (32 or 256).
    group_arg: i32,
    /// The group of what is held.
    held: QGroup,
}

impl QActs {
    /// Room for `values` inputs (a multiple of 32 per row).
    pub fn new(gpu: &Gpu, values: usize) -> Result<Self> {
        let blocks = values.div_ceil(32).max(1);
        Ok(Self {
            data: gpu.alloc(blocks * QBLOCK_BYTES)?,
            meta: gpu.alloc(blocks * 2)?,
            cap_blocks: blocks,
            ntok: 0,
            cols: 0,
            group_arg: 32,
            held: QGroup::Per32,
        })
    }

    /// Device bytes for `values` inputs.
    pub fn bytes(values: usize) -> u64 {
        (values.div_ceil(32).max(1) * (QBLOCK_BYTES + 8)) as u64
    }

    /// The group the next writer quantizes in.
    pub fn set_group(&mut self, group: QGroup) {
        self.group_arg = match group {
            QGroup::Per32 => 32,
            QGroup::Per256 => 256,
        };
    }

    /// The group the next writer quantizes in.
    pub fn group(&self) -> QGroup {
        if self.group_arg == 256 {
            QGroup::Per256
        } else {
            QGroup::Per32
        }
    }

    /// The quantized blocks and their meta, for the product launchers.
    pub(super) fn buffers(&self) -> (&CudaSlice<u8>, &CudaSlice<i32>) {
        (&self.data, &self.meta)
    }

    /// Rows and columns last quantized.
    pub fn shape(&self) -> (usize, usize) {
        (self.ntok, self.cols)
    }

    /// Checks room for `ntok` rows of `cols` (whole groups) and records that shape, for
    /// a kernel about to write it in [`QActs::group`].
    pub(super) fn prepare(&mut self, kernel: &'static str, ntok: usize, cols: usize) -> Result<()> {
        let group = self.group();
        shape(kernel, cols.is_multiple_of(group.cols()), || {
            format!("{cols} columns, not whole groups of {}", group.cols())
        })?;
        let blocks = ntok * cols / 32;
        shape(kernel, blocks <= self.cap_blocks, || {
            format!("{blocks} quantized blocks, room for {}", self.cap_blocks)
        })?;
        self.ntok = ntok;
        self.cols = cols;
        self.held = group;
        Ok(())
    }
}

/// The group argument of a kernel without quantized output.
static NO_GROUP: i32 = 32;

/// Pushes a kernel's optional quantized output: its blocks, meta and group (null
/// pointers when absent).
pub(super) fn quant_args<'a>(b: &mut cudarc::driver::LaunchArgs<'a>, q: Option<&'a mut QActs>) {
    match q {
        Some(q) => {
            b.arg(&mut q.data).arg(&mut q.meta).arg(&q.group_arg);
        }
        None => {
            b.arg(&NULL).arg(&NULL).arg(&NO_GROUP);
        }
    }
}

impl Gpu {
    /// Whether products of `fmt` take quantized inputs here ([`Gpu::qmm_q`]): integer
    /// formats on tensor cores. Fixed for the life of the `Gpu`'s matrix path.
    pub fn takes_quantized(&self, fmt: QFormat) -> bool {
        self.tensor_cores() && fmt.is_integer()
    }

    /// Quantizes `ntok` rows of `cols` inputs (whole groups of [`QActs::group`]) into `q`.
    pub fn quantize_acts(
        &self,
        x: &CudaView<'_, f32>,
        ntok: usize,
        cols: usize,
        q: &mut QActs,
    ) -> Result<()> {
        shape("quantize_acts", x.len() >= ntok * cols, || {
            format!("{} inputs for {ntok} rows of {cols}", x.len())
        })?;
        q.prepare("quantize_acts", ntok, cols)?;
        let groups = ntok * cols / q.group().cols();
        if groups == 0 {
            return Ok(());
        }
        // One warp per group, eight per thread block.
        let c = cfg((groups.div_ceil(8), 1), 256)?;
        let (n, k) = (int(ntok)?, int(cols)?);
        let mut b = self.stream.launch_builder(self.func(Kernel::QuantizeActs));
        b.arg(x)
            .arg(&n)
            .arg(&k)
            .arg(&mut q.data)
            .arg(&mut q.meta)
            .arg(&q.group_arg);
        // SAFETY: reads `ntok * cols` inputs, writes their blocks and meta pairs (whole
        // groups), all checked above.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// `y[t][j] = Σ_k w[j][k] · x[t][k]` for the `ntok` rows of `x` held quantized in `q`
    /// ([`Gpu::quantize_acts`]) and `rows` rows of `w` in an integer format: exact integer
    /// sums per block on tensor cores, then the blocks' scales. Batch-invariant.
    #[allow(clippy::too_many_arguments)]
    pub fn qmm_q(
        &self,
        fmt: QFormat,
        w: &CudaView<'_, u8>,
        rows: usize,
        cols: usize,
        q: &QActs,
        ntok: usize,
        y: &mut CudaViewMut<'_, f32>,
    ) -> Result<()> {
        check_q_product(self, fmt, w, rows, cols, q, ntok, y)?;
        if rows == 0 || ntok == 0 {
            return Ok(());
        }
        if let Some(plan) = self.decode_plan(fmt, cols, &[rows], ntok) {
            return self.qmv_q(fmt, cols, q, ntok, plan, &mut [ProductPart { w, rows, y }]);
        }
        if let Some(tile) = self.staged_tile(fmt, rows, ntok) {
            return self.qmm_s(fmt, w, rows, cols, q, ntok, tile, y);
        }
        let ((tile, row_tiles), blocks) = match self.wide_products() {
            WideProducts::Tile(t, r) => {
                shape("qmm_q", fmt.qq_tiles().contains(&(t, r)), || {
                    format!("no {fmt:?} register tile of {t} tokens × {r} row tiles")
                })?;
                let blocks = ntok.div_ceil(usize::from(t)) * rows.div_ceil(16 * usize::from(r));
                ((t, r), blocks)
            }
            _ => qq_tile(
                fmt.qq_tiles(),
                fmt.prefers_row_tiles(),
                rows,
                ntok,
                self.sms(),
            ),
        };
        let c = cfg((blocks, 1), TC_WARPS * 32)?;
        let (rows, cols, ntok) = (int(rows)?, int(cols)?, int(ntok)?);
        let mut b = self.stream.launch_builder(self.func(Kernel::QmmQ {
            fmt,
            tile,
            row_tiles,
        }));
        b.arg(w)
            .arg(&rows)
            .arg(&cols)
            .arg(&q.data)
            .arg(&q.meta)
            .arg(&ntok)
            .arg(y);
        // SAFETY: the kernel reads `rows * row_bytes` weight bytes, the quantized blocks
        // of `ntok` rows of `cols` (held by `q`, checked above) and writes `ntok * rows`
        // outputs.
        unsafe { b.launch(c) }?;
        Ok(())
    }
}

/// The rows of each of 1-3 grouped matrices, 0 for absent ones.
pub(super) fn part_heights(parts: &[ProductPart<'_, '_, '_>]) -> [usize; 3] {
    let mut h = [0; 3];
    for (h, p) in h.iter_mut().zip(parts) {
        *h = p.rows;
    }
    h
}

/// [`part_heights`] as the kernels' third argument of each segment.
pub(super) fn part_rows(parts: &[ProductPart<'_, '_, '_>]) -> Result<[i32; 3]> {
    let [a, b, c] = part_heights(parts);
    Ok([int(a)?, int(b)?, int(c)?])
}

/// Pushes the grouped kernels' three (weights, outputs, rows) segments: `parts`, then
/// null pointers with no rows for the absent ones.
pub(super) fn push_parts<'a>(
    b: &mut LaunchArgs<'a>,
    parts: &'a mut [ProductPart<'_, '_, '_>],
    rows: &'a [i32; 3],
) {
    let present = parts.len();
    for (p, r) in parts.iter_mut().zip(rows) {
        b.arg(p.w).arg(&mut *p.y).arg(r);
    }
    for r in &rows[present..] {
        b.arg(&NULL).arg(&NULL).arg(r);
    }
}

/// One matrix of [`Gpu::qmm_q_group`]: its weights, rows and outputs.
pub struct ProductPart<'a, 'w, 'y> {
    /// Weights (`rows` rows in the group's format and width).
    pub w: &'a CudaView<'w, u8>,
    /// Rows.
    pub rows: usize,
    /// Outputs, `ntok × rows`.
    pub y: &'a mut CudaViewMut<'y, f32>,
}

/// The checks of an integer product: an integer format, `w`/`y` holding the product
/// (`check_product`) and `q` holding `ntok` rows of `cols` quantized inputs.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_q_product(
    gpu: &Gpu,
    fmt: QFormat,
    w: &CudaView<'_, u8>,
    rows: usize,
    cols: usize,
    q: &QActs,
    ntok: usize,
    y: &CudaViewMut<'_, f32>,
) -> Result<()> {
    shape("qmm_q", fmt.is_integer(), || {
        format!("{fmt:?} is not integer-coded")
    })?;
    check_product(gpu, "qmm_q", fmt, w, rows, cols, ntok, y)?;
    shape("qmm_q", q.cols == cols && q.ntok >= ntok, || {
        format!("inputs hold {:?}, product wants {ntok} × {cols}", q.shape())
    })?;
    shape(
        "qmm_q",
        !fmt.is_kquant() || q.held == QGroup::Per256,
        || {
            format!(
                "{fmt:?} takes inputs quantized per 256 columns, not {:?}",
                q.held
            )
        },
    )
}

/// The block shape of an integer product (it changes no sum) and its blocks: one token
/// tile for decode-sized steps; else the largest tile (tokens × rows: inputs and
/// weights each read fewer times) that still gives three quarters of the
/// multiprocessors a block, or the one with the most blocks. Between tiles of one size
/// the one with more tokens, or with `rows_first` more row tiles.
fn qq_tile(
    tiles: &[(u8, u8)],
    rows_first: bool,
    rows: usize,
    ntok: usize,
    sms: usize,
) -> ((u8, u8), usize) {
    let blocks =
        |(t, r): (u8, u8)| ntok.div_ceil(usize::from(t)) * rows.div_ceil(16 * usize::from(r));
    let first = tiles[0];
    if ntok <= usize::from(first.0) {
        return (first, blocks(first));
    }
    let cap = TC_TILES
        .into_iter()
        .find(|&t| usize::from(t) >= ntok)
        .unwrap_or(TC_TILES[TC_TILES.len() - 1]);
    let fits = tiles.iter().copied().filter(|&(t, _)| t <= cap);
    let best = fits
        .clone()
        .filter(|&s| blocks(s) * 4 >= sms * 3)
        .max_by_key(|&(t, r)| {
            let tie = if rows_first { r } else { t };
            (usize::from(t) * usize::from(r), tie)
        })
        .or_else(|| fits.max_by_key(|&s| (blocks(s), std::cmp::Reverse(s.1))))
        .unwrap_or(first);
    (best, blocks(best))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_shapes_follow_the_step() {
        use crate::kernels::{QK_TILES, QQ_TILES};
        let tiles = &QQ_TILES;
        // Decode: one token tile, one row tile.
        assert_eq!(qq_tile(tiles, false, 4096, 1, 132).0, (8, 1));
        // 64 sequences on a 4096-row matrix: 64 tokens × 2 row tiles gives 128 blocks.
        assert_eq!(qq_tile(tiles, false, 4096, 64, 132), ((64, 2), 128));
        // The k-quants' smaller tiles: 32 tokens × 2 row tiles for Q4_K/Q5_K (measured
        // faster than 64 × 1: benches/reports/cuda.md), 64 × 1 for Q6_K.
        assert_eq!(qq_tile(&QK_TILES, true, 4096, 64, 132), ((32, 2), 256));
        assert_eq!(qq_tile(&QK_TILES, false, 4096, 64, 132), ((64, 1), 256));
        // A small matrix keeps the blocks up.
        let (s, b) = qq_tile(tiles, false, 256, 64, 132);
        assert!(b >= 16 && s.1 == 1, "{s:?} {b}");
        // Every choice is a compiled shape.
        for tiles in [&QQ_TILES[..], &QK_TILES[..]] {
            for rows in [16, 640, 4096, 262_144] {
                for ntok in [1, 7, 9, 33, 64, 512] {
                    for rows_first in [false, true] {
                        let got = qq_tile(tiles, rows_first, rows, ntok, 132).0;
                        assert!(tiles.contains(&got));
                    }
                }
            }
        }
    }

    #[test]
    fn k_quants_group_their_inputs_per_256() {
        use QFormat::*;
        assert_eq!(QGroup::for_formats([Q4_0, Q8_0]), QGroup::Per32);
        assert_eq!(QGroup::for_formats([Q5_0, Q6K]), QGroup::Per256);
        assert_eq!(QGroup::for_formats([Q4K]).cols(), 256);
        assert_eq!(QGroup::for_formats([]), QGroup::Per32);
    }
}
