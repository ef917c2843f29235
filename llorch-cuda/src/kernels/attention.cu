// Attention of one query row and head over the paged half-precision KV cache.
//
// Keys are visited in position order in chunks of 128 that start at the row's
// first visible position; the softmax is the online form (running max and sum),
// each sum in a fixed order. A row's output depends only on its query, its
// position and the cache: not on the batch or on prefill chunking (SYS-0003).
// Block: 128 threads (4 warps); head_dim and v_head_dim even and <= 256.
#define ATT_CHUNK 128

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

// meta[2 * row] = position, meta[2 * row + 1] = offset of the row's page table in `pages`.
extern "C" __global__ void __launch_bounds__(128)
    attention(const float* __restrict__ q, const u16* __restrict__ cache, float* __restrict__ out,
              const int* __restrict__ meta, const int* __restrict__ pages, int n_heads, int n_kv_heads,
              int head_dim, int v_head_dim, int page_size, int window) {
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
        // Scores: each warp takes every 4th position, two at a time.
        for (int i = warp; i < n; i += 8) {
            const int i2 = i + 4;
            const int p = c0 + i, p2 = c0 + i2;
            const int s1 = pt[p / page_size] * page_size + p % page_size;
            const int s2 = i2 < n ? pt[p2 / page_size] * page_size + p2 % page_size : s1;
            float e1 = qk_part(q2, cache + (size_t)s1 * kv_width + k_off, lane, head_dim);
            float e2 = qk_part(q2, cache + (size_t)s2 * kv_width + k_off, lane, head_dim);
            e1 = warp_sum(e1);
            e2 = warp_sum(e2);
            if (lane == 0) {
                sc[i] = e1;
                slot[i] = s1;
                if (i2 < n) {
                    sc[i2] = e2;
                    slot[i2] = s2;
                }
            }
        }
        __syncthreads();
        float cmax = NEG_INF;
        for (int i = 0; i < n; ++i) cmax = fmaxf(cmax, sc[i]);
        const float m_new = fmaxf(m, cmax);
        const float alpha = expf(m - m_new);
        __syncthreads();
        if (threadIdx.x < n) sc[threadIdx.x] = expf(sc[threadIdx.x] - m_new);
        __syncthreads();
        float sum = 0.0f;
        for (int i = 0; i < n; ++i) sum += sc[i];
        l = l * alpha + sum;
        if (dv < v_head_dim) {
            const u16* vb = cache + v_off + dv;
            float b0 = a0 * alpha, b1 = a1 * alpha;
#pragma unroll 8
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
    if (dv < v_head_dim) {
        float* o = out + ((size_t)row * n_heads + h) * v_head_dim + dv;
        o[0] = a0 / l;
        o[1] = a1 / l;
    }
}
