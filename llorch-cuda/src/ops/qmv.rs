//! Decode products of integer-coded weights (`qmv.cu`, `kquant_decode.cu`): steps of
//! 1-2 tokens without tensor cores, the same bits as `qmm_q`'s tiles; which kernel
//! takes a step, and the grouped launches (q/k/v, gate/up).
#![allow(unsafe_code)]

use cudarc::driver::PushKernelArg;

use super::qmm_q::{ProductPart, QActs, check_q_product, part_heights, part_rows, push_parts};
use super::*;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{Kernel, QFormat, QV_SHAPES};

/// Threads per block of the decode products (`qmv.cu`).
const QV_THREADS: usize = 128;

/// Rounds of blocks in flight of the staged k-quant decode (`KD_STAGES`,
/// kquant_decode.cu).
const KD_STAGES: usize = 3;

/// Dynamic shared memory of the staged k-quant decode of `fmt` at `per_warp` rows per
/// warp: per warp, stage and row, eight blocks and the 16-byte unit the first may start
/// inside (`kd_span`, asserted there).
pub(crate) fn kd_smem(fmt: QFormat, per_warp: u8) -> usize {
    let span = 8 * fmt.block_bytes() + 16;
    QV_THREADS / 32 * KD_STAGES * usize::from(per_warp) * span
}

/// When the integer products take the decode kernels (`qmv.cu`) instead of tensor
/// cores: steps of at most `max_tokens` tokens (0: never), with `rows_per_warp` rows
/// per warp (`None`: chosen by the matrix's shape and format). Both give the same
/// bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeProducts {
    /// Most tokens of a step the decode kernels take (at most 2).
    pub max_tokens: usize,
    /// Rows per warp (1, 2 or 4; 4 at one token only), or `None` for the shape's choice.
    pub rows_per_warp: Option<u8>,
    /// K-quant blocks copied ahead through shared memory in whole 16-byte units (by
    /// cp.async, where the matrices allow) before the quads read them, rather than read
    /// by each quad from global memory. The same bits either way.
    pub staged: bool,
}

impl DecodeProducts {
    /// Every product on the tensor cores.
    pub const TENSOR_CORES: DecodeProducts = DecodeProducts {
        max_tokens: 0,
        rows_per_warp: None,
        staged: true,
    };
}

impl Default for DecodeProducts {
    fn default() -> Self {
        Self {
            max_tokens: 2,
            rows_per_warp: None,
            staged: true,
        }
    }
}

/// How a decode product runs: rows per warp, and whether its k-quant blocks go through
/// shared memory (`qmv_ks_impl`, kquant_decode.cu).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DecodePlan {
    /// Rows per warp (1, 2 or 4).
    pub per_warp: u8,
    /// The staged kernel.
    pub staged: bool,
}

impl Gpu {
    /// The decode product for `ntok` tokens on one launch's matrices of `heights` rows,
    /// or `None` when the tensor-core product takes the step ([`DecodeProducts`]).
    pub(super) fn decode_plan(
        &self,
        fmt: QFormat,
        cols: usize,
        heights: &[usize],
        ntok: usize,
    ) -> Option<DecodePlan> {
        // K-quants whose every matrix is whole 16-byte units (the staged copies stay
        // inside it; its start is checked 16-byte aligned with the product), when asked.
        let stageable = fmt.is_kquant()
            && self.decode_products().staged
            && heights.iter().all(|&rows| {
                fmt.row_bytes(cols)
                    .is_some_and(|rb| (rows * rb).is_multiple_of(16))
            });
        let rows: usize = heights.iter().sum();
        let per_warp = decode_choice(
            self.decode_products(),
            fmt,
            rows,
            ntok,
            stageable,
            self.sms(),
        )?;
        // The rows a warp stages must fit the block's shared memory: 1-2 rows always do
        // (48 KiB, `staged_decode_fits_every_device`), 4 (only when forced) may not.
        let staged = stageable && self.smem_fits(kd_smem(fmt, per_warp));
        Some(DecodePlan { per_warp, staged })
    }

    /// [`Gpu::qmm_q`] of several matrices of one format and width over the same
    /// inputs (q/k/v, gate/up): one launch of the decode kernels when they take the
    /// step (up to three matrices), else one product each. The same bits either way.
    pub fn qmm_q_group(
        &self,
        fmt: QFormat,
        cols: usize,
        q: &QActs,
        ntok: usize,
        parts: &mut [ProductPart<'_, '_, '_>],
    ) -> Result<()> {
        match self.decode_plan(fmt, cols, &part_heights(parts), ntok) {
            Some(plan) if parts.len() <= 3 => {
                for p in parts.iter() {
                    check_q_product(self, fmt, p.w, p.rows, cols, q, ntok, p.y)?;
                }
                self.qmv_q(fmt, cols, q, ntok, plan, parts)
            }
            _ => {
                for p in parts.iter_mut() {
                    self.qmm_q(fmt, p.w, p.rows, cols, q, ntok, p.y)?;
                }
                Ok(())
            }
        }
    }

    /// The decode kernels (`qmv.cu`, `kquant_decode.cu`) over 1-3 matrices as `plan`
    /// says: the same bits as the tensor-core product, 1, 2 or 4 rows per warp (4 at one
    /// token), at most 2 tokens. Checked by the callers.
    pub(super) fn qmv_q(
        &self,
        fmt: QFormat,
        cols: usize,
        q: &QActs,
        ntok: usize,
        plan: DecodePlan,
        parts: &mut [ProductPart<'_, '_, '_>],
    ) -> Result<()> {
        let DecodePlan { per_warp, staged } = plan;
        let tokens = QV_SHAPES
            .iter()
            .filter(|&&(r, t)| r == per_warp && usize::from(t) >= ntok)
            .map(|&(_, t)| t)
            .min();
        let Some(tokens) = tokens else {
            return Err(crate::CudaError::Shape {
                kernel: "qmv_q",
                why: format!("no decode kernel for {ntok} tokens at {per_warp} rows per warp"),
            });
        };
        shape("qmv_q", (1..=3).contains(&parts.len()), || {
            format!("{} matrices in one launch", parts.len())
        })?;
        if ntok == 0 {
            return Ok(());
        }
        let pw = usize::from(per_warp);
        let warps: usize = parts.iter().map(|p| p.rows.div_ceil(pw)).sum();
        let mut c = cfg((warps.div_ceil(QV_THREADS / 32).max(1), 1), QV_THREADS)?;
        let kernel = if staged {
            c.shared_mem_bytes = kd_smem(fmt, per_warp) as u32;
            Kernel::QmvS {
                fmt,
                rows: per_warp,
                tokens,
            }
        } else {
            Kernel::QmvQ {
                fmt,
                rows: per_warp,
                tokens,
            }
        };
        let rows = part_rows(parts)?;
        let (cols, ntok) = (int(cols)?, int(ntok)?);
        let mut b = self.stream.launch_builder(self.func(kernel));
        push_parts(&mut b, parts, &rows);
        let (data, meta) = q.buffers();
        b.arg(&cols).arg(data).arg(meta).arg(&ntok);
        // SAFETY: as for `qmm_q` (every matrix's sizes checked by the callers); absent
        // matrices have no rows; lanes of rows past a matrix's or tokens past `ntok`
        // load and write nothing.
        unsafe { b.launch(c) }?;
        Ok(())
    }
}

/// Rows per warp of the decode product (`d`'s setting) for `ntok` tokens on `rows`
/// rows of `fmt` (one launch; `staged`: the k-quant blocks go through shared memory,
/// at 1-2 rows per warp), or `None` for the tensor cores, on `sms` multiprocessors.
fn decode_choice(
    d: DecodeProducts,
    fmt: QFormat,
    rows: usize,
    ntok: usize,
    staged: bool,
    sms: usize,
) -> Option<u8> {
    // Q6_K's blocks are 2-byte aligned: its decode kernel pays for that unless the
    // blocks are staged, and the tensor cores measured faster (benches/reports/cuda.md,
    // session 11).
    let q6_direct = fmt == QFormat::Q6K && !staged;
    if ntok > d.max_tokens || (q6_direct && d.rows_per_warp.is_none()) {
        return None;
    }
    // 32-value formats: tall matrices give a warp two or four rows (their inputs loaded
    // once for all; four at one token), short ones one row (more warps in flight);
    // unstaged k-quants four rows at one token whatever the height (every 8B shape
    // measured fastest so). Measured: benches/reports/cuda.md.
    let auto = match rows {
        // Staged k-quants: two rows per warp (more warps in flight than four, the
        // blocks' shared memory allowing), one for Q6_K on short matrices (session 12,
        // qmm_bench on the H100: 8B gate/up 17.6 -> 17.1 µs, down 19.2 -> 18.8, output
        // 202 -> 161; Q6_K down 28.8 at one row, 35.5 at two).
        _ if staged && fmt == QFormat::Q6K && rows < 64 * sms => 1,
        _ if staged => 2,
        _ if ntok == 1 && fmt.is_kquant() => 4,
        r if ntok == 1 && r >= 64 * sms => 4,
        r if r >= 16 * sms => 2,
        _ => 1,
    };
    let per_warp = d.rows_per_warp.unwrap_or(auto);
    // Four rows per warp only at one token.
    Some(if ntok > 1 { per_warp.min(2) } else { per_warp })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rows_follow_format_shape_and_staging() {
        let d = DecodeProducts::default();
        let pick = |fmt, rows, ntok, staged| decode_choice(d, fmt, rows, ntok, staged, 132);
        // Staged k-quants: two rows per warp; Q6_K one on short matrices, two on the
        // 8B output.
        assert_eq!(pick(QFormat::Q4K, 28_672, 1, true), Some(2));
        assert_eq!(pick(QFormat::Q6K, 4096, 1, true), Some(1));
        assert_eq!(pick(QFormat::Q6K, 128_256, 1, true), Some(2));
        // Unstaged: Q4_K four rows at one token, two at two; Q6_K the tensor cores.
        assert_eq!(pick(QFormat::Q4K, 4096, 1, false), Some(4));
        assert_eq!(pick(QFormat::Q4K, 4096, 2, false), Some(2));
        assert_eq!(pick(QFormat::Q6K, 4096, 1, false), None);
        // 32-value formats by height; wider steps on the tensor cores.
        assert_eq!(pick(QFormat::Q5_0, 1536, 1, false), Some(1));
        assert_eq!(pick(QFormat::Q8_0, 262_144, 1, false), Some(4));
        assert_eq!(pick(QFormat::Q8_0, 262_144, 2, false), Some(2));
        assert_eq!(pick(QFormat::Q4K, 4096, 3, true), None);
        // A forced setting wins, capped at two rows for two tokens.
        let forced = DecodeProducts {
            rows_per_warp: Some(4),
            ..d
        };
        assert_eq!(
            decode_choice(forced, QFormat::Q4K, 64, 2, true, 132),
            Some(2)
        );
        assert_eq!(
            decode_choice(DecodeProducts::TENSOR_CORES, QFormat::Q4K, 64, 1, true, 132),
            None
        );
    }

    #[test]
    fn staged_decode_fits_every_device() {
        // 1-2 rows per warp (the default choices) within the 48 KiB every device gives.
        for fmt in [QFormat::Q4K, QFormat::Q5K, QFormat::Q6K] {
            assert!(kd_smem(fmt, 2) <= 48 * 1024, "{fmt:?}");
            assert_eq!(kd_smem(fmt, 1) * 4, kd_smem(fmt, 4));
        }
        assert_eq!(kd_smem(QFormat::Q6K, 1), 4 * 3 * 1696);
    }
}
