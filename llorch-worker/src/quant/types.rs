//! The ggml tensor types: ids as stored in GGUF, block sizes and byte sizes.
//!
//! The reader knows every type id that current llama.cpp may write, so a file
//! is never rejected at parse time only because a tensor uses a type this
//! engine cannot compute with; that is reported at use ([`GgmlType::can_dequantize`]).

/// A ggml tensor element type (`enum ggml_type` in `ggml.h`), with its GGUF id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// IEEE half float.
    F16,
    /// 4-bit, 32 per block, f16 scale (`block_q4_0`).
    Q4_0,
    /// 4-bit, 32 per block, f16 scale and min (`block_q4_1`).
    Q4_1,
    /// 5-bit, 32 per block, f16 scale (`block_q5_0`).
    Q5_0,
    /// 5-bit, 32 per block, f16 scale and min (`block_q5_1`).
    Q5_1,
    /// 8-bit, 32 per block, f16 scale (`block_q8_0`).
    Q8_0,
    /// 8-bit, 32 per block, f16 scale and sum (`block_q8_1`).
    Q8_1,
    /// 2-bit k-quant, 256 per super-block.
    Q2_K,
    /// 3-bit k-quant, 256 per super-block.
    Q3_K,
    /// 4-bit k-quant, 256 per super-block (`block_q4_K`).
    Q4_K,
    /// 5-bit k-quant, 256 per super-block (`block_q5_K`).
    Q5_K,
    /// 6-bit k-quant, 256 per super-block (`block_q6_K`).
    Q6_K,
    /// 8-bit k-quant (intermediate type of dot products), 256 per super-block (`block_q8_K`).
    Q8_K,
    /// i-quant.
    IQ2_XXS,
    /// i-quant.
    IQ2_XS,
    /// i-quant.
    IQ3_XXS,
    /// i-quant.
    IQ1_S,
    /// i-quant, non-linear 4-bit, 32 per block.
    IQ4_NL,
    /// i-quant.
    IQ3_S,
    /// i-quant.
    IQ2_S,
    /// i-quant.
    IQ4_XS,
    /// 8-bit integer.
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 64-bit float.
    F64,
    /// i-quant.
    IQ1_M,
    /// bfloat16.
    BF16,
    /// ternary quant.
    TQ1_0,
    /// ternary quant.
    TQ2_0,
    /// microscaling FP4, 32 per block.
    MXFP4,
    /// NVIDIA FP4, 64 per block.
    NVFP4,
    /// 1-bit, 128 per block.
    Q1_0,
}

/// Every known type, in id order.
const ALL: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
    GgmlType::IQ2_XXS,
    GgmlType::IQ2_XS,
    GgmlType::IQ3_XXS,
    GgmlType::IQ1_S,
    GgmlType::IQ4_NL,
    GgmlType::IQ3_S,
    GgmlType::IQ2_S,
    GgmlType::IQ4_XS,
    GgmlType::I8,
    GgmlType::I16,
    GgmlType::I32,
    GgmlType::I64,
    GgmlType::F64,
    GgmlType::IQ1_M,
    GgmlType::BF16,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
    GgmlType::MXFP4,
    GgmlType::NVFP4,
    GgmlType::Q1_0,
];

impl GgmlType {
    /// Every known type, in id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        ALL.iter().copied()
    }

    /// (GGUF id, elements per block, bytes per block, name).
    const fn info(self) -> (u32, u32, u32, &'static str) {
        match self {
            GgmlType::F32 => (0, 1, 4, "F32"),
            GgmlType::F16 => (1, 1, 2, "F16"),
            GgmlType::Q4_0 => (2, 32, 18, "Q4_0"),
            GgmlType::Q4_1 => (3, 32, 20, "Q4_1"),
            GgmlType::Q5_0 => (6, 32, 22, "Q5_0"),
            GgmlType::Q5_1 => (7, 32, 24, "Q5_1"),
            GgmlType::Q8_0 => (8, 32, 34, "Q8_0"),
            GgmlType::Q8_1 => (9, 32, 40, "Q8_1"),
            GgmlType::Q2_K => (10, 256, 84, "Q2_K"),
            GgmlType::Q3_K => (11, 256, 110, "Q3_K"),
            GgmlType::Q4_K => (12, 256, 144, "Q4_K"),
            GgmlType::Q5_K => (13, 256, 176, "Q5_K"),
            GgmlType::Q6_K => (14, 256, 210, "Q6_K"),
            GgmlType::Q8_K => (15, 256, 292, "Q8_K"),
            GgmlType::IQ2_XXS => (16, 256, 66, "IQ2_XXS"),
            GgmlType::IQ2_XS => (17, 256, 74, "IQ2_XS"),
            GgmlType::IQ3_XXS => (18, 256, 98, "IQ3_XXS"),
            GgmlType::IQ1_S => (19, 256, 50, "IQ1_S"),
            GgmlType::IQ4_NL => (20, 32, 18, "IQ4_NL"),
            GgmlType::IQ3_S => (21, 256, 110, "IQ3_S"),
            GgmlType::IQ2_S => (22, 256, 82, "IQ2_S"),
            GgmlType::IQ4_XS => (23, 256, 136, "IQ4_XS"),
            GgmlType::I8 => (24, 1, 1, "I8"),
            GgmlType::I16 => (25, 1, 2, "I16"),
            GgmlType::I32 => (26, 1, 4, "I32"),
            GgmlType::I64 => (27, 1, 8, "I64"),
            GgmlType::F64 => (28, 1, 8, "F64"),
            GgmlType::IQ1_M => (29, 256, 56, "IQ1_M"),
            GgmlType::BF16 => (30, 1, 2, "BF16"),
            GgmlType::TQ1_0 => (34, 256, 54, "TQ1_0"),
            GgmlType::TQ2_0 => (35, 256, 66, "TQ2_0"),
            GgmlType::MXFP4 => (39, 32, 17, "MXFP4"),
            GgmlType::NVFP4 => (40, 64, 36, "NVFP4"),
            GgmlType::Q1_0 => (41, 128, 18, "Q1_0"),
        }
    }

    /// The type of a GGUF/ggml type id, `None` for an unknown id.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        ALL.iter().copied().find(|t| t.id() == id)
    }

    /// The GGUF/ggml type id.
    pub fn id(self) -> u32 {
        self.info().0
    }

    /// Elements per block (1 for plain types, 32 or 256 for most quants).
    pub fn block_size(self) -> u64 {
        u64::from(self.info().1)
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        u64::from(self.info().2)
    }

    /// The ggml name, e.g. `"Q4_K"`.
    pub fn name(self) -> &'static str {
        self.info().3
    }

    /// Whether [`crate::quant::dequantize_row`] supports this type.
    pub fn can_dequantize(self) -> bool {
        use GgmlType::*;
        matches!(
            self,
            F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q4_K | Q5_K | Q6_K | Q8_K
        )
    }

    /// Whether [`crate::quant::quantize_row`] supports this type.
    pub fn can_quantize(self) -> bool {
        use GgmlType::*;
        matches!(
            self,
            F32 | F16 | BF16 | Q8_0 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q4_K | Q5_K | Q6_K
        )
    }

    /// Bytes of a row of `n_elements`, `None` if `n_elements` is not a whole
    /// number of blocks or the size overflows.
    pub fn row_bytes(self, n_elements: u64) -> Option<u64> {
        let bs = self.block_size();
        if !n_elements.is_multiple_of(bs) {
            return None;
        }
        (n_elements / bs).checked_mul(self.type_size())
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for GgmlType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown ggml type `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        assert_eq!(GgmlType::all().count(), 34);
        for (i, t) in ALL.iter().enumerate() {
            assert_eq!(GgmlType::from_id(t.id()), Some(*t));
            assert_eq!(t.name().parse::<GgmlType>(), Ok(*t));
            for other in &ALL[i + 1..] {
                assert!(t.id() < other.id(), "ids ascend");
            }
        }
        assert_eq!(GgmlType::BF16.id(), 30);
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(GgmlType::Q4_K.row_bytes(512), Some(288));
        assert_eq!(GgmlType::Q4_K.row_bytes(100), None);
    }
}
