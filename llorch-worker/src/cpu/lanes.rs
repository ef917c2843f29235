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
    /// Zeroed accumulators.
    fn zero() -> Self::Acc;
    /// `acc[l] += f · p[l]`, where `p` are the lane sums of `u · x`, each lane of the
    /// upper half multiplied by `s1` and of the lower half by `s0` (both 1 when `None`).
    fn add_piece(acc: &mut Self::Acc, u: &[i8; 32], x: &[i8], f: f32, halves: Option<(i32, i32)>);
    /// `((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7))`.
    fn sum(acc: &Self::Acc) -> f32;
    /// IEEE half to float (exact).
    fn f16(bits: u16) -> f32;
}

/// Plain Rust lanes (any CPU).
#[derive(Debug, Clone, Copy)]
pub struct Portable;

impl Lanes for Portable {
    type Acc = [f32; 8];

    #[inline(always)]
    fn zero() -> [f32; 8] {
        [0.0; 8]
    }

    #[inline(always)]
    fn add_piece(acc: &mut [f32; 8], u: &[i8; 32], x: &[i8], f: f32, halves: Option<(i32, i32)>) {
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

    #[inline(always)]
    fn zero() -> Self::Acc {
        // SAFETY: callers reach this type only after detecting AVX2 (see the type's docs).
        unsafe { std::arch::x86_64::_mm256_setzero_ps() }
    }

    #[inline(always)]
    fn add_piece(acc: &mut Self::Acc, u: &[i8; 32], x: &[i8], f: f32, halves: Option<(i32, i32)>) {
        use std::arch::x86_64::*;
        debug_assert!(x.len() >= 32);
        // SAFETY: AVX2 is present (the type's contract); `u` has 32 bytes and `x` at
        // least 32, read with unaligned loads.
        unsafe {
            let uv = _mm256_loadu_si256(u.as_ptr().cast());
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
    fn f16(bits: u16) -> f32 {
        use std::arch::x86_64::*;
        // SAFETY: AVX2 implies F16C here (`simd::isa` checks both); the conversion is exact.
        unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits)))) }
    }
}
