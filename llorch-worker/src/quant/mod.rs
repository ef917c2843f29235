//! Quantized block formats of ggml: the types and their ids ([`GgmlType`]),
//! the block layouts ([`blocks`](mod@blocks), `#[repr(C)]` + `bytemuck::Pod`),
//! dequantization bit-exact with llama.cpp's reference ([`dequantize_row`])
//! and quantization ([`quantize_row`]) for the writer and synthetic models.

pub mod blocks;
mod dequant;
mod kquant;
mod quantize;
mod types;

pub use kquant::{quantize_q4_k, quantize_q5_k, quantize_q6_k};
pub use quantize::{
    f32_to_bf16_bits, quantize_q4_0, quantize_q4_1, quantize_q5_0, quantize_q5_1, quantize_q8_0,
};
pub use types::GgmlType;

use blocks::*;
use dequant::{bf16_row, each_block, f16_row, f32_row};

/// Why a row could not be (de)quantized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// The type has no implementation of this operation here.
    #[error("{op} is not supported for {ty}")]
    Unsupported {
        /// The type.
        ty: GgmlType,
        /// `"dequantize"` or `"quantize"`.
        op: &'static str,
    },
    /// The element count is not a whole number of blocks.
    #[error("{n} elements is not a multiple of the {ty} block size {block}")]
    NotBlockMultiple {
        /// The type.
        ty: GgmlType,
        /// Elements.
        n: usize,
        /// Elements per block.
        block: u64,
    },
    /// The byte length does not match the element count.
    #[error("{ty}: {n} elements need {expected} bytes, got {got}")]
    BadLength {
        /// The type.
        ty: GgmlType,
        /// Elements.
        n: usize,
        /// Bytes needed.
        expected: u64,
        /// Bytes given.
        got: usize,
    },
}

fn expected_bytes(ty: GgmlType, n: usize) -> Result<u64, QuantError> {
    ty.row_bytes(n as u64).ok_or(QuantError::NotBlockMultiple {
        ty,
        n,
        block: ty.block_size(),
    })
}

/// Dequantizes `out.len()` elements of type `ty` from `bytes` (exactly their
/// encoded size), bit-exact with llama.cpp's `dequantize_row_*`.
///
/// Supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K,
/// Q8_K; other types give [`QuantError::Unsupported`].
pub fn dequantize_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    if !ty.can_dequantize() {
        return Err(QuantError::Unsupported {
            ty,
            op: "dequantize",
        });
    }
    let expected = expected_bytes(ty, out.len())?;
    if bytes.len() as u64 != expected {
        return Err(QuantError::BadLength {
            ty,
            n: out.len(),
            expected,
            got: bytes.len(),
        });
    }
    match ty {
        GgmlType::F32 => f32_row(bytes, out),
        GgmlType::F16 => f16_row(bytes, out),
        GgmlType::BF16 => bf16_row(bytes, out),
        GgmlType::Q4_0 => each_block(bytes, out, BlockQ4_0::dequantize),
        GgmlType::Q4_1 => each_block(bytes, out, BlockQ4_1::dequantize),
        GgmlType::Q5_0 => each_block(bytes, out, BlockQ5_0::dequantize),
        GgmlType::Q5_1 => each_block(bytes, out, BlockQ5_1::dequantize),
        GgmlType::Q8_0 => each_block(bytes, out, BlockQ8_0::dequantize),
        GgmlType::Q4_K => each_block(bytes, out, BlockQ4K::dequantize),
        GgmlType::Q5_K => each_block(bytes, out, BlockQ5K::dequantize),
        GgmlType::Q6_K => each_block(bytes, out, BlockQ6K::dequantize),
        GgmlType::Q8_K => each_block(bytes, out, BlockQ8K::dequantize),
        _ => {
            return Err(QuantError::Unsupported {
                ty,
                op: "dequantize",
            });
        }
    }
    Ok(())
}

/// Encodes `x` as type `ty`: F32, F16 and BF16 (round to nearest even, as
/// ggml), Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (llama.cpp's reference quantizers,
/// bit-exact), and Q4_K, Q5_K, Q6_K (a simple valid quantizer, not
/// llama.cpp-identical). `x.len()` must be a whole number of blocks.
pub fn quantize_row(ty: GgmlType, x: &[f32]) -> Result<Vec<u8>, QuantError> {
    if !ty.can_quantize() {
        return Err(QuantError::Unsupported { ty, op: "quantize" });
    }
    let n_bytes = expected_bytes(ty, x.len())?;
    let mut out = Vec::with_capacity(usize::try_from(n_bytes).unwrap_or(0));
    fn per_block<B: bytemuck::Pod, const N: usize>(
        x: &[f32],
        out: &mut Vec<u8>,
        f: impl Fn(&[f32; N]) -> B,
    ) {
        for chunk in x.chunks_exact(N) {
            if let Ok(a) = <&[f32; N]>::try_from(chunk) {
                out.extend_from_slice(bytemuck::bytes_of(&f(a)));
            }
        }
    }
    match ty {
        GgmlType::F32 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        GgmlType::F16 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes())),
        GgmlType::BF16 => x
            .iter()
            .for_each(|v| out.extend_from_slice(&f32_to_bf16_bits(*v).to_le_bytes())),
        GgmlType::Q4_0 => per_block(x, &mut out, quantize_q4_0),
        GgmlType::Q4_1 => per_block(x, &mut out, quantize_q4_1),
        GgmlType::Q5_0 => per_block(x, &mut out, quantize_q5_0),
        GgmlType::Q5_1 => per_block(x, &mut out, quantize_q5_1),
        GgmlType::Q8_0 => per_block(x, &mut out, quantize_q8_0),
        GgmlType::Q4_K => per_block(x, &mut out, quantize_q4_k),
        GgmlType::Q5_K => per_block(x, &mut out, quantize_q5_k),
        GgmlType::Q6_K => per_block(x, &mut out, quantize_q6_k),
        _ => return Err(QuantError::Unsupported { ty, op: "quantize" }),
    }
    Ok(out)
}

/// Dequantizes a whole tensor's bytes into a new vector (`n` elements).
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>, QuantError> {
    if !ty.can_dequantize() {
        return Err(QuantError::Unsupported {
            ty,
            op: "dequantize",
        });
    }
    let expected = expected_bytes(ty, n)?;
    if bytes.len() as u64 != expected {
        return Err(QuantError::BadLength {
            ty,
            n,
            expected,
            got: bytes.len(),
        });
    }
    let mut out = vec![0f32; n];
    dequantize_row(ty, bytes, &mut out)?;
    Ok(out)
}
