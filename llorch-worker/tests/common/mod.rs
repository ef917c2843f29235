//! Helpers shared by the integration tests: a raw GGUF byte builder that can
//! write invalid files (the writer refuses to).
#![allow(dead_code, clippy::unwrap_used)]

pub mod gpu;
pub mod invariance;
pub mod reference;

/// Builds GGUF bytes field by field.
#[derive(Default, Clone)]
pub struct Raw {
    pub b: Vec<u8>,
}

impl Raw {
    pub fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        let mut r = Raw::default();
        r.b.extend_from_slice(b"GGUF");
        r.u32(version).u64(n_tensors).u64(n_kv);
        r
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.b.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.b.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.b.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes_str(s.as_bytes())
    }
    pub fn bytes_str(&mut self, s: &[u8]) -> &mut Self {
        self.u64(s.len() as u64);
        self.b.extend_from_slice(s);
        self
    }
    /// A u32 key/value pair.
    pub fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.str(key).u32(4).u32(v)
    }
    /// A tensor table entry.
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for d in dims {
            self.u64(*d);
        }
        self.u32(ty).u64(offset)
    }
    /// Pads to 32 and appends `n` data bytes.
    pub fn data(&mut self, n: usize) -> &mut Self {
        while !self.b.len().is_multiple_of(32) {
            self.b.push(0);
        }
        self.b.extend(std::iter::repeat_n(0x11u8, n));
        self
    }
    pub fn done(&self) -> Vec<u8> {
        self.b.clone()
    }
}
