//! The GGUF file format (llama.cpp-compatible, v2 and v3): a validating reader
//! over mmap or memory, and a streaming writer.
//!
//! Layout: `"GGUF"`, version u32, tensor count u64, key/value count u64, the
//! key/value pairs, the tensor table (name, dims, type, offset relative to the
//! data section), padding to `general.alignment`, then the tensor data.
//! Everything is validated before anything large is allocated (WORK-3030).

mod cursor;
mod error;
mod file;
mod mmap;
mod reader;
mod tensor;
mod value;
mod writer;

pub use error::GgufError;
pub use file::GgufFile;
pub use reader::{DEFAULT_ALIGNMENT, GGUF_MAGIC, KEY_ALIGNMENT, KEY_ARCHITECTURE, limits};
pub use tensor::TensorInfo;
pub use value::{MetaValue, Metadata};
pub use writer::{GgufWriter, TensorFill};
