//! Read-only memory mapping of a model file: the one place with `unsafe`.
#![allow(unsafe_code)]

use std::fs::File;

/// Maps the whole file read-only.
pub(crate) fn map(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only and private to this process. Its bytes are
    // only ever read as `&[u8]` and every access is bounds-checked against the
    // mapping's length. The one hazard of file mappings, another process
    // truncating or rewriting the file while mapped, is outside Rust's model:
    // model files are immutable once placed in the cache (WORK-3033), and the
    // pool manager installs them by atomic rename, never by rewriting in place.
    unsafe { memmap2::Mmap::map(file) }
}
