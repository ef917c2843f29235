//! The tensor table: entries, and their validation against the file.

use std::collections::HashMap;

use super::cursor::Cursor;
use super::error::GgufError;
use super::reader::{bounded_capacity, check_count, limits};
use crate::quant::GgmlType;

/// One tensor of a GGUF file, validated: its data lies inside the file,
/// aligned, and overlaps no other tensor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor name, e.g. `blk.0.attn_q.weight` (≤ 64 bytes).
    pub name: String,
    /// Dimensions in GGUF/ggml order: `dims[0]` (ne0) is the row length.
    pub dims: Vec<u64>,
    /// The element type.
    pub ggml_type: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    /// Bytes of data.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements (the product of the dims; checked at parse time).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Elements per row (`dims[0]`).
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows (product of `dims[1..]`).
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> u64 {
        self.ggml_type.row_bytes(self.row_len()).unwrap_or(0)
    }
}

/// An entry as read, with its offset relative to the data section.
struct RawEntry {
    info: TensorInfo,
    entry_at: u64,
}

fn bad(name: &str, entry_at: u64, reason: impl Into<String>) -> GgufError {
    GgufError::InvalidTensor {
        name: name.into(),
        offset: entry_at,
        reason: reason.into(),
    }
}

/// Checks a tensor's shape and type and computes its byte size.
pub(crate) fn tensor_bytes(
    name: &str,
    entry_at: u64,
    dims: &[u64],
    ty: GgmlType,
) -> Result<u64, GgufError> {
    if dims.is_empty() || dims.len() > limits::MAX_DIMS as usize {
        return Err(bad(
            name,
            entry_at,
            format!(
                "{} dimensions (1 to {} allowed)",
                dims.len(),
                limits::MAX_DIMS
            ),
        ));
    }
    let mut n: u64 = 1;
    for (j, &d) in dims.iter().enumerate() {
        if d == 0 {
            return Err(bad(name, entry_at, format!("dimension {j} is 0")));
        }
        n = n
            .checked_mul(d)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| {
                bad(
                    name,
                    entry_at,
                    format!("element count of dims {dims:?} overflows"),
                )
            })?;
    }
    let bs = ty.block_size();
    if dims[0] % bs != 0 {
        return Err(bad(
            name,
            entry_at,
            format!(
                "row length {} is not a multiple of the {ty} block size {bs}",
                dims[0]
            ),
        ));
    }
    (n / bs)
        .checked_mul(ty.type_size())
        .filter(|&b| b <= i64::MAX as u64)
        .ok_or_else(|| {
            bad(
                name,
                entry_at,
                format!("byte size of dims {dims:?} as {ty} overflows"),
            )
        })
}

/// Reads and validates `n` entries; returns them with absolute offsets and the data offset.
pub(crate) fn parse_tensor_table(
    c: &mut Cursor<'_>,
    n: u64,
    alignment: u64,
    file_len: u64,
) -> Result<(Vec<TensorInfo>, u64), GgufError> {
    // An entry takes at least 8 (name length) + 1 (name) + 4 (n_dims) + 8 (dim) + 4 (type) + 8 (offset).
    const MIN_ENTRY: u64 = 33;
    check_count(
        &|| "tensor count".into(),
        8,
        n,
        MIN_ENTRY,
        c.remaining(),
        limits::MAX_TENSOR_COUNT,
    )?;
    let mut entries: Vec<RawEntry> = Vec::with_capacity(bounded_capacity(n, 128, c.remaining()));
    let mut seen: HashMap<String, u64> =
        HashMap::with_capacity(bounded_capacity(n, 128, c.remaining()));
    for i in 0..n {
        let entry_at = c.pos();
        let name = c.string(limits::MAX_TENSOR_NAME_LEN, &|| {
            format!("name of tensor #{i}")
        })?;
        if name.is_empty() {
            return Err(bad(&format!("#{i}"), entry_at, "empty name"));
        }
        if let Some(first) = seen.get(&name) {
            return Err(bad(
                &name,
                entry_at,
                format!("duplicate name (first entry at byte {first})"),
            ));
        }
        let n_dims = c.u32(&|| format!("dimension count of tensor {name:?}"))?;
        if n_dims == 0 || n_dims > limits::MAX_DIMS {
            return Err(bad(
                &name,
                entry_at,
                format!("{n_dims} dimensions (1 to {} allowed)", limits::MAX_DIMS),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for j in 0..n_dims {
            dims.push(c.u64(&|| format!("dimension {j} of tensor {name:?}"))?);
        }
        let type_id = c.u32(&|| format!("type of tensor {name:?}"))?;
        let ty = GgmlType::from_id(type_id)
            .ok_or_else(|| bad(&name, entry_at, format!("unknown ggml type id {type_id}")))?;
        let rel = c.u64(&|| format!("data offset of tensor {name:?}"))?;
        let n_bytes = tensor_bytes(&name, entry_at, &dims, ty)?;
        if rel % alignment != 0 {
            return Err(bad(
                &name,
                entry_at,
                format!("data offset {rel} is not a multiple of the alignment {alignment}"),
            ));
        }
        seen.insert(name.clone(), entry_at);
        entries.push(RawEntry {
            info: TensorInfo {
                name,
                dims,
                ggml_type: ty,
                offset: rel,
                n_bytes,
            },
            entry_at,
        });
    }

    let table_end = c.pos();
    let data_offset =
        table_end
            .div_ceil(alignment)
            .checked_mul(alignment)
            .ok_or(GgufError::DataOutOfBounds {
                data_offset: u64::MAX,
                file_len,
            })?;
    if data_offset > file_len {
        if entries.is_empty() {
            return Ok((Vec::new(), file_len));
        }
        return Err(GgufError::DataOutOfBounds {
            data_offset,
            file_len,
        });
    }
    let data_len = file_len - data_offset;
    for e in &mut entries {
        let rel = e.info.offset;
        let end = rel.checked_add(e.info.n_bytes);
        if end.is_none_or(|end| end > data_len) {
            return Err(bad(
                &e.info.name,
                e.entry_at,
                format!(
                    "data {rel}..{} (relative to the data section at byte {data_offset}) ends past its end ({data_len} bytes)",
                    end.map_or_else(|| "overflow".to_string(), |e| e.to_string())
                ),
            ));
        }
        // rel + n_bytes <= data_len = file_len - data_offset: no overflow.
        e.info.offset = data_offset + rel;
    }
    check_overlaps(&entries)?;
    Ok((entries.into_iter().map(|e| e.info).collect(), data_offset))
}

fn check_overlaps(entries: &[RawEntry]) -> Result<(), GgufError> {
    let mut order: Vec<&TensorInfo> = entries.iter().map(|e| &e.info).collect();
    order.sort_by_key(|t| (t.offset, t.n_bytes));
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.offset + a.n_bytes > b.offset {
            return Err(GgufError::TensorOverlap {
                name: b.name.clone(),
                start: b.offset,
                end: b.offset + b.n_bytes,
                other: a.name.clone(),
            });
        }
    }
    Ok(())
}
