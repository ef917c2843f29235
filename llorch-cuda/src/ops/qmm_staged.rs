//! Integer products of many tokens staged through shared memory (`imma_staged.cu`):
//! the same bits as `qmm_q`'s register tiles, and the kernel that picks between them.
#![allow(unsafe_code)]

use cudarc::driver::{CudaView, CudaViewMut, PushKernelArg};

use super::*;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{Kernel, QFormat, QS_TILES};
use crate::ops::QActs;

/// Which kernel takes integer products of steps too wide for the decode kernels. Every
/// choice gives the same bits (a benchmarking and testing knob).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WideProducts {
    /// Chosen by the step's shape.
    #[default]
    Auto,
    /// `qmm_q`'s register tiles (`imma.cu`, `kquant_tiles.cu`), the tile chosen by the step.
    Registers,
    /// The register tiles with this (tokens, row tiles) block tile (one of the format's
    /// [`QFormat::qq_tiles`]).
    Tile(u8, u8),
    /// The staged kernel with this (rows, tokens) block tile (one of [`QS_TILES`]).
    Staged(u8, u8),
}

/// Steps in flight (`QS_STAGES` of `imma_staged.cu`, `KS_STAGES` of `kquant_tiles.cu`).
const QS_STAGES: usize = 4;
const KS_STAGES: usize = 3;
/// Steps of at least this many tokens may take the staged kernel by default.
const STAGED_FROM: usize = 33;

/// Bytes of a row's staged copy of one step (`staged_row_bytes` of `imma_staged.cu`,
/// `ks_row_bytes` of `kquant_tiles.cu`: a whole block of the k-quants, asserted there).
fn row_bytes(fmt: QFormat) -> usize {
    match fmt {
        QFormat::Q8_0 => 36,
        QFormat::Q4_0 | QFormat::Q4_1 => 20,
        QFormat::Q5_0 | QFormat::Q5_1 => 24,
        QFormat::Q4K => 144,
        QFormat::Q5K => 176,
        QFormat::Q6K => 216,
        QFormat::F32 | QFormat::F16 | QFormat::Bf16 => 0,
    }
}

/// Dynamic shared memory of the staged kernel of `fmt` with a `rows` × `tokens` tile:
/// its stages of the rows' step copies, the tokens' 64-byte blocks and 8-byte meta
/// (one 32-column block per step; eight for the k-quants, whose steps are whole
/// 256-value blocks, and whose running totals, one f32 per output, follow).
pub(crate) fn staged_smem(fmt: QFormat, rows: u8, tokens: u8) -> usize {
    let (bm, bn) = (usize::from(rows), usize::from(tokens));
    if fmt.is_kquant() {
        KS_STAGES * (bm * row_bytes(fmt) + bn * 8 * (64 + 8)) + bm * bn * 4
    } else {
        QS_STAGES * (bm * row_bytes(fmt) + bn * (64 + 8))
    }
}

/// Whether the staged kernel takes a product of `fmt` with `ntok` tokens on `rows` rows
/// by default, and with which tile. Measured on the H200 (benches/reports/cuda.md,
/// sessions 6 and 11): its 128 × 64 tile beats the register tiles once a step has more
/// than 32 tokens and the matrix gives three quarters of the multiprocessors a block (8B
/// gate/up at 64 tokens: 32-value formats 144 → 114 µs, Q4_K 99.8 → 69.6 µs); on fewer
/// blocks or fewer tokens it is slower, Q6_K unless the blocks fill several waves.
fn qs_tile(fmt: QFormat, rows: usize, ntok: usize, sms: usize) -> Option<(u8, u8)> {
    let tile @ (m, n) = QS_TILES[QS_TILES.len() - 1];
    let blocks = rows.div_ceil(usize::from(m)) * ntok.div_ceil(usize::from(n));
    // Q6_K's staged steps pay only over many waves (session 11: the 8B output, 128 256
    // rows at 64 tokens, 1 184 → 1 076 µs; 4 096 rows 125 → 257 µs).
    let enough = if fmt == QFormat::Q6K {
        blocks >= 4 * sms
    } else {
        blocks * 4 >= sms * 3
    };
    (ntok >= STAGED_FROM && enough).then_some(tile)
}

impl Gpu {
    /// The staged tile for a product of `ntok` tokens on `rows` rows, or `None` when
    /// the register tiles take it ([`WideProducts`]).
    pub(super) fn staged_tile(&self, fmt: QFormat, rows: usize, ntok: usize) -> Option<(u8, u8)> {
        match self.wide_products() {
            WideProducts::Registers | WideProducts::Tile(..) => None,
            WideProducts::Staged(m, n) => Some((m, n)),
            WideProducts::Auto => qs_tile(fmt, rows, ntok, self.sms())
                .filter(|&(m, n)| self.smem_fits(staged_smem(fmt, m, n))),
        }
    }

    /// The staged integer product (`imma_staged.cu`) with a `tile` of (rows, tokens).
    /// Checked by the caller ([`Gpu::qmm_q`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn qmm_s(
        &self,
        fmt: QFormat,
        w: &CudaView<'_, u8>,
        rows: usize,
        cols: usize,
        q: &QActs,
        ntok: usize,
        tile: (u8, u8),
        y: &mut CudaViewMut<'_, f32>,
    ) -> Result<()> {
        shape("qmm_s", QS_TILES.contains(&tile), || {
            format!("no staged kernel for a {tile:?} tile")
        })?;
        let (m, n) = tile;
        let smem = staged_smem(fmt, m, n);
        shape("qmm_s", self.smem_fits(smem), || {
            format!(
                "a {tile:?} tile of {fmt:?} needs {smem} bytes of shared memory per block, more than the device gives"
            )
        })?;
        let blocks = rows.div_ceil(usize::from(m)) * ntok.div_ceil(usize::from(n));
        let mut c = cfg((blocks, 1), TC_WARPS * 32)?;
        c.shared_mem_bytes = staged_smem(fmt, m, n) as u32;
        let (rows, cols, ntok) = (int(rows)?, int(cols)?, int(ntok)?);
        let mut b = self.stream.launch_builder(self.func(Kernel::QmmS {
            fmt,
            rows: m,
            tile: n,
        }));
        let (data, meta) = q.buffers();
        b.arg(w)
            .arg(&rows)
            .arg(&cols)
            .arg(data)
            .arg(meta)
            .arg(&ntok)
            .arg(y);
        // SAFETY: as for the register tiles (`qmm_q`): the kernel reads `rows *
        // row_bytes` weight bytes and the quantized blocks of `ntok` rows of `cols`,
        // writes `ntok * rows` outputs; tokens past `ntok` are zero-filled, never
        // read. Its shared memory is the size the function was opened with.
        unsafe { b.launch(c) }?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_tiles_take_wide_steps_on_tall_matrices() {
        let q4k = QFormat::Q4K;
        // 64 sequences on the 8B gate/up rows: 112 blocks of 128 × 64.
        assert_eq!(qs_tile(q4k, 14_336, 64, 132), Some((128, 64)));
        // q/o rows at 64 tokens give 32 blocks: the register tiles.
        assert_eq!(qs_tile(q4k, 4096, 64, 132), None);
        // Prefill of 512 tokens on 4096 rows: 256 blocks.
        assert_eq!(qs_tile(q4k, 4096, 512, 132), Some((128, 64)));
        // Narrow steps and Q6_K stay on the register tiles.
        assert_eq!(qs_tile(q4k, 14_336, 32, 132), None);
        assert_eq!(qs_tile(QFormat::Q6K, 14_336, 64, 132), None);
        // Q6_K over many waves: the 8B output at 64 tokens.
        assert_eq!(qs_tile(QFormat::Q6K, 128_256, 64, 132), Some((128, 64)));
        for fmt in QFormat::ALL.into_iter().filter(|f| f.is_integer()) {
            for (m, n) in QS_TILES {
                // Hopper's 227 KiB a block.
                assert!(staged_smem(fmt, m, n) <= 227 * 1024, "{fmt:?} {m}×{n}");
                assert!(staged_smem(fmt, m, n).is_multiple_of(16), "{fmt:?} {m}×{n}");
            }
        }
    }
}
