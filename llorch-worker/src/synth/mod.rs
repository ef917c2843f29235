//! Synthetic GGUF models built on the fly: tiny models of every supported
//! architecture for tests, and real shapes (Llama-3-8B, Qwen2.5-0.5B,
//! Gemma-3-270m) for benchmarks, with llama.cpp's exact tensor names and
//! metadata keys and a real small vocabulary (issue 4).
//!
//! ```
//! use llorch_worker::synth::{Arch, SynthConfig, to_bytes};
//! use llorch_worker::gguf::GgufFile;
//! let bytes = to_bytes(&SynthConfig::tiny(Arch::Gemma3)).unwrap();
//! let f = GgufFile::parse(bytes).unwrap();
//! assert_eq!(f.architecture(), Some("gemma3"));
//! ```

mod model;
mod rng;
mod vocab;

pub use model::{
    Arch, RopeScaling, SynthConfig, TILE_ROWS, TensorSpec, WeightFill, build, llama3_rope_factors,
    to_bytes, write_file,
};
pub use rng::SynthRng;
pub use vocab::{Vocab, VocabKind, gpt2_byte_chars, token_type};
