//! The model's tensors, located in the mapped GGUF file and checked against the config.
//!
//! Matrices stay in their quantized blocks inside the mapping (no copy); small
//! vectors (norms, biases) are dequantized to f32 once at load.

use std::ops::Range;
use std::sync::Arc;

use crate::cpu::matmul::QMatrix;
use crate::cpu::qdot::WeightFormat;
use crate::gguf::{GgufFile, TensorInfo};
use crate::quant::{GgmlType, dequantize_row};

use super::config::ModelConfig;

/// Why the tensors of a model cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightsError {
    /// A required tensor is absent.
    #[error("tensor {0} is missing")]
    Missing(String),
    /// A tensor's shape does not match the metadata.
    #[error("tensor {name} has shape {got:?}, expected {want:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape in the file (ggml order).
        got: Vec<u64>,
        /// Shape the config implies.
        want: Vec<u64>,
    },
    /// A tensor's element type cannot be computed with.
    #[error("tensor {name} has type {ty}, which the engine cannot compute with")]
    Unsupported {
        /// Tensor name.
        name: String,
        /// Its type.
        ty: String,
    },
}

/// A matrix in the file: `rows` features of `cols` inputs.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Encoding.
    pub fmt: WeightFormat,
    /// Output features.
    pub rows: usize,
    /// Inputs per feature.
    pub cols: usize,
    /// Byte range in the file.
    pub range: Range<usize>,
}

/// The tensors of one transformer block.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Pre-attention norm.
    pub attn_norm: Vec<f32>,
    /// Query, key, value and output projections.
    pub wq: Matrix,
    /// Key projection.
    pub wk: Matrix,
    /// Value projection.
    pub wv: Matrix,
    /// Attention output projection.
    pub wo: Matrix,
    /// Query, key, value biases (qwen2).
    pub bq: Option<Vec<f32>>,
    /// Key bias.
    pub bk: Option<Vec<f32>>,
    /// Value bias.
    pub bv: Option<Vec<f32>>,
    /// Per-head query norm (gemma3).
    pub q_norm: Option<Vec<f32>>,
    /// Per-head key norm (gemma3).
    pub k_norm: Option<Vec<f32>>,
    /// Norm of the attention output before the residual (gemma3).
    pub post_attn_norm: Option<Vec<f32>>,
    /// Pre-FFN norm.
    pub ffn_norm: Vec<f32>,
    /// FFN gate, up and down projections.
    pub gate: Matrix,
    /// FFN up projection.
    pub up: Matrix,
    /// FFN down projection.
    pub down: Matrix,
    /// Norm of the FFN output before the residual (gemma3).
    pub post_ffn_norm: Option<Vec<f32>>,
}

/// All tensors of a model, backed by the mapped file.
#[derive(Debug)]
pub struct Weights {
    /// The file the matrices live in.
    pub file: Arc<GgufFile>,
    /// Token embeddings (`vocab` rows of `d_model`).
    pub embed: Matrix,
    /// Element type of the embeddings (for row lookup).
    pub embed_type: GgmlType,
    /// Output projection (the embeddings when tied).
    pub output: Matrix,
    /// Final norm.
    pub output_norm: Vec<f32>,
    /// Rotary frequency divisors (`rope_freqs.weight`, llama 3.1).
    pub rope_freqs: Option<Vec<f32>>,
    /// The blocks.
    pub layers: Vec<Layer>,
    /// Vocabulary size (rows of the output projection).
    pub vocab: usize,
}

fn format_of(ty: GgmlType) -> Option<WeightFormat> {
    Some(match ty {
        GgmlType::F32 => WeightFormat::F32,
        GgmlType::F16 => WeightFormat::F16,
        GgmlType::BF16 => WeightFormat::Bf16,
        GgmlType::Q8_0 => WeightFormat::Q8_0,
        GgmlType::Q4_0 => WeightFormat::Q4_0,
        GgmlType::Q4_1 => WeightFormat::Q4_1,
        GgmlType::Q5_0 => WeightFormat::Q5_0,
        GgmlType::Q5_1 => WeightFormat::Q5_1,
        GgmlType::Q4_K => WeightFormat::Q4K,
        GgmlType::Q5_K => WeightFormat::Q5K,
        GgmlType::Q6_K => WeightFormat::Q6K,
        _ => return None,
    })
}

struct Loader<'a> {
    file: &'a GgufFile,
}

impl Loader<'_> {
    fn info(&self, name: &str) -> Result<&TensorInfo, WeightsError> {
        self.file
            .tensor(name)
            .ok_or_else(|| WeightsError::Missing(name.to_owned()))
    }

    fn matrix(&self, name: &str, cols: usize, rows: Option<usize>) -> Result<Matrix, WeightsError> {
        let t = self.info(name)?;
        let shape_ok = t.dims.len() == 2
            && t.dims[0] == cols as u64
            && rows.is_none_or(|r| t.dims[1] == r as u64);
        if !shape_ok {
            return Err(WeightsError::Shape {
                name: name.to_owned(),
                got: t.dims.clone(),
                want: vec![cols as u64, rows.map_or(0, |r| r as u64)],
            });
        }
        let fmt = format_of(t.ggml_type).ok_or_else(|| WeightsError::Unsupported {
            name: name.to_owned(),
            ty: t.ggml_type.name().to_owned(),
        })?;
        let start = t.offset as usize;
        Ok(Matrix {
            fmt,
            rows: t.dims[1] as usize,
            cols,
            range: start..start + t.n_bytes as usize,
        })
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, WeightsError> {
        let t = self.info(name)?;
        if t.n_elements() != len as u64 {
            return Err(WeightsError::Shape {
                name: name.to_owned(),
                got: t.dims.clone(),
                want: vec![len as u64],
            });
        }
        let mut out = vec![0.0; len];
        dequantize_row(t.ggml_type, self.file.tensor_data(t), &mut out).map_err(|_| {
            WeightsError::Unsupported {
                name: name.to_owned(),
                ty: t.ggml_type.name().to_owned(),
            }
        })?;
        Ok(out)
    }

    fn opt_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>, WeightsError> {
        if self.file.tensor(name).is_some() {
            self.vector(name, len).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl Weights {
    /// Locates and checks every tensor the config needs.
    pub fn load(file: Arc<GgufFile>, cfg: &ModelConfig) -> Result<Self, WeightsError> {
        let ld = Loader { file: &file };
        let d = cfg.d_model;
        let q_width = cfg.n_heads * cfg.head_dim;
        let k_width = cfg.n_kv_heads * cfg.head_dim;
        let v_width = cfg.n_kv_heads * cfg.v_head_dim;
        let attn_width = cfg.n_heads * cfg.v_head_dim;
        let embed = ld.matrix("token_embd.weight", d, None)?;
        let embed_type = ld.info("token_embd.weight")?.ggml_type;
        let output = if file.tensor("output.weight").is_some() {
            ld.matrix("output.weight", d, Some(embed.rows))?
        } else {
            embed.clone()
        };
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let n = |s: &str| format!("blk.{l}.{s}");
            layers.push(Layer {
                attn_norm: ld.vector(&n("attn_norm.weight"), d)?,
                wq: ld.matrix(&n("attn_q.weight"), d, Some(q_width))?,
                wk: ld.matrix(&n("attn_k.weight"), d, Some(k_width))?,
                wv: ld.matrix(&n("attn_v.weight"), d, Some(v_width))?,
                wo: ld.matrix(&n("attn_output.weight"), attn_width, Some(d))?,
                bq: ld.opt_vector(&n("attn_q.bias"), q_width)?,
                bk: ld.opt_vector(&n("attn_k.bias"), k_width)?,
                bv: ld.opt_vector(&n("attn_v.bias"), v_width)?,
                q_norm: ld.opt_vector(&n("attn_q_norm.weight"), cfg.head_dim)?,
                k_norm: ld.opt_vector(&n("attn_k_norm.weight"), cfg.head_dim)?,
                post_attn_norm: ld.opt_vector(&n("post_attention_norm.weight"), d)?,
                ffn_norm: ld.vector(&n("ffn_norm.weight"), d)?,
                gate: ld.matrix(&n("ffn_gate.weight"), d, Some(cfg.d_ff))?,
                up: ld.matrix(&n("ffn_up.weight"), d, Some(cfg.d_ff))?,
                down: ld.matrix(&n("ffn_down.weight"), cfg.d_ff, Some(d))?,
                post_ffn_norm: ld.opt_vector(&n("post_ffw_norm.weight"), d)?,
            });
        }
        let output_norm = ld.vector("output_norm.weight", d)?;
        let rope_freqs = ld.opt_vector("rope_freqs.weight", cfg.rope_dims / 2)?;
        let vocab = output.rows;
        Ok(Self {
            embed,
            embed_type,
            output,
            output_norm,
            rope_freqs,
            layers,
            vocab,
            file,
        })
    }

    /// A matrix as a view into the file.
    pub fn view<'a>(&'a self, m: &Matrix) -> QMatrix<'a> {
        QMatrix {
            fmt: m.fmt,
            rows: m.rows,
            cols: m.cols,
            data: &self.file.bytes()[m.range.clone()],
        }
    }

    /// Writes the embedding of `token` into `out` (`d_model` values).
    pub fn embed_row(&self, token: u32, out: &mut [f32]) -> bool {
        let t = token as usize;
        if t >= self.embed.rows {
            return false;
        }
        let rb = self.embed.fmt.row_bytes(self.embed.cols);
        let start = self.embed.range.start + t * rb;
        dequantize_row(self.embed_type, &self.file.bytes()[start..start + rb], out).is_ok()
    }
}
