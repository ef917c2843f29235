//! Model references: `hf:org/repo[@rev][::file=path]`, `file:/abs/path.gguf`, or an alias.
//!
//! Parsing is strict so that no accepted reference can name a file outside the
//! model cache ([`ModelRef::cache_path`]) or smuggle a path through encoding
//! tricks. The orchestrator resolves aliases through its catalog before anything
//! reaches a pool manager; pool managers receive only `hf:` or `file:` refs.
//!
//! ```
//! use llorch_core::ModelRef;
//! let r: ModelRef = "hf:google/gemma-3-270m@main::file=gemma-3-270m-q4_k_m.gguf".parse()?;
//! assert_eq!(r.to_string(), "hf:google/gemma-3-270m@main::file=gemma-3-270m-q4_k_m.gguf");
//! assert!("hf:google/../etc::file=passwd".parse::<ModelRef>().is_err());
//! # Ok::<(), llorch_core::ModelRefError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted model reference, in bytes.
pub const MAX_MODEL_REF_LEN: usize = 1024;
/// Longest org, repo or alias name, in bytes (the Hugging Face Hub's limit).
pub const MAX_NAME_LEN: usize = 96;

/// A parsed, validated model reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelRef {
    /// A file in a Hugging Face Hub repository.
    Hf(HfRef),
    /// An absolute path on the pool manager's host.
    File(PathBuf),
    /// A short name that the orchestrator's catalog resolves, `name[:tag]`.
    Alias(String),
}

/// The parts of an `hf:` reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HfRef {
    /// Owner (user or organisation).
    pub org: String,
    /// Repository name.
    pub repo: String,
    /// Branch, tag or commit; `None` means the default branch.
    pub rev: Option<String>,
    /// Path of the file inside the repository (relative, `/`-separated).
    pub file: Option<String>,
}

/// Why a text is not a valid model reference. Each variant names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelRefError {
    /// Nothing to parse, or an empty part such as `hf:/repo` or `::file=`.
    #[error("model reference has an empty {part}")]
    Empty {
        /// Which part is empty.
        part: &'static str,
    },
    /// Longer than [`MAX_MODEL_REF_LEN`] (or a name longer than [`MAX_NAME_LEN`]).
    #[error("model reference {part} is too long ({len} bytes, at most {max})")]
    TooLong {
        /// Which part is too long.
        part: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A NUL or other control character.
    #[error("model reference contains a control character at byte {at}")]
    ControlChar {
        /// Byte offset in the whole text.
        at: usize,
    },
    /// A percent-encoded character (encoded dots and slashes are path tricks).
    #[error("model reference contains percent-encoding at byte {at}; write the character itself")]
    PercentEncoded {
        /// Byte offset in the whole text.
        at: usize,
    },
    /// A `.` or `..` path segment, or an empty segment (`a//b`).
    #[error("model reference {part} has a `{segment}` path segment")]
    BadSegment {
        /// Which part holds it.
        part: &'static str,
        /// The segment (`.`, `..` or empty).
        segment: String,
    },
    /// An absolute path, a backslash or a drive letter after `::file=`.
    #[error("the file after `::file=` must be a relative `/`-separated path, got {0:?}")]
    NotRelative(String),
    /// A `file:` reference whose path is not absolute.
    #[error("a `file:` reference needs an absolute path, got {0:?}")]
    NotAbsolute(String),
    /// A character not allowed in that part.
    #[error("invalid character {ch:?} in model reference {part}")]
    BadChar {
        /// Which part holds it.
        part: &'static str,
        /// The character.
        ch: char,
    },
    /// Wrong overall shape, such as `hf:org` without a repo or an unknown `::` suffix.
    #[error("malformed model reference: {0}")]
    Malformed(&'static str),
}

impl FromStr for ModelRef {
    type Err = ModelRefError;

    fn from_str(s: &str) -> Result<Self, ModelRefError> {
        if s.is_empty() {
            return Err(ModelRefError::Empty { part: "text" });
        }
        if s.len() > MAX_MODEL_REF_LEN {
            return Err(ModelRefError::TooLong {
                part: "text",
                len: s.len(),
                max: MAX_MODEL_REF_LEN,
            });
        }
        if let Some((at, _)) = s.char_indices().find(|(_, c)| c.is_control()) {
            return Err(ModelRefError::ControlChar { at });
        }
        if let Some(rest) = s.strip_prefix("hf:") {
            if let Some(at) = s.find('%') {
                return Err(ModelRefError::PercentEncoded { at });
            }
            parse_hf(rest).map(ModelRef::Hf)
        } else if let Some(rest) = s.strip_prefix("file:") {
            parse_file(s, rest).map(ModelRef::File)
        } else {
            if let Some(at) = s.find('%') {
                return Err(ModelRefError::PercentEncoded { at });
            }
            parse_alias(s).map(ModelRef::Alias)
        }
    }
}

fn parse_hf(rest: &str) -> Result<HfRef, ModelRefError> {
    let (repo_part, file) = match rest.split_once("::") {
        None => (rest, None),
        Some((head, tail)) => {
            let path = tail.strip_prefix("file=").ok_or(ModelRefError::Malformed(
                "the only `::` suffix is `::file=PATH`",
            ))?;
            (head, Some(parse_repo_file(path)?))
        }
    };
    let (name, rev) = match repo_part.split_once('@') {
        None => (repo_part, None),
        Some((name, rev)) => (name, Some(parse_rev(rev)?)),
    };
    let (org, repo) = name.split_once('/').ok_or(ModelRefError::Malformed(
        "an `hf:` reference is `hf:org/repo`",
    ))?;
    Ok(HfRef {
        org: parse_name("org", org)?,
        repo: parse_name("repo", repo)?,
        rev,
        file,
    })
}

/// A Hub name: `[A-Za-z0-9._-]`, not starting or ending with `.`/`-`, no `--` or `..`.
fn parse_name(part: &'static str, s: &str) -> Result<String, ModelRefError> {
    if s.is_empty() {
        return Err(ModelRefError::Empty { part });
    }
    if s.len() > MAX_NAME_LEN {
        return Err(ModelRefError::TooLong {
            part,
            len: s.len(),
            max: MAX_NAME_LEN,
        });
    }
    if let Some(ch) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(ModelRefError::BadChar { part, ch });
    }
    let edge = |c: char| matches!(c, '.' | '-');
    if s.starts_with(edge) || s.ends_with(edge) || s.contains("--") || s.contains("..") {
        return Err(ModelRefError::Malformed(
            "org and repo names may not start or end with `.`/`-` or contain `--`/`..`",
        ));
    }
    Ok(s.to_owned())
}

/// A revision: `/`-separated segments of `[A-Za-z0-9._-]`, no `.`/`..`/empty segments.
fn parse_rev(s: &str) -> Result<String, ModelRefError> {
    check_segments("revision", s, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
    })?;
    Ok(s.to_owned())
}

/// The file inside a repository: relative, `/`-separated, no backslash or drive letter.
fn parse_repo_file(s: &str) -> Result<String, ModelRefError> {
    if s.is_empty() {
        return Err(ModelRefError::Empty { part: "file" });
    }
    if s.starts_with('/') || s.contains('\\') || s.contains(':') {
        return Err(ModelRefError::NotRelative(s.to_owned()));
    }
    check_segments("file", s, |c| c != '\\')?;
    Ok(s.to_owned())
}

/// Checks every `/`-separated segment: non-empty, not `.`/`..`, allowed chars only.
fn check_segments(
    part: &'static str,
    s: &str,
    allowed: impl Fn(char) -> bool,
) -> Result<(), ModelRefError> {
    if s.is_empty() {
        return Err(ModelRefError::Empty { part });
    }
    for seg in s.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(ModelRefError::BadSegment {
                part,
                segment: seg.to_owned(),
            });
        }
        if let Some(ch) = seg.chars().find(|&c| !allowed(c)) {
            return Err(ModelRefError::BadChar { part, ch });
        }
    }
    Ok(())
}

fn parse_file(whole: &str, path: &str) -> Result<PathBuf, ModelRefError> {
    if path.is_empty() {
        return Err(ModelRefError::Empty { part: "path" });
    }
    if !path.starts_with('/') || path.contains('\\') {
        return Err(ModelRefError::NotAbsolute(path.to_owned()));
    }
    let lower = whole.to_ascii_lowercase();
    for enc in ["%2e", "%2f", "%5c", "%00"] {
        if let Some(i) = lower.find(enc) {
            return Err(ModelRefError::PercentEncoded { at: i });
        }
    }
    if path == "/" || path.ends_with('/') {
        return Err(ModelRefError::Empty { part: "file name" });
    }
    check_segments("path", &path[1..], |_| true)?;
    Ok(PathBuf::from(path))
}

/// An alias: `name[:tag]`, each of `[A-Za-z0-9._-]` not starting with `.`/`-`.
fn parse_alias(s: &str) -> Result<String, ModelRefError> {
    let (name, tag) = match s.split_once(':') {
        None => (s, None),
        Some((n, t)) => (n, Some(t)),
    };
    for (part, text) in [("alias", Some(name)), ("alias tag", tag)] {
        let Some(text) = text else { continue };
        if text.is_empty() {
            return Err(ModelRefError::Empty { part });
        }
        if text.len() > MAX_NAME_LEN {
            return Err(ModelRefError::TooLong {
                part,
                len: text.len(),
                max: MAX_NAME_LEN,
            });
        }
        if let Some(ch) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(ModelRefError::BadChar { part, ch });
        }
        if text.starts_with(['.', '-']) || text.contains("..") {
            return Err(ModelRefError::Malformed(
                "alias parts may not start with `.`/`-` or contain `..`",
            ));
        }
    }
    Ok(s.to_owned())
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Hf(h) => {
                write!(f, "hf:{}/{}", h.org, h.repo)?;
                if let Some(rev) = &h.rev {
                    write!(f, "@{rev}")?;
                }
                if let Some(file) = &h.file {
                    write!(f, "::file={file}")?;
                }
                Ok(())
            }
            ModelRef::File(p) => write!(f, "file:{}", p.display()),
            ModelRef::Alias(a) => f.write_str(a),
        }
    }
}

impl ModelRef {
    /// True for the forms a pool manager accepts (`hf:` and `file:`), false for aliases.
    pub fn is_canonical(&self) -> bool {
        !matches!(self, ModelRef::Alias(_))
    }

    /// Where an `hf:` reference lives under a cache root:
    /// `root/hf/{org}--{repo}/{rev or "main"}/{file}`, with `/` in a revision written `%2F`.
    ///
    /// The result always lies inside `root` (a property test checks it). `file:` refs
    /// are not cached and aliases must be resolved first: both give `None`, as does an
    /// `hf:` ref that names no file.
    pub fn cache_path(&self, root: &Path) -> Option<PathBuf> {
        let ModelRef::Hf(h) = self else { return None };
        let file = h.file.as_ref()?;
        let rev = h.rev.as_deref().unwrap_or("main").replace('/', "%2F");
        let mut p = root.join("hf");
        p.push(format!("{}--{}", h.org, h.repo));
        p.push(rev);
        for seg in file.split('/') {
            p.push(seg);
        }
        Some(p)
    }
}

impl Serialize for ModelRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> ModelRef {
        s.parse().unwrap_or_else(|e| panic!("{s:?} rejected: {e}"))
    }

    #[test]
    fn accepts_the_three_forms() {
        let r = ok("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF@v1.0::file=sub/dir/q4_k_m.gguf");
        let ModelRef::Hf(h) = &r else { panic!() };
        assert_eq!(
            (h.org.as_str(), h.repo.as_str()),
            ("Qwen", "Qwen2.5-0.5B-Instruct-GGUF")
        );
        assert_eq!(h.rev.as_deref(), Some("v1.0"));
        assert_eq!(h.file.as_deref(), Some("sub/dir/q4_k_m.gguf"));
        assert!(r.is_canonical());
        assert_eq!(ok("hf:a/b").to_string(), "hf:a/b");
        assert_eq!(ok("hf:a/b@refs/pr/1").to_string(), "hf:a/b@refs/pr/1");
        assert_eq!(
            ok("file:/models/x.gguf"),
            ModelRef::File("/models/x.gguf".into())
        );
        assert_eq!(ok("gemma3:270m"), ModelRef::Alias("gemma3:270m".into()));
        assert!(!ok("demo").is_canonical());
    }

    #[test]
    fn rejects_with_typed_errors() {
        use ModelRefError as E;
        type Check = fn(&E) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, E::Empty { .. })),
            ("hf:", |e| matches!(e, E::Malformed(_))),
            ("hf:/repo", |e| matches!(e, E::Empty { part: "org" })),
            ("hf:org/", |e| matches!(e, E::Empty { part: "repo" })),
            ("hf:org/repo@", |e| {
                matches!(e, E::Empty { part: "revision" })
            }),
            ("hf:org/repo::file=", |e| {
                matches!(e, E::Empty { part: "file" })
            }),
            ("hf:org/repo::file=../x.gguf", |e| {
                matches!(e, E::BadSegment { .. })
            }),
            ("hf:org/repo::file=a/../../x", |e| {
                matches!(e, E::BadSegment { .. })
            }),
            ("hf:org/repo::file=a//x", |e| {
                matches!(e, E::BadSegment { .. })
            }),
            ("hf:org/repo::file=./x", |e| {
                matches!(e, E::BadSegment { .. })
            }),
            ("hf:org/repo::file=/etc/passwd", |e| {
                matches!(e, E::NotRelative(_))
            }),
            ("hf:org/repo::file=a\\b", |e| matches!(e, E::NotRelative(_))),
            ("hf:org/repo::file=C:x", |e| matches!(e, E::NotRelative(_))),
            ("hf:org/repo::file=%2e%2e/x", |e| {
                matches!(e, E::PercentEncoded { .. })
            }),
            ("hf:org/repo@..::file=x", |e| {
                matches!(e, E::BadSegment { .. })
            }),
            ("hf:org/repo::rev=x", |e| matches!(e, E::Malformed(_))),
            ("hf:../repo", |e| matches!(e, E::Malformed(_))),
            ("hf:org/re po", |e| matches!(e, E::BadChar { ch: ' ', .. })),
            ("hf:org/repo/extra", |e| {
                matches!(e, E::BadChar { ch: '/', .. })
            }),
            ("hf:org/a--b", |e| matches!(e, E::Malformed(_))),
            ("hf:org/repo\0", |e| matches!(e, E::ControlChar { at: 11 })),
            ("file:models/x.gguf", |e| matches!(e, E::NotAbsolute(_))),
            ("file:", |e| matches!(e, E::Empty { .. })),
            ("file:/", |e| matches!(e, E::Empty { .. })),
            ("file:/a/../etc/passwd", |e| {
                matches!(e, E::BadSegment { .. })
            }),
            ("file:/a/%2E%2E/x", |e| {
                matches!(e, E::PercentEncoded { .. })
            }),
            ("file:/a/b\n", |e| matches!(e, E::ControlChar { .. })),
            ("file:/a\\b", |e| matches!(e, E::NotAbsolute(_))),
            ("../x", |e| matches!(e, E::BadChar { ch: '/', .. })),
            ("a%2e", |e| matches!(e, E::PercentEncoded { .. })),
            ("name:", |e| matches!(e, E::Empty { part: "alias tag" })),
            ("-x", |e| matches!(e, E::Malformed(_))),
        ];
        for (text, pred) in cases {
            let err = text.parse::<ModelRef>().expect_err(text);
            assert!(pred(&err), "{text:?} gave {err:?}");
            assert!(!err.to_string().is_empty());
        }
        let long = format!("hf:o/{}", "r".repeat(2000));
        assert!(matches!(
            long.parse::<ModelRef>(),
            Err(ModelRefError::TooLong { .. })
        ));
    }

    #[test]
    fn cache_paths() {
        let root = Path::new("/cache");
        let r = ok("hf:org/repo@refs/pr/1::file=dir/m.gguf");
        assert_eq!(
            r.cache_path(root).unwrap(),
            Path::new("/cache/hf/org--repo/refs%2Fpr%2F1/dir/m.gguf")
        );
        assert_eq!(
            ok("hf:org/repo::file=m.gguf").cache_path(root).unwrap(),
            Path::new("/cache/hf/org--repo/main/m.gguf")
        );
        assert_eq!(ok("hf:org/repo").cache_path(root), None);
        assert_eq!(ok("file:/x.gguf").cache_path(root), None);
        assert_eq!(ok("alias").cache_path(root), None);
    }

    #[test]
    fn serde_round_trip() {
        let r = ok("hf:a/b::file=c.gguf");
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, "\"hf:a/b::file=c.gguf\"");
        assert_eq!(serde_json::from_str::<ModelRef>(&j).unwrap(), r);
        assert!(serde_json::from_str::<ModelRef>("\"hf:a/../b\"").is_err());
    }
}
