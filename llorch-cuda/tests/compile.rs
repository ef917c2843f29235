//! The kernels compile with NVRTC for the GPUs we target (no GPU needed).
//!
//! CI installs NVRTC from PyPI (`nvidia-cuda-nvrtc`) and sets `LLORCH_REQUIRE_NVRTC=1`,
//! so a syntax error in a `.cu` file fails CI; elsewhere the test says it skipped.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use llorch_cuda::compile::{cache_path, compile, compile_cached, compiler_available};
use llorch_cuda::kernels::source;
use llorch_cuda::{CudaError, Kernel};

fn nvrtc_or_skip() -> bool {
    if compiler_available() {
        return true;
    }
    assert!(
        std::env::var_os("LLORCH_REQUIRE_NVRTC").is_none(),
        "LLORCH_REQUIRE_NVRTC is set but libnvrtc cannot be loaded"
    );
    eprintln!("skipped: libnvrtc not available");
    false
}

#[test]
fn kernels_compile_for_hopper_and_ampere_with_every_entry_point() {
    if !nvrtc_or_skip() {
        return;
    }
    for arch in ["sm_90a", "sm_80"] {
        let ptx = compile(&source(), arch).unwrap_or_else(|e| panic!("{e}"));
        for k in Kernel::all() {
            let entry = format!(".entry {}(", k.symbol());
            assert!(ptx.contains(&entry), "{arch}: no {entry}");
        }
        // No register array spilled to local memory in any kernel (the math library's
        // slow path for huge trigonometric arguments is a separate function).
        for body in ptx.split(".visible .entry").skip(1) {
            let body = body.split("\n.func").next().unwrap_or(body);
            let name = body.split('(').next().unwrap_or("?").trim();
            assert!(!body.contains(".local"), "{arch}: local memory in {name}");
        }
    }
}

#[test]
fn compiled_kernels_are_cached_by_source_and_arch() {
    if !nvrtc_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source();
    let a = compile_cached(&src, "sm_90a", Some(dir.path())).unwrap();
    let p = cache_path(dir.path(), &src, "sm_90a");
    assert!(p.exists());
    assert_ne!(p, cache_path(dir.path(), &src, "sm_80"));
    assert_ne!(p, cache_path(dir.path(), &format!("{src}\n"), "sm_90a"));
    // A second call reads the file: poison it and see the poison come back.
    let poisoned = format!("{a}\n// .entry cached");
    std::fs::write(&p, &poisoned).unwrap();
    assert_eq!(
        compile_cached(&src, "sm_90a", Some(dir.path())).unwrap(),
        poisoned
    );
}

#[test]
fn a_broken_kernel_is_a_compile_error_with_the_log() {
    if !nvrtc_or_skip() {
        return;
    }
    match compile(
        "extern \"C\" __global__ void k() { undefined_thing(); }",
        "sm_90a",
    ) {
        Err(CudaError::Compile { arch, log }) => {
            assert_eq!(arch, "sm_90a");
            assert!(log.contains("undefined_thing"), "{log}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_a_gpu_opening_one_is_a_typed_error() {
    if llorch_cuda::device_count() > 0 {
        return; // this machine has a GPU: the GPU tests cover it
    }
    let e = llorch_cuda::Gpu::open(0, None).unwrap_err();
    assert!(
        matches!(e, CudaError::NoDriver | CudaError::NoDevice { .. }),
        "{e:?}"
    );
}
