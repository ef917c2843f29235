//! Eight-lane integer dot products of 32-value pieces, accumulated in eight float lanes.
//!
//! Lane `l` of a piece is the exact integer `Σ u[4l..4l+4] · x[4l..4l+4]`; it is
//! scaled and added to float lane `l` with a separate multiply and add. The AVX2
//! implementation computes the same integers with `maddubs`/`madd` and the same
//! float operations, so both give identical bits (SYS-0003), and the final sum of
//! the lanes has a fixed order.
#![allow(unsafe_code)]

/// Lane arithmetic for one instruction set.
pub trait Lanes {
    /// Eight float accumulators.
    type Acc: Copy;
    /// 32 signed 8-bit values (an unpacked weight piece).
    type Piece: Copy;
    /// A zero piece.
    fn zero_piece() -> Self::Piece;
    /// 32 bytes as `i8` (Q8_0).
    fn load_i8(b: &[u8]) -> Self::Piece;
    /// Low nibbles of 16 bytes, then their high nibbles, minus `off` (Q4_0/Q4_1).
    fn nibbles16(qs: &[u8], off: i8) -> Self::Piece;
    /// As [`Lanes::nibbles16`] with bit `i` of `qh` as bit 4 of value `i` (Q5_0/Q5_1).
    fn five_bits(qh: u32, qs: &[u8], off: i8) -> Self::Piece;
    /// The low (`shift` 0) or high (`shift` 4) nibbles of 32 bytes, with bit `hbit` of
    /// each `qh` byte as bit 4 when `qh` is given (Q4_K/Q5_K).
    fn nibbles32(qs: &[u8], shift: u32, qh: Option<(&[u8], u32)>) -> Self::Piece;
    /// Q6_K: nibble of `ql` (by `shift`) | two bits of `qh` at `hshift` as bits 4-5, minus 32.
    fn six_bits(ql: &[u8], shift: u32, qh: &[u8], hshift: u32) -> Self::Piece;
    /// Zeroed accumulators.
    fn zero() -> Self::Acc;
    /// `acc[l] += f · p[l]`, where `p` are the lane sums of `u · x`, each lane of the
    /// upper half multiplied by `s1` and of the lower half by `s0` (both 1 when `None`).
    fn add_piece(acc: &mut Self::Acc, u: Self::Piece, x: &[i8], f: f32, halves: Option<(i32, i32)>);
    /// `((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7))`.
    fn sum(acc: &Self::Acc) -> f32;
    /// IEEE half to float (exact).
    fn f16(bits: u16) -> f32;
    /// Hints that the bytes at `p` will be read soon (no effect on results).
    #[inline(always)]
    fn prefetch(_p: *const u8) {}
}

/// Plain Rust lanes (any CPU).
#[derive(Debug, Clone, Copy)]
pub struct Portable;

impl Lanes for Portable {
    type Acc = [f32; 8];
    type Piece = [i8; 32];

    #[inline(always)]
    fn zero_piece() -> [i8; 32] {
        [0; 32]
    }

    #[inline(always)]
    fn load_i8(b: &[u8]) -> [i8; 32] {
        std::array::from_fn(|i| b[i] as i8)
    }

    #[inline(always)]
    fn nibbles16(qs: &[u8], off: i8) -> [i8; 32] {
        std::array::from_fn(|i| {
            if i < 16 {
                (qs[i] & 0xF) as i8 - off
            } else {
                (qs[i - 16] >> 4) as i8 - off
            }
        })
    }

    #[inline(always)]
    fn five_bits(qh: u32, qs: &[u8], off: i8) -> [i8; 32] {
        std::array::from_fn(|i| {
            let nib = if i < 16 { qs[i] & 0xF } else { qs[i - 16] >> 4 };
            (nib | ((((qh >> i) & 1) as u8) << 4)) as i8 - off
        })
    }

    #[inline(always)]
    fn nibbles32(qs: &[u8], shift: u32, qh: Option<(&[u8], u32)>) -> [i8; 32] {
        std::array::from_fn(|l| {
            let mut v = (qs[l] >> shift) & 0xF;
            if let Some((qh, bit)) = qh {
                v |= ((qh[l] >> bit) & 1) << 4;
            }
            v as i8
        })
    }

    #[inline(always)]
    fn six_bits(ql: &[u8], shift: u32, qh: &[u8], hshift: u32) -> [i8; 32] {
        std::array::from_fn(|l| {
            (((ql[l] >> shift) & 0xF) | (((qh[l] >> hshift) & 3) << 4)) as i8 - 32
        })
    }

    #[inline(always)]
    fn zero() -> [f32; 8] {
        [0.0; 8]
    }

    #[inline(always)]
    fn add_piece(acc: &mut [f32; 8], u: [i8; 32], x: &[i8], f: f32, halves: Option<(i32, i32)>) {
        let (s0, s1) = halves.unwrap_or((1, 1));
        for (l, (a, (uc, xc))) in acc
            .iter_mut()
            .zip(u.chunks_exact(4).zip(x.chunks_exact(4)))
            .enumerate()
        {
            let p: i32 = uc
                .iter()
                .zip(xc)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
            *a += f * (p * if l < 4 { s0 } else { s1 }) as f32;
        }
    }

    #[inline(always)]
    fn sum(a: &[f32; 8]) -> f32 {
        ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
    }

    #[inline(always)]
    fn f16(bits: u16) -> f32 {
        half::f16::from_bits(bits).to_f32()
    }
}

/// AVX2 lanes. Use only when [`super::simd::isa`] reports AVX2 or better, inside
/// [`super::simd::run`].
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    type Acc = std::arch::x86_64::__m256;
    type Piece = std::arch::x86_64::__m256i;

    #[inline(always)]
    fn zero_piece() -> Self::Piece {
        // SAFETY: AVX2 is present (the type's contract).
        unsafe { std::arch::x86_64::_mm256_setzero_si256() }
    }

    #[inline(always)]
    fn load_i8(b: &[u8]) -> Self::Piece {
        assert!(b.len() >= 32);
        // SAFETY: AVX2 is present; 32 bytes are readable (checked above).
        unsafe { std::arch::x86_64::_mm256_loadu_si256(b.as_ptr().cast()) }
    }

    #[inline(always)]
    fn nibbles16(qs: &[u8], off: i8) -> Self::Piece {
        use std::arch::x86_64::*;
        assert!(qs.len() >= 16);
        // SAFETY: AVX2 is present; 16 bytes are readable (checked above).
        unsafe {
            let v = _mm_loadu_si128(qs.as_ptr().cast());
            let m = _mm_set1_epi8(0xF);
            let lo = _mm_and_si128(v, m);
            let hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
            _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(off))
        }
    }

    #[inline(always)]
    fn five_bits(qh: u32, qs: &[u8], off: i8) -> Self::Piece {
        use std::arch::x86_64::*;
        let nib = Self::nibbles16(qs, 0);
        // SAFETY: AVX2 is present.
        unsafe {
            // Byte i gets bit i of qh: spread the 4 bytes of qh, test one bit per byte.
            let spread = _mm256_shuffle_epi8(
                _mm256_set1_epi32(qh as i32),
                _mm256_set_epi64x(
                    0x0303_0303_0303_0303,
                    0x0202_0202_0202_0202,
                    0x0101_0101_0101_0101,
                    0,
                ),
            );
            let mask = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
            let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
            let bit4 = _mm256_and_si256(set, _mm256_set1_epi8(0x10));
            _mm256_sub_epi8(_mm256_or_si256(nib, bit4), _mm256_set1_epi8(off))
        }
    }

    #[inline(always)]
    fn nibbles32(qs: &[u8], shift: u32, qh: Option<(&[u8], u32)>) -> Self::Piece {
        use std::arch::x86_64::*;
        assert!(qs.len() >= 32 && qh.is_none_or(|(h, _)| h.len() >= 32));
        // SAFETY: AVX2 is present; 32 bytes of `qs` (and `qh`) are readable (checked above).
        unsafe {
            let v = _mm256_loadu_si256(qs.as_ptr().cast());
            let m = _mm256_set1_epi8(0xF);
            let mut r = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift as i32)), m);
            if let Some((h, bit)) = qh {
                let hv = _mm256_loadu_si256(h.as_ptr().cast());
                let b = _mm256_and_si256(
                    _mm256_srl_epi16(hv, _mm_cvtsi32_si128(bit as i32)),
                    _mm256_set1_epi8(1),
                );
                r = _mm256_or_si256(r, _mm256_slli_epi16(b, 4));
            }
            r
        }
    }

    #[inline(always)]
    fn six_bits(ql: &[u8], shift: u32, qh: &[u8], hshift: u32) -> Self::Piece {
        use std::arch::x86_64::*;
        assert!(ql.len() >= 32 && qh.len() >= 32);
        // SAFETY: AVX2 is present; 32 bytes of each input are readable (checked above).
        unsafe {
            let l = _mm256_loadu_si256(ql.as_ptr().cast());
            let h = _mm256_loadu_si256(qh.as_ptr().cast());
            let lo = _mm256_and_si256(
                _mm256_srl_epi16(l, _mm_cvtsi32_si128(shift as i32)),
                _mm256_set1_epi8(0xF),
            );
            let hi = _mm256_and_si256(
                _mm256_srl_epi16(h, _mm_cvtsi32_si128(hshift as i32)),
                _mm256_set1_epi8(3),
            );
            let v = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
            _mm256_sub_epi8(v, _mm256_set1_epi8(32))
        }
    }

    #[inline(always)]
    fn zero() -> Self::Acc {
        // SAFETY: callers reach this type only after detecting AVX2 (see the type's docs).
        unsafe { std::arch::x86_64::_mm256_setzero_ps() }
    }

    #[inline(always)]
    fn add_piece(
        acc: &mut Self::Acc,
        uv: Self::Piece,
        x: &[i8],
        f: f32,
        halves: Option<(i32, i32)>,
    ) {
        use std::arch::x86_64::*;
        assert!(x.len() >= 32);
        // SAFETY: AVX2 is present (the type's contract); `x` has at least 32 bytes
        // (checked above), read with an unaligned load.
        unsafe {
            let xv = _mm256_loadu_si256(x.as_ptr().cast());
            // |u| · (x with u's sign): pairwise i16 sums (no overflow: 2·128·127 < 2^15),
            // then adjacent pairs to i32: lane l sums elements 4l..4l+4.
            let ax = _mm256_sign_epi8(uv, uv);
            let sy = _mm256_sign_epi8(xv, uv);
            let p16 = _mm256_maddubs_epi16(ax, sy);
            let mut p = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
            if let Some((s0, s1)) = halves {
                p = _mm256_mullo_epi32(p, _mm256_setr_epi32(s0, s0, s0, s0, s1, s1, s1, s1));
            }
            let term = _mm256_mul_ps(_mm256_set1_ps(f), _mm256_cvtepi32_ps(p));
            *acc = _mm256_add_ps(*acc, term);
        }
    }

    #[inline(always)]
    fn sum(acc: &Self::Acc) -> f32 {
        let mut a = [0.0f32; 8];
        // SAFETY: AVX2 is present; `a` holds 8 floats.
        unsafe { std::arch::x86_64::_mm256_storeu_ps(a.as_mut_ptr(), *acc) };
        Portable::sum(&a)
    }

    #[inline(always)]
    fn prefetch(p: *const u8) {
        // SAFETY: prefetching is a hint; it never faults, whatever the address.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast()) }
    }

    #[inline(always)]
    fn f16(bits: u16) -> f32 {
        use std::arch::x86_64::*;
        // SAFETY: AVX2 implies F16C here (`simd::isa` checks both); the conversion is exact.
        unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits)))) }
    }
}
