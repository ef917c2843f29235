//! Simple valid quantizers for Q4_K, Q5_K and Q6_K (for the GGUF writer and
//! synthetic models). They use llama.cpp's block packing with plain min/max
//! (or abs-max) sub-block scales instead of its iterative search, so the
//! blocks are valid and dequantize close to the input, but are not
//! bit-identical to llama.cpp's output.

use half::f16;

use super::blocks::*;

#[inline]
fn nearest_int(v: f32) -> i32 {
    v.round() as i32
}

/// Scales and mins of the 8 sub-blocks (mins stored negated, ≥ 0) for `levels` steps.
fn sub_scales(x: &[f32; QK_K], levels: f32) -> ([f32; 8], [f32; 8]) {
    let (mut sc, mut mn) = ([0f32; 8], [0f32; 8]);
    for j in 0..8 {
        let s = &x[32 * j..32 * j + 32];
        let min = s.iter().copied().fold(0f32, f32::min);
        let max = s.iter().copied().fold(f32::MIN, f32::max);
        sc[j] = (max - min) / levels;
        mn[j] = -min;
    }
    (sc, mn)
}

/// Packs 6-bit scales and mins as `block_q4_K`/`block_q5_K` do; returns (scales, d, dmin).
fn pack_scales(sc: &[f32; 8], mn: &[f32; 8]) -> ([u8; 12], f16, f16) {
    let max_scale = sc.iter().copied().fold(0f32, f32::max);
    let max_min = mn.iter().copied().fold(0f32, f32::max);
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut q = [0u8; 12];
    for j in 0..8 {
        let ls = nearest_int(inv_scale * sc[j]).clamp(0, 63) as u8;
        let lm = nearest_int(inv_min * mn[j]).clamp(0, 63) as u8;
        if j < 4 {
            q[j] = ls;
            q[j + 4] = lm;
        } else {
            q[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            q[j - 4] |= (ls >> 4) << 6;
            q[j] |= (lm >> 4) << 6;
        }
    }
    (
        q,
        f16::from_f32(max_scale / 63.0),
        f16::from_f32(max_min / 63.0),
    )
}

/// Levels 0..=max of every element, given the packed scales.
fn levels(x: &[f32; QK_K], scales: &[u8; 12], d: f16, dmin: f16, max: i32) -> [u8; QK_K] {
    let mut l = [0u8; QK_K];
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, scales);
        let d1 = d.to_f32() * f32::from(sc);
        if d1 == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * f32::from(m);
        for i in 32 * j..32 * j + 32 {
            l[i] = nearest_int((x[i] + dm) / d1).clamp(0, max) as u8;
        }
    }
    l
}

/// A valid `block_q4_K` close to `x`.
pub fn quantize_q4_k(x: &[f32; QK_K]) -> BlockQ4K {
    let (sc, mn) = sub_scales(x, 15.0);
    let (scales, d, dmin) = pack_scales(&sc, &mn);
    let l = levels(x, &scales, d, dmin, 15);
    let mut qs = [0u8; QK_K / 2];
    for k in 0..4 {
        for i in 0..32 {
            qs[32 * k + i] = l[64 * k + i] | (l[64 * k + 32 + i] << 4);
        }
    }
    BlockQ4K {
        d,
        dmin,
        scales,
        qs,
    }
}

/// A valid `block_q5_K` close to `x`.
pub fn quantize_q5_k(x: &[f32; QK_K]) -> BlockQ5K {
    let (sc, mn) = sub_scales(x, 31.0);
    let (scales, d, dmin) = pack_scales(&sc, &mn);
    let l = levels(x, &scales, d, dmin, 31);
    let (mut qs, mut qh) = ([0u8; QK_K / 2], [0u8; QK_K / 8]);
    for k in 0..4 {
        for i in 0..32 {
            let (a, b) = (l[64 * k + i], l[64 * k + 32 + i]);
            qs[32 * k + i] = (a & 0xF) | ((b & 0xF) << 4);
            qh[i] |= ((a >> 4) << (2 * k)) | ((b >> 4) << (2 * k + 1));
        }
    }
    BlockQ5K {
        d,
        dmin,
        scales,
        qh,
        qs,
    }
}

/// A valid `block_q6_K` close to `x`.
pub fn quantize_q6_k(x: &[f32; QK_K]) -> BlockQ6K {
    let mut sub = [0f32; 16];
    let (mut max_scale, mut max_abs) = (0f32, 0f32);
    for (ib, s) in sub.iter_mut().enumerate() {
        let (mut amax, mut m) = (0f32, 0f32);
        for &v in &x[16 * ib..16 * ib + 16] {
            if amax < v.abs() {
                amax = v.abs();
                m = v;
            }
        }
        *s = m / -32.0;
        if s.abs() > max_abs {
            max_abs = s.abs();
            max_scale = *s;
        }
    }
    let mut out = BlockQ6K {
        ql: [0; QK_K / 2],
        qh: [0; QK_K / 4],
        scales: [0; 16],
        d: f16::ZERO,
    };
    if max_abs == 0.0 {
        // All zero: q = 32 encodes 0 with any scale.
        fill_q6(&mut out, &[32u8; QK_K]);
        return out;
    }
    let iscale = -128.0 / max_scale;
    out.d = f16::from_f32(1.0 / iscale);
    for (ib, s) in sub.iter().enumerate() {
        out.scales[ib] = nearest_int(iscale * s).clamp(-128, 127) as i8;
    }
    let mut l = [32u8; QK_K];
    for j in 0..16 {
        let d = out.d.to_f32() * f32::from(out.scales[j]);
        if d == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            l[i] = (nearest_int(x[i] / d).clamp(-32, 31) + 32) as u8;
        }
    }
    fill_q6(&mut out, &l);
    out
}

fn fill_q6(out: &mut BlockQ6K, l: &[u8; QK_K]) {
    for hf in 0..2 {
        let (j, ql, qh) = (128 * hf, 64 * hf, 32 * hf);
        for i in 0..32 {
            let (q1, q2, q3, q4) = (l[j + i], l[j + i + 32], l[j + i + 64], l[j + i + 96]);
            out.ql[ql + i] = (q1 & 0xF) | ((q3 & 0xF) << 4);
            out.ql[ql + i + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4);
            out.qh[qh + i] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
}
