//! Page-locked host buffers for copies back from the device that do not wait one by
//! one: queue several [`Gpu::read_async`], then read each with [`Staging::get`].
#![allow(unsafe_code)]

use cudarc::driver::{
    CudaEvent, CudaView, DevicePtr, DeviceRepr, PinnedHostSlice, ValidAsZeroBits,
};

use crate::error::{CudaError, Result};
use crate::gpu::Gpu;

/// A page-locked host buffer (it only receives copies from the device; compute never
/// reads host memory, SYS-0002), with the event that marks its last copy done.
pub struct Staging<T> {
    buf: Option<PinnedHostSlice<T>>,
    done: Option<CudaEvent>,
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
        Self {
            buf: None,
            done: None,
            len: 0,
        }
    }
}

impl<T: DeviceRepr + ValidAsZeroBits> Staging<T> {
    /// Values it holds room for.
    pub fn capacity(&self) -> usize {
        self.buf.as_ref().map_or(0, PinnedHostSlice::len)
    }

    /// Waits for the last copy into it, then gives its values.
    pub fn get(&self) -> Result<&[T]> {
        self.wait()?;
        match &self.buf {
            // SAFETY: the copy that wrote the first `len` values has completed (waited
            // above) and nothing writes the buffer until the next `read_async`, which
            // needs `&mut self`.
            Some(b) => Ok(unsafe { std::slice::from_raw_parts(b.as_ptr()?, self.len) }),
            None => Ok(&[]),
        }
    }

    fn wait(&self) -> Result<()> {
        if let Some(e) = &self.done {
            e.synchronize()?;
        }
        Ok(())
    }
}

impl<T> Drop for Staging<T> {
    fn drop(&mut self) {
        // The buffer must outlive any copy into it still in flight.
        if let Some(e) = &self.done {
            let _ = e.synchronize();
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
        // The previous copy into it must be done before its memory is reused or freed.
        dst.wait()?;
        dst.len = 0;
        if dst.capacity() < n {
            let cap = n.next_power_of_two();
            // SAFETY: plain page-locked memory (no write-combining: the host reads it);
            // its contents are only read after a copy into it has completed.
            let b = unsafe { self.ctx.alloc_pinned_with_flags::<T>(cap, 0) }
                .map_err(|e| CudaError::Driver(format!("page-locked buffer of {cap}: {e:?}")))?;
            dst.buf = Some(b);
        }
        if dst.done.is_none() {
            dst.done = Some(self.ctx.new_event(None)?);
        }
        if n == 0 {
            return Ok(());
        }
        let (Some(b), Some(done)) = (dst.buf.as_mut(), dst.done.as_ref()) else {
            return Ok(());
        };
        let (src_ptr, _src_sync) = src.device_ptr(&self.stream);
        // SAFETY: the buffer holds at least `n` values (grown above) and no copy into
        // it is in flight (waited above); exactly `n` values are copied from `src`,
        // which holds `n`; the event recorded after the copy marks it done.
        unsafe {
            let host = std::slice::from_raw_parts_mut(b.as_mut_ptr()?, n);
            cudarc::driver::result::memcpy_dtoh_async(host, src_ptr, self.stream.cu_stream())?;
        }
        done.record(&self.stream)?;
        dst.len = n;
        Ok(())
    }
}
