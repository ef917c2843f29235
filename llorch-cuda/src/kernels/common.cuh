// Shared helpers for every kernel. NVRTC compiles these sources without system
// headers, so the few types and conversions needed are defined here.
typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef unsigned int u32;

#define FULL_MASK 0xffffffffu
#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float h2f(u16 h) {
    float f;
    asm("{ .reg .b16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ u16 f2h(float f) {
    u16 h;
    asm("{ .reg .b16 t; cvt.rn.f16.f32 t, %1; mov.b16 %0, t; }" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float bf2f(u16 b) { return __uint_as_float(((u32)b) << 16); }

__device__ __forceinline__ u16 ld16(const u8* p) { return *(const u16*)p; }

// Sum over a warp with a fixed butterfly; lane 0's result is the same on every run.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(FULL_MASK, v, off);
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(FULL_MASK, v, off);
    return v;
}

// Sum over a block of `blockDim.x` threads (a multiple of 32, at most 1024) in a
// fixed order; every thread gets the result. `red` holds 32 doubles (untouched by a
// one-warp block).
__device__ double block_sum_d(double v, double* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum_d(v);
    if (nw == 1) return v;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    double s = 0.0;
#pragma unroll
    for (int w = 0; w < 32; ++w)
        if (w < nw) s += red[w];  // unrolled: the loads go out together
    return s;
}

// Max over a block (as block_sum_d: `red` holds 32 floats); exact in any order.
__device__ float block_max(float v, float* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, off));
    if (nw == 1) return v;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float m = NEG_INF;
#pragma unroll
    for (int w = 0; w < 32; ++w)
        if (w < nw) m = fmaxf(m, red[w]);
    return m;
}

// Weight loads: each weight byte is read once per product, so these skip L1 and ask
// L2 for the whole 256-byte segment (the neighbouring lanes' and warps' next loads);
// the F16 decode products measured 13-23% faster with them (benches/reports/cuda.md,
// tc_probe). Only for memory no kernel writes while the product runs (`.nc`).
__device__ __forceinline__ uint4 ldw16(const void* p) {
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
        : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
        : "l"(p));
    return v;
}
__device__ __forceinline__ u16 ldw2(const void* p) {
    u16 v;
    asm("ld.global.nc.L1::no_allocate.L2::256B.u16 %0, [%1];" : "=h"(v) : "l"(p));
    return v;
}
__device__ __forceinline__ u32 ldw4(const void* p) {
    u32 v;
    asm("ld.global.nc.L1::no_allocate.L2::256B.u32 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}

// Programmatic dependent launch. In graphs whose kernel edges are programmatic
// (graph.rs) a kernel may be scheduled before the one it follows has finished, once
// every block of that one has called `grid_trigger` (or exited). Each kernel first
// waits (`grid_wait`) for everything before it to finish and be visible, so it reads
// and writes nothing early. Products trigger after their main loop (the next kernel
// is placed during their tail, not on SMs their later blocks need); the small kernels
// between them at once (`grid_start`). Elsewhere, and before sm_90, all are no-ops.
#ifndef LLORCH_PDL_TRIGGER
#define LLORCH_PDL_TRIGGER 1
#endif
__device__ __forceinline__ void grid_wait() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void grid_trigger() {
#if __CUDA_ARCH__ >= 900 && LLORCH_PDL_TRIGGER
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void grid_start() {
    grid_trigger();
    grid_wait();
}

// Asks L2 for the first `bytes` of each of `nrows` weight rows (stride rb) at W, one
// 128-byte line per thread and turn: what a product reads first, fetched before its
// `grid_wait` while the kernel before it finishes. Weights only (nothing writes them).
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }
__device__ __forceinline__ void prefetch_rows(const u8* W, size_t rb, int nrows, size_t bytes, int tid,
                                              int nthreads) {
    const int lines = (int)(((bytes < rb ? bytes : rb) + 127) / 128);
    for (int i = tid; i < nrows * lines; i += nthreads)
        prefetch_l2(W + (size_t)(i / lines) * rb + (size_t)(i % lines) * 128);
}
// Asks L2 for the `bytes` at p, one thread: every 128-byte line they touch.
__device__ __forceinline__ void prefetch_bytes(const void* p, int bytes) {
    const size_t a = (size_t)p, end = a + (size_t)bytes;
    for (size_t l = a & ~(size_t)127; l < end; l += 128) prefetch_l2((const void*)l);
}

// Asynchronous copies to shared memory (cp.async, sm_80 on).
__device__ __forceinline__ u32 smem_addr(const void* p) {
    u32 a;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
    return a;
}
// Copies 16 (8, 4) bytes to shared memory, or zeros when !valid (nothing is read then).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async8(void* dst, const void* src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(valid ? 8 : 0));
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(valid ? 4 : 0));
}
template <int CP>
__device__ __forceinline__ void cp_async(void* dst, const void* src, bool valid) {
    if constexpr (CP == 16) cp_async16(dst, src, valid);
    else cp_async4(dst, src, valid);
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }

