// Attention of one query row and head over the paged half-precision KV cache.
//
// A row's visible positions are cut in segments whose length depends only on how many
// there are (att_seg_len: up to 4 segments of 32-128 for rows of up to 512 positions,
// then segments of 128, at most ATT_MAX_SEG), each segment's
// softmax is formed on its own and the segments are merged in order (att_merge). Within
// a segment keys are visited in position order in chunks of up to 128, online (running
// max and sum), each sum in a fixed order: warp w weighs the values of positions w,
// w + 4, ... of each chunk and the four warps' sums are added in warp order at the end
// of the segment. A launch either gives each segment its own block (gridDim.z ==
// ATT_MAX_SEG: small steps; the last block of a row and head to finish merges the
// others' partial results from `part`, in segment order) or walks them in one block;
// both merge the same values in the same order, so a row's output depends only on its
// query, its position and the cache: not on the batch, the launch or prefill chunking
// (SYS-0003). Prefetches (decode-sized steps) change no value.
// Block: 128 threads (4 warps); head_dim and v_head_dim even and <= 256.
#define ATT_CHUNK 128
#define ATT_PER_WARP 8
#define ATT_WARM_ROWS 64
#define ATT_MAX_SEG 16

// Positions per segment of a row with `npos` visible (whole 32s): a quarter of the row
// within [32, 128], or a sixteenth of it when that is longer (at most ATT_MAX_SEG).
__device__ __forceinline__ int att_seg_len(int npos) {
    const int quarter = min(128, max(32, ((npos + 3) / 4 + 31) & ~31));
    return max(quarter, ((npos + ATT_MAX_SEG - 1) / ATT_MAX_SEG + 31) & ~31);
}

// Merges a segment's (max, sum, value sums of two dims) into the running ones; the
// one merge of every launch mode (explicit roundings: the same bits wherever inlined).
__device__ __forceinline__ void att_merge(float& mx, float& lx, float& o0, float& o1, float m, float l, float a0,
                                          float a1) {
    const float mn = fmaxf(mx, m);
    const float x = expf(mx - mn), y = expf(m - mn);
    lx = fmaf(l, y, __fmul_rn(lx, x));
    o0 = fmaf(a0, y, __fmul_rn(o0, x));
    o1 = fmaf(a1, y, __fmul_rn(o1, x));
    mx = mn;
}

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
// scale, is 256), the output is quantized for the next product. With gridDim.z ==
// ATT_MAX_SEG, `part` holds (max, sum, v_head_dim value sums) per row, head and segment
// and `count` one zeroed counter per row and head (the last block sets it back to 0).
extern "C" __global__ void __launch_bounds__(128)
    attention(const float* __restrict__ q, const u16* __restrict__ cache, float* __restrict__ out,
              const int* __restrict__ meta, const int* __restrict__ pages, int n_heads, int n_kv_heads,
              int head_dim, int v_head_dim, int page_size, int window, u8* Q, int2* M, int qg,
              float* __restrict__ part, int* __restrict__ count) {
    __shared__ float sc[ATT_CHUNK];
    __shared__ int slot[ATT_CHUNK];
    __shared__ float vs[4][256];
    __shared__ int is_last;
    const int row = blockIdx.x, h = blockIdx.y, z = blockIdx.z;
    const bool split = gridDim.z > 1;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, tid = threadIdx.x;
    const int g = h / (n_heads / n_kv_heads);
    // The plan (meta, pages) is copied before the step's kernels, so it is read before
    // the graph wait, with the first chunk's slots; the key and value rows of the first
    // chunk and the 128 positions after it are asked of L2 then, while the kernel before
    // finishes (a prefetch reads nothing early: the rows of this step's positions are
    // read after the wait).
    const int pos = meta[2 * row];
    const int* pt = pages + meta[2 * row + 1];
    const int kv_width = n_kv_heads * (head_dim + v_head_dim);
    const int lo = window > 0 ? max(0, pos + 1 - window) : 0;
    const int seg_len = att_seg_len(pos + 1 - lo);
    const int nseg = (pos + 1 - lo + seg_len - 1) / seg_len;
    if (split && z >= nseg) return;  // the whole block: no segment here
    const int s_first = split ? z : 0, s_end = split ? z + 1 : nseg;
    // The positions this block visits end at `end`.
    const int end = split ? min(pos + 1, lo + (z + 1) * seg_len) : pos + 1;
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
    // and the rows of the next 128 positions this block visits asked of L2: one
    // position per thread.
    auto stage = [&](int c0, int n, bool own) {
        if (tid < n) {
            slot[tid] = slot_of(c0 + tid);
            if (own) warm(slot[tid]);
        }
        if (c0 + n + tid < end) warm_at(c0 + n + tid);
    };
    {
        const int p0 = lo + s_first * seg_len;
        stage(p0, min(ATT_CHUNK, min(end, p0 + seg_len) - p0), true);
    }
    grid_wait();
    const float* qr = q + ((size_t)row * n_heads + h) * head_dim;
    float2 q2[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int d = 2 * lane + 64 * j;
        q2[j] = d < head_dim ? make_float2(qr[d], qr[d + 1]) : make_float2(0.0f, 0.0f);
    }
    // Thread t's output dims 2t, 2t + 1: the merged state of the segments so far, and
    // this block's own segment (split launches).
    const int dv = 2 * tid;
    float mx = NEG_INF, lx = 0.0f, o0 = 0.0f, o1 = 0.0f;
    float m_own = NEG_INF, l_own = 0.0f, a0_own = 0.0f, a1_own = 0.0f;
    bool slots_in = true;  // the first chunk's slots were set before the wait
    for (int sg = s_first; sg < s_end; ++sg) {
        const int s_lo = lo + sg * seg_len, s_hi = min(pos + 1, s_lo + seg_len);
        // Each warp's share of the segment's weighted values: lane `lane` holds value
        // dims 2 * lane + 64 * j (+1).
        float m = NEG_INF, l = 0.0f, av[4][2] = {};
        for (int c0 = s_lo; c0 < s_hi; c0 += ATT_CHUNK) {
            const int n = min(ATT_CHUNK, s_hi - c0);
            // The chunk's cache slots and the next 128 positions' rows asked of L2,
            // then its scores: each warp takes ATT_PER_WARP positions at a time
            // (their key loads in flight together).
            if (!slots_in) stage(c0, n, false);
            slots_in = false;
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
            // exponentials again where it weighs the values (the same values; a loop
            // unrolled by 8 keeps their loads in flight together).
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
            l = fmaf(l, alpha, sum);
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
        // The segment's value sums, its warps' shares added in warp order.
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int d = 64 * j + 2 * lane;
            if (d < v_head_dim) {
                vs[warp][d] = av[j][0];
                vs[warp][d + 1] = av[j][1];
            }
        }
        __syncthreads();
        float a0 = 0.0f, a1 = 0.0f;
        if (dv < v_head_dim) {
            a0 = ((vs[0][dv] + vs[1][dv]) + vs[2][dv]) + vs[3][dv];
            a1 = ((vs[0][dv + 1] + vs[1][dv + 1]) + vs[2][dv + 1]) + vs[3][dv + 1];
        }
        if (split) {
            m_own = m, l_own = l, a0_own = a0, a1_own = a1;
        } else {
            att_merge(mx, lx, o0, o1, m, l, a0, a1);
        }
        __syncthreads();  // vs is written again by the next segment
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
    if (split && nseg > 1) {
        // Publish this segment; the last of the row and head's blocks merges them all.
        const size_t pair = (size_t)row * n_heads + h;
        const int width = v_head_dim + 2;
        float* mine = part + (pair * ATT_MAX_SEG + z) * width;
        if (tid == 0) {
            mine[0] = m_own;
            mine[1] = l_own;
        }
        if (dv < v_head_dim) {
            mine[2 + dv] = a0_own;
            mine[3 + dv] = a1_own;
        }
        __threadfence();
        __syncthreads();
        if (tid == 0) is_last = atomicAdd(count + pair, 1) == nseg - 1;
        __syncthreads();
        if (!is_last) return;
        __threadfence();
        for (int sg = 0; sg < nseg; ++sg) {
            const float* p = part + (pair * ATT_MAX_SEG + sg) * width;
            float ms = m_own, ls = l_own, b0 = a0_own, b1 = a1_own;
            if (sg != z) {
                ms = __ldcg(p);
                ls = __ldcg(p + 1);
                b0 = dv < v_head_dim ? __ldcg(p + 2 + dv) : 0.0f;
                b1 = dv < v_head_dim ? __ldcg(p + 3 + dv) : 0.0f;
            }
            att_merge(mx, lx, o0, o1, ms, ls, b0, b1);
        }
        if (tid == 0) count[pair] = 0;
    } else if (split) {
        att_merge(mx, lx, o0, o1, m_own, l_own, a0_own, a1_own);
    }
    // Thread t holds dims 2t, 2t + 1.
    const size_t at = ((size_t)row * n_heads + h) * v_head_dim + dv;
    o0 = o0 / lx;
    o1 = o1 / lx;
    if (dv < v_head_dim) {
        out[at] = o0;
        out[at + 1] = o1;
    } else {
        o0 = o1 = 0.0f;
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
