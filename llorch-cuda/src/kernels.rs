//! The kernel sources (embedded) and the one enum naming every kernel.

/// All kernel sources, concatenated into one NVRTC program (one module).
pub fn source() -> String {
    [
        include_str!("kernels/common.cuh"),
        include_str!("kernels/quant.cuh"),
        include_str!("kernels/matmul.cu"),
        include_str!("kernels/mma.cu"),
        include_str!("kernels/imma.cu"),
        include_str!("kernels/imma_staged.cu"),
        include_str!("kernels/qmv.cu"),
        include_str!("kernels/kquant.cu"),
        include_str!("kernels/kquant_decode.cu"),
        include_str!("kernels/kquant_tiles.cu"),
        include_str!("kernels/rows.cu"),
        include_str!("kernels/attention.cu"),
        include_str!("kernels/topk.cu"),
        include_str!("kernels/draw.cu"),
    ]
    .join("\n")
}

/// Weight encodings the matrix kernels read (GGUF block formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QFormat {
    /// 32-bit floats.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
    /// `Q8_0`: 32 values, f16 scale.
    Q8_0,
    /// `Q4_0`.
    Q4_0,
    /// `Q4_1`.
    Q4_1,
    /// `Q5_0`.
    Q5_0,
    /// `Q5_1`.
    Q5_1,
    /// `Q4_K`: 256 values.
    Q4K,
    /// `Q5_K`: 256 values.
    Q5K,
    /// `Q6_K`: 256 values.
    Q6K,
}

impl QFormat {
    /// Every format.
    pub const ALL: [QFormat; 11] = [
        Self::F32,
        Self::F16,
        Self::Bf16,
        Self::Q8_0,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q4K,
        Self::Q5K,
        Self::Q6K,
    ];

    /// Values per block.
    pub fn block_elems(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::Bf16 => 1,
            Self::Q8_0 | Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 => 32,
            Self::Q4K | Self::Q5K | Self::Q6K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::Bf16 => 2,
            Self::Q8_0 => 34,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q4K => 144,
            Self::Q5K => 176,
            Self::Q6K => 210,
        }
    }

    /// Whether the format is a k-quant (256-value blocks): its products take inputs
    /// quantized in groups of 256 ([`crate::QGroup`], `kquant.cu`).
    pub fn is_kquant(self) -> bool {
        matches!(self, Self::Q4K | Self::Q5K | Self::Q6K)
    }

    /// (tokens, row tiles) of the register-tile integer products of this format.
    pub fn qq_tiles(self) -> &'static [(u8, u8)] {
        if self.is_kquant() {
            &QK_TILES
        } else {
            &QQ_TILES
        }
    }

    /// Whether the register-tile products of this format take, between block shapes
    /// of one size, more row tiles rather than more tokens (Q4_K/Q5_K: measured faster;
    /// Q6_K's k16 steps take more registers).
    pub fn prefers_row_tiles(self) -> bool {
        matches!(self, Self::Q4K | Self::Q5K)
    }

    /// Whether the format is integer codes in blocks with float scales: its products
    /// can take quantized inputs ([`crate::Gpu::qmm_q`]).
    pub fn is_integer(self) -> bool {
        !matches!(self, Self::F32 | Self::F16 | Self::Bf16)
    }

    /// Bytes of a row of `cols` values, or `None` when `cols` does not fit the format
    /// (the kernels need whole blocks and whole 8-value units).
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        let be = self.block_elems().max(8);
        cols.is_multiple_of(be)
            .then(|| cols / self.block_elems() * self.block_bytes())
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
            Self::Q8_0 => "q8_0",
            Self::Q4_0 => "q4_0",
            Self::Q4_1 => "q4_1",
            Self::Q5_0 => "q5_0",
            Self::Q5_1 => "q5_1",
            Self::Q4K => "q4_k",
            Self::Q5K => "q5_k",
            Self::Q6K => "q6_k",
        }
    }
}

/// Every kernel of the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Matrix product from blocks of a format: `split` warps share a row (1 or 4),
    /// `rows` rows per group of warps (1 or 4).
    Qmm {
        /// Weight format.
        fmt: QFormat,
        /// Warps per row.
        split: u8,
        /// Rows per group of warps.
        rows: u8,
    },
    /// Tensor-core matrix product from blocks of a format, `tile` tokens per block
    /// (one of [`TC_TILES`]).
    QmmTc {
        /// Weight format.
        fmt: QFormat,
        /// Tokens per block.
        tile: u8,
    },
    /// Integer tensor-core product of an integer format with quantized inputs,
    /// `tile` tokens and `row_tiles` tiles of 16 rows per block (one of [`QQ_TILES`]).
    QmmQ {
        /// Weight format ([`QFormat::is_integer`]).
        fmt: QFormat,
        /// Tokens per block.
        tile: u8,
        /// Tiles of 16 rows per block.
        row_tiles: u8,
    },
    /// Integer tensor-core product staged through shared memory (the same bits as
    /// [`Kernel::QmmQ`]): `rows` rows and `tile` tokens per block (one of [`QS_TILES`]).
    QmmS {
        /// Weight format ([`QFormat::is_integer`]).
        fmt: QFormat,
        /// Rows per block.
        rows: u8,
        /// Tokens per block.
        tile: u8,
    },
    /// Decode product of an integer format with quantized inputs (the same bits as
    /// [`Kernel::QmmQ`] without tensor cores): `rows` rows per warp, up to `tokens`
    /// tokens (one of [`QV_SHAPES`]).
    QmvQ {
        /// Weight format ([`QFormat::is_integer`]).
        fmt: QFormat,
        /// Rows per warp (1, 2 or 4).
        rows: u8,
        /// Most tokens per launch.
        tokens: u8,
    },
    /// The same for the k-quants with their blocks copied through shared memory
    /// first (the same bits).
    QmvS {
        /// Weight format ([`QFormat::is_kquant`]).
        fmt: QFormat,
        /// Rows per warp (1, 2 or 4).
        rows: u8,
        /// Most tokens per launch.
        tokens: u8,
    },
    /// Inputs to 16-bit integers per 32 values (for [`Kernel::QmmQ`]).
    QuantizeActs,
    /// Embedding rows from blocks of a format.
    Embed(QFormat),
    /// RMS norm of rows (at most `.0` blocks of 32 per warp: one of [`NORM_REGS`]).
    RmsNorm(u8),
    /// Residual add of (optionally normed) rows.
    AddNormed(u8),
    /// Residual add, then the next norm.
    AddNormRms(u8),
    /// Query/key norms and rotary embedding, keys and values into the cache.
    QkvRopeStore,
    /// Bias add.
    AddBias,
    /// GELU(gate) * up.
    GeluMul,
    /// SiLU(gate) * up.
    SiluMul,
    /// Row gather.
    GatherRows,
    /// Paged attention.
    Attention,
    /// Top-k logits and log-sum-exp of rows (slices, then a merge by the last block).
    RowTopk,
    /// Seeded draws from each row's best logits.
    DrawRows,
}

/// Token tiles of the tensor-core products (`mma.cu`), smallest first.
pub const TC_TILES: [u8; 4] = [8, 16, 32, 64];

/// (tokens, tiles of 16 rows) per block of the integer products (`imma.cu`).
pub const QQ_TILES: [(u8, u8); 9] = [
    (8, 1),
    (16, 1),
    (16, 2),
    (16, 4),
    (32, 1),
    (32, 2),
    (32, 4),
    (64, 1),
    (64, 2),
];

/// (tokens, tiles of 16 rows) per block of the k-quant products (`kquant_tiles.cu`, whose
/// integer sums per step take more registers: the smaller of [`QQ_TILES`]).
pub const QK_TILES: [(u8, u8); 6] = [(8, 1), (16, 1), (16, 2), (32, 1), (32, 2), (64, 1)];

/// (rows, tokens) per block of the staged integer products (`imma_staged.cu`,
/// `kquant_tiles.cu`).
pub const QS_TILES: [(u8, u8); 2] = [(64, 64), (128, 64)];

/// Most blocks of 32 values a warp of the norm kernels holds (`rows.cu`): widths up to
/// 2 048, 4 096, 8 192 and 32 768 (see [`NORM_WARPS`]).
pub const NORM_REGS: [u8; 4] = [2, 4, 16, 32];
/// Most warps of a norm block, by [`NORM_REGS`] entry.
pub const NORM_WARPS: [usize; 4] = [32, 32, 16, 32];

/// (rows per warp, most tokens) of the decode products (`qmv.cu`).
pub const QV_SHAPES: [(u8, u8); 5] = [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2)];

impl Kernel {
    /// Every kernel.
    pub fn all() -> Vec<Kernel> {
        let mut v = Vec::new();
        for fmt in QFormat::ALL {
            for split in [1, 4] {
                for rows in [1, 4] {
                    v.push(Kernel::Qmm { fmt, split, rows });
                }
            }
        }
        for fmt in QFormat::ALL {
            for tile in TC_TILES {
                v.push(Kernel::QmmTc { fmt, tile });
            }
        }
        for fmt in QFormat::ALL.into_iter().filter(|f| f.is_integer()) {
            for &(tile, row_tiles) in fmt.qq_tiles() {
                v.push(Kernel::QmmQ {
                    fmt,
                    tile,
                    row_tiles,
                });
            }
            for (rows, tile) in QS_TILES {
                v.push(Kernel::QmmS { fmt, rows, tile });
            }
            for (rows, tokens) in QV_SHAPES {
                v.push(Kernel::QmvQ { fmt, rows, tokens });
                if fmt.is_kquant() {
                    v.push(Kernel::QmvS { fmt, rows, tokens });
                }
            }
        }
        v.extend(QFormat::ALL.iter().map(|&f| Kernel::Embed(f)));
        for r in NORM_REGS {
            v.extend([
                Kernel::RmsNorm(r),
                Kernel::AddNormed(r),
                Kernel::AddNormRms(r),
            ]);
        }
        v.extend([
            Kernel::QuantizeActs,
            Kernel::QkvRopeStore,
            Kernel::AddBias,
            Kernel::GeluMul,
            Kernel::SiluMul,
            Kernel::GatherRows,
            Kernel::Attention,
            Kernel::RowTopk,
            Kernel::DrawRows,
        ]);
        v
    }

    /// The kernel's symbol in the module.
    pub fn symbol(self) -> String {
        match self {
            Kernel::Qmm { fmt, split, rows } => format!("qmm_{}_k{split}_r{rows}", fmt.suffix()),
            Kernel::QmmTc { fmt, tile } => format!("qmm_tc_{}_n{tile}", fmt.suffix()),
            Kernel::QmmQ {
                fmt,
                tile,
                row_tiles,
            } => format!("qmm_q_{}_n{tile}_r{row_tiles}", fmt.suffix()),
            Kernel::QmmS { fmt, rows, tile } => {
                format!("qmm_s_{}_m{rows}_n{tile}", fmt.suffix())
            }
            Kernel::QmvQ { fmt, rows, tokens } => {
                format!("qmv_q_{}_r{rows}_t{tokens}", fmt.suffix())
            }
            Kernel::QmvS { fmt, rows, tokens } => {
                format!("qmv_q_ks_{}_r{rows}_t{tokens}", fmt.suffix())
            }
            Kernel::QuantizeActs => "quantize_acts".into(),
            Kernel::Embed(f) => format!("embed_{}", f.suffix()),
            Kernel::RmsNorm(r) => format!("rms_norm_r{r}"),
            Kernel::AddNormed(r) => format!("add_normed_r{r}"),
            Kernel::AddNormRms(r) => format!("add_norm_rms_r{r}"),
            Kernel::QkvRopeStore => "qkv_rope_store".into(),
            Kernel::AddBias => "add_bias".into(),
            Kernel::GeluMul => "gelu_mul".into(),
            Kernel::SiluMul => "silu_mul".into(),
            Kernel::GatherRows => "gather_rows".into(),
            Kernel::Attention => "attention".into(),
            Kernel::RowTopk => "row_topk".into(),
            Kernel::DrawRows => "draw_rows".into(),
        }
    }
}
