//! Eight-lane integer dot products of 32-value pieces, accumulated in eight float lanes.
//!
//! Activations come as 8 bits offset by 128 ([`Lanes::dot8`]: lane `l` is the exact
//! integer `Σ u[4l..4l+4] · x[4l..4l+4]`) or as 16 bits ([`Lanes::dot16`]: lane `l`
//! sums elements `2l, 2l+1, 16+2l, 17+2l`); a block's integer lanes are scaled and
//! added to float lane `l` with one fused multiply-add. The AVX2 implementation
//! computes the same integers with `maddubs`/`madd`, the VNNI one with
//! `dpbusd`/`dpwssd`, and all use the same fused operation, so every path gives
//! identical bits (SYS-0003); the final sum of the lanes has a fixed order.
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
    /// Eight `i32` lanes.
    type Ints: Copy;
    /// Zeroed integer lanes.
    fn ints_zero() -> Self::Ints;
    /// A piece prepared once for the dots of many 8-bit activation rows.
    type Prep: Copy;
    /// Prepares `u` for [`Lanes::dot8`].
    fn prep(u: Self::Piece) -> Self::Prep;
    /// `Σ u[4l..4l+4] · (x[4l..4l+4] - 128)` per lane `l`: 8-bit activations are stored
    /// offset by 128 (`u8`), as `dpbusd` takes them (exact integers; `x` holds at least
    /// 32 values).
    fn dot8(u: Self::Prep, x: &[u8]) -> Self::Ints;
    /// A piece widened to 16 bits with its scales applied (`u[i] · s0` for `i < 16`,
    /// `u[i] · s1` above; every format's products fit: |u · s| ≤ 4096).
    type Wide: Copy;
    /// Widens `u` and applies the half scales.
    fn widen(u: Self::Piece, s0: i32, s1: i32) -> Self::Wide;
    /// `acc[l] + Σ w[i] · x[i]` over `i ∈ {2l, 2l+1, 16+2l, 17+2l}` (exact integers;
    /// `x` holds at least 32 values).
    fn dot16(acc: Self::Ints, w: Self::Wide, x: &[i16]) -> Self::Ints;
    /// `Σ a[l] · b[l]` over 8 values, exact (callers keep it within `i32`).
    fn idot8(a: &[i32; 8], b: &[i32]) -> i32;
    /// `acc[l] = fma(f, p[l] as f32, acc[l])`.
    fn add_scaled(acc: &mut Self::Acc, f: f32, p: Self::Ints);
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

    type Ints = [i32; 8];

    #[inline(always)]
    fn ints_zero() -> [i32; 8] {
        [0; 8]
    }

    type Prep = [i8; 32];

    #[inline(always)]
    fn prep(u: [i8; 32]) -> [i8; 32] {
        u
    }

    #[inline(always)]
    fn dot8(u: [i8; 32], x: &[u8]) -> [i32; 8] {
        let mut acc = [0i32; 8];
        for (a, (uc, xc)) in acc
            .iter_mut()
            .zip(u.chunks_exact(4).zip(x[..32].chunks_exact(4)))
        {
            *a = uc
                .iter()
                .zip(xc)
                .map(|(&a, &b)| i32::from(a) * (i32::from(b) - 128))
                .sum();
        }
        acc
    }

    type Wide = [i16; 32];

    #[inline(always)]
    fn widen(u: [i8; 32], s0: i32, s1: i32) -> [i16; 32] {
        std::array::from_fn(|i| (i32::from(u[i]) * if i < 16 { s0 } else { s1 }) as i16)
    }

    #[inline(always)]
    fn dot16(mut acc: [i32; 8], w: [i16; 32], x: &[i16]) -> [i32; 8] {
        let x = &x[..32];
        for (l, a) in acc.iter_mut().enumerate() {
            for i in [2 * l, 2 * l + 1, 16 + 2 * l, 17 + 2 * l] {
                *a += i32::from(w[i]) * i32::from(x[i]);
            }
        }
        acc
    }

    #[inline(always)]
    fn idot8(a: &[i32; 8], b: &[i32]) -> i32 {
        a.iter().zip(&b[..8]).map(|(x, y)| x * y).sum()
    }

    #[inline(always)]
    fn add_scaled(acc: &mut [f32; 8], f: f32, p: [i32; 8]) {
        for (a, &p) in acc.iter_mut().zip(&p) {
            *a = f.mul_add(p as f32, *a);
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

    type Ints = std::arch::x86_64::__m256i;

    #[inline(always)]
    fn ints_zero() -> Self::Ints {
        Self::zero_piece()
    }

    /// `(|u|, u)`.
    type Prep = (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i);

    #[inline(always)]
    fn prep(u: Self::Piece) -> Self::Prep {
        // SAFETY: AVX2 is present (the type's contract).
        unsafe { (std::arch::x86_64::_mm256_sign_epi8(u, u), u) }
    }

    #[inline(always)]
    fn dot8(u: Self::Prep, x: &[u8]) -> Self::Ints {
        use std::arch::x86_64::*;
        assert!(x.len() >= 32);
        // SAFETY: AVX2 is present (the type's contract); `x` has at least 32 bytes
        // (checked above), read with an unaligned load.
        unsafe {
            // Back to signed (x - 128 = x ^ 0x80), then |u| · (x with u's sign):
            // pairwise i16 sums (no overflow: |u| ≤ 128, |x| ≤ 127, 2·128·127 < 2^15),
            // then adjacent pairs to i32: lane l sums elements 4l..4l+4.
            let xv = _mm256_xor_si256(
                _mm256_loadu_si256(x.as_ptr().cast()),
                _mm256_set1_epi8(-128),
            );
            let sy = _mm256_sign_epi8(xv, u.1);
            _mm256_madd_epi16(_mm256_maddubs_epi16(u.0, sy), _mm256_set1_epi16(1))
        }
    }

    type Wide = (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i);

    #[inline(always)]
    fn widen(u: Self::Piece, s0: i32, s1: i32) -> Self::Wide {
        use std::arch::x86_64::*;
        // SAFETY: AVX2 is present (the type's contract).
        unsafe {
            let lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(u));
            let hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(u));
            if s0 == 1 && s1 == 1 {
                (lo, hi)
            } else {
                (
                    _mm256_mullo_epi16(lo, _mm256_set1_epi16(s0 as i16)),
                    _mm256_mullo_epi16(hi, _mm256_set1_epi16(s1 as i16)),
                )
            }
        }
    }

    #[inline(always)]
    fn dot16(acc: Self::Ints, w: Self::Wide, x: &[i16]) -> Self::Ints {
        use std::arch::x86_64::*;
        assert!(x.len() >= 32);
        // SAFETY: AVX2 is present; 32 values of `x` are readable (checked above).
        unsafe {
            let x0 = _mm256_loadu_si256(x.as_ptr().cast());
            let x1 = _mm256_loadu_si256(x.as_ptr().add(16).cast());
            let p = _mm256_add_epi32(_mm256_madd_epi16(w.0, x0), _mm256_madd_epi16(w.1, x1));
            _mm256_add_epi32(acc, p)
        }
    }

    #[inline(always)]
    fn idot8(a: &[i32; 8], b: &[i32]) -> i32 {
        use std::arch::x86_64::*;
        assert!(b.len() >= 8);
        // SAFETY: AVX2 is present; 8 values of `a` and `b` are readable.
        unsafe {
            let p = _mm256_mullo_epi32(
                _mm256_loadu_si256(a.as_ptr().cast()),
                _mm256_loadu_si256(b.as_ptr().cast()),
            );
            let q = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256::<1>(p));
            let q = _mm_add_epi32(q, _mm_unpackhi_epi64(q, q));
            let q = _mm_add_epi32(q, _mm_shuffle_epi32::<0b01>(q));
            _mm_cvtsi128_si32(q)
        }
    }

    #[inline(always)]
    fn add_scaled(acc: &mut Self::Acc, f: f32, p: Self::Ints) {
        use std::arch::x86_64::*;
        // SAFETY: AVX2 and FMA are present (the type's contract).
        unsafe { *acc = _mm256_fmadd_ps(_mm256_set1_ps(f), _mm256_cvtepi32_ps(p), *acc) }
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

/// AVX-512 VNNI lanes: as [`Avx2`] with `dpbusd` for the integer part. Use only when
/// [`super::simd::isa`] reports [`super::simd::Isa::Avx512Vnni`], inside [`super::simd::run`].
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
pub struct Vnni;

#[cfg(target_arch = "x86_64")]
impl Lanes for Vnni {
    type Acc = <Avx2 as Lanes>::Acc;
    type Piece = <Avx2 as Lanes>::Piece;

    #[inline(always)]
    fn zero() -> Self::Acc {
        Avx2::zero()
    }
    #[inline(always)]
    fn zero_piece() -> Self::Piece {
        Avx2::zero_piece()
    }
    #[inline(always)]
    fn load_i8(b: &[u8]) -> Self::Piece {
        Avx2::load_i8(b)
    }
    #[inline(always)]
    fn nibbles16(qs: &[u8], off: i8) -> Self::Piece {
        Avx2::nibbles16(qs, off)
    }
    #[inline(always)]
    fn five_bits(qh: u32, qs: &[u8], off: i8) -> Self::Piece {
        Avx2::five_bits(qh, qs, off)
    }
    #[inline(always)]
    fn nibbles32(qs: &[u8], shift: u32, qh: Option<(&[u8], u32)>) -> Self::Piece {
        Avx2::nibbles32(qs, shift, qh)
    }
    #[inline(always)]
    fn six_bits(ql: &[u8], shift: u32, qh: &[u8], hshift: u32) -> Self::Piece {
        Avx2::six_bits(ql, shift, qh, hshift)
    }

    type Ints = <Avx2 as Lanes>::Ints;

    #[inline(always)]
    fn ints_zero() -> Self::Ints {
        Avx2::ints_zero()
    }

    /// `(u, -128 · Σ u per lane)`: the correction for the offset activations.
    type Prep = (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i);

    #[inline(always)]
    fn prep(u: Self::Piece) -> Self::Prep {
        use std::arch::x86_64::*;
        // SAFETY: AVX-512 VNNI/VL and AVX2 are present (the type's contract).
        unsafe {
            let s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(-128), u);
            (u, _mm256_sub_epi32(_mm256_setzero_si256(), s))
        }
    }

    #[inline(always)]
    fn dot8(u: Self::Prep, x: &[u8]) -> Self::Ints {
        use std::arch::x86_64::*;
        assert!(x.len() >= 32);
        // SAFETY: AVX-512 VNNI/VL and AVX2 are present (the type's contract); `x` has
        // at least 32 bytes (checked above), read with an unaligned load. `dpbusd`
        // takes the offset activations as unsigned and the weights as signed, exact.
        unsafe { _mm256_dpbusd_epi32(u.1, _mm256_loadu_si256(x.as_ptr().cast()), u.0) }
    }

    type Wide = <Avx2 as Lanes>::Wide;

    #[inline(always)]
    fn widen(u: Self::Piece, s0: i32, s1: i32) -> Self::Wide {
        Avx2::widen(u, s0, s1)
    }

    #[inline(always)]
    fn dot16(acc: Self::Ints, w: Self::Wide, x: &[i16]) -> Self::Ints {
        use std::arch::x86_64::*;
        assert!(x.len() >= 32);
        // SAFETY: AVX-512 VNNI/VL and AVX2 are present (the type's contract); 32 values
        // of `x` are readable (checked above). `vpdpwssd` does not saturate: the same
        // exact sums as `Avx2::dot16`.
        unsafe {
            let x0 = _mm256_loadu_si256(x.as_ptr().cast());
            let x1 = _mm256_loadu_si256(x.as_ptr().add(16).cast());
            _mm256_dpwssd_epi32(_mm256_dpwssd_epi32(acc, w.0, x0), w.1, x1)
        }
    }

    #[inline(always)]
    fn idot8(a: &[i32; 8], b: &[i32]) -> i32 {
        Avx2::idot8(a, b)
    }

    #[inline(always)]
    fn add_scaled(acc: &mut Self::Acc, f: f32, p: Self::Ints) {
        Avx2::add_scaled(acc, f, p);
    }

    #[inline(always)]
    fn sum(acc: &Self::Acc) -> f32 {
        Avx2::sum(acc)
    }
    #[inline(always)]
    fn f16(bits: u16) -> f32 {
        Avx2::f16(bits)
    }
    #[inline(always)]
    fn prefetch(p: *const u8) {
        Avx2::prefetch(p);
    }
}
