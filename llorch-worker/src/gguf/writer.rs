//! [`GgufWriter`]: writes GGUF v3 with streamed tensor data.
//!
//! Tensor data is produced by a callback per tensor at write time, so files of
//! many gigabytes (benchmark shapes) never sit in memory.

use std::io::Write;
use std::path::Path;

use super::error::GgufError;
use super::reader::{DEFAULT_ALIGNMENT, KEY_ALIGNMENT, limits, value_type_id};
use super::tensor::tensor_bytes;
use super::value::{MetaValue, Metadata};
use crate::quant::{GgmlType, quantize_row};

/// Produces a tensor's data: must write exactly the tensor's byte size.
pub type TensorFill<'a> = Box<dyn FnOnce(&mut dyn Write) -> std::io::Result<()> + 'a>;

struct Pending<'a> {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    n_bytes: u64,
    fill: TensorFill<'a>,
}

/// Builds a GGUF v3 file: metadata in insertion order, tensors in insertion
/// order, each tensor's data aligned to `general.alignment` (default 32).
pub struct GgufWriter<'a> {
    kv: Vec<(String, MetaValue)>,
    tensors: Vec<Pending<'a>>,
    alignment: u64,
}

impl Default for GgufWriter<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for GgufWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufWriter")
            .field("keys", &self.kv.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .finish()
    }
}

fn werr(msg: impl Into<String>) -> GgufError {
    GgufError::Writer(msg.into())
}

impl<'a> GgufWriter<'a> {
    /// An empty file with the default alignment.
    pub fn new() -> Self {
        Self {
            kv: Vec::new(),
            tensors: Vec::new(),
            alignment: DEFAULT_ALIGNMENT,
        }
    }

    /// Sets `general.alignment` (a power of two).
    pub fn set_alignment(&mut self, alignment: u32) -> Result<(), GgufError> {
        if !alignment.is_power_of_two() {
            return Err(werr(format!("alignment {alignment} is not a power of two")));
        }
        self.alignment = u64::from(alignment);
        self.set(KEY_ALIGNMENT, MetaValue::U32(alignment));
        Ok(())
    }

    /// Sets a key (a later call replaces the value in place).
    pub fn set(&mut self, key: impl Into<String>, value: MetaValue) {
        let key = key.into();
        match self.kv.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.kv.push((key, value)),
        }
    }

    /// Sets every key of a metadata table (`general.alignment` included, if present).
    pub fn set_all(&mut self, md: &Metadata) -> Result<(), GgufError> {
        for (k, v) in md.iter() {
            if k == KEY_ALIGNMENT {
                match v {
                    MetaValue::U32(a) => self.set_alignment(*a)?,
                    _ => return Err(werr("general.alignment must be u32")),
                }
            } else {
                self.set(k, v.clone());
            }
        }
        Ok(())
    }

    /// Adds a tensor whose data `fill` writes at write time (exactly its byte size).
    pub fn add_tensor_with(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: GgmlType,
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()> + 'a,
    ) -> Result<(), GgufError> {
        let name = name.into();
        if name.is_empty() || name.len() as u64 > limits::MAX_TENSOR_NAME_LEN {
            return Err(werr(format!("tensor name {name:?} must be 1 to 64 bytes")));
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(werr(format!("duplicate tensor {name:?}")));
        }
        let n_bytes = tensor_bytes(&name, 0, dims, ty)?;
        self.tensors.push(Pending {
            name,
            dims: dims.to_vec(),
            ty,
            n_bytes,
            fill: Box::new(fill),
        });
        Ok(())
    }

    /// Adds a tensor from its raw (already encoded) bytes.
    pub fn add_tensor_bytes(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> Result<(), GgufError> {
        let name = name.into();
        let n_bytes = tensor_bytes(&name, 0, dims, ty)?;
        if data.len() as u64 != n_bytes {
            return Err(werr(format!(
                "tensor {name:?}: {} bytes given, {n_bytes} expected",
                data.len()
            )));
        }
        self.add_tensor_with(name, dims, ty, move |w| w.write_all(&data))
    }

    /// Adds a tensor from f32 values (row-major, `dims[0]` per row), encoded as `ty`.
    pub fn add_tensor_f32(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: GgmlType,
        values: &[f32],
    ) -> Result<(), GgufError> {
        let name = name.into();
        tensor_bytes(&name, 0, dims, ty)?;
        let n: u64 = dims.iter().product();
        if values.len() as u64 != n {
            return Err(werr(format!(
                "tensor {name:?}: {} values given, {n} expected",
                values.len()
            )));
        }
        let row = usize::try_from(dims[0]).map_err(|_| werr("row too long"))?;
        let mut data = Vec::new();
        for r in values.chunks(row) {
            data.extend_from_slice(
                &quantize_row(ty, r).map_err(|e| werr(format!("tensor {name:?}: {e}")))?,
            );
        }
        self.add_tensor_bytes(name, dims, ty, data)
    }

    /// Number of tensors added.
    pub fn n_tensors(&self) -> usize {
        self.tensors.len()
    }

    fn header_bytes(&self) -> Result<Vec<u8>, GgufError> {
        let mut h = Vec::new();
        h.extend_from_slice(b"GGUF");
        h.extend_from_slice(&3u32.to_le_bytes());
        h.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        h.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            put_str(&mut h, k);
            h.extend_from_slice(&value_type_id(v).to_le_bytes());
            put_value(&mut h, k, v)?;
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut h, &t.name);
            h.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                h.extend_from_slice(&d.to_le_bytes());
            }
            h.extend_from_slice(&t.ty.id().to_le_bytes());
            h.extend_from_slice(&offset.to_le_bytes());
            offset = align(
                offset
                    .checked_add(t.n_bytes)
                    .ok_or_else(|| werr("file too large"))?,
                self.alignment,
            )?;
        }
        let padded = align(h.len() as u64, self.alignment)?;
        h.resize(padded as usize, 0);
        Ok(h)
    }

    /// The size of the file [`GgufWriter::write_to`] will write.
    pub fn file_size(&self) -> Result<u64, GgufError> {
        let mut size = self.header_bytes()?.len() as u64;
        for t in &self.tensors {
            size = align(size + t.n_bytes, self.alignment)?;
        }
        Ok(size)
    }

    /// Writes the file to `w`; returns the bytes written.
    pub fn write_to(self, w: &mut dyn Write) -> Result<u64, GgufError> {
        let header = self.header_bytes()?;
        w.write_all(&header).map_err(GgufError::Write)?;
        let mut total = header.len() as u64;
        let zeros = vec![0u8; self.alignment as usize];
        for t in self.tensors {
            let mut cw = Counting {
                inner: &mut *w,
                n: 0,
                limit: t.n_bytes,
            };
            (t.fill)(&mut cw).map_err(GgufError::Write)?;
            if cw.n != t.n_bytes {
                return Err(werr(format!(
                    "tensor {:?}: {} bytes written, {} expected",
                    t.name, cw.n, t.n_bytes
                )));
            }
            total += t.n_bytes;
            let pad = (align(total, self.alignment)? - total) as usize;
            w.write_all(&zeros[..pad]).map_err(GgufError::Write)?;
            total += pad as u64;
        }
        w.flush().map_err(GgufError::Write)?;
        Ok(total)
    }

    /// Writes the file into memory.
    pub fn to_bytes(self) -> Result<Vec<u8>, GgufError> {
        let mut v = Vec::new();
        self.write_to(&mut v)?;
        Ok(v)
    }

    /// Writes the file to `path` (created or truncated), buffered.
    pub fn write_file(self, path: impl AsRef<Path>) -> Result<u64, GgufError> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::create(path).map_err(io)?;
        let mut bw = std::io::BufWriter::with_capacity(1 << 20, f);
        let n = self.write_to(&mut bw)?;
        let f = bw.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        Ok(n)
    }
}

fn align(x: u64, a: u64) -> Result<u64, GgufError> {
    x.div_ceil(a)
        .checked_mul(a)
        .ok_or_else(|| werr("file too large"))
}

fn put_str(h: &mut Vec<u8>, s: &str) {
    h.extend_from_slice(&(s.len() as u64).to_le_bytes());
    h.extend_from_slice(s.as_bytes());
}

fn put_value(h: &mut Vec<u8>, key: &str, v: &MetaValue) -> Result<(), GgufError> {
    match v {
        MetaValue::U8(x) => h.push(*x),
        MetaValue::I8(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U16(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => h.push(u8::from(*x)),
        MetaValue::String(s) => put_str(h, s),
        MetaValue::U64(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => h.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Array(items) => {
            // An empty array is written with element type u32.
            let ty = items.first().map_or(4, value_type_id);
            if items
                .iter()
                .any(|i| matches!(i, MetaValue::Array(_)) || value_type_id(i) != ty)
            {
                return Err(werr(format!(
                    "key {key:?}: arrays must be flat and of one type"
                )));
            }
            h.extend_from_slice(&ty.to_le_bytes());
            h.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                put_value(h, key, i)?;
            }
        }
    }
    Ok(())
}

/// Counts the bytes a tensor's fill writes and refuses more than its size.
struct Counting<'w> {
    inner: &'w mut dyn Write,
    n: u64,
    limit: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.n + buf.len() as u64 > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "tensor data longer than its size",
            ));
        }
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
