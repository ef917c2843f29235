//! The view of the model catalog that admission and worker starts need (ORCH-1080..1083).
//!
//! The orchestrator persists the full catalog (checksums, names, …); the scheduler only
//! needs, per model: its id, the canonical reference pool managers load, its context
//! length, its lifecycle state and its size.

use std::collections::HashMap;

use llorch_core::ModelRef;

/// Lifecycle of a catalog entry (ORCH-1080). Retired models take no new jobs (ORCH-1083).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// Jobs are admitted.
    Active,
    /// Jobs are rejected with `ADMISSION_REJECT`.
    Retired,
}

/// One model as admission and placement see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The catalog id (also accepted as the model name in requests).
    pub model_id: String,
    /// The canonical `hf:`/`file:` reference workers load and report.
    pub model: ModelRef,
    /// Context length in tokens: prompt + generated tokens must fit (ORCH-1011).
    pub context_length: u32,
    /// Active or Retired.
    pub lifecycle: Lifecycle,
    /// Size of the model file in bytes.
    pub size_bytes: u64,
    /// Device memory a worker of this model needs, when known (measured or declared);
    /// otherwise it is estimated from `size_bytes` (see [`crate::start::MemoryEstimate`]).
    pub vram_bytes: Option<u64>,
}

impl CatalogEntry {
    /// An Active entry with no declared device memory.
    pub fn new(
        model_id: impl Into<String>,
        model: ModelRef,
        context_length: u32,
        size_bytes: u64,
    ) -> Self {
        Self {
            model_id: model_id.into(),
            model,
            context_length,
            lifecycle: Lifecycle::Active,
            size_bytes,
            vram_bytes: None,
        }
    }
}

/// Why an entry cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The id or canonical reference is already taken by another entry.
    #[error("catalog already has a model named {0:?}")]
    Duplicate(String),
    /// The reference is an alias; the catalog holds canonical `hf:`/`file:` references.
    #[error("catalog entry {0:?} must name a canonical hf: or file: reference")]
    NotCanonical(String),
}

/// The catalog: entries found by id or by canonical reference text.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
    by_name: HashMap<String, usize>,
    by_ref: HashMap<ModelRef, usize>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry; its id and its reference text both become names for it.
    pub fn insert(&mut self, entry: CatalogEntry) -> Result<(), CatalogError> {
        if !entry.model.is_canonical() {
            return Err(CatalogError::NotCanonical(entry.model_id));
        }
        let ref_text = entry.model.to_string();
        for name in [&entry.model_id, &ref_text] {
            if self.by_name.contains_key(name) {
                return Err(CatalogError::Duplicate(name.clone()));
            }
        }
        let ix = self.entries.len();
        self.by_name.insert(entry.model_id.clone(), ix);
        self.by_name.insert(ref_text, ix);
        self.by_ref.insert(entry.model.clone(), ix);
        self.entries.push(entry);
        Ok(())
    }

    /// Finds an entry by catalog id or canonical reference text.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.by_name.get(name).map(|&ix| &self.entries[ix])
    }

    /// Finds an entry by its canonical reference.
    pub fn by_ref(&self, model: &ModelRef) -> Option<&CatalogEntry> {
        self.by_ref.get(model).map(|&ix| &self.entries[ix])
    }

    /// Sets an entry's lifecycle (ORCH-1083); `false` when no entry has that name.
    pub fn set_lifecycle(&mut self, name: &str, lifecycle: Lifecycle) -> bool {
        match self.by_name.get(name) {
            Some(&ix) => {
                self.entries[ix].lifecycle = lifecycle;
                true
            }
            None => false,
        }
    }

    /// All entries, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, path: &str) -> CatalogEntry {
        CatalogEntry::new(id, path.parse().unwrap(), 4096, 1 << 30)
    }

    #[test]
    fn lookup_by_id_and_ref() {
        let mut c = Catalog::new();
        c.insert(entry("tiny", "file:/m/tiny.gguf")).unwrap();
        assert_eq!(c.get("tiny").unwrap().model_id, "tiny");
        assert_eq!(c.get("file:/m/tiny.gguf").unwrap().model_id, "tiny");
        let r: ModelRef = "file:/m/tiny.gguf".parse().unwrap();
        assert!(c.by_ref(&r).is_some());
        assert!(c.get("other").is_none());
        assert_eq!(
            c.insert(entry("tiny", "file:/m/x.gguf")),
            Err(CatalogError::Duplicate("tiny".into()))
        );
        assert!(matches!(
            c.insert(entry("x", "file:/m/tiny.gguf")),
            Err(CatalogError::Duplicate(_))
        ));
        assert!(matches!(
            c.insert(entry("y", "alias")),
            Err(CatalogError::NotCanonical(_))
        ));
        assert!(c.set_lifecycle("tiny", Lifecycle::Retired));
        assert_eq!(c.get("tiny").unwrap().lifecycle, Lifecycle::Retired);
        assert!(!c.set_lifecycle("nope", Lifecycle::Retired));
        assert_eq!(c.len(), 1);
    }
}
