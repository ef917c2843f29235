//! Synthetic models: tiny ones for tests (milliseconds on the CPU) and real
//! shapes for benchmarks, with llama.cpp's exact tensor names and metadata keys.

use std::io::Write;
use std::path::Path;

use super::rng::SynthRng;
use super::vocab::{Vocab, VocabKind};
use crate::gguf::{GgufError, GgufWriter, MetaValue};
use crate::quant::{GgmlType, quantize_row};

/// The architectures synthetic models can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Gemma 3 (`gemma3`): q/k norms, post-attention and post-FFN norms, sliding window, tied output.
    Gemma3,
    /// Llama 3 style (`llama`): GQA, rope scaling keys and `rope_freqs.weight`.
    Llama,
    /// Qwen2 (`qwen2`): q/k/v biases.
    Qwen2,
    /// Mistral style: `llama` with `llama.attention.sliding_window`.
    Mistral,
}

impl Arch {
    /// The `general.architecture` value (Mistral is `llama`).
    pub fn gguf_name(self) -> &'static str {
        match self {
            Arch::Gemma3 => "gemma3",
            Arch::Llama | Arch::Mistral => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }

    /// The tokenizer a model of this architecture carries by default.
    pub fn default_vocab(self) -> VocabKind {
        match self {
            Arch::Gemma3 => VocabKind::SpmGemma,
            Arch::Llama => VocabKind::Gpt2Llama3,
            Arch::Qwen2 => VocabKind::Gpt2Qwen2,
            Arch::Mistral => VocabKind::SpmLlama,
        }
    }
}

/// Rope scaling written as `{arch}.rope.scaling.*` keys.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeScaling {
    /// `rope.scaling.type`: `linear` or `yarn`; `llama3` writes no keys but a
    /// `rope_freqs.weight` tensor (as llama.cpp's converter does for Llama 3.1).
    pub kind: String,
    /// `rope.scaling.factor`.
    pub factor: f32,
    /// `rope.scaling.original_context_length`.
    pub original_context_length: u32,
}

/// How weights are filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WeightFill {
    /// Seeded uniform noise with this standard deviation (norms: 1 ± noise).
    Random {
        /// Seed of all tensors (each tensor has its own stream).
        seed: u64,
        /// Standard deviation of matrix weights.
        std: f32,
    },
    /// A deterministic pattern (no randomness), with this amplitude.
    Pattern {
        /// Amplitude.
        scale: f32,
    },
    /// Like `Random` for the first [`TILE_ROWS`] rows of each tensor, whose encoded
    /// bytes then repeat: valid blocks at the speed of a copy, for benchmark-sized
    /// models (a kernel's speed does not depend on the weights' values).
    Tiled {
        /// Seed of all tensors.
        seed: u64,
        /// Standard deviation of matrix weights.
        std: f32,
    },
}

/// Rows generated per tensor by [`WeightFill::Tiled`] before they repeat.
pub const TILE_ROWS: u64 = 16;

/// The shape, types and contents of a synthetic model.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Architecture.
    pub arch: Arch,
    /// `general.name`.
    pub name: String,
    /// Transformer blocks.
    pub n_layer: u32,
    /// Hidden size.
    pub n_embd: u32,
    /// FFN inner size.
    pub n_ff: u32,
    /// Query heads.
    pub n_head: u32,
    /// Key/value heads (GQA when fewer than `n_head`).
    pub n_head_kv: u32,
    /// Head dimension.
    pub head_dim: u32,
    /// `{arch}.context_length`.
    pub context_length: u32,
    /// `{arch}.rope.freq_base`.
    pub rope_freq_base: f32,
    /// `{arch}.attention.layer_norm_rms_epsilon`.
    pub rms_eps: f32,
    /// `{arch}.attention.sliding_window`, if any.
    pub sliding_window: Option<u32>,
    /// Rope scaling keys, if any.
    pub rope_scaling: Option<RopeScaling>,
    /// Whether `output.weight` is absent (the output reuses `token_embd.weight`).
    pub tie_embeddings: bool,
    /// The tokenizer.
    pub vocab: VocabKind,
    /// Pad the vocabulary to this many tokens (real model sizes), if larger.
    pub n_vocab: Option<u32>,
    /// Type of the 2-D weight matrices.
    pub weight_type: GgmlType,
    /// Type of `token_embd.weight`.
    pub embed_type: GgmlType,
    /// Type of `output.weight`.
    pub output_type: GgmlType,
    /// Weight contents.
    pub fill: WeightFill,
}

/// One tensor of a synthetic model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// llama.cpp name.
    pub name: String,
    /// GGUF dims (`dims[0]` = row length).
    pub dims: Vec<u64>,
    /// Element type (after falling back for rows that are not a block multiple).
    pub ty: GgmlType,
    /// What the values are.
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Matrix,
    Norm,
    Bias,
    RopeFreqs,
}

impl SynthConfig {
    /// A tiny model of `arch`: 2 layers, hidden 64, GQA, the real small
    /// vocabulary; Q8_0 matrices, F16 embeddings, F32 norms; seed 42.
    pub fn tiny(arch: Arch) -> Self {
        let gemma = arch == Arch::Gemma3;
        SynthConfig {
            arch,
            name: format!("tiny-{}", arch.gguf_name()),
            n_layer: 2,
            n_embd: 64,
            n_ff: 128,
            n_head: 4,
            n_head_kv: if gemma { 1 } else { 2 },
            head_dim: if gemma { 32 } else { 16 },
            context_length: 256,
            rope_freq_base: if gemma { 1_000_000.0 } else { 10_000.0 },
            rms_eps: if gemma { 1e-6 } else { 1e-5 },
            sliding_window: match arch {
                Arch::Gemma3 => Some(32),
                Arch::Mistral => Some(64),
                _ => None,
            },
            rope_scaling: (arch == Arch::Llama).then(|| RopeScaling {
                kind: "linear".into(),
                factor: 2.0,
                original_context_length: 128,
            }),
            tie_embeddings: matches!(arch, Arch::Gemma3 | Arch::Qwen2),
            vocab: arch.default_vocab(),
            n_vocab: None,
            weight_type: GgmlType::Q8_0,
            embed_type: GgmlType::F16,
            output_type: GgmlType::F16,
            fill: WeightFill::Random {
                seed: 42,
                std: 0.05,
            },
        }
    }

    /// Llama-3-8B's shape (32 layers, 4096 hidden, 14336 FFN, 32/8 heads, 128256 tokens), F16.
    /// About 16 GB in F16: write it with [`write_file`], never in tests.
    pub fn llama3_8b() -> Self {
        SynthConfig {
            arch: Arch::Llama,
            name: "synthetic-llama3-8b".into(),
            n_layer: 32,
            n_embd: 4096,
            n_ff: 14336,
            n_head: 32,
            n_head_kv: 8,
            head_dim: 128,
            context_length: 8192,
            rope_freq_base: 500_000.0,
            rms_eps: 1e-5,
            sliding_window: None,
            rope_scaling: None,
            tie_embeddings: false,
            vocab: VocabKind::Gpt2Llama3,
            n_vocab: Some(128_256),
            weight_type: GgmlType::F16,
            embed_type: GgmlType::F16,
            output_type: GgmlType::F16,
            fill: WeightFill::Random { seed: 8, std: 0.02 },
        }
    }

    /// Qwen2.5-0.5B's shape (24 layers, 896 hidden, 4864 FFN, 14/2 heads, 151936 tokens, biases, tied), F16.
    pub fn qwen2_5_0_5b() -> Self {
        SynthConfig {
            arch: Arch::Qwen2,
            name: "synthetic-qwen2.5-0.5b".into(),
            n_layer: 24,
            n_embd: 896,
            n_ff: 4864,
            n_head: 14,
            n_head_kv: 2,
            head_dim: 64,
            context_length: 32768,
            rope_freq_base: 1_000_000.0,
            rms_eps: 1e-6,
            sliding_window: None,
            rope_scaling: None,
            tie_embeddings: true,
            vocab: VocabKind::Gpt2Qwen2,
            n_vocab: Some(151_936),
            weight_type: GgmlType::F16,
            embed_type: GgmlType::F16,
            output_type: GgmlType::F16,
            fill: WeightFill::Random { seed: 5, std: 0.02 },
        }
    }

    /// Gemma-3-270m's shape (18 layers, 640 hidden, 4/1 heads of 256, 262144 tokens), Q8_0.
    pub fn gemma3_270m() -> Self {
        SynthConfig {
            name: "synthetic-gemma3-270m".into(),
            n_layer: 18,
            n_embd: 640,
            n_ff: 2048,
            n_head: 4,
            n_head_kv: 1,
            head_dim: 256,
            context_length: 32768,
            sliding_window: Some(512),
            n_vocab: Some(262_144),
            weight_type: GgmlType::Q8_0,
            embed_type: GgmlType::Q8_0,
            output_type: GgmlType::Q8_0,
            ..Self::tiny(Arch::Gemma3)
        }
    }

    /// The same model with every weight matrix (embedding and output included) of type `ty`.
    pub fn with_weight_type(mut self, ty: GgmlType) -> Self {
        (self.weight_type, self.embed_type, self.output_type) = (ty, ty, ty);
        self
    }

    /// The vocabulary this config writes.
    pub fn build_vocab(&self) -> Vocab {
        Vocab::build(&self.vocab, self.n_vocab)
    }

    /// Every tensor, in the order they are written.
    pub fn tensor_specs(&self, n_vocab: u64) -> Vec<TensorSpec> {
        let (e, ff, hd) = (
            u64::from(self.n_embd),
            u64::from(self.n_ff),
            u64::from(self.head_dim),
        );
        let (q, kv) = (u64::from(self.n_head) * hd, u64::from(self.n_head_kv) * hd);
        let mut out = Vec::new();
        let mut t = |name: String, dims: Vec<u64>, ty: GgmlType, kind: Kind| {
            let ty = fallback_type(ty, dims[0]);
            out.push(TensorSpec {
                name,
                dims,
                ty,
                kind,
            });
        };
        let f32 = GgmlType::F32;
        t(
            "token_embd.weight".into(),
            vec![e, n_vocab],
            self.embed_type,
            Kind::Matrix,
        );
        if self
            .rope_scaling
            .as_ref()
            .is_some_and(|r| r.kind == "llama3")
        {
            t(
                "rope_freqs.weight".into(),
                vec![hd / 2],
                f32,
                Kind::RopeFreqs,
            );
        }
        let w = self.weight_type;
        for i in 0..self.n_layer {
            let b = |s: &str| format!("blk.{i}.{s}");
            t(b("attn_norm.weight"), vec![e], f32, Kind::Norm);
            t(b("attn_q.weight"), vec![e, q], w, Kind::Matrix);
            t(b("attn_k.weight"), vec![e, kv], w, Kind::Matrix);
            t(b("attn_v.weight"), vec![e, kv], w, Kind::Matrix);
            if self.arch == Arch::Qwen2 {
                t(b("attn_q.bias"), vec![q], f32, Kind::Bias);
                t(b("attn_k.bias"), vec![kv], f32, Kind::Bias);
                t(b("attn_v.bias"), vec![kv], f32, Kind::Bias);
            }
            if self.arch == Arch::Gemma3 {
                t(b("attn_q_norm.weight"), vec![hd], f32, Kind::Norm);
                t(b("attn_k_norm.weight"), vec![hd], f32, Kind::Norm);
            }
            t(b("attn_output.weight"), vec![q, e], w, Kind::Matrix);
            if self.arch == Arch::Gemma3 {
                t(b("post_attention_norm.weight"), vec![e], f32, Kind::Norm);
            }
            t(b("ffn_norm.weight"), vec![e], f32, Kind::Norm);
            t(b("ffn_gate.weight"), vec![e, ff], w, Kind::Matrix);
            t(b("ffn_up.weight"), vec![e, ff], w, Kind::Matrix);
            t(b("ffn_down.weight"), vec![ff, e], w, Kind::Matrix);
            if self.arch == Arch::Gemma3 {
                t(b("post_ffw_norm.weight"), vec![e], f32, Kind::Norm);
            }
        }
        t("output_norm.weight".into(), vec![e], f32, Kind::Norm);
        if !self.tie_embeddings {
            t(
                "output.weight".into(),
                vec![e, n_vocab],
                self.output_type,
                Kind::Matrix,
            );
        }
        out
    }

    fn write_hparams(&self, w: &mut GgufWriter<'_>, n_vocab: u32) {
        let a = self.arch.gguf_name();
        let k = |s: &str| format!("{a}.{s}");
        w.set("general.architecture", MetaValue::String(a.into()));
        w.set("general.type", MetaValue::String("model".into()));
        w.set("general.name", MetaValue::String(self.name.clone()));
        w.set("general.quantization_version", MetaValue::U32(2));
        w.set(k("context_length"), MetaValue::U32(self.context_length));
        w.set(k("embedding_length"), MetaValue::U32(self.n_embd));
        w.set(k("block_count"), MetaValue::U32(self.n_layer));
        w.set(k("feed_forward_length"), MetaValue::U32(self.n_ff));
        w.set(k("attention.head_count"), MetaValue::U32(self.n_head));
        w.set(k("attention.head_count_kv"), MetaValue::U32(self.n_head_kv));
        w.set(
            k("attention.layer_norm_rms_epsilon"),
            MetaValue::F32(self.rms_eps),
        );
        w.set(k("rope.freq_base"), MetaValue::F32(self.rope_freq_base));
        if self.arch == Arch::Gemma3 || self.head_dim * self.n_head != self.n_embd {
            w.set(k("attention.key_length"), MetaValue::U32(self.head_dim));
            w.set(k("attention.value_length"), MetaValue::U32(self.head_dim));
        }
        if self.arch != Arch::Gemma3 {
            w.set(k("rope.dimension_count"), MetaValue::U32(self.head_dim));
        }
        if matches!(self.arch, Arch::Llama | Arch::Mistral) {
            w.set(k("vocab_size"), MetaValue::U32(n_vocab));
        }
        if let Some(sw) = self.sliding_window {
            w.set(k("attention.sliding_window"), MetaValue::U32(sw));
        }
        if let Some(r) = self.rope_scaling.as_ref().filter(|r| r.kind != "llama3") {
            // (Llama 3.1 style scaling is carried by `rope_freqs.weight` instead, as llama.cpp writes it.)
            w.set(k("rope.scaling.type"), MetaValue::String(r.kind.clone()));
            w.set(k("rope.scaling.factor"), MetaValue::F32(r.factor));
            w.set(
                k("rope.scaling.original_context_length"),
                MetaValue::U32(r.original_context_length),
            );
        }
    }

    /// Checks the shape (heads divide, sizes non-zero).
    fn check(&self) -> Result<(), GgufError> {
        let bad = |m: &str| {
            Err(GgufError::Writer(format!(
                "synthetic model {}: {m}",
                self.name
            )))
        };
        if self.n_layer == 0
            || self.n_embd == 0
            || self.n_ff == 0
            || self.n_head == 0
            || self.head_dim == 0
        {
            return bad("sizes must be non-zero");
        }
        if self.n_head_kv == 0 || !self.n_head.is_multiple_of(self.n_head_kv) {
            return bad("n_head must be a multiple of n_head_kv");
        }
        Ok(())
    }
}

/// llama.cpp's fallback when a row is not a whole number of blocks:
/// 256-blocks → Q8_0 (if the row is a multiple of 32) → F16.
fn fallback_type(ty: GgmlType, row: u64) -> GgmlType {
    if row.is_multiple_of(ty.block_size()) {
        ty
    } else if row.is_multiple_of(32) {
        GgmlType::Q8_0
    } else {
        GgmlType::F16
    }
}

/// The values of one row of a tensor.
fn fill_row(fill: WeightFill, kind: Kind, rng: &mut SynthRng, row: u64, out: &mut [f32]) {
    match (kind, fill) {
        (Kind::RopeFreqs, _) => {} // filled by `llama3_rope_factors`
        (Kind::Norm, WeightFill::Random { std, .. } | WeightFill::Tiled { std, .. }) => {
            out.iter_mut().for_each(|v| *v = 1.0 + rng.with_std(std))
        }
        (_, WeightFill::Random { std, .. } | WeightFill::Tiled { std, .. }) => {
            out.iter_mut().for_each(|v| *v = rng.with_std(std))
        }
        (Kind::Norm, WeightFill::Pattern { .. }) => out.iter_mut().for_each(|v| *v = 1.0),
        (_, WeightFill::Pattern { scale }) => out.iter_mut().enumerate().for_each(|(j, v)| {
            let k = (row as usize * 7 + j * 13) % 17;
            *v = (k as f32 - 8.0) / 8.0 * scale;
        }),
    }
}

/// Llama 3.1's rope frequency factors (`rope_freqs.weight`), as
/// `convert_hf_to_gguf.py` computes them (low/high frequency factors 1 and 4).
pub fn llama3_rope_factors(
    head_dim: u32,
    freq_base: f32,
    factor: f32,
    original_context_length: u32,
) -> Vec<f32> {
    let (low, high) = (1.0f64, 4.0f64);
    let old = f64::from(original_context_length);
    let (low_wavelen, high_wavelen) = (old / low, old / high);
    (0..head_dim / 2)
        .map(|i| {
            let freq = 1.0 / f64::from(freq_base).powf(f64::from(2 * i) / f64::from(head_dim));
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (old / wavelen - low) / (high - low);
                (1.0 / ((1.0 - smooth) / f64::from(factor) + smooth)) as f32
            }
        })
        .collect()
}

/// A writer holding the whole synthetic model; tensor data is generated and
/// quantized row by row while writing (nothing large is held in memory).
pub fn build(cfg: &SynthConfig) -> Result<GgufWriter<'static>, GgufError> {
    cfg.check()?;
    let vocab = cfg.build_vocab();
    let n_vocab = vocab.len() as u32;
    let mut w = GgufWriter::new();
    cfg.write_hparams(&mut w, n_vocab);
    vocab.write_metadata(&mut w);
    let seed = match cfg.fill {
        WeightFill::Random { seed, .. } | WeightFill::Tiled { seed, .. } => seed,
        WeightFill::Pattern { .. } => 0,
    };
    for spec in cfg.tensor_specs(u64::from(n_vocab)) {
        if spec.kind == Kind::RopeFreqs {
            let r = cfg.rope_scaling.as_ref();
            let (factor, orig) = r.map_or((1.0, cfg.context_length), |r| {
                (r.factor, r.original_context_length)
            });
            let v = llama3_rope_factors(cfg.head_dim, cfg.rope_freq_base, factor, orig);
            w.add_tensor_f32(spec.name, &spec.dims, GgmlType::F32, &v)?;
            continue;
        }
        let fill = cfg.fill;
        let (row_len, n_rows) = (spec.dims[0], spec.dims.iter().skip(1).product::<u64>());
        let mut rng = SynthRng::for_stream(seed, &spec.name);
        let (ty, kind) = (spec.ty, spec.kind);
        w.add_tensor_with(
            spec.name.clone(),
            &spec.dims,
            ty,
            move |out: &mut dyn Write| {
                let mut row = vec![0f32; row_len as usize];
                let tiled = matches!(fill, WeightFill::Tiled { .. });
                let mut tile: Vec<u8> = Vec::new();
                for r in 0..n_rows {
                    if tiled && r >= TILE_ROWS {
                        // Repeat the first rows' bytes, whole tiles at a time.
                        let rb = tile.len() / TILE_ROWS as usize;
                        let left = (n_rows - r) as usize;
                        let mut done = 0;
                        while done < left {
                            let n = (left - done).min(TILE_ROWS as usize);
                            out.write_all(&tile[..n * rb])?;
                            done += n;
                        }
                        break;
                    }
                    fill_row(fill, kind, &mut rng, r, &mut row);
                    let bytes = quantize_row(ty, &row).map_err(std::io::Error::other)?;
                    out.write_all(&bytes)?;
                    if tiled {
                        tile.extend_from_slice(&bytes);
                    }
                }
                Ok(())
            },
        )?;
    }
    Ok(w)
}

/// The synthetic model as GGUF bytes in memory (tiny models).
pub fn to_bytes(cfg: &SynthConfig) -> Result<Vec<u8>, GgufError> {
    build(cfg)?.to_bytes()
}

/// Writes the synthetic model to `path`, streaming (large shapes); returns the bytes written.
pub fn write_file(cfg: &SynthConfig, path: impl AsRef<Path>) -> Result<u64, GgufError> {
    build(cfg)?.write_file(path)
}
