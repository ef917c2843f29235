//! The GGUF file format (llama.cpp-compatible, v2 and v3).

mod value;

pub use value::{MetaValue, Metadata};
