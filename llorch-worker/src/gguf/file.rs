//! [`GgufFile`]: a validated GGUF file, memory-mapped or in memory.

use std::collections::HashMap;
use std::path::Path;

use super::cursor::Cursor;
use super::error::GgufError;
use super::reader::{KEY_ARCHITECTURE, parse_header, parse_metadata};
use super::tensor::{TensorInfo, parse_tensor_table};
use super::value::Metadata;
use crate::quant::QuantError;

/// Where the file's bytes live.
enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// A GGUF file (v2 or v3) whose header, metadata and tensor table have been
/// fully validated (WORK-3030): every tensor's data lies in the file, aligned,
/// without overlaps, so [`GgufFile::tensor_data`] cannot fail.
pub struct GgufFile {
    backing: Backing,
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("len", &self.len())
            .field("keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .finish()
    }
}

impl GgufFile {
    /// Maps the file at `path` read-only and validates it.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let backing = if meta.len() == 0 {
            Backing::Owned(Vec::new())
        } else {
            Backing::Mmap(super::mmap::map(&file).map_err(io)?)
        };
        Self::from_backing(backing)
    }

    /// Validates an in-memory GGUF image (tests, fuzzing, files received over the network).
    pub fn parse(bytes: impl Into<Vec<u8>>) -> Result<GgufFile, GgufError> {
        Self::from_backing(Backing::Owned(bytes.into()))
    }

    /// Validates `bytes` without keeping them: the same checks as [`GgufFile::parse`]
    /// with no copy of the tensor data (used by the fuzz target).
    pub fn validate(bytes: &[u8]) -> Result<(), GgufError> {
        Layout::parse(bytes).map(|_| ())
    }

    fn from_backing(backing: Backing) -> Result<GgufFile, GgufError> {
        let layout = Layout::parse(backing.bytes())?;
        let by_name = layout
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(GgufFile {
            backing,
            version: layout.version,
            metadata: layout.metadata,
            tensors: layout.tensors,
            by_name,
            alignment: layout.alignment,
            data_offset: layout.data_offset,
        })
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The metadata key/value table.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// `general.architecture`, e.g. `"gemma3"`.
    pub fn architecture(&self) -> Option<&str> {
        self.metadata.get_str(KEY_ARCHITECTURE)
    }

    /// All tensors, in file (table) order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).and_then(|&i| self.tensors.get(i))
    }

    /// The data bytes of a tensor of this file (empty for a `TensorInfo` that
    /// does not lie within this file, e.g. one from another file).
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let (Ok(start), Ok(len)) = (usize::try_from(t.offset), usize::try_from(t.n_bytes)) else {
            return &[];
        };
        start
            .checked_add(len)
            .and_then(|end| self.bytes().get(start..end))
            .unwrap_or(&[])
    }

    /// A tensor's values as f32 (dequantized; bit-exact with llama.cpp). Types
    /// without a dequantizer give [`QuantError::Unsupported`] here, at use, not at parse.
    pub fn tensor_f32(&self, t: &TensorInfo) -> Result<Vec<f32>, QuantError> {
        let n = usize::try_from(t.n_elements()).unwrap_or(usize::MAX);
        crate::quant::dequantize(t.ggml_type, self.tensor_data(t), n)
    }

    /// The alignment of tensor data (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// File length in bytes.
    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// Whether the file is empty (never true for a valid file).
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// Whether the bytes are memory-mapped (from [`GgufFile::open`]).
    pub fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Mmap(_))
    }

    /// Sum of the tensors' element counts (the parameter count).
    pub fn n_params(&self) -> u64 {
        self.tensors
            .iter()
            .map(TensorInfo::n_elements)
            .fold(0, u64::saturating_add)
    }
}

/// Everything parsed from the bytes.
struct Layout {
    version: u32,
    metadata: Metadata,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    data_offset: u64,
}

impl Layout {
    fn parse(bytes: &[u8]) -> Result<Layout, GgufError> {
        let mut c = Cursor::new(bytes);
        let header = parse_header(&mut c)?;
        let (metadata, alignment) = parse_metadata(&mut c, header.n_kv)?;
        let (tensors, data_offset) =
            parse_tensor_table(&mut c, header.n_tensors, alignment, bytes.len() as u64)?;
        Ok(Layout {
            version: header.version,
            metadata,
            tensors,
            alignment,
            data_offset,
        })
    }
}
