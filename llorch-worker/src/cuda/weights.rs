//! The model's tensors copied into device memory, as they are in the file.

use llorch_cuda::{CudaSlice, CudaView, Gpu, QFormat};

use crate::model::{Matrix, Weights};

/// A matrix inside the device's weight buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DMatrix {
    pub fmt: QFormat,
    pub rows: usize,
    pub cols: usize,
    off: usize,
    len: usize,
}

/// A vector inside the device's f32 buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DVec {
    off: usize,
    len: usize,
}

/// One block's tensors on the device.
#[derive(Debug)]
pub(crate) struct DLayer {
    pub attn_norm: DVec,
    pub wq: DMatrix,
    pub wk: DMatrix,
    pub wv: DMatrix,
    pub wo: DMatrix,
    pub bq: Option<DVec>,
    pub bk: Option<DVec>,
    pub bv: Option<DVec>,
    pub q_norm: Option<DVec>,
    pub k_norm: Option<DVec>,
    pub post_attn_norm: Option<DVec>,
    pub ffn_norm: DVec,
    pub gate: DMatrix,
    pub up: DMatrix,
    pub down: DMatrix,
    pub post_ffn_norm: Option<DVec>,
}

/// All weights on the device: matrices in one byte buffer, vectors in one f32 buffer.
pub(crate) struct DeviceWeights {
    bytes: CudaSlice<u8>,
    floats: CudaSlice<f32>,
    pub embed: DMatrix,
    pub output: DMatrix,
    pub output_norm: DVec,
    pub layers: Vec<DLayer>,
}

/// Matrices start on 256-byte boundaries (aligned vector loads in the kernels).
const ALIGN: usize = 256;

/// Where everything goes, computed before any allocation (to size the VRAM check).
#[derive(Default)]
pub(crate) struct Layout {
    bytes: Vec<(usize, std::ops::Range<usize>)>,
    floats: Vec<f32>,
    byte_len: usize,
}

impl Layout {
    fn matrix(&mut self, m: &Matrix) -> DMatrix {
        let off = self.byte_len.next_multiple_of(ALIGN);
        let len = m.range.len();
        self.bytes.push((off, m.range.clone()));
        self.byte_len = off + len;
        DMatrix {
            fmt: m.fmt.device(),
            rows: m.rows,
            cols: m.cols,
            off,
            len,
        }
    }

    fn vector(&mut self, v: &[f32]) -> DVec {
        // 64-value alignment keeps every vector 256-byte aligned.
        let off = self.floats.len().next_multiple_of(64);
        self.floats.resize(off, 0.0);
        self.floats.extend_from_slice(v);
        DVec { off, len: v.len() }
    }

    fn opt(&mut self, v: Option<&Vec<f32>>) -> Option<DVec> {
        v.map(|v| self.vector(v))
    }

    /// Bytes of device memory the weights take.
    pub fn device_bytes(&self) -> u64 {
        (self.byte_len + self.floats.len() * 4) as u64
    }
}

/// The layout of `w`'s tensors (no device work yet).
pub(crate) fn plan(w: &Weights) -> (Layout, DMatrix, DMatrix, DVec, Vec<DLayer>) {
    let mut lay = Layout::default();
    let embed = lay.matrix(&w.embed);
    let output = if w.output.range == w.embed.range {
        embed
    } else {
        lay.matrix(&w.output)
    };
    let output_norm = lay.vector(&w.output_norm);
    let layers = w
        .layers
        .iter()
        .map(|l| DLayer {
            attn_norm: lay.vector(&l.attn_norm),
            wq: lay.matrix(&l.wq),
            wk: lay.matrix(&l.wk),
            wv: lay.matrix(&l.wv),
            wo: lay.matrix(&l.wo),
            bq: lay.opt(l.bq.as_ref()),
            bk: lay.opt(l.bk.as_ref()),
            bv: lay.opt(l.bv.as_ref()),
            q_norm: lay.opt(l.q_norm.as_ref()),
            k_norm: lay.opt(l.k_norm.as_ref()),
            post_attn_norm: lay.opt(l.post_attn_norm.as_ref()),
            ffn_norm: lay.vector(&l.ffn_norm),
            gate: lay.matrix(&l.gate),
            up: lay.matrix(&l.up),
            down: lay.matrix(&l.down),
            post_ffn_norm: lay.opt(l.post_ffn_norm.as_ref()),
        })
        .collect();
    (lay, embed, output, output_norm, layers)
}

impl DeviceWeights {
    /// Copies the planned tensors of `w` to the device.
    pub fn upload(
        gpu: &Gpu,
        w: &Weights,
        plan: (Layout, DMatrix, DMatrix, DVec, Vec<DLayer>),
    ) -> llorch_cuda::Result<Self> {
        let (lay, embed, output, output_norm, layers) = plan;
        let file = w.file.bytes();
        let mut bytes = gpu.alloc::<u8>(lay.byte_len)?;
        // Copy in pieces of at most 64 MiB (bounded host staging).
        for (off, range) in &lay.bytes {
            let mut start = range.start;
            while start < range.end {
                let end = (start + (64 << 20)).min(range.end);
                let at = off + (start - range.start);
                let mut dst = bytes.slice_mut(at..at + (end - start));
                gpu.write_view(&file[start..end], &mut dst)?;
                start = end;
            }
        }
        let floats = gpu.upload(&lay.floats)?;
        Ok(Self {
            bytes,
            floats,
            embed,
            output,
            output_norm,
            layers,
        })
    }

    /// A matrix's bytes.
    pub fn m(&self, m: &DMatrix) -> CudaView<'_, u8> {
        self.bytes.slice(m.off..m.off + m.len)
    }

    /// A vector's values.
    pub fn v(&self, v: &DVec) -> CudaView<'_, f32> {
        self.floats.slice(v.off..v.off + v.len)
    }
}
