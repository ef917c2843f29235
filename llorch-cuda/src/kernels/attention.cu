// Attention of one query row and head over the paged half-precision KV cache.
//
// Keys are visited in position order in chunks of 128 that start at the row's
// first visible position; the softmax is the online form (running max and sum),
// each sum in a fixed order (warp w weighs the values of positions w, w + 4, ... of
// each chunk; the four warps' sums are added in warp order at the end). A row's
// output depends only on its query, its position and the cache: not on the batch or
// on prefill chunking (SYS-0003); prefetches (decode-sized steps) change no value.
// Block: 128 threads (4 warps); head_dim and v_head_dim even and <= 256.
#define ATT_CHUNK 128
#define ATT_PER_WARP 16
#define ATT_WARM_ROWS 64

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
              int qg) {
    __shared__ float sc[ATT_CHUNK];
    __shared__ int slot[ATT_CHUNK];
    const int row = blockIdx.x, h = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = h / (n_heads / n_kv_heads);
    // The plan (meta, pages) is copied before the step's kernels, so it is read before
    // the graph wait, with the first chunk's slots; the key and value rows of the first
    // two chunks are asked of L2 then, while the kernel before finishes (a prefetch
    // reads nothing early: the rows of this step's positions are read after the wait).
    const int pos = meta[2 * row];
    const int* pt = pages + meta[2 * row + 1];
    const int kv_width = n_kv_heads * (head_dim + v_head_dim);
    const int lo = window > 0 ? max(0, pos + 1 - window) : 0;
    const int k_off = g * head_dim, v_off = n_kv_heads * head_dim + g * v_head_dim;
    // Only steps of few rows (decode) warm L2: prefill's many blocks measured slower.
    const bool warm_rows = gridDim.x <= ATT_WARM_ROWS;
    // The cache slot of position p; the prefetch of a slot's rows, or of a position's
    // (its slot looked up only where steps warm L2).
    auto slot_of = [&](int p) { return pt[p / page_size] * page_size + p % page_size; };
    auto warm = [&](int s) {
        if (!warm_rows) return;
        const u16* r = cache + (size_t)s * kv_width;
        prefetch_bytes(r + k_off, 2 * head_dim);
        prefetch_bytes(r + v_off, 2 * v_head_dim);
    };
    auto warm_at = [&](int p) {
        if (warm_rows) warm(slot_of(p));
    };
    // The `n` cache slots of the chunk at c0 (their rows asked of L2 too with `own`),
    // and the next chunk's rows asked of L2: one position per thread.
    auto stage = [&](int c0, int n, bool own) {
        if ((int)threadIdx.x < n) {
            slot[threadIdx.x] = slot_of(c0 + threadIdx.x);
            if (own) warm(slot[threadIdx.x]);
        }
        if (c0 + ATT_CHUNK + (int)threadIdx.x <= pos) warm_at(c0 + ATT_CHUNK + threadIdx.x);
    };
    stage(lo, min(ATT_CHUNK, pos + 1 - lo), true);
    grid_wait();
    const float* qr = q + ((size_t)row * n_heads + h) * head_dim;
    float2 q2[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int d = 2 * lane + 64 * j;
        q2[j] = d < head_dim ? make_float2(qr[d], qr[d + 1]) : make_float2(0.0f, 0.0f);
    }
    // Each warp's share of the weighted values: lane `lane` holds value dims
    // 2 * lane + 64 * j (+1); the warps' shares are added in warp order at the end.
    float m = NEG_INF, l = 0.0f, av[4][2] = {};
    for (int c0 = lo; c0 <= pos; c0 += ATT_CHUNK) {
        const int n = min(ATT_CHUNK, pos + 1 - c0);
        // The chunk's cache slots (the first's staged before the wait) and the next
        // chunk's rows asked of L2, then its scores: each warp takes 16 positions at a
        // time (their key loads in flight together), 64 per round.
        if (c0 != lo) stage(c0, n, false);
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
        // order, then the warp's butterfly): every warp computes the same, and the
        // exponentials again where it weighs the values (the same values).
        float cmax = NEG_INF;
#pragma unroll
        for (int k = 0; k < ATT_CHUNK / 32; ++k)
            if (lane + 32 * k < n) cmax = fmaxf(cmax, sc[lane + 32 * k]);
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) cmax = fmaxf(cmax, __shfl_xor_sync(FULL_MASK, cmax, off));
        const float m_new = fmaxf(m, cmax);
        const float alpha = expf(m - m_new);
        float sum = 0.0f;
#pragma unroll
        for (int k = 0; k < ATT_CHUNK / 32; ++k)
            if (lane + 32 * k < n) sum += expf(sc[lane + 32 * k] - m_new);
        sum = warp_sum(sum);
        l = l * alpha + sum;
        // The values: warp w takes positions w, w + 4, ... of the chunk, in order.
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            av[j][0] *= alpha;
            av[j][1] *= alpha;
        }
        const u16* vb = cache + v_off + 2 * lane;
#pragma unroll 8
        for (int i = warp; i < n; i += 4) {
            const u16* vr = vb + (size_t)slot[i] * kv_width;
            const float p = expf(sc[i] - m_new);
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                if (64 * j + 2 * lane < v_head_dim) {
                    const u32 vv = *(const u32*)(vr + 64 * j);
                    av[j][0] = fmaf(p, h2f((u16)(vv & 0xffff)), av[j][0]);
                    av[j][1] = fmaf(p, h2f((u16)(vv >> 16)), av[j][1]);
                }
            }
        }
        m = m_new;
        __syncthreads();
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
    // The warps' shares added in warp order; thread t then holds dims 2t, 2t + 1.
    __shared__ float vs[4][256];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int d = 64 * j + 2 * lane;
        if (d < v_head_dim) {
            vs[warp][d] = av[j][0];
            vs[warp][d + 1] = av[j][1];
        }
    }
    __syncthreads();
    const int dv = 2 * threadIdx.x;
    float o0 = 0.0f, o1 = 0.0f;
    const size_t at = ((size_t)row * n_heads + h) * v_head_dim + dv;
    if (dv < v_head_dim) {
        o0 = (((vs[0][dv] + vs[1][dv]) + vs[2][dv]) + vs[3][dv]) / l;
        o1 = (((vs[0][dv + 1] + vs[1][dv + 1]) + vs[2][dv + 1]) + vs[3][dv + 1]) / l;
        out[at] = o0;
        out[at + 1] = o1;
    }
    // Warp w holds dims 64w .. 64w + 63: two whole blocks when v_head_dim % 64 == 0;
    // a group of 256 is the head's four warps (v_head_dim 256).
    if (Q == 0) return;
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
