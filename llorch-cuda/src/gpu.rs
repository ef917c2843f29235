//! One GPU: its context, stream and compiled kernels, memory helpers, and
//! validated index buffers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, CudaView, CudaViewMut, DeviceRepr,
    ValidAsZeroBits,
};

use crate::compile::compile_cached;
use crate::error::{CudaError, Result};
use crate::kernels::{Kernel, source};

/// Whether the CUDA driver library can be loaded here.
pub fn driver_available() -> bool {
    // SAFETY: only tries to open the shared library; no function of it is called.
    #[allow(unsafe_code)]
    unsafe {
        cudarc::driver::sys::is_culib_present()
    }
}

/// Number of CUDA devices (0 without a driver).
pub fn device_count() -> usize {
    if !driver_available() {
        return 0;
    }
    CudaContext::device_count().map_or(0, |n| n.max(0) as usize)
}

/// A GPU with the kernels loaded, and one stream every launch goes to.
pub struct Gpu {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    funcs: HashMap<Kernel, CudaFunction>,
    name: String,
    arch: String,
    ordinal: usize,
    major: i32,
    sms: usize,
    /// Most shared memory a block may opt in to.
    smem_optin: usize,
    tensor_cores: bool,
    decode: crate::ops::DecodeProducts,
    wide: crate::ops::WideProducts,
    overlap: bool,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Gpu {
    /// Opens device `ordinal` and loads the kernels, compiling them with NVRTC unless
    /// `cache_dir` holds them for this source and architecture.
    pub fn open(ordinal: usize, cache_dir: Option<&Path>) -> Result<Self> {
        if !driver_available() {
            return Err(CudaError::NoDriver);
        }
        let count = device_count();
        if ordinal >= count {
            return Err(CudaError::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal)?;
        // One stream, so the per-buffer event tracking cudarc does for several streams
        // is not needed.
        // SAFETY: every launch and copy of this crate goes to the one stream below.
        #[allow(unsafe_code)]
        unsafe {
            ctx.disable_event_tracking();
        }
        // An owned stream (the legacy default stream cannot be captured into graphs).
        let stream = ctx.new_stream()?;
        let name = ctx.name()?;
        let (major, minor) = ctx.compute_capability()?;
        let sms = ctx.attribute(
            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
        )?;
        let smem_optin = ctx.attribute(
            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
        )?;
        let smem_optin = usize::try_from(smem_optin).unwrap_or(0);
        // Hopper's own instructions need the `a` target.
        let arch = if major == 9 {
            format!("sm_{major}{minor}a")
        } else {
            format!("sm_{major}{minor}")
        };
        let ptx = compile_cached(&source(), &arch, cache_dir)?;
        let module = ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx))?;
        let mut funcs = HashMap::new();
        for k in Kernel::all() {
            let f = module.load_function(&k.symbol())?;
            // Kernels taking more than the default 48 KiB of dynamic shared memory
            // (the staged products); where the device has less they are never chosen
            // (`Gpu::smem_fits`).
            let dynamic = match k {
                Kernel::QmmS { fmt, rows, tile } => Some(crate::ops::staged_smem(fmt, rows, tile)),
                Kernel::QmvS { fmt, rows, .. } => Some(crate::ops::kd_smem(fmt, rows)),
                _ => None,
            };
            if let Some(bytes) = dynamic
                && bytes <= smem_optin
            {
                f.set_attribute(
                    cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    i32::try_from(bytes).unwrap_or(i32::MAX),
                )?;
            }
            funcs.insert(k, f);
        }
        Ok(Self {
            ctx,
            stream,
            funcs,
            major,
            sms: usize::try_from(sms).unwrap_or(1).max(1),
            smem_optin,
            tensor_cores: major >= 8,
            decode: crate::ops::DecodeProducts::default(),
            wide: crate::ops::WideProducts::default(),
            overlap: major >= 9,
            name,
            arch,
            ordinal,
        })
    }

    /// Chooses the matrix kernels: tensor cores (the default from sm_80 on) or f32
    /// lanes. Fixed for the life of a model: the two give different bits.
    pub fn set_tensor_cores(&mut self, on: bool) -> bool {
        self.tensor_cores = on && self.major >= 8;
        self.tensor_cores
    }

    /// Sets when integer products take the decode kernels (the same bits either way:
    /// a benchmarking and testing knob). Returns the setting in force (at most 2
    /// tokens; 1, 2 or 4 rows per warp).
    pub fn set_decode_products(
        &mut self,
        d: crate::ops::DecodeProducts,
    ) -> crate::ops::DecodeProducts {
        self.decode = crate::ops::DecodeProducts {
            max_tokens: d.max_tokens.min(2),
            rows_per_warp: d.rows_per_warp.filter(|r| [1, 2, 4].contains(r)),
            staged: d.staged,
        };
        self.decode
    }

    /// Whether captured graphs let each kernel start while the previous one finishes
    /// (programmatic edges, graph.rs; sm_90 on). The same bits either way.
    pub fn graph_overlap(&self) -> bool {
        self.overlap
    }

    /// Turns graph overlap on or off (on only from sm_90); returns the setting in
    /// force. Applies to graphs captured afterwards.
    pub fn set_graph_overlap(&mut self, on: bool) -> bool {
        self.overlap = on && self.major >= 9;
        self.overlap
    }

    /// Sets which kernel takes integer products too wide for the decode kernels (the
    /// same bits either way: a benchmarking and testing knob).
    pub fn set_wide_products(&mut self, w: crate::ops::WideProducts) {
        self.wide = w;
    }

    /// Which kernel takes integer products too wide for the decode kernels.
    pub fn wide_products(&self) -> crate::ops::WideProducts {
        self.wide
    }

    /// When integer products take the decode kernels.
    pub fn decode_products(&self) -> crate::ops::DecodeProducts {
        self.decode
    }

    /// Whether the device gives a block `bytes` of shared memory (opting in).
    pub fn smem_fits(&self, bytes: usize) -> bool {
        bytes <= self.smem_optin
    }

    /// Streaming multiprocessors of the device.
    pub fn sms(&self) -> usize {
        self.sms
    }

    /// Whether matrix products use tensor cores.
    pub fn tensor_cores(&self) -> bool {
        self.tensor_cores
    }

    /// `cuda:N <name> (<arch>)`.
    pub fn describe(&self) -> String {
        format!("cuda:{} {} ({})", self.ordinal, self.name, self.arch)
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The compile target (`sm_90a`, …).
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// (free, total) device memory in bytes.
    pub fn mem_info(&self) -> Result<(u64, u64)> {
        let (free, total) = self.ctx.mem_get_info()?;
        Ok((free as u64, total as u64))
    }

    /// Fails with [`CudaError::OutOfMemory`] unless `need` bytes are free.
    pub fn ensure_free(&self, need: u64, what: &str) -> Result<()> {
        let (free, _) = self.mem_info()?;
        if need > free {
            return Err(self.oom(need, free, what));
        }
        Ok(())
    }

    fn oom(&self, need: u64, free: u64, what: &str) -> CudaError {
        CudaError::OutOfMemory {
            device: self.describe(),
            need,
            free,
            what: what.to_owned(),
        }
    }

    /// `n` zeroed values in device memory (never managed or host memory: SYS-0002).
    pub fn alloc<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> Result<CudaSlice<T>> {
        self.stream.alloc_zeros::<T>(n.max(1)).map_err(|e| {
            let need = (n.max(1) * std::mem::size_of::<T>()) as u64;
            match self.mem_info() {
                Ok((free, _)) if need > free => self.oom(need, free, "a buffer"),
                _ => e.into(),
            }
        })
    }

    /// A device copy of `src`.
    pub fn upload<T: DeviceRepr>(&self, src: &[T]) -> Result<CudaSlice<T>> {
        if src.is_empty() {
            return Err(CudaError::Shape {
                kernel: "upload",
                why: "empty buffer".into(),
            });
        }
        Ok(self.stream.clone_htod(src)?)
    }

    /// Copies `src` into the start of `dst`.
    pub fn write<T: DeviceRepr>(&self, src: &[T], dst: &mut CudaSlice<T>) -> Result<()> {
        if src.len() > dst.len() {
            return Err(CudaError::Shape {
                kernel: "write",
                why: format!("{} values into a buffer of {}", src.len(), dst.len()),
            });
        }
        if src.is_empty() {
            return Ok(());
        }
        let mut view = dst.slice_mut(..src.len());
        self.stream.memcpy_htod(src, &mut view)?;
        Ok(())
    }

    /// Copies `src` into the start of the view `dst`.
    pub fn write_view<T: DeviceRepr>(&self, src: &[T], dst: &mut CudaViewMut<'_, T>) -> Result<()> {
        if src.len() > dst.len() {
            return Err(CudaError::Shape {
                kernel: "write",
                why: format!("{} values into a view of {}", src.len(), dst.len()),
            });
        }
        if src.is_empty() {
            return Ok(());
        }
        let mut view = dst.slice_mut(..src.len());
        self.stream.memcpy_htod(src, &mut view)?;
        Ok(())
    }

    /// Copies `src` into `dst` (same length) and waits for it.
    pub fn read<T: DeviceRepr>(&self, src: &CudaView<'_, T>, dst: &mut [T]) -> Result<()> {
        if src.len() != dst.len() {
            return Err(CudaError::Shape {
                kernel: "read",
                why: format!("{} values into {}", src.len(), dst.len()),
            });
        }
        self.stream.memcpy_dtoh(src, dst)?;
        self.stream.synchronize()?;
        Ok(())
    }

    /// Waits for all work queued so far.
    pub fn sync(&self) -> Result<()> {
        Ok(self.stream.synchronize()?)
    }

    /// A mark in the stream; [`Mark::ms_since`] gives device time between two marks.
    pub fn mark(&self) -> Result<Mark> {
        Ok(Mark(self.stream.record_event(Some(
            cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT,
        ))?))
    }

    pub(crate) fn func(&self, k: Kernel) -> &CudaFunction {
        // Every kernel of `Kernel::all()` was loaded by `open`.
        #[allow(clippy::unwrap_used)]
        self.funcs.get(&k).unwrap()
    }
}

/// A recorded point of the stream ([`Gpu::mark`]).
#[derive(Debug)]
pub struct Mark(cudarc::driver::CudaEvent);

impl Mark {
    /// Device milliseconds from `earlier` to this mark (waits for this mark).
    pub fn ms_since(&self, earlier: &Mark) -> Result<f32> {
        self.0.synchronize()?;
        Ok(earlier.0.elapsed_ms(&self.0)?)
    }
}

/// Indices in device memory, all checked on the host to be below `bound`: kernels
/// that index with them stay inside buffers of `bound` entries.
#[derive(Debug)]
pub struct IndexBuf {
    buf: Option<CudaSlice<i32>>,
    host: Vec<i32>,
    bound: u32,
    generation: u64,
}

impl Default for IndexBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl IndexBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self {
            buf: None,
            host: Vec::new(),
            bound: 0,
            generation: 0,
        }
    }

    /// Makes room for `n` indices, so later [`IndexBuf::set`] calls up to `n` keep the
    /// same device buffer (graphs captured with it stay valid).
    pub fn reserve(&mut self, gpu: &Gpu, n: usize) -> Result<()> {
        let cap = self.buf.as_ref().map_or(0, |b| b.len());
        if cap < n {
            self.buf = Some(gpu.alloc::<i32>(n.next_power_of_two())?);
            self.generation += 1;
        }
        Ok(())
    }

    /// Changes whenever the device buffer moves.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Replaces the contents with `vals` after checking each is below `bound`.
    pub fn set(&mut self, gpu: &Gpu, vals: &[u32], bound: u32) -> Result<()> {
        if let Some(v) = vals.iter().find(|&&v| v >= bound || v > i32::MAX as u32) {
            return Err(CudaError::Shape {
                kernel: "index",
                why: format!("index {v} not below {bound}"),
            });
        }
        self.host.clear();
        self.host.extend(vals.iter().map(|&v| v as i32));
        self.reserve(gpu, vals.len())?;
        if let Some(b) = self.buf.as_mut() {
            gpu.write(&self.host, b)?;
        }
        self.bound = bound;
        Ok(())
    }

    /// Number of indices.
    pub fn len(&self) -> usize {
        self.host.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
    }

    /// Every index is below this.
    pub fn bound(&self) -> u32 {
        self.bound
    }

    /// The indices as set (host copy).
    pub fn values(&self) -> &[i32] {
        &self.host
    }

    pub(crate) fn device(&self) -> Result<&CudaSlice<i32>> {
        self.buf.as_ref().ok_or(CudaError::Shape {
            kernel: "index",
            why: "index buffer never set".into(),
        })
    }
}
