//! Runtime choice of the instruction set for the hot loops.
//!
//! The kernels are written once as plain Rust (`#[inline(always)]`); [`run`] calls
//! them through a function compiled for AVX-512 or AVX2 when the CPU has it, so
//! LLVM vectorizes them for that machine. Integer dot products are exact and float
//! operations are never fused, so every path gives the same bits.
#![allow(unsafe_code)]

use std::sync::OnceLock;

/// An instruction-set level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Baseline x86-64 (SSE2) or another architecture.
    Portable,
    /// AVX2 with FMA and F16C.
    Avx2,
    /// AVX-512 F/BW/VL with AVX2, FMA and F16C.
    Avx512,
    /// As `Avx512`, with VNNI.
    Avx512Vnni,
}

/// The best level this CPU supports (detected once).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(detect)
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        if avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
        {
            if is_x86_feature_detected!("avx512vnni") {
                return Isa::Avx512Vnni;
            }
            return Isa::Avx512;
        }
        if avx2 {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// Runs `f` compiled for the best instruction set (inline `f`'s callees with `#[inline(always)]`).
#[inline(always)]
pub fn run<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match isa() {
        // SAFETY: `isa()` detected AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C on this CPU.
        Isa::Avx512Vnni => return unsafe { run_avx512_vnni(f) },
        // SAFETY: `isa()` detected AVX-512 F/BW/VL, AVX2, FMA and F16C on this CPU.
        Isa::Avx512 => return unsafe { run_avx512(f) },
        // SAFETY: `isa()` detected AVX2, FMA and F16C on this CPU.
        Isa::Avx2 => return unsafe { run_avx2(f) },
        Isa::Portable => {}
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn run_avx512_vnni<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `$f::<L>(args)` with `L` the best lane arithmetic of this CPU
/// ([`super::lanes::Vnni`], [`super::lanes::Avx2`] or [`super::lanes::Portable`]): the one
/// place the kernels pick their lanes.
macro_rules! with_best_lanes {
    ($f:ident($($arg:expr),* $(,)?)) => {{
        #[cfg(target_arch = "x86_64")]
        let done = match $crate::cpu::simd::isa() {
            $crate::cpu::simd::Isa::Avx512Vnni => {
                $f::<$crate::cpu::lanes::Vnni>($($arg),*);
                true
            }
            $crate::cpu::simd::Isa::Avx2 | $crate::cpu::simd::Isa::Avx512 => {
                $f::<$crate::cpu::lanes::Avx2>($($arg),*);
                true
            }
            $crate::cpu::simd::Isa::Portable => false,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = false;
        if !done {
            $f::<$crate::cpu::lanes::Portable>($($arg),*);
        }
    }};
}
pub(crate) use with_best_lanes;
