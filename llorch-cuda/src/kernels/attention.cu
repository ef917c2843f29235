// Attention of one query row and head over the paged half-precision KV cache.
//
// Keys are visited in position order in chunks of 128 that start at the row's
// first visible position; the softmax is the online form (running max and sum),
// each sum in a fixed order. A row's output depends only on its query, its
// position and the cache: not on the batch or on prefill chunking (SYS-0003).
// Block: 128 threads (4 warps); head_dim and v_head_dim even and <= 256.
#define ATT_CHUNK 128
#define ATT_PER_WARP 8

// Lane `lane`'s share of q·k: dims 2*lane + 64*j, read as half pairs (fixed order).
__device__ __forceinline__ float qk_part(const float2* q2, const u16* kp, int lane, int head_dim) {
    float part = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int d = 2 * lane + 64 * j;
        if (d < head_dim) {
            const u32 kk = *(const u32*)(kp + d);
            part = fmaf(q2[j].x, h2f((u16)(kk & 0xffff)), part);
            part = fmaf(q2[j].y, h2f((u16)(kk >> 16)), part);
        }
    }
    return part;
}

// Quantizes a 32-value block held as pairs by one half-warp (its lane i holds columns
// 2i, 2i+1) with its group's key, exactly as quant_block_k does one value per lane
// (imma.cu's helpers).
__device__ __forceinline__ void quant_pairs_k(float x0, float x1, u32 key, u8* __restrict__ Q,
                                              int2* __restrict__ M, size_t blk) {
    const int i = threadIdx.x & 15;
    const bool bad = key == QKEY_BAD;
    const float amax = bad ? 0.0f : __uint_as_float(key);
    const float id = quant_inv(amax);
    const int a0 = quant_code(x0, amax, id, bad), a1 = quant_code(x1, amax, id, bad);
    quant_store(Q, blk, 2 * i, a0);
    quant_store(Q, blk, 2 * i + 1, a1);
    int s = a0 + a1;
#pragma unroll
    for (int off = 8; off > 0; off >>= 1) s += __shfl_xor_sync(FULL_MASK, s, off);
    if (i == 0) M[blk] = quant_meta(amax, bad, s);
}

// The key of a half-warp's block of pairs.
__device__ __forceinline__ u32 pairs_key(float x0, float x1) {
    u32 k = max(quant_key(x0), quant_key(x1));
#pragma unroll
    for (int off = 8; off > 0; off >>= 1) k = max(k, __shfl_xor_sync(FULL_MASK, k, off));
    return k;
}

// meta[2 * row] = position, meta[2 * row + 1] = offset of the row's page table in `pages`.
// With Q (v_head_dim a multiple of 64; of 256 when qg, the columns sharing an input
// scale, is 256), the output is quantized for the next product.
extern "C" __global__ void __launch_bounds__(128)
    attention(const float* __restrict__ q, const u16* __restrict__ cache, float* __restrict__ out,
              const int* __restrict__ meta, const int* __restrict__ pages, int n_heads, int n_kv_heads,
              int head_dim, int v_head_dim, int page_size, int window, u8* Q, int2* M,
              int qg) { grid_wait();
    __shared__ float sc[ATT_CHUNK];
    __shared__ int slot[ATT_CHUNK];
    const int row = blockIdx.x, h = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = h / (n_heads / n_kv_heads);
    const int pos = meta[2 * row];
    const int* pt = pages + meta[2 * row + 1];
    const int kv_width = n_kv_heads * (head_dim + v_head_dim);
    const int lo = window > 0 ? max(0, pos + 1 - window) : 0;
    const float* qr = q + ((size_t)row * n_heads + h) * head_dim;
    float2 q2[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int d = 2 * lane + 64 * j;
        q2[j] = d < head_dim ? make_float2(qr[d], qr[d + 1]) : make_float2(0.0f, 0.0f);
    }
    const int k_off = g * head_dim, v_off = n_kv_heads * head_dim + g * v_head_dim;
    const int dv = 2 * threadIdx.x;  // this thread's pair of value dims
    float m = NEG_INF, l = 0.0f, a0 = 0.0f, a1 = 0.0f;
    for (int c0 = lo; c0 <= pos; c0 += ATT_CHUNK) {
        const int n = min(ATT_CHUNK, pos + 1 - c0);
        // The chunk's cache slots, then its scores: each warp takes 8 positions at a
        // time (their key loads in flight together), 32 per round.
        if (threadIdx.x < n) {
            const int p = c0 + threadIdx.x;
            slot[threadIdx.x] = pt[p / page_size] * page_size + p % page_size;
        }
        __syncthreads();
        for (int i = warp * ATT_PER_WARP; i < n; i += 4 * ATT_PER_WARP) {
            float e[ATT_PER_WARP];
#pragma unroll
            for (int u = 0; u < ATT_PER_WARP; ++u) {
                const int s1 = slot[min(i + u, n - 1)];
                e[u] = qk_part(q2, cache + (size_t)s1 * kv_width + k_off, lane, head_dim);
            }
#pragma unroll
            for (int u = 0; u < ATT_PER_WARP; ++u) e[u] = warp_sum(e[u]);
            if (lane == 0) {
#pragma unroll
                for (int u = 0; u < ATT_PER_WARP; ++u)
                    if (i + u < n) sc[i + u] = e[u];
            }
        }
        __syncthreads();
        // The chunk's max (exact in any order) and sum of exp (each lane its four in
        // order, then the warp's butterfly): every warp computes the same.
        float cmax = NEG_INF;
#pragma unroll
        for (int k = 0; k < ATT_CHUNK / 32; ++k)
            if (lane + 32 * k < n) cmax = fmaxf(cmax, sc[lane + 32 * k]);
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) cmax = fmaxf(cmax, __shfl_xor_sync(FULL_MASK, cmax, off));
        const float m_new = fmaxf(m, cmax);
        const float alpha = expf(m - m_new);
        __syncthreads();
        if (threadIdx.x < n) sc[threadIdx.x] = expf(sc[threadIdx.x] - m_new);
        __syncthreads();
        float sum = 0.0f;
#pragma unroll
        for (int k = 0; k < ATT_CHUNK / 32; ++k)
            if (lane + 32 * k < n) sum += sc[lane + 32 * k];
        sum = warp_sum(sum);
        l = l * alpha + sum;
        if (dv < v_head_dim) {
            const u16* vb = cache + v_off + dv;
            float b0 = a0 * alpha, b1 = a1 * alpha;
#pragma unroll 16
            for (int i = 0; i < n; ++i) {
                const u32 vv = *(const u32*)(vb + (size_t)slot[i] * kv_width);
                b0 = fmaf(sc[i], h2f((u16)(vv & 0xffff)), b0);
                b1 = fmaf(sc[i], h2f((u16)(vv >> 16)), b1);
            }
            a0 = b0;
            a1 = b1;
        }
        m = m_new;
        __syncthreads();
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
    const size_t at = ((size_t)row * n_heads + h) * v_head_dim + dv;
    if (dv < v_head_dim) {
        out[at] = a0 / l;
        out[at + 1] = a1 / l;
    }
    // Warp w holds dims 64w .. 64w + 63: two whole blocks when v_head_dim % 64 == 0;
    // a group of 256 is the head's four warps (v_head_dim 256).
    if (Q == 0) return;
    const float o0 = a0 / l, o1 = a1 / l;
    const size_t blk = (at - (threadIdx.x & 15) * 2) >> 5;
    if (qg == 256) {
        __shared__ u32 keys[8];
        const u32 k = pairs_key(o0, o1);
        if ((threadIdx.x & 15) == 0) keys[threadIdx.x >> 4] = k;
        __syncthreads();
        quant_pairs_k(o0, o1, __reduce_max_sync(FULL_MASK, keys[threadIdx.x & 7]), Q, M, blk);
    } else if (64 * warp < v_head_dim) {
        quant_pairs_k(o0, o1, pairs_key(o0, o1), Q, M, blk);
    }
}
