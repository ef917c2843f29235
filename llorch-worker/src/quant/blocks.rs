//! Block layouts of the quantized types, byte-exact with `ggml-common.h`.
//!
//! Every struct is `#[repr(C)]`, has no padding and is [`bytemuck::Pod`], so a
//! tensor's bytes can be viewed as a slice of blocks with [`blocks`] (when
//! aligned; GGUF tensor data is 32-byte aligned in the file) and kernels can
//! work on the fields directly. `f16` fields are [`half::f16`]. Element order
//! within a block is documented on each `dequantize` method.

use bytemuck::{Pod, Zeroable};
use half::f16;

/// Elements per block of the 32-element quants (`QK4_0`, `QK8_0`, ...).
pub const QK: usize = 32;
/// Elements per super-block of the k-quants (`QK_K`).
pub const QK_K: usize = 256;

/// `block_q4_0`: `y = d * (q - 8)`; element `j < 16` is the low nibble of
/// `qs[j]`, element `j + 16` its high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// 32 4-bit quants, two per byte.
    pub qs: [u8; QK / 2],
}

/// `block_q4_1`: `y = d * q + m`; nibbles as in [`BlockQ4_0`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// 32 4-bit quants, two per byte.
    pub qs: [u8; QK / 2],
}

/// `block_q5_0`: `y = d * (q - 16)`; low 4 bits as in [`BlockQ4_0`], bit 4 of
/// element `j` is bit `j` of the little-endian u32 `qh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// The fifth bits (little-endian u32).
    pub qh: [u8; 4],
    /// Low nibbles.
    pub qs: [u8; QK / 2],
}

/// `block_q5_1`: `y = d * q + m`; bits as in [`BlockQ5_0`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// The fifth bits (little-endian u32).
    pub qh: [u8; 4],
    /// Low nibbles.
    pub qs: [u8; QK / 2],
}

/// `block_q8_0`: `y = qs[j] * d`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// 32 signed quants.
    pub qs: [i8; QK],
}

/// `block_q4_K`: 8 sub-blocks of 32 with 6-bit scales and mins
/// (see [`BlockQ4K::scale_min`]); `y = (d*sc) * q - (dmin*m)`. Sub-block
/// `2k` is the low nibbles of `qs[32k..32k+32]`, sub-block `2k+1` the high ones.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
    /// 8 scales and 8 mins, 6 bits each, packed.
    pub scales: [u8; 12],
    /// 256 4-bit quants.
    pub qs: [u8; QK_K / 2],
}

/// `block_q5_K`: as [`BlockQ4K`] plus a fifth bit: bit 4 of element `l` of
/// sub-block `i` is bit `i` of `qh[l]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5K {
    /// Super-block scale of the scales.
    pub d: f16,
    /// Super-block scale of the mins.
    pub dmin: f16,
    /// 8 scales and 8 mins, 6 bits each, packed.
    pub scales: [u8; 12],
    /// The fifth bits.
    pub qh: [u8; QK_K / 8],
    /// Low nibbles.
    pub qs: [u8; QK_K / 2],
}

/// `block_q6_K`: 16 sub-blocks of 16 with i8 scales; `y = (d*scales[t/16]) * (q - 32)`.
/// For element `t` (half `h = t/128`, `u = t%128`): low 4 bits are nibble `u/64`
/// of `ql[64h + u%64]`, high 2 bits are bits `2(u/32)..` of `qh[32h + u%32]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ6K {
    /// Low 4 bits.
    pub ql: [u8; QK_K / 2],
    /// High 2 bits.
    pub qh: [u8; QK_K / 4],
    /// Sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

/// `block_q8_K`: `y = d * qs[j]`; `bsums[k]` is the sum of `qs[16k..16k+16]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8K {
    /// Scale (f32).
    pub d: f32,
    /// 256 signed quants.
    pub qs: [i8; QK_K],
    /// Sums of groups of 16 quants.
    pub bsums: [i16; QK_K / 16],
}

const _: () = {
    assert!(size_of::<BlockQ4_0>() == 18);
    assert!(size_of::<BlockQ4_1>() == 20);
    assert!(size_of::<BlockQ5_0>() == 22);
    assert!(size_of::<BlockQ5_1>() == 24);
    assert!(size_of::<BlockQ8_0>() == 34);
    assert!(size_of::<BlockQ4K>() == 144);
    assert!(size_of::<BlockQ5K>() == 176);
    assert!(size_of::<BlockQ6K>() == 210);
    assert!(size_of::<BlockQ8K>() == 292);
};

/// Views bytes as blocks: `None` if the length is not a whole number of
/// blocks or the bytes are not aligned for `B` (then copy with
/// [`bytemuck::pod_read_unaligned`]).
pub fn blocks<B: Pod>(bytes: &[u8]) -> Option<&[B]> {
    bytemuck::try_cast_slice(bytes).ok()
}

impl BlockQ4K {
    /// Scale and min (6-bit each) of sub-block `j` (0..8): `get_scale_min_k4`.
    #[inline]
    pub fn scale_min(&self, j: usize) -> (u8, u8) {
        scale_min_k4(j, &self.scales)
    }
}

impl BlockQ5K {
    /// Scale and min (6-bit each) of sub-block `j` (0..8): `get_scale_min_k4`.
    #[inline]
    pub fn scale_min(&self, j: usize) -> (u8, u8) {
        scale_min_k4(j, &self.scales)
    }
}

/// ggml's `get_scale_min_k4`.
#[inline]
pub fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}
