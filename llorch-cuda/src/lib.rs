//! Hand-written CUDA kernels and their safe launchers.
//!
//! Kernels live as `.cu` sources embedded in the crate, are compiled with NVRTC
//! at start-up and cached by (source hash, GPU arch). The crate always compiles
//! without CUDA installed: the driver is loaded at run time. It knows nothing
//! about models; `llorch-worker` builds its CUDA backend from these kernels.
