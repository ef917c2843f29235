// Attention of one query row and head over the paged half-precision KV cache.
//
// Keys are visited in position order in chunks of 128 that start at the row's
// first visible position; the softmax is the online form (running max and sum),
// each sum in a fixed order. A row's output depends only on its query, its
// position and the cache: not on the batch or on prefill chunking (SYS-0003).
// Block: 128 threads (4 warps); head_dim, v_head_dim <= 256.
#define ATT_CHUNK 128

// meta[2 * row] = position, meta[2 * row + 1] = offset of the row's page table in `pages`.
extern "C" __global__ void __launch_bounds__(128)
    attention(const float* __restrict__ q, const u16* __restrict__ cache, float* __restrict__ out,
              const int* __restrict__ meta, const int* __restrict__ pages, int n_heads, int n_kv_heads,
              int head_dim, int v_head_dim, int page_size, int window) {
    __shared__ float qs[256];
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
    for (int i = threadIdx.x; i < head_dim; i += blockDim.x) qs[i] = qr[i];
    __syncthreads();
    float m = NEG_INF, l = 0.0f;
    float acc[2] = {0.0f, 0.0f};
    const int k_off = g * head_dim, v_off = n_kv_heads * head_dim + g * v_head_dim;
    for (int c0 = lo; c0 <= pos; c0 += ATT_CHUNK) {
        const int n = min(ATT_CHUNK, pos + 1 - c0);
        for (int i = warp; i < n; i += 4) {
            const int p = c0 + i;
            const int s_ = pt[p / page_size] * page_size + p % page_size;
            const u16* kp = cache + (size_t)s_ * kv_width + k_off;
            float part = 0.0f;
            for (int d = lane; d < head_dim; d += 32) part = fmaf(qs[d], h2f(kp[d]), part);
            part = warp_sum(part);
            if (lane == 0) {
                sc[i] = part;
                slot[i] = s_;
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
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            const int d = threadIdx.x + k * 128;
            if (d < v_head_dim) {
                float a = acc[k] * alpha;
                for (int i = 0; i < n; ++i) a = fmaf(sc[i], h2f(cache[(size_t)slot[i] * kv_width + v_off + d]), a);
                acc[k] = a;
            }
        }
        m = m_new;
        __syncthreads();
    }
    float* o = out + ((size_t)row * n_heads + h) * v_head_dim;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        const int d = threadIdx.x + k * 128;
        if (d < v_head_dim) o[d] = acc[k] / l;
    }
}
