//! Model hyper-parameters read from GGUF metadata, one struct for every architecture.
//!
//! Architectures differ by flags (norm placement, activation, rotary style, biases,
//! sliding windows), not by separate code paths: one forward pass serves them all.

use crate::gguf::Metadata;

/// Supported architectures (`general.architecture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Gemma 3: sliding/global attention, q/k norms, post-norms, GELU, scaled embeddings.
    Gemma3,
    /// Llama 2/3 and Mistral-style models.
    Llama,
    /// Qwen2 / Qwen2.5: q/k/v biases.
    Qwen2,
}

impl Arch {
    /// Parses `general.architecture`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "gemma3" => Some(Self::Gemma3),
            "llama" | "mistral" => Some(Self::Llama),
            "qwen2" => Some(Self::Qwen2),
            _ => None,
        }
    }
}

/// Why a model's metadata cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `general.architecture` is missing or not supported.
    #[error("unsupported architecture {0:?} (supported: gemma3, llama, mistral, qwen2)")]
    UnsupportedArch(String),
    /// A required key is missing or has the wrong type.
    #[error("metadata key {0} is missing or not a number")]
    Missing(String),
    /// Values that contradict each other or are out of range.
    #[error("invalid model shape: {0}")]
    Invalid(String),
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The architecture.
    pub arch: Arch,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Embedding width.
    pub d_model: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (GQA when fewer than `n_heads`).
    pub n_kv_heads: usize,
    /// Width of one query/key head.
    pub head_dim: usize,
    /// Width of one value head.
    pub v_head_dim: usize,
    /// Feed-forward width.
    pub d_ff: usize,
    /// RMSNorm epsilon.
    pub eps: f32,
    /// Training context length.
    pub ctx_len: usize,
    /// Rotary base of global layers.
    pub rope_base: f64,
    /// Rotary base of sliding-window layers, when it differs.
    pub rope_base_local: Option<f64>,
    /// Linear rotary scaling factor (1 = none).
    pub rope_linear: f64,
    /// Dimensions rotated per head.
    pub rope_dims: usize,
    /// Sliding window of local layers, in tokens.
    pub sliding_window: Option<usize>,
    /// Every `n`-th layer is global; the others slide (gemma3: 6).
    pub swa_period: Option<usize>,
    /// Multiplier on attention scores (applied to queries).
    pub attn_scale: f32,
    /// Multiplier on token embeddings (gemma: √d_model).
    pub embed_scale: Option<f32>,
}

impl ModelConfig {
    /// Reads the configuration of `metadata`.
    pub fn from_metadata(md: &Metadata) -> Result<Self, ConfigError> {
        let name = md.get_str("general.architecture").unwrap_or("").to_owned();
        let arch =
            Arch::from_name(&name).ok_or_else(|| ConfigError::UnsupportedArch(name.clone()))?;
        let key = |k: &str| format!("{name}.{k}");
        let req = |k: &str| -> Result<usize, ConfigError> {
            md.get_u64(&key(k))
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| ConfigError::Missing(key(k)))
        };
        let opt = |k: &str| md.get_u64(&key(k)).and_then(|v| usize::try_from(v).ok());
        let d_model = req("embedding_length")?;
        let n_heads = req("attention.head_count")?;
        let n_kv_heads = opt("attention.head_count_kv").unwrap_or(n_heads);
        if n_heads == 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(ConfigError::Invalid(format!(
                "{n_heads} query heads cannot share {n_kv_heads} key/value heads"
            )));
        }
        let head_dim = opt("attention.key_length").unwrap_or(d_model / n_heads);
        let v_head_dim = opt("attention.value_length").unwrap_or(head_dim);
        let eps = md
            .get_f64(&key("attention.layer_norm_rms_epsilon"))
            .ok_or_else(|| ConfigError::Missing(key("attention.layer_norm_rms_epsilon")))?
            as f32;
        let rope_base = md.get_f64(&key("rope.freq_base")).unwrap_or(10_000.0);
        let rope_linear = match md.get_str(&key("rope.scaling.type")) {
            Some("linear") => md.get_f64(&key("rope.scaling.factor")).unwrap_or(1.0),
            _ => 1.0,
        };
        let sliding_window = opt("attention.sliding_window");
        let (swa_period, rope_base_local, embed_scale) = match arch {
            // llama.cpp: 5 local : 1 global, local base 10 000, embeddings × √d.
            Arch::Gemma3 => (Some(6), Some(10_000.0), Some((d_model as f32).sqrt())),
            _ => (None, None, None),
        };
        let cfg = Self {
            arch,
            n_layers: req("block_count")?,
            d_model,
            n_heads,
            n_kv_heads,
            head_dim,
            v_head_dim,
            d_ff: req("feed_forward_length")?,
            eps,
            ctx_len: req("context_length")?,
            rope_base,
            rope_base_local,
            rope_linear: if rope_linear > 0.0 { rope_linear } else { 1.0 },
            rope_dims: opt("rope.dimension_count").unwrap_or(head_dim),
            sliding_window: if arch == Arch::Gemma3 {
                sliding_window
            } else {
                None
            },
            swa_period,
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            embed_scale,
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.n_layers == 0 || self.d_model == 0 || self.d_ff == 0 || self.head_dim == 0 {
            return bad("zero-sized dimension".into());
        }
        if !self.head_dim.is_multiple_of(2)
            || self.rope_dims > self.head_dim
            || !self.rope_dims.is_multiple_of(2)
        {
            return bad(format!(
                "rotary dims {} for head dim {}",
                self.rope_dims, self.head_dim
            ));
        }
        if !self.d_model.is_multiple_of(32)
            || !self.d_ff.is_multiple_of(32)
            || !(self.n_heads * self.v_head_dim).is_multiple_of(32)
        {
            return bad("widths must be multiples of 32".into());
        }
        if self.n_layers > 1024
            || self.d_model > 1 << 16
            || self.n_heads > 1024
            || self.head_dim > 1024
        {
            return bad("dimensions beyond supported limits".into());
        }
        Ok(())
    }

    /// Whether layer `l` uses the sliding window.
    pub fn is_sliding(&self, l: usize) -> bool {
        match (self.sliding_window, self.swa_period) {
            (Some(_), Some(p)) => !(l + 1).is_multiple_of(p),
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// The rotary base of layer `l`.
    pub fn rope_base_of(&self, l: usize) -> f64 {
        match self.rope_base_local {
            Some(b) if self.is_sliding(l) => b,
            _ => self.rope_base,
        }
    }

    /// Key/value values stored per token per layer (K and V together).
    pub fn kv_width(&self) -> usize {
        self.n_kv_heads * (self.head_dim + self.v_head_dim)
    }
}
