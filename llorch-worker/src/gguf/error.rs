//! Typed errors of the GGUF reader and writer: every defect names what is
//! wrong and where (byte offset, key or tensor name). WORK-3030.

use std::path::PathBuf;

/// A defect of a GGUF file, or an I/O failure reading or writing one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    /// The file could not be opened, mapped, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing to a stream failed.
    #[error("write failed: {0}")]
    Write(#[source] std::io::Error),
    /// The file ends before a field is complete (or a count promises more than the file holds).
    #[error(
        "truncated or corrupt file: {what} at byte {offset} needs {needed} bytes, only {available} left"
    )]
    Truncated {
        /// The field being read.
        what: String,
        /// Byte offset of the field.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the file at that offset.
        available: u64,
    },
    /// The file does not start with `GGUF`.
    #[error("not a GGUF file: it starts with b\"{}\", not b\"GGUF\"", .found.escape_ascii())]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A GGUF version other than 2 or 3 (or a big-endian file).
    #[error(
        "unsupported GGUF version {version} (supported: 2, 3; big-endian files are not supported)"
    )]
    UnsupportedVersion {
        /// The version field as read (little-endian).
        version: u32,
    },
    /// A count or length is larger than the file or a fixed limit allows.
    #[error("{what} at byte {offset} is {value}, more than the limit {limit}")]
    TooLarge {
        /// The field (e.g. `tensor count`, `length of key "x"`).
        what: String,
        /// Byte offset of the field.
        offset: u64,
        /// The value read.
        value: u64,
        /// The largest value allowed here (file bytes left, or a fixed cap).
        limit: u64,
    },
    /// A string that is not valid UTF-8.
    #[error("{what} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// The string (a key, a value of a key, a tensor name).
        what: String,
        /// Byte offset of the string's bytes.
        offset: u64,
    },
    /// A metadata value type id that GGUF does not define.
    #[error("unknown value type {type_id} for key {key:?} at byte {offset}")]
    UnknownValueType {
        /// The key.
        key: String,
        /// Byte offset of the type field.
        offset: u64,
        /// The type id read.
        type_id: u32,
    },
    /// An array of arrays (not supported by llama.cpp either).
    #[error("nested array for key {key:?} at byte {offset}")]
    NestedArray {
        /// The key.
        key: String,
        /// Byte offset of the inner type field.
        offset: u64,
    },
    /// The same key twice.
    #[error("duplicate key {key:?} at byte {offset}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Byte offset of the second occurrence.
        offset: u64,
    },
    /// A metadata value with a type or value the format forbids for its key.
    #[error("invalid value for key {key:?}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A defect of one tensor's entry in the tensor table.
    #[error("tensor {name:?} (entry at byte {offset}): {reason}")]
    InvalidTensor {
        /// The tensor name (lossy if the name itself is the defect).
        name: String,
        /// Byte offset of the tensor's entry in the tensor table.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The data section does not fit the file.
    #[error(
        "data section starts at byte {data_offset}, beyond the end of the file ({file_len} bytes)"
    )]
    DataOutOfBounds {
        /// Aligned start of the data section.
        data_offset: u64,
        /// File length.
        file_len: u64,
    },
    /// A tensor's data overlaps another's.
    #[error("tensor {name:?} (data bytes {start}..{end}) overlaps tensor {other:?}")]
    TensorOverlap {
        /// The later tensor (by offset).
        name: String,
        /// Its first data byte (absolute).
        start: u64,
        /// One past its last data byte (absolute).
        end: u64,
        /// The tensor it overlaps.
        other: String,
    },
    /// The writer was given something it cannot write.
    #[error("cannot write GGUF: {0}")]
    Writer(String),
}
