//! Parsing of the GGUF header and the metadata key/value table.
//!
//! Every count and length is checked against the bytes left in the file and a
//! fixed cap BEFORE anything is allocated for it (WORK-3030): a string of
//! length L is only read if L bytes are there, an array of N elements is only
//! reserved for if N × (smallest element size) bytes are there.

use super::cursor::Cursor;
use super::error::GgufError;
use super::value::{MetaValue, Metadata};

/// The GGUF magic, `"GGUF"`.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// The alignment of the data section and of tensor offsets when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that sets the alignment.
pub const KEY_ALIGNMENT: &str = "general.alignment";
/// The metadata key naming the architecture.
pub const KEY_ARCHITECTURE: &str = "general.architecture";

/// Fixed caps of the reader (besides the file's own size).
pub mod limits {
    /// Most key/value pairs in one file.
    pub const MAX_KV_COUNT: u64 = 1 << 20;
    /// Most tensors in one file.
    pub const MAX_TENSOR_COUNT: u64 = 1 << 20;
    /// Longest key, in bytes.
    pub const MAX_KEY_LEN: u64 = 1 << 16;
    /// Longest string value, in bytes.
    pub const MAX_STRING_LEN: u64 = 1 << 26;
    /// Most array elements in all of the metadata together (4 Mi: at most
    /// 128 MiB of parsed values; real vocabularies need under 1 Mi).
    pub const MAX_METADATA_ELEMENTS: u64 = 1 << 22;
    /// Longest tensor name, in bytes (ggml's `GGML_MAX_NAME`).
    pub const MAX_TENSOR_NAME_LEN: u64 = 64;
    /// Most dimensions of a tensor (ggml's `GGML_MAX_DIMS`).
    pub const MAX_DIMS: u32 = 4;
    /// Largest initial reservation of a vector from a count in the file (elements).
    pub const MAX_RESERVE: usize = 1 << 16;
}

/// The fixed header.
pub(crate) struct Header {
    pub version: u32,
    pub n_tensors: u64,
    pub n_kv: u64,
}

/// GGUF value type ids.
mod vt {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// The GGUF type id of a value (arrays: [`vt::ARRAY`]).
pub(crate) fn value_type_id(v: &MetaValue) -> u32 {
    match v {
        MetaValue::U8(_) => vt::U8,
        MetaValue::I8(_) => vt::I8,
        MetaValue::U16(_) => vt::U16,
        MetaValue::I16(_) => vt::I16,
        MetaValue::U32(_) => vt::U32,
        MetaValue::I32(_) => vt::I32,
        MetaValue::F32(_) => vt::F32,
        MetaValue::Bool(_) => vt::BOOL,
        MetaValue::String(_) => vt::STRING,
        MetaValue::Array(_) => vt::ARRAY,
        MetaValue::U64(_) => vt::U64,
        MetaValue::I64(_) => vt::I64,
        MetaValue::F64(_) => vt::F64,
    }
}

/// The smallest encoded size of a value of type `type_id` (`None`: unknown type).
fn min_value_size(type_id: u32) -> Option<u64> {
    Some(match type_id {
        vt::U8 | vt::I8 | vt::BOOL => 1,
        vt::U16 | vt::I16 => 2,
        vt::U32 | vt::I32 | vt::F32 => 4,
        vt::U64 | vt::I64 | vt::F64 | vt::STRING => 8,
        vt::ARRAY => 12,
        _ => return None,
    })
}

/// Checks `count ≤ cap` ([`GgufError::TooLarge`]) and `count × unit ≤ remaining`
/// ([`GgufError::Truncated`]); the error names `what` at `offset`.
pub(crate) fn check_count(
    what: &dyn Fn() -> String,
    offset: u64,
    count: u64,
    unit: u64,
    remaining: u64,
    cap: u64,
) -> Result<(), GgufError> {
    if count > cap {
        return Err(GgufError::TooLarge {
            what: what(),
            offset,
            value: count,
            limit: cap,
        });
    }
    if count > remaining / unit.max(1) {
        return Err(GgufError::Truncated {
            what: format!("{} = {count} (at least {unit} bytes each)", what()),
            offset,
            needed: count.saturating_mul(unit),
            available: remaining,
        });
    }
    Ok(())
}

/// A vector reservation bounded by the bytes that can back it and [`limits::MAX_RESERVE`].
pub(crate) fn bounded_capacity(count: u64, unit: u64, remaining: u64) -> usize {
    let backed = remaining / unit.max(1);
    usize::try_from(count.min(backed))
        .unwrap_or(limits::MAX_RESERVE)
        .min(limits::MAX_RESERVE)
}

pub(crate) fn parse_header(c: &mut Cursor<'_>) -> Result<Header, GgufError> {
    let magic: [u8; 4] = c.array(&|| "magic".into())?;
    if magic != GGUF_MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = c.u32(&|| "version".into())?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let at = c.pos();
    let n_tensors = c.u64(&|| "tensor count".into())?;
    // Checked against the file once the metadata is read; the cap applies now.
    check_count(
        &|| "tensor count".into(),
        at,
        n_tensors,
        1,
        u64::MAX,
        limits::MAX_TENSOR_COUNT,
    )?;
    let at = c.pos();
    let n_kv = c.u64(&|| "key/value count".into())?;
    // A key/value pair takes at least 8 (key length) + 4 (type) + 1 (value) bytes.
    check_count(
        &|| "key/value count".into(),
        at,
        n_kv,
        13,
        c.remaining(),
        limits::MAX_KV_COUNT,
    )?;
    Ok(Header {
        version,
        n_tensors,
        n_kv,
    })
}

/// Reads `n_kv` key/value pairs; checks UTF-8, value types, duplicates and `general.alignment`.
pub(crate) fn parse_metadata(c: &mut Cursor<'_>, n_kv: u64) -> Result<(Metadata, u64), GgufError> {
    let mut md = Metadata::new();
    let mut elements_left = limits::MAX_METADATA_ELEMENTS;
    for i in 0..n_kv {
        let key_at = c.pos();
        let key = c.string(limits::MAX_KEY_LEN, &|| format!("key #{i}"))?;
        if md.contains(&key) {
            return Err(GgufError::DuplicateKey {
                key,
                offset: key_at,
            });
        }
        let type_at = c.pos();
        let type_id = c.u32(&|| format!("value type of key {key:?}"))?;
        let value = if type_id == vt::ARRAY {
            parse_array(c, &key, &mut elements_left)?
        } else {
            parse_scalar(c, &key, type_id, type_at)?
        };
        md.insert(key, value);
    }
    let alignment = match md.get(KEY_ALIGNMENT) {
        None => DEFAULT_ALIGNMENT,
        Some(MetaValue::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(MetaValue::U32(a)) => {
            return Err(GgufError::InvalidValue {
                key: KEY_ALIGNMENT.into(),
                reason: format!("{a} is not a power of two"),
            });
        }
        Some(v) => {
            return Err(GgufError::InvalidValue {
                key: KEY_ALIGNMENT.into(),
                reason: format!("type {} instead of u32", v.type_name()),
            });
        }
    };
    Ok((md, alignment))
}

fn parse_array(
    c: &mut Cursor<'_>,
    key: &str,
    elements_left: &mut u64,
) -> Result<MetaValue, GgufError> {
    let type_at = c.pos();
    let elem_type = c.u32(&|| format!("array element type of key {key:?}"))?;
    if elem_type == vt::ARRAY {
        return Err(GgufError::NestedArray {
            key: key.into(),
            offset: type_at,
        });
    }
    let Some(unit) = min_value_size(elem_type) else {
        return Err(GgufError::UnknownValueType {
            key: key.into(),
            offset: type_at,
            type_id: elem_type,
        });
    };
    let len_at = c.pos();
    let n = c.u64(&|| format!("array length of key {key:?}"))?;
    check_count(
        &|| format!("array length of key {key:?}"),
        len_at,
        n,
        unit,
        c.remaining(),
        *elements_left,
    )?;
    *elements_left -= n;
    let mut out = Vec::with_capacity(bounded_capacity(
        n,
        size_of::<MetaValue>() as u64,
        c.remaining(),
    ));
    for _ in 0..n {
        let at = c.pos();
        out.push(parse_scalar(c, key, elem_type, at)?);
    }
    Ok(MetaValue::Array(out))
}

fn parse_scalar(
    c: &mut Cursor<'_>,
    key: &str,
    type_id: u32,
    type_at: u64,
) -> Result<MetaValue, GgufError> {
    let what = || format!("value of key {key:?}");
    Ok(match type_id {
        vt::U8 => MetaValue::U8(c.u8(&what)?),
        vt::I8 => MetaValue::I8(c.u8(&what)? as i8),
        vt::U16 => MetaValue::U16(c.u16(&what)?),
        vt::I16 => MetaValue::I16(c.u16(&what)? as i16),
        vt::U32 => MetaValue::U32(c.u32(&what)?),
        vt::I32 => MetaValue::I32(c.u32(&what)? as i32),
        vt::F32 => MetaValue::F32(f32::from_bits(c.u32(&what)?)),
        vt::U64 => MetaValue::U64(c.u64(&what)?),
        vt::I64 => MetaValue::I64(c.u64(&what)? as i64),
        vt::F64 => MetaValue::F64(f64::from_bits(c.u64(&what)?)),
        vt::BOOL => {
            let at = c.pos();
            match c.u8(&what)? {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => {
                    return Err(GgufError::InvalidValue {
                        key: key.into(),
                        reason: format!("bool byte {b} at byte {at} is neither 0 nor 1"),
                    });
                }
            }
        }
        vt::STRING => MetaValue::String(c.string(limits::MAX_STRING_LEN, &what)?),
        _ => {
            return Err(GgufError::UnknownValueType {
                key: key.into(),
                offset: type_at,
                type_id,
            });
        }
    })
}
