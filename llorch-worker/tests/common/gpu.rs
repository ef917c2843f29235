//! Helpers of the GPU tests: deterministic inputs, quantized matrices, one product.
#![allow(dead_code, clippy::unwrap_used)]

use llorch_cuda::{CudaSlice, Gpu, ProductPart, QActs, QFormat, QGroup};
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
/// [`Gpu::quantize_acts`] (in the format's group) then [`Gpu::qmm_q`].
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
        q.set_group(QGroup::for_formats([fmt]));
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

/// Each matrix's outputs (`ntok` rows of its height) after `launch` ran on the grouped
/// parts: `mats[i]` with `heights[i]` rows, each writing fresh outputs.
pub fn grouped_outputs(
    gpu: &Gpu,
    mats: &[CudaSlice<u8>],
    heights: &[usize],
    ntok: usize,
    launch: impl FnOnce(&mut [ProductPart<'_, '_, '_>]),
) -> Vec<Vec<f32>> {
    let mut ys: Vec<_> = heights
        .iter()
        .map(|&rows| gpu.alloc::<f32>(ntok * rows).unwrap())
        .collect();
    let views: Vec<_> = mats.iter().map(|w| w.as_view()).collect();
    let mut outs: Vec<_> = ys.iter_mut().map(|y| y.as_view_mut()).collect();
    let mut parts: Vec<ProductPart<'_, '_, '_>> = views
        .iter()
        .zip(outs.iter_mut())
        .zip(heights)
        .map(|((w, y), &rows)| ProductPart { w, rows, y })
        .collect();
    launch(&mut parts);
    drop(parts);
    drop(outs);
    ys.iter()
        .zip(heights)
        .map(|(y, &rows)| {
            let mut h = vec![0.0f32; ntok * rows];
            gpu.read(&y.as_view(), &mut h).unwrap();
            h
        })
        .collect()
}
