//! Captured launch sequences (CUDA graphs) whose kernels overlap their neighbours.
//!
//! A decode step is a few hundred small launches; between two of them the card drains
//! the first and then starts the second. [`Gpu::capture`] records the launches and,
//! with overlap on (the default from sm_90), turns every kernel-to-kernel edge into a
//! programmatic one: the next kernel is scheduled while the previous one runs, and
//! waits (`grid_start`, common.cuh) for it to finish before touching memory. The
//! launches and their order are unchanged, and so are the bits.
#![allow(unsafe_code)]

use std::ptr;
use std::sync::Arc;

use cudarc::driver::CudaContext;
use cudarc::driver::sys::{
    self, CUgraph, CUgraphDependencyType, CUgraphEdgeData, CUgraphExec, CUgraphNode,
    CUgraphNodeType, CUstreamCaptureMode,
};

use crate::error::{CudaError, Result};
use crate::gpu::Gpu;

/// A captured sequence of launches ([`Gpu::capture`]), replayed by [`Gpu::replay`].
pub struct Graph {
    graph: CUgraph,
    exec: CUgraphExec,
    ctx: Arc<CudaContext>,
}

// SAFETY: a graph is only launched through `&Gpu::replay`, which binds the context
// to the calling thread first; moving the handles between threads is allowed by CUDA.
unsafe impl Send for Graph {}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Graph")
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // Errors here cannot be reported; the handles are ours and destroyed once.
        let _ = self.ctx.bind_to_thread();
        // SAFETY: `exec` and `graph` were created by `capture` and are not used again.
        unsafe {
            if !self.exec.is_null() {
                let _ = sys::cuGraphExecDestroy(self.exec);
            }
            let _ = sys::cuGraphDestroy(self.graph);
        }
    }
}

/// A captured graph not yet instantiated (destroyed if capture fails later).
struct Raw(CUgraph);

impl Drop for Raw {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the graph came from `cuStreamEndCapture` and is owned here.
            unsafe {
                let _ = sys::cuGraphDestroy(self.0);
            }
        }
    }
}

impl Gpu {
    /// Records the launches `f` makes into a graph instead of running them; replaying
    /// the graph runs them again with the same arguments (buffer contents may change).
    /// `f` must only launch kernels: no copies, allocations or waits.
    /// Kernel edges are programmatic where [`Gpu::graph_overlap`] allows.
    pub fn capture(&self, f: impl FnOnce(&Gpu) -> Result<()>) -> Result<Graph> {
        self.capture_with(true, f)
    }

    /// [`Gpu::capture`], with programmatic kernel edges only if `overlap` (and
    /// [`Gpu::graph_overlap`]): callers keep them off where they do not pay (wide
    /// steps, whose kernels are long; benches/reports/cuda.md).
    pub fn capture_with(&self, overlap: bool, f: impl FnOnce(&Gpu) -> Result<()>) -> Result<Graph> {
        self.stream
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)?;
        let res = f(self);
        let mut g: CUgraph = ptr::null_mut();
        // SAFETY: ends the capture begun above on our stream; `g` receives the graph.
        let end = unsafe { sys::cuStreamEndCapture(self.stream.cu_stream(), &mut g) }.result();
        let raw = Raw(g);
        res?;
        end?;
        if raw.0.is_null() {
            return Err(CudaError::Driver("empty graph capture".into()));
        }
        if overlap && self.graph_overlap() {
            // SAFETY: `raw.0` is a valid graph owned here, not yet instantiated.
            unsafe { programmatic_edges(raw.0) }?;
        }
        let mut exec: CUgraphExec = ptr::null_mut();
        // SAFETY: instantiates the valid graph; `exec` receives the executable graph.
        unsafe { sys::cuGraphInstantiateWithFlags(&mut exec, raw.0, 0) }.result()?;
        let graph = raw.0;
        std::mem::forget(raw);
        Ok(Graph {
            graph,
            exec,
            ctx: self.ctx.clone(),
        })
    }

    /// Runs a captured graph on the stream.
    pub fn replay(&self, g: &Graph) -> Result<()> {
        self.ctx.bind_to_thread()?;
        // SAFETY: `g.exec` is a live executable graph of this context; our stream.
        unsafe { sys::cuGraphLaunch(g.exec, self.stream.cu_stream()) }.result()?;
        Ok(())
    }
}

/// Makes every plain kernel → kernel edge of `g` programmatic. Returns how many.
///
/// # Safety
/// `g` must be a valid graph that nothing else uses meanwhile.
unsafe fn programmatic_edges(g: CUgraph) -> Result<usize> {
    let mut n = 0usize;
    // SAFETY: `g` is valid and ours (the caller's contract); every array passed
    // below holds `n` entries.
    unsafe {
        sys::cuGraphGetEdges_v2(g, ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), &mut n)
            .result()?;
        // A graph of one node has no edges (and the driver refuses to list zero).
        if n == 0 {
            return Ok(0);
        }
        let mut from: Vec<CUgraphNode> = vec![ptr::null_mut(); n];
        let mut to: Vec<CUgraphNode> = vec![ptr::null_mut(); n];
        let mut data: Vec<CUgraphEdgeData> = vec![std::mem::zeroed(); n];
        sys::cuGraphGetEdges_v2(
            g,
            from.as_mut_ptr(),
            to.as_mut_ptr(),
            data.as_mut_ptr(),
            &mut n,
        )
        .result()?;
        let is_kernel = |node: CUgraphNode| -> Result<bool> {
            let mut t = CUgraphNodeType::CU_GRAPH_NODE_TYPE_EMPTY;
            sys::cuGraphNodeGetType(node, &mut t).result()?;
            Ok(t == CUgraphNodeType::CU_GRAPH_NODE_TYPE_KERNEL)
        };
        let programmatic = CUgraphEdgeData {
            from_port: sys::CU_GRAPH_KERNEL_NODE_PORT_PROGRAMMATIC as u8,
            to_port: 0,
            type_: CUgraphDependencyType::CU_GRAPH_DEPENDENCY_TYPE_PROGRAMMATIC as u8,
            reserved: [0; 5],
        };
        let mut changed = 0;
        for i in 0..n.min(from.len()) {
            let plain =
                data[i].type_ == CUgraphDependencyType::CU_GRAPH_DEPENDENCY_TYPE_DEFAULT as u8;
            if !plain || !is_kernel(from[i])? || !is_kernel(to[i])? {
                continue;
            }
            sys::cuGraphRemoveDependencies_v2(g, &from[i], &to[i], &data[i], 1).result()?;
            sys::cuGraphAddDependencies_v2(g, &from[i], &to[i], &programmatic, 1).result()?;
            changed += 1;
        }
        Ok(changed)
    }
}
