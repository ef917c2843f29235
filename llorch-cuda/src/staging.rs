//! Page-locked host buffers for copies back from the device that do not wait one by
//! one: queue several [`Gpu::read_async`], then one [`Gpu::sync`].
#![allow(unsafe_code)]

use cudarc::driver::{CudaView, DeviceRepr, PinnedHostSlice, ValidAsZeroBits};

use crate::error::{CudaError, Result};
use crate::gpu::Gpu;

/// A page-locked host buffer (it only receives copies from the device; compute never
/// reads host memory, SYS-0002).
pub struct Staging<T> {
    buf: Option<PinnedHostSlice<T>>,
    len: usize,
}

impl<T> std::fmt::Debug for Staging<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cap = self.buf.as_ref().map_or(0, PinnedHostSlice::len);
        write!(f, "Staging({} of {cap})", self.len)
    }
}

impl<T> Default for Staging<T> {
    fn default() -> Self {
        Self { buf: None, len: 0 }
    }
}

impl<T: DeviceRepr + ValidAsZeroBits> Staging<T> {
    /// Values it holds room for.
    pub fn capacity(&self) -> usize {
        self.buf.as_ref().map_or(0, PinnedHostSlice::len)
    }

    /// The values of the last copy into it, once that copy is done.
    pub fn get(&self) -> Result<&[T]> {
        match &self.buf {
            Some(b) => Ok(&b.as_slice()?[..self.len]),
            None => Ok(&[]),
        }
    }
}

impl Gpu {
    /// Queues a copy of `src` into `dst` (grown to fit, page-locked) without waiting;
    /// [`Staging::get`] waits for it.
    pub fn read_async<T: DeviceRepr + ValidAsZeroBits>(
        &self,
        src: &CudaView<'_, T>,
        dst: &mut Staging<T>,
    ) -> Result<()> {
        let n = src.len();
        if dst.capacity() < n {
            let cap = n.next_power_of_two();
            // SAFETY: plain page-locked memory (no write-combining: the host reads it);
            // its contents are only read after a copy into it has completed.
            let b = unsafe { self.ctx.alloc_pinned_with_flags::<T>(cap, 0) }
                .map_err(|e| CudaError::Driver(format!("page-locked buffer of {cap}: {e:?}")))?;
            dst.buf = Some(b);
        }
        dst.len = n;
        if n == 0 {
            return Ok(());
        }
        if let Some(b) = dst.buf.as_mut() {
            // Fills the first `n` values (the buffer is at least that long).
            self.stream.memcpy_dtoh(src, b)?;
        }
        Ok(())
    }
}
