//! Quantizers of the 32-element formats and the float formats: llama.cpp's
//! reference algorithms (`quantize_row_*_ref`, `ggml_compute_fp32_to_bf16`),
//! which the `gguf` package reproduces bit-exactly.

use half::f16;

use super::blocks::*;

/// f32 → bf16 bits as ggml does it: NaN made quiet, otherwise round to nearest even.
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    ((u as u64 + (0x7fff + u64::from((u >> 16) & 1))) >> 16) as u16
}

/// `(int8_t)(v)` then `MIN(max, ·)`, as the reference does (saturating instead of UB).
#[inline]
fn trunc_min(v: f32, max: i32) -> u8 {
    ((v as i8) as i32).clamp(0, max) as u8
}

/// The value with the largest magnitude (first one on ties) and that magnitude.
fn abs_max(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        min = min.min(v);
        max = max.max(v);
    }
    (min, max)
}

fn inv(d: f32) -> f32 {
    if d != 0.0 { 1.0 / d } else { 0.0 }
}

/// `quantize_row_q4_0_ref` for one block.
pub fn quantize_q4_0(x: &[f32; QK]) -> BlockQ4_0 {
    let (_, max) = abs_max(x);
    let d = max / -8.0;
    let id = inv(d);
    let mut qs = [0u8; QK / 2];
    for j in 0..QK / 2 {
        let x0 = trunc_min(x[j] * id + 8.5, 15);
        let x1 = trunc_min(x[QK / 2 + j] * id + 8.5, 15);
        qs[j] = x0 | (x1 << 4);
    }
    BlockQ4_0 {
        d: f16::from_f32(d),
        qs,
    }
}

/// `quantize_row_q4_1_ref` for one block.
pub fn quantize_q4_1(x: &[f32; QK]) -> BlockQ4_1 {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = inv(d);
    let mut qs = [0u8; QK / 2];
    for j in 0..QK / 2 {
        let x0 = trunc_min((x[j] - min) * id + 0.5, 15);
        let x1 = trunc_min((x[QK / 2 + j] - min) * id + 0.5, 15);
        qs[j] = x0 | (x1 << 4);
    }
    BlockQ4_1 {
        d: f16::from_f32(d),
        m: f16::from_f32(min),
        qs,
    }
}

/// `quantize_row_q5_0_ref` for one block.
pub fn quantize_q5_0(x: &[f32; QK]) -> BlockQ5_0 {
    let (_, max) = abs_max(x);
    let d = max / -16.0;
    let id = inv(d);
    let mut qs = [0u8; QK / 2];
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let x0 = trunc_min(x[j] * id + 16.5, 31);
        let x1 = trunc_min(x[QK / 2 + j] * id + 16.5, 31);
        qs[j] = (x0 & 0x0F) | ((x1 & 0x0F) << 4);
        qh |= u32::from((x0 & 0x10) >> 4) << j;
        qh |= u32::from((x1 & 0x10) >> 4) << (j + QK / 2);
    }
    BlockQ5_0 {
        d: f16::from_f32(d),
        qh: qh.to_le_bytes(),
        qs,
    }
}

/// `quantize_row_q5_1_ref` for one block.
pub fn quantize_q5_1(x: &[f32; QK]) -> BlockQ5_1 {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = inv(d);
    let mut qs = [0u8; QK / 2];
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let x0 = trunc_min((x[j] - min) * id + 0.5, 31);
        let x1 = trunc_min((x[QK / 2 + j] - min) * id + 0.5, 31);
        qs[j] = (x0 & 0x0F) | ((x1 & 0x0F) << 4);
        qh |= u32::from((x0 & 0x10) >> 4) << j;
        qh |= u32::from((x1 & 0x10) >> 4) << (j + QK / 2);
    }
    BlockQ5_1 {
        d: f16::from_f32(d),
        m: f16::from_f32(min),
        qh: qh.to_le_bytes(),
        qs,
    }
}

/// `quantize_row_q8_0_ref` for one block.
pub fn quantize_q8_0(x: &[f32; QK]) -> BlockQ8_0 {
    let (amax, _) = abs_max(x);
    let d = amax / 127.0;
    let id = inv(d);
    let mut qs = [0i8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    BlockQ8_0 {
        d: f16::from_f32(d),
        qs,
    }
}
