//! Dequantization, bit-exact with llama.cpp's reference (`dequantize_row_*`)
//! and the `gguf` package's numpy code: plain `a*b + c` and `(d*sc)*q`
//! orders, never fused multiply-adds.

use half::f16;

use super::blocks::*;

#[inline]
fn h(x: f16) -> f32 {
    x.to_f32()
}

impl BlockQ4_0 {
    /// Writes the 32 values.
    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let d = h(self.d);
        for j in 0..QK / 2 {
            let x0 = i32::from(self.qs[j] & 0x0F) - 8;
            let x1 = i32::from(self.qs[j] >> 4) - 8;
            y[j] = d * x0 as f32;
            y[j + QK / 2] = d * x1 as f32;
        }
    }
}

impl BlockQ4_1 {
    /// Writes the 32 values.
    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let (d, m) = (h(self.d), h(self.m));
        for j in 0..QK / 2 {
            y[j] = d * f32::from(self.qs[j] & 0x0F) + m;
            y[j + QK / 2] = d * f32::from(self.qs[j] >> 4) + m;
        }
    }
}

impl BlockQ5_0 {
    /// Writes the 32 values.
    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let d = h(self.d);
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..QK / 2 {
            let xh0 = (((qh >> j) << 4) & 0x10) as u8;
            let xh1 = ((qh >> (j + 12)) & 0x10) as u8;
            let x0 = i32::from((self.qs[j] & 0x0F) | xh0) - 16;
            let x1 = i32::from((self.qs[j] >> 4) | xh1) - 16;
            y[j] = d * x0 as f32;
            y[j + QK / 2] = d * x1 as f32;
        }
    }
}

impl BlockQ5_1 {
    /// Writes the 32 values.
    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let (d, m) = (h(self.d), h(self.m));
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..QK / 2 {
            let xh0 = (((qh >> j) << 4) & 0x10) as u8;
            let xh1 = ((qh >> (j + 12)) & 0x10) as u8;
            y[j] = d * f32::from((self.qs[j] & 0x0F) | xh0) + m;
            y[j + QK / 2] = d * f32::from((self.qs[j] >> 4) | xh1) + m;
        }
    }
}

impl BlockQ8_0 {
    /// Writes the 32 values.
    pub fn dequantize(&self, y: &mut [f32; QK]) {
        let d = h(self.d);
        for (o, &q) in y.iter_mut().zip(&self.qs) {
            *o = f32::from(q) * d;
        }
    }
}

impl BlockQ4K {
    /// Writes the 256 values.
    pub fn dequantize(&self, y: &mut [f32; QK_K]) {
        let (d, dmin) = (h(self.d), h(self.dmin));
        for k in 0..4 {
            let q = &self.qs[32 * k..32 * k + 32];
            for half in 0..2 {
                let (sc, m) = self.scale_min(2 * k + half);
                let d1 = d * f32::from(sc);
                let m1 = dmin * f32::from(m);
                let out = &mut y[64 * k + 32 * half..64 * k + 32 * half + 32];
                for (o, &b) in out.iter_mut().zip(q) {
                    *o = d1 * f32::from((b >> (4 * half)) & 0x0F) - m1;
                }
            }
        }
    }
}

impl BlockQ5K {
    /// Writes the 256 values.
    pub fn dequantize(&self, y: &mut [f32; QK_K]) {
        let (d, dmin) = (h(self.d), h(self.dmin));
        for k in 0..4 {
            let q = &self.qs[32 * k..32 * k + 32];
            for half in 0..2 {
                let sub = 2 * k + half;
                let (sc, m) = self.scale_min(sub);
                let d1 = d * f32::from(sc);
                let m1 = dmin * f32::from(m);
                let out = &mut y[32 * sub..32 * sub + 32];
                for l in 0..32 {
                    let lo = (q[l] >> (4 * half)) & 0x0F;
                    let hi = ((self.qh[l] >> sub) & 1) << 4;
                    out[l] = d1 * f32::from(lo | hi) - m1;
                }
            }
        }
    }
}

impl BlockQ6K {
    /// Writes the 256 values.
    pub fn dequantize(&self, y: &mut [f32; QK_K]) {
        let d = h(self.d);
        for (t, o) in y.iter_mut().enumerate() {
            let (hf, u) = (t / 128, t % 128);
            let lo = (self.ql[64 * hf + u % 64] >> (4 * (u / 64))) & 0x0F;
            let hi = (self.qh[32 * hf + u % 32] >> (2 * (u / 32))) & 0x03;
            let q = i32::from(lo | (hi << 4)) - 32;
            let ds = d * f32::from(self.scales[t / 16]);
            *o = ds * q as f32;
        }
    }
}

impl BlockQ8K {
    /// Writes the 256 values.
    pub fn dequantize(&self, y: &mut [f32; QK_K]) {
        for (o, &q) in y.iter_mut().zip(&self.qs) {
            *o = self.d * f32::from(q);
        }
    }
}

/// Dequantizes whole blocks of type `B` from `bytes` into `out` (lengths checked by the caller).
pub(crate) fn each_block<B: bytemuck::Pod, const N: usize>(
    bytes: &[u8],
    out: &mut [f32],
    f: impl Fn(&B, &mut [f32; N]),
) {
    let outs = out
        .chunks_exact_mut(N)
        .filter_map(|o| <&mut [f32; N]>::try_from(o).ok());
    match blocks::<B>(bytes) {
        Some(bs) => bs.iter().zip(outs).for_each(|(b, o)| f(b, o)),
        None => bytes
            .chunks_exact(size_of::<B>())
            .zip(outs)
            .for_each(|(c, o)| f(&bytemuck::pod_read_unaligned::<B>(c), o)),
    }
}

/// f16 bits → f32 (exact).
pub(crate) fn f16_row(bytes: &[u8], out: &mut [f32]) {
    for (c, o) in bytes.chunks_exact(2).zip(out) {
        *o = f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
    }
}

/// bf16 bits → f32 (exact: the bits shifted up).
pub(crate) fn bf16_row(bytes: &[u8], out: &mut [f32]) {
    for (c, o) in bytes.chunks_exact(2).zip(out) {
        *o = f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16);
    }
}

/// f32 bytes → f32.
pub(crate) fn f32_row(bytes: &[u8], out: &mut [f32]) {
    for (c, o) in bytes.chunks_exact(4).zip(out) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
}
