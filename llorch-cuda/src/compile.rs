//! Compiling the kernels with NVRTC, cached on disk by (source hash, GPU arch).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{CudaError, Result};

/// Compiler options (part of the cache key).
const OPTIONS: &[&str] = &["--std=c++17", "--fmad=true"];

/// Whether NVRTC can be loaded on this machine.
pub fn compiler_available() -> bool {
    // SAFETY: only tries to open the shared library; no function of it is called.
    #[allow(unsafe_code)]
    unsafe {
        cudarc::nvrtc::sys::is_culib_present()
    }
}

/// The cache file of `source` compiled for `arch` under `dir`.
pub fn cache_path(dir: &Path, source: &str, arch: &str) -> PathBuf {
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    for o in OPTIONS {
        h.update(o.as_bytes());
    }
    h.update(arch.as_bytes());
    let hex: String = h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!("llorch-kernels-{hex}-{arch}.ptx"))
}

/// Compiles `source` for `arch` (`sm_90a`, …) to PTX with NVRTC.
pub fn compile(source: &str, arch: &str) -> Result<String> {
    if !compiler_available() {
        return Err(CudaError::NoCompiler);
    }
    let arch_static: &'static str = match arch {
        "sm_80" => "sm_80",
        "sm_86" => "sm_86",
        "sm_89" => "sm_89",
        "sm_90" => "sm_90",
        "sm_90a" => "sm_90a",
        "sm_100" => "sm_100",
        "sm_120" => "sm_120",
        // Rare architectures: one small leak per process, on a path taken once.
        other => Box::leak(other.to_owned().into_boxed_str()),
    };
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(arch_static),
        options: OPTIONS.iter().map(|s| (*s).to_owned()).collect(),
        name: Some("llorch_kernels.cu".into()),
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(source, opts)
        .map(|p| p.to_src())
        .map_err(|e| CudaError::Compile {
            arch: arch.to_owned(),
            log: format!("{e:?}"),
        })
}

/// The PTX of `source` for `arch`: from the cache under `dir` when present, else
/// compiled and written there (atomically; a failed write only costs the cache).
pub fn compile_cached(source: &str, arch: &str, dir: Option<&Path>) -> Result<String> {
    let path = dir.map(|d| cache_path(d, source, arch));
    if let Some(p) = &path
        && let Ok(ptx) = std::fs::read_to_string(p)
        && ptx.contains(".entry")
    {
        return Ok(ptx);
    }
    let ptx = compile(source, arch)?;
    if let Some(p) = &path
        && let Some(d) = p.parent()
        && std::fs::create_dir_all(d).is_ok()
    {
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &ptx).is_ok() {
            let _ = std::fs::rename(&tmp, p);
        }
    }
    Ok(ptx)
}
