//! Unpacking GGUF weight blocks into 32-value pieces of `i8` with their scales.
//!
//! One type per format, so the kernels are compiled per format with no branch on
//! the format inside the loop.

use super::lanes::Lanes;

#[inline(always)]
fn f16_at<L: Lanes>(b: &[u8], at: usize) -> f32 {
    L::f16(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// A block unpacked into up to eight 32-value pieces. Value `i` of piece `j` is
/// `d · s_j(i) · u[j][i] + dmin · m_j` with integer scales `s_j` (one per 16-value
/// half) and mins `m_j`: the integer part of a dot product is exact over the whole
/// block and meets the floats once, as in llama.cpp's k-quant kernels.
pub struct Pieces<L: Lanes> {
    /// The values.
    pub u: [L::Piece; 8],
    /// Integer scales of each piece's lower and upper half.
    pub sc: [(i32, i32); 8],
    /// Integer mins of each piece.
    pub mn: [i32; 8],
    /// The block's float scale.
    pub d: f32,
    /// The block's float min multiplier (0 without mins).
    pub dmin: f32,
}

impl<L: Lanes> Pieces<L> {
    /// Zeroed pieces.
    #[inline(always)]
    pub fn new() -> Self {
        Self {
            u: [L::zero_piece(); 8],
            sc: [(1, 1); 8],
            mn: [0; 8],
            d: 0.0,
            dmin: 0.0,
        }
    }
}

impl<L: Lanes> Default for Pieces<L> {
    fn default() -> Self {
        Self::new()
    }
}

/// A block format.
pub trait Unpack {
    /// Pieces per block.
    const PIECES: usize;
    /// Whether values carry a min (`dmin · m_j`).
    const HAS_MIN: bool;
    /// Whether pieces carry integer scales (`sc` other than 1).
    const SCALED: bool = false;
    /// Bytes per block.
    const BYTES: usize;
    /// Unpacks `blk` (exactly `BYTES` long) into the first `PIECES` pieces.
    fn load<L: Lanes>(blk: &[u8], p: &mut Pieces<L>);
}

/// Q8_0: f16 scale, 32 `i8`.
pub struct Q8_0;
/// Q4_0: f16 scale, 32 nibbles offset by 8.
pub struct Q4_0;
/// Q4_1: f16 scale and min, 32 nibbles.
pub struct Q4_1;
/// Q5_0: f16 scale, 32 five-bit values offset by 16.
pub struct Q5_0;
/// Q5_1: f16 scale and min, 32 five-bit values.
pub struct Q5_1;
/// Q4_K: 8 sub-blocks with 6-bit scales and mins.
pub struct Q4K;
/// Q5_K: as Q4_K with a fifth bit.
pub struct Q5K;
/// Q6_K: 16 sub-blocks of 16 with 8-bit scales.
pub struct Q6K;

fn qh_at(blk: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([blk[at], blk[at + 1], blk[at + 2], blk[at + 3]])
}

impl Unpack for Q8_0 {
    const HAS_MIN: bool = false;
    const PIECES: usize = 1;
    const BYTES: usize = 34;
    #[inline(always)]
    fn load<L: Lanes>(blk: &[u8], p: &mut Pieces<L>) {
        p.u[0] = L::load_i8(&blk[2..34]);
        p.d = f16_at::<L>(blk, 0);
    }
}

impl Unpack for Q4_0 {
    const HAS_MIN: bool = false;
    const PIECES: usize = 1;
    const BYTES: usize = 18;
    #[inline(always)]
    fn load<L: Lanes>(blk: &[u8], p: &mut Pieces<L>) {
        p.u[0] = L::nibbles16(&blk[2..18], 8);
        p.d = f16_at::<L>(blk, 0);
    }
}

impl Unpack for Q4_1 {
    const HAS_MIN: bool = true;
    const PIECES: usize = 1;
    const BYTES: usize = 20;
    #[inline(always)]
    fn load<L: Lanes>(blk: &[u8], p: &mut Pieces<L>) {
        p.u[0] = L::nibbles16(&blk[4..20], 0);
        (p.d, p.dmin, p.mn[0]) = (f16_at::<L>(blk, 0), f16_at::<L>(blk, 2), 1);
    }
}

impl Unpack for Q5_0 {
    const HAS_MIN: bool = false;
    const PIECES: usize = 1;
    const BYTES: usize = 22;
    #[inline(always)]
    fn load<L: Lanes>(blk: &[u8], p: &mut Pieces<L>) {
        p.u[0] = L::five_bits(qh_at(blk, 2), &blk[6..22], 16);
        p.d = f16_at::<L>(blk, 0);
    }
}

impl Unpack for Q5_1 {
    const HAS_MIN: bool = true;
    const PIECES: usize = 1;
    const BYTES: usize = 24;
    #[inline(always)]
    fn load<L: Lanes>(blk: &[u8], p: &mut Pieces<L>) {
        p.u[0] = L::five_bits(qh_at(blk, 4), &blk[8..24], 0);
        (p.d, p.dmin, p.mn[0]) = (f16_at::<L>(blk, 0), f16_at::<L>(blk, 2), 1);
    }
}

/// Q4_K/Q5_K scale and min of sub-block `j` (0..8) from the 12 packed bytes.
#[inline(always)]
fn k_scale_min(s: &[u8], j: usize) -> (i32, i32) {
    if j < 4 {
        (i32::from(s[j] & 63), i32::from(s[j + 4] & 63))
    } else {
        (
            i32::from((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4)),
            i32::from((s[j + 4] >> 4) | ((s[j] >> 6) << 4)),
        )
    }
}

#[inline(always)]
fn k_quant<L: Lanes>(blk: &[u8], qh: Option<&[u8]>, qs: &[u8], p: &mut Pieces<L>) {
    p.d = f16_at::<L>(blk, 0);
    p.dmin = -f16_at::<L>(blk, 2);
    let sc = &blk[4..16];
    for j in 0..8 {
        let k = j / 2;
        let shift = if j % 2 == 1 { 4 } else { 0 };
        p.u[j] = L::nibbles32(&qs[32 * k..32 * k + 32], shift, qh.map(|h| (h, j as u32)));
        let (s, m) = k_scale_min(sc, j);
        (p.sc[j], p.mn[j]) = ((s, s), m);
    }
}

impl Unpack for Q4K {
    const SCALED: bool = true;
    const HAS_MIN: bool = true;
    const PIECES: usize = 8;
    const BYTES: usize = 144;
    #[inline(always)]
    fn load<L: Lanes>(blk: &[u8], p: &mut Pieces<L>) {
        k_quant::<L>(blk, None, &blk[16..144], p);
    }
}

impl Unpack for Q5K {
    const SCALED: bool = true;
    const HAS_MIN: bool = true;
    const PIECES: usize = 8;
    const BYTES: usize = 176;
    #[inline(always)]
    fn load<L: Lanes>(blk: &[u8], p: &mut Pieces<L>) {
        k_quant::<L>(blk, Some(&blk[16..48]), &blk[48..176], p);
    }
}

impl Unpack for Q6K {
    const SCALED: bool = true;
    const HAS_MIN: bool = false;
    const PIECES: usize = 8;
    const BYTES: usize = 210;
    #[inline(always)]
    fn load<L: Lanes>(blk: &[u8], p: &mut Pieces<L>) {
        let (ql, qh) = (&blk[0..128], &blk[128..192]);
        let sc = &blk[192..208];
        p.d = f16_at::<L>(blk, 208);
        for n in 0..2 {
            for g in 0..4 {
                let lo_off = 64 * n + if g % 2 == 1 { 32 } else { 0 };
                let shift = if g < 2 { 0 } else { 4 };
                p.u[4 * n + g] = L::six_bits(
                    &ql[lo_off..lo_off + 32],
                    shift,
                    &qh[32 * n..32 * n + 32],
                    2 * g as u32,
                );
                let (s0, s1) = (sc[8 * n + 2 * g] as i8, sc[8 * n + 2 * g + 1] as i8);
                p.sc[4 * n + g] = (i32::from(s0), i32::from(s1));
            }
        }
    }
}
