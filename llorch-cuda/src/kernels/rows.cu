// Row-wise kernels: norms, rotary embedding, activations, biases, gathers and the
// KV-cache store. One row's result never depends on other rows.

// Fused quantization (`imma.cu`): when Q is not null, the kernels below also write
// their output quantized for the integer products; widths are whole 32s then, so
// every warp holds one whole block per pass.

// The norms hold a row in registers: warp w of the block's NW takes the row's 32-value
// blocks w, w + NW, …, lane l column l of each (at most RR blocks per warp: 2, 4, 16 or
// 32 by the width), so the row is read once and every warp holds whole blocks for the
// fused quantization. Sums of squares in f64: each lane in block order, then the
// warp's butterfly, then the warps in order (a fixed order that depends only on the
// width; `block_sum_d`).

// The row block of this thread's warp's j-th, and its column (-1 past the row).
__device__ __forceinline__ int row_blk(int j) { return (threadIdx.x >> 5) + j * (blockDim.x >> 5); }
__device__ __forceinline__ int row_col(int j, int width) {
    const int col = row_blk(j) * 32 + (threadIdx.x & 31);
    return col < width ? col : -1;
}

template <int RR>
__device__ __forceinline__ double load_row(const float* __restrict__ x, size_t off, int width, float* v) {
    double ss = 0.0;
#pragma unroll
    for (int j = 0; j < RR; ++j) {
        const int col = row_col(j, width);
        v[j] = col >= 0 ? x[off + col] : 0.0f;
        ss += (double)v[j] * (double)v[j];
    }
    return ss;
}

// The norm weights of this thread's columns (0 past the row or without weights). Rows
// of up to 16 blocks per warp load them before the first block sum, so their latency
// hides behind it; wider rows (registers) just before use.
#define NORM_EARLY(RR) ((RR) <= 16)
template <int RR>
__device__ __forceinline__ void load_w(const float* __restrict__ w, int width, float* wv) {
#pragma unroll
    for (int j = 0; j < RR; ++j) {
        const int col = row_col(j, width);
        wv[j] = w != 0 && col >= 0 ? w[col] : 0.0f;
    }
}

// h = v * scale * w (w: the weights of this thread's columns, `load_w`; written, and
// quantized when Q is set: widths are whole 32s then, whole 256s for groups of qg = 256,
// whose blocks lie in 8 warps: their keys meet in shared memory).
template <int RR>
__device__ __forceinline__ void store_normed(const float* v, float scale, const float* wv,
                                             float* __restrict__ h, size_t off, int width, u8* Q, int2* M,
                                             int qg) {
    float o[RR];
#pragma unroll
    for (int j = 0; j < RR; ++j) {
        const int col = row_col(j, width);
        o[j] = col >= 0 ? v[j] * scale * wv[j] : 0.0f;
        if (col >= 0) h[off + col] = o[j];
    }
    if (Q == 0) return;
    if (qg == 256) {
        __shared__ u32 keys[32 * 32];
#pragma unroll
        for (int j = 0; j < RR; ++j) {
            if (row_blk(j) * 32 >= width) continue;
            const u32 k = block_key(o[j]);
            if ((threadIdx.x & 31) == 0) keys[row_blk(j)] = k;
        }
        __syncthreads();
#pragma unroll
        for (int j = 0; j < RR; ++j) {
            if (row_blk(j) * 32 >= width) continue;
            const u32 k = __reduce_max_sync(FULL_MASK, keys[(row_blk(j) & ~7) + (threadIdx.x & 7)]);
            quant_block_k(o[j], k, Q, M, (off >> 5) + (size_t)row_blk(j));
        }
        return;
    }
#pragma unroll
    for (int j = 0; j < RR; ++j)
        if (row_blk(j) * 32 < width) quant_block(o[j], Q, M, (off >> 5) + (size_t)row_blk(j));
}

__device__ __forceinline__ float rms_scale(double ss, int width, float eps) {
    return (float)(1.0 / sqrt(ss / width + (double)eps));
}

// y = x / rms(x) * w for each row.
template <int RR>
__device__ __forceinline__ void rms_norm_impl(const float* __restrict__ x, const float* __restrict__ w,
                                              float* __restrict__ y, int width, float eps, u8* Q, int2* M,
                                              int qg) {
    __shared__ double red[32];
    const size_t off = (size_t)blockIdx.x * width;
    float v[RR], wv[RR];
    if (NORM_EARLY(RR)) load_w<RR>(w, width, wv);  // weights: before the graph wait
    grid_wait();
    const double part = load_row<RR>(x, off, width, v);
    const double ss = block_sum_d(part, red);
    if (!NORM_EARLY(RR)) load_w<RR>(w, width, wv);
    store_normed<RR>(v, rms_scale(ss, width, eps), wv, y, off, width, Q, M, qg);
}

// x += (normed ? rms_norm(o) * w : o) in registers (xv, ov: the row's values; wv: the
// weights of its columns, `load_w`).
template <int RR>
__device__ __forceinline__ void add_residual(float* xv, const float* ov, const float* wv, bool normed,
                                             double oss, int width, float eps) {
    const float scale = normed ? rms_scale(oss, width, eps) : 1.0f;
#pragma unroll
    for (int j = 0; j < RR; ++j) {
        const int col = row_col(j, width);
        if (col >= 0) xv[j] += normed ? ov[j] * scale * wv[j] : ov[j];
    }
}

// x += (w ? rms_norm(o) * w : o), row by row (residual connections).
template <int RR>
__device__ __forceinline__ void add_normed_impl(float* __restrict__ x, const float* __restrict__ o,
                                                const float* __restrict__ w, int width, float eps) {
    __shared__ double red[32];
    const size_t off = (size_t)blockIdx.x * width;
    float xv[RR], ov[RR], wv[RR];
    if (NORM_EARLY(RR)) load_w<RR>(w, width, wv);  // weights: before the graph wait
    grid_wait();
    const double part = load_row<RR>(o, off, width, ov);
    load_row<RR>(x, off, width, xv);
    const double oss = w != 0 ? block_sum_d(part, red) : 0.0;
    if (!NORM_EARLY(RR)) load_w<RR>(w, width, wv);
    add_residual<RR>(xv, ov, wv, w != 0, oss, width, eps);
#pragma unroll
    for (int j = 0; j < RR; ++j) {
        const int col = row_col(j, width);
        if (col >= 0) x[off + col] = xv[j];
    }
}

// x += (w ? rms_norm(o) * w : o), then h = rms_norm(x) * next_w: a residual
// connection and the next block's input norm in one pass (same arithmetic as
// add_normed followed by rms_norm).
template <int RR>
__device__ __forceinline__ void add_norm_rms_impl(float* __restrict__ x, const float* __restrict__ o,
                                                  const float* __restrict__ w,
                                                  const float* __restrict__ next_w, float* __restrict__ h,
                                                  int width, float eps, u8* Q, int2* M, int qg) {
    __shared__ double red[32];
    const size_t off = (size_t)blockIdx.x * width;
    float xv[RR], ov[RR], wv[RR], nv[RR];
    if (NORM_EARLY(RR)) {  // weights: before the graph wait
        load_w<RR>(w, width, wv);
        load_w<RR>(next_w, width, nv);
    }
    grid_wait();
    load_row<RR>(x, off, width, xv);
    const double part = load_row<RR>(o, off, width, ov);
    // o's own norm only with post-norm weights (w == 0 for the whole launch).
    const double oss = w != 0 ? block_sum_d(part, red) : 0.0;
    if (!NORM_EARLY(RR)) load_w<RR>(w, width, wv);
    add_residual<RR>(xv, ov, wv, w != 0, oss, width, eps);
    double ss = 0.0;
#pragma unroll
    for (int j = 0; j < RR; ++j) {
        const int col = row_col(j, width);
        if (col >= 0) x[off + col] = xv[j];
        ss += (double)xv[j] * (double)xv[j];
    }
    ss = block_sum_d(ss, red);
    if (!NORM_EARLY(RR)) load_w<RR>(next_w, width, nv);
    store_normed<RR>(xv, rms_scale(ss, width, eps), nv, h, off, width, Q, M, qg);
}

// Each lets the next kernel be placed at once and waits for the one before in its
// body (after the weights' loads). Must match NORM_REGS and NORM_WARPS (kernels.rs):
// 32 warps for 2 or 4 blocks each, 16 (more registers) for 16; 32 for 32 (the widest
// rows: registers spill there).
#define NORM_THREADS(RR) ((RR) <= 4 || (RR) >= 32 ? 1024 : 512)
#define LLORCH_NORMS(RR)                                                                          \
    extern "C" __global__ void __launch_bounds__(NORM_THREADS(RR))                                \
        rms_norm_r##RR(const float* x, const float* w, float* y, int width, float eps, u8* Q,     \
                       int2* M, int qg) {                                                         \
        grid_trigger();                                                                           \
        rms_norm_impl<RR>(x, w, y, width, eps, Q, M, qg);                                         \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(NORM_THREADS(RR))                                \
        add_normed_r##RR(float* x, const float* o, const float* w, int width, float eps) {        \
        grid_trigger();                                                                           \
        add_normed_impl<RR>(x, o, w, width, eps);                                                 \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(NORM_THREADS(RR))                                \
        add_norm_rms_r##RR(float* x, const float* o, const float* w, const float* next_w,         \
                           float* h, int width, float eps, u8* Q, int2* M, int qg) {              \
        grid_trigger();                                                                           \
        add_norm_rms_impl<RR>(x, o, w, next_w, h, width, eps, Q, M, qg);                          \
    }
LLORCH_NORMS(2)
LLORCH_NORMS(4)
LLORCH_NORMS(16)
LLORCH_NORMS(32)

// The rotation of pair i = threadIdx.x (if i < rope_dims / 2, which the block's 128
// threads cover: heads of at most 256) at `pos`, as (sin, cos).
__device__ __forceinline__ float2 rope_angle(int pos, const double* __restrict__ inv_freq, int rope_dims) {
    float2 r = make_float2(0.0f, 1.0f);
    if ((int)threadIdx.x < (rope_dims >> 1)) {
        double s, c;
        sincos((double)pos * inv_freq[threadIdx.x], &s, &c);
        r = make_float2((float)s, (float)c);
    }
    return r;
}

// One row's head: optional RMS norm, then rotary embedding (sc: this thread's pair's
// `rope_angle`) (in `v`, shared).
__device__ void norm_rope(float* v, int head_dim, const float* __restrict__ norm_w, float eps, float2 sc,
                          int rope_dims, int neox, double* red) {
    if (norm_w != 0) {
        double ss = 0.0;
        for (int i = threadIdx.x; i < head_dim; i += blockDim.x) ss += (double)v[i] * (double)v[i];
        ss = block_sum_d(ss, red);
        const float scale = (float)(1.0 / sqrt(ss / head_dim + (double)eps));
        for (int i = threadIdx.x; i < head_dim; i += blockDim.x) v[i] = v[i] * scale * norm_w[i];
    }
    __syncthreads();
    const int half = rope_dims >> 1, i = threadIdx.x;
    if (i < half) {
        const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        const float fs = sc.x, fc = sc.y;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * fc - x1 * fs;
        v[b] = x0 * fs + x1 * fc;
    }
    __syncthreads();
}

// Per row: query heads normed, rotated, scaled and rounded to half precision (in
// place); key heads normed, rotated and stored at half precision in the row's cache
// slot; value heads stored there too. Grid (rows, n_heads + 2 * n_kv_heads), block
// 128, head widths <= 256. Cache slot layout: [K heads | V heads]. The positions and
// slots are copied before the step's kernels: they and the rotation (from the
// positions alone) are read and computed before the graph wait.
extern "C" __global__ void __launch_bounds__(128)
    qkv_rope_store(float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ vv,
                   u16* __restrict__ cache, const int* __restrict__ pos, const int* __restrict__ slots,
                   int n_heads, int n_kv_heads, int head_dim, int v_head_dim, const float* __restrict__ q_norm,
                   const float* __restrict__ k_norm, float eps, const double* __restrict__ inv_freq,
                   int rope_dims, int neox, float q_scale) {
    grid_trigger();
    __shared__ double red[32];
    __shared__ float v[256];
    const int row = blockIdx.x, h = blockIdx.y;
    const int kv_width = n_kv_heads * (head_dim + v_head_dim);
    u16* dst = cache + (size_t)slots[row] * kv_width;
    const float2 sc = h < n_heads + n_kv_heads ? rope_angle(pos[row], inv_freq, rope_dims) : make_float2(0.0f, 1.0f);
    grid_wait();
    if (h < n_heads) {
        float* p = q + ((size_t)row * n_heads + h) * head_dim;
        for (int i = threadIdx.x; i < head_dim; i += blockDim.x) v[i] = p[i];
        norm_rope(v, head_dim, q_norm, eps, sc, rope_dims, neox, red);
        for (int i = threadIdx.x; i < head_dim; i += blockDim.x) p[i] = h2f(f2h(v[i] * q_scale));
    } else if (h < n_heads + n_kv_heads) {
        const int g = h - n_heads;
        const float* p = k + ((size_t)row * n_kv_heads + g) * head_dim;
        for (int i = threadIdx.x; i < head_dim; i += blockDim.x) v[i] = p[i];
        norm_rope(v, head_dim, k_norm, eps, sc, rope_dims, neox, red);
        for (int i = threadIdx.x; i < head_dim; i += blockDim.x) dst[g * head_dim + i] = f2h(v[i]);
    } else {
        const int g = h - n_heads - n_kv_heads;
        const float* p = vv + ((size_t)row * n_kv_heads + g) * v_head_dim;
        u16* d = dst + n_kv_heads * head_dim + g * v_head_dim;
        for (int i = threadIdx.x; i < v_head_dim; i += blockDim.x) d[i] = f2h(p[i]);
    }
}

extern "C" __global__ void add_bias(float* __restrict__ x, const float* __restrict__ b, int width,
                                    long long n) { grid_start();
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += b[i % width];
}

// Quantizes v (this thread's value of a gate's output, element i) for the products:
// groups of qg = 256 are this block's 256 threads (the host launches whole 256s then).
__device__ __forceinline__ void act_quant(float v, long long i, u8* Q, int2* M, int qg) {
    if (qg == 256) {
        __shared__ u32 keys[8];
        const u32 k = block_key(v);
        if ((threadIdx.x & 31) == 0) keys[threadIdx.x >> 5] = k;
        __syncthreads();
        quant_block_k(v, __reduce_max_sync(FULL_MASK, keys[threadIdx.x & 7]), Q, M, (size_t)(i >> 5));
    } else {
        quant_block(v, Q, M, (size_t)(i >> 5));
    }
}

// g = gelu_tanh(g) * u
extern "C" __global__ void gelu_mul(float* __restrict__ g, const float* __restrict__ u, long long n, u8* Q,
                                    int2* M, int qg) { grid_start();
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const float x = g[i];
        const float v = 0.5f * x * (1.0f + tanhf(0.7978846f * x * (1.0f + 0.044715f * x * x))) * u[i];
        g[i] = v;
        if (Q != 0) act_quant(v, i, Q, M, qg);
    }
}

// g = silu(g) * u
extern "C" __global__ void silu_mul(float* __restrict__ g, const float* __restrict__ u, long long n, u8* Q,
                                    int2* M, int qg) { grid_start();
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const float x = g[i];
        const float v = x / (1.0f + expf(-x)) * u[i];
        g[i] = v;
        if (Q != 0) act_quant(v, i, Q, M, qg);
    }
}

// y[i] = x[idx[i]] (rows of `width`).
extern "C" __global__ void gather_rows(const float* __restrict__ x, const int* __restrict__ idx,
                                       float* __restrict__ y, int width) { grid_start();
    const size_t src = (size_t)idx[blockIdx.x] * width, dst = (size_t)blockIdx.x * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) y[dst + i] = x[src + i];
}
