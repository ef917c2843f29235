//! Typed identifiers and their text forms.
//!
//! String ids ([`JobId`], [`WorkerId`], [`NodeId`], [`SessionId`]) are 1 to
//! [`MAX_ID_LEN`] characters of `[A-Za-z0-9._:-]`, not starting with `.` or `-`:
//! safe in URLs, file names, log fields and Prometheus labels. GPUs are numbered
//! per host ([`GpuId`]); a [`Device`] is what a worker computes on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted string id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why a text is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is empty.
    #[error("{kind} is empty")]
    Empty {
        /// Which id kind was parsed.
        kind: &'static str,
    },
    /// The text is longer than [`MAX_ID_LEN`].
    #[error("{kind} is {len} bytes long; at most {MAX_ID_LEN} are allowed")]
    TooLong {
        /// Which id kind was parsed.
        kind: &'static str,
        /// The text's length in bytes.
        len: usize,
    },
    /// The text holds a character outside `[A-Za-z0-9._:-]`, or starts with `.`/`-`.
    #[error("{kind} has an invalid character {ch:?} at byte {at}")]
    BadChar {
        /// Which id kind was parsed.
        kind: &'static str,
        /// The offending character.
        ch: char,
        /// Its byte offset.
        at: usize,
    },
    /// A device or GPU text that is neither `cpu` nor `cuda:N` / a GPU index.
    #[error("invalid {kind} {text:?}: expected {expected}")]
    BadDevice {
        /// Which id kind was parsed.
        kind: &'static str,
        /// The text given.
        text: String,
        /// The accepted forms.
        expected: &'static str,
    },
}

fn validate_id(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { kind, len: s.len() });
    }
    for (at, ch) in s.char_indices() {
        let ok = ch.is_ascii_alphanumeric()
            || (matches!(ch, '.' | '_' | ':' | '-') && !(at == 0 && matches!(ch, '.' | '-')));
        if !ok {
            return Err(IdError::BadChar { kind, ch, at });
        }
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an id.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate_id($kind, &s)?;
                Ok(Self(s))
            }

            /// Mints a fresh random id, `
            #[doc = $prefix]
            /// -<uuid v4>`.
            pub fn mint() -> Self {
                Self(format!(concat!($prefix, "-{}"), uuid::Uuid::new_v4().simple()))
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// One inference job (a task submitted by a client), minted by the orchestrator.
    JobId, "job id", "job"
);
string_id!(
    /// One worker process (one loaded model), unique within the cluster.
    WorkerId, "worker id", "worker"
);
string_id!(
    /// One pool manager host.
    NodeId, "node id", "node"
);
string_id!(
    /// A client session (affinity and budgets span the jobs of one session).
    SessionId, "session id", "session"
);

/// A GPU's index on its host (the CUDA / NVML ordinal). Text form: `N` or `gpuN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GpuId(pub u32);

impl fmt::Display for GpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gpu{}", self.0)
    }
}

impl FromStr for GpuId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let digits = s.strip_prefix("gpu").unwrap_or(s);
        parse_index(digits)
            .map(GpuId)
            .ok_or_else(|| IdError::BadDevice {
                kind: "GPU id",
                text: s.to_owned(),
                expected: "a GPU index such as `0` or `gpu0`",
            })
    }
}

/// The device a worker computes on. Text form: `cpu` or `cuda:N`.
///
/// The CPU device is chosen explicitly for development, CI and reference checks;
/// it is never a fallback for a GPU (SYS-0002 EXT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The host CPU (explicit, never a fallback).
    Cpu,
    /// A CUDA GPU by ordinal.
    Cuda(GpuId),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(g) => write!(f, "cuda:{}", g.0),
        }
    }
}

impl FromStr for Device {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s == "cpu" {
            return Ok(Device::Cpu);
        }
        s.strip_prefix("cuda:")
            .and_then(parse_index)
            .map(|n| Device::Cuda(GpuId(n)))
            .ok_or_else(|| IdError::BadDevice {
                kind: "device",
                text: s.to_owned(),
                expected: "`cpu` or `cuda:N`",
            })
    }
}

impl Serialize for Device {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Device {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a canonical decimal index: digits only, no sign, no leading zeros.
fn parse_index(s: &str) -> Option<u32> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_validate() {
        assert!(JobId::new("job-1").is_ok());
        assert!(JobId::new("a:b.c_d-e").is_ok());
        assert_eq!(JobId::new(""), Err(IdError::Empty { kind: "job id" }));
        assert!(matches!(
            JobId::new("-x"),
            Err(IdError::BadChar { at: 0, .. })
        ));
        assert!(matches!(
            JobId::new(".x"),
            Err(IdError::BadChar { at: 0, .. })
        ));
        assert!(matches!(
            WorkerId::new("a/b"),
            Err(IdError::BadChar { ch: '/', at: 1, .. })
        ));
        assert!(matches!(
            NodeId::new("x".repeat(129)),
            Err(IdError::TooLong { len: 129, .. })
        ));
        assert!(SessionId::new("é").is_err());
    }

    #[test]
    fn minted_ids_are_valid_and_distinct() {
        let a = JobId::mint();
        let b = JobId::mint();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("job-"));
        assert_eq!(JobId::new(a.as_str()).unwrap(), a);
    }

    #[test]
    fn serde_validates() {
        let j: JobId = serde_json::from_str("\"job-7\"").unwrap();
        assert_eq!(serde_json::to_string(&j).unwrap(), "\"job-7\"");
        assert!(serde_json::from_str::<JobId>("\"a b\"").is_err());
    }

    #[test]
    fn devices_parse_and_print() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(GpuId(3)));
        assert_eq!(Device::Cuda(GpuId(12)).to_string(), "cuda:12");
        for bad in [
            "",
            "gpu",
            "cuda:",
            "cuda:-1",
            "cuda:01",
            "cuda:x",
            "CPU",
            "cuda:99999999999",
        ] {
            assert!(bad.parse::<Device>().is_err(), "{bad}");
        }
        assert_eq!("gpu2".parse::<GpuId>().unwrap(), GpuId(2));
        assert_eq!("2".parse::<GpuId>().unwrap(), GpuId(2));
        assert_eq!(GpuId(2).to_string(), "gpu2");
        assert!("+2".parse::<GpuId>().is_err());
    }
}
