//! Helpers of the GPU tests: deterministic inputs, quantized matrices, one product.
#![allow(dead_code, clippy::unwrap_used)]

use llorch_cuda::{Gpu, QActs, QFormat};
use llorch_worker::quant::{GgmlType, quantize_row};

/// Every integer format, as (GGUF type, device format).
pub const INTEGER_FORMATS: [(GgmlType, QFormat); 8] = [
    (GgmlType::Q4_K, QFormat::Q4K),
    (GgmlType::Q5_K, QFormat::Q5K),
    (GgmlType::Q6_K, QFormat::Q6K),
    (GgmlType::Q5_0, QFormat::Q5_0),
    (GgmlType::Q5_1, QFormat::Q5_1),
    (GgmlType::Q4_0, QFormat::Q4_0),
    (GgmlType::Q4_1, QFormat::Q4_1),
    (GgmlType::Q8_0, QFormat::Q8_0),
];

/// The bits of each value (NaNs compare by payload).
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// A deterministic pseudo-random stream in [-1, 1).
pub fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// `rows` rows of `cols` noise (`seed`) quantized to `ty`, as GGUF block bytes.
pub fn quantized_matrix(ty: GgmlType, seed: u64, rows: usize, cols: usize) -> Vec<u8> {
    noise(seed, rows * cols)
        .chunks(cols)
        .flat_map(|r| quantize_row(ty, r).unwrap())
        .collect()
}

/// `ntok` rows of `x` times `w` on the GPU: [`Gpu::qmm`], or with `quantized`,
/// [`Gpu::quantize_acts`] then [`Gpu::qmm_q`].
#[allow(clippy::too_many_arguments)]
pub fn product(
    gpu: &Gpu,
    quantized: bool,
    fmt: QFormat,
    w: &llorch_cuda::CudaSlice<u8>,
    rows: usize,
    cols: usize,
    x: &[f32],
    ntok: usize,
) -> Vec<f32> {
    let x_d = gpu.upload(x).unwrap();
    let mut y_d = gpu.alloc::<f32>(ntok * rows).unwrap();
    let (w, mut out) = (w.as_view(), y_d.as_view_mut());
    if quantized {
        let mut q = QActs::new(gpu, ntok * cols).unwrap();
        gpu.quantize_acts(&x_d.as_view(), ntok, cols, &mut q)
            .unwrap();
        gpu.qmm_q(fmt, &w, rows, cols, &q, ntok, &mut out).unwrap();
    } else {
        gpu.qmm(fmt, &w, rows, cols, &x_d.as_view(), ntok, &mut out)
            .unwrap();
    }
    let mut y = vec![f32::NAN; ntok * rows];
    gpu.read(&y_d.as_view(), &mut y).unwrap();
    y
}
