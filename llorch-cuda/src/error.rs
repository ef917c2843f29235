//! The one error type of the crate.

/// What can go wrong on the GPU path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CudaError {
    /// The CUDA driver library (`libcuda`) is not installed or cannot be loaded.
    #[error("the CUDA driver (libcuda) is not available on this machine")]
    NoDriver,
    /// The run-time compiler library (`libnvrtc`) is not installed.
    #[error("the CUDA run-time compiler (libnvrtc) is not available on this machine")]
    NoCompiler,
    /// No device with this ordinal.
    #[error("no CUDA device {ordinal} ({count} present)")]
    NoDevice {
        /// The ordinal asked for.
        ordinal: usize,
        /// Devices present.
        count: usize,
    },
    /// The kernels failed to compile (a bug in a `.cu` source, or an unsupported GPU).
    #[error("compiling the CUDA kernels for {arch} failed: {log}")]
    Compile {
        /// Target architecture.
        arch: String,
        /// The compiler's log.
        log: String,
    },
    /// Not enough free device memory (SYS-0002: no host fallback).
    #[error("not enough memory on {device}: {need} bytes needed, {free} bytes free ({what})")]
    OutOfMemory {
        /// The device.
        device: String,
        /// Bytes needed.
        need: u64,
        /// Bytes free on the device.
        free: u64,
        /// What the memory was for.
        what: String,
    },
    /// Arguments of a launch that do not fit together (caught before launching).
    #[error("invalid launch of {kernel}: {why}")]
    Shape {
        /// The kernel.
        kernel: &'static str,
        /// What is wrong.
        why: String,
    },
    /// An error reported by the driver.
    #[error("CUDA driver error: {0}")]
    Driver(String),
}

impl From<cudarc::driver::DriverError> for CudaError {
    fn from(e: cudarc::driver::DriverError) -> Self {
        Self::Driver(e.to_string())
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, CudaError>;
