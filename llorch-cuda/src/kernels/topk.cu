// The k best logits of each row (k <= TOPK_MAX), best first, and the row's
// log-sum-exp: what a draw needs, so rows stay on the device.
//
// Order: the CPU sampler's (f32 total order, then the lower id), as one 64-bit key per
// logit: its total-order bits, then the complement of its id. Keys are distinct, so
// "the k largest keys" is exact whatever the ties.
//
// One launch, grid (slices, rows), TOPK_THREADS threads. Each block takes one slice
// of TOPK_SLICE logits of a row: its max and sum of exp(l - max) (f64, fixed order),
// and its k best keys. Those are found by a threshold: the slice's 128 groups of 32
// logits each have a best key; the k-th largest of those, tau, has at least k keys of
// the slice at or above it, so the slice's k best are among the keys >= tau. When at
// most TOPK_FEW keys pass (the rule for real logits), only they are placed, by rank
// (each counts the keys above it: no sorting network); else the whole slice is sorted
// (exact either way). The last block of a row to finish merges the
// slices' candidates the same way (tau from the best few of every slice), and adds
// up the slices' sums in slice order. The result depends on nothing but the row.
#define TOPK_MAX 64
#define TOPK_SLICE 4096
#define TOPK_THREADS 1024
#define TOPK_FEW 2048
typedef unsigned long long u64;

// The CPU's `f32::total_cmp` order as unsigned bits: larger is better.
__device__ __forceinline__ u32 total_bits(float v) {
    const u32 b = __float_as_uint(v);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ u64 topk_key(float v, int id) {
    return ((u64)total_bits(v) << 32) | (u64)(~(u32)id);
}
__device__ __forceinline__ int key_id(u64 k) { return (int)~(u32)(k & 0xffffffffull); }

__device__ __forceinline__ u64 warp_max_u64(u64 k) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const u64 o = __shfl_xor_sync(FULL_MASK, k, off);
        k = o > k ? o : k;
    }
    return k;
}

// Sorts n (a power of two, at most TOPK_SLICE) keys in shared memory, largest first.
__device__ void sort_keys_desc(u64* a, int n) {
#pragma unroll 1
    for (int size = 2; size <= n; size <<= 1) {
#pragma unroll 1
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < n; i += blockDim.x) {
                const int j = i ^ stride;
                if (j > i) {
                    const bool desc = (i & size) == 0;
                    const u64 x = a[i], y = a[j];
                    if ((x < y) == desc) {
                        a[i] = y;
                        a[j] = x;
                    }
                }
            }
            __syncthreads();
        }
    }
}

// The r-th largest (0-based) of the keys t[0..n), distinct but for zeros, to *out;
// *out is left alone (the caller set it to 0) when that one is a zero.
__device__ void kth_largest(const u64* t, int n, int r, u64* out) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const u64 x = t[i];
        int above = 0;
#pragma unroll 4
        for (int j = 0; j < n; ++j) above += t[j] > x;
        if (above == r) *out = x;
    }
    __syncthreads();
}

// The c distinct keys cand[0..c) placed by rank into top[0..k), largest first (slots
// past c hold 0, below every key).
__device__ void place_by_rank(const u64* cand, int c, int k, u64* top) {
    for (int i = threadIdx.x; i < k; i += blockDim.x) top[i] = 0ull;
    __syncthreads();
    for (int i = threadIdx.x; i < c; i += blockDim.x) {
        const u64 x = cand[i];
        int above = 0;
#pragma unroll 4
        for (int j = 0; j < c; ++j) above += cand[j] > x;
        if (above < k) top[above] = x;
    }
    __syncthreads();
}

// The k best of the n keys read by `get` (0 for none), into top[0..k): keys >= tau are
// gathered and placed by rank when few, else all n are sorted in chunks of TOPK_SLICE,
// the best k carried from chunk to chunk. buf holds TOPK_SLICE keys.
template <class Get>
__device__ void best_k(Get get, int n, int k, u64 tau, u64* buf, u64* top, int* count) {
    if (threadIdx.x == 0) *count = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const u64 x = get(i);
        if (x != 0ull && x >= tau) {
            const int at = atomicAdd(count, 1);
            if (at < TOPK_FEW) buf[at] = x;
        }
    }
    __syncthreads();
    const int c = *count;
    if (c <= TOPK_FEW) {
        place_by_rank(buf, c, k, top);
        return;
    }
    int keep = 0;
#pragma unroll 1
    for (int next = 0; next < n;) {
        const int room = TOPK_SLICE - keep;
        for (int i = threadIdx.x; i < room; i += blockDim.x) buf[keep + i] = next + i < n ? get(next + i) : 0ull;
        __syncthreads();
        sort_keys_desc(buf, TOPK_SLICE);
        next += room;
        keep = k;
    }
    for (int i = threadIdx.x; i < k; i += blockDim.x) top[i] = buf[i];
    __syncthreads();
}

// cand_key: [row][slice][k]; part_max/part_sum: [row][slice]; done: [row], zero
// between launches (the merging block resets it). Output: val/id [row][k], lse [row].
extern "C" __global__ void __launch_bounds__(TOPK_THREADS)
    row_topk(const float* __restrict__ logits, int vocab, int k, u64* __restrict__ cand_key,
             float* __restrict__ part_max, double* __restrict__ part_sum, int* __restrict__ done,
             float* __restrict__ out_val, int* __restrict__ out_id, float* __restrict__ out_lse) { grid_start();
    __shared__ u64 buf[TOPK_SLICE];
    __shared__ u64 gmax[TOPK_SLICE / 32];
    __shared__ u64 top[TOPK_MAX];
    __shared__ double red[32];
    __shared__ float fred[32];
    __shared__ u64 tau;
    __shared__ int count, last;
    const int slice = blockIdx.x, row = blockIdx.y, nslices = gridDim.x;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const float* x = logits + (size_t)row * vocab;
    const int base = slice * TOPK_SLICE;
    constexpr int PER = TOPK_SLICE / TOPK_THREADS;
    float v[PER];
    u64 key[PER];
    float mx = NEG_INF;
#pragma unroll
    for (int j = 0; j < PER; ++j) {
        const int g = base + threadIdx.x + j * TOPK_THREADS;
        const bool in = g < vocab;
        v[j] = in ? x[g] : NEG_INF;
        key[j] = in ? topk_key(v[j], g) : 0ull;
        if (in) mx = fmaxf(mx, v[j]);
        // Group (warp, j): 32 consecutive logits.
        const u64 m = warp_max_u64(key[j]);
        if (lane == 0) gmax[warp * PER + j] = m;
    }
    // The slice's max (exact in any order), then its sum of exp in a fixed order.
    mx = block_max(mx, fred);
    double s = 0.0;
#pragma unroll
    for (int j = 0; j < PER; ++j)
        if (base + threadIdx.x + j * TOPK_THREADS < vocab) s += (double)expf(v[j] - mx);
    s = block_sum_d(s, red);
    // Padding groups have best key 0, below every logit's: tau = 0 then, and every
    // key passes (the whole-slice sort).
    if (threadIdx.x == 0) {
        tau = 0ull;
        count = 0;
    }
    __syncthreads();
    kth_largest(gmax, TOPK_SLICE / 32, k - 1, &tau);
    const u64 t = tau;
    // The slice's keys live in registers: gather the logits' keys >= tau.
#pragma unroll
    for (int j = 0; j < PER; ++j)
        if (key[j] != 0ull && key[j] >= t) {
            const int at = atomicAdd(&count, 1);
            if (at < TOPK_FEW) buf[at] = key[j];
        }
    __syncthreads();
    const int c = count;
    u64* mine = cand_key + ((size_t)row * nslices + slice) * k;
    if (c <= TOPK_FEW) {
        place_by_rank(buf, c, k, top);
        for (int i = threadIdx.x; i < k; i += blockDim.x) mine[i] = top[i];
    } else {
#pragma unroll
        for (int j = 0; j < PER; ++j) buf[threadIdx.x + j * TOPK_THREADS] = key[j];
        __syncthreads();
        sort_keys_desc(buf, TOPK_SLICE);
        for (int i = threadIdx.x; i < k; i += blockDim.x) mine[i] = buf[i];
    }
    if (threadIdx.x == 0) {
        part_max[(size_t)row * nslices + slice] = mx;
        part_sum[(size_t)row * nslices + slice] = s;
    }
    // The last block of the row to get here merges.
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(done + row, 1) == nslices - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    const u64* all = cand_key + (size_t)row * nslices * k;
    const int total = nslices * k;
    // tau from the best m of every slice (at least k keys in all).
    const int m = min(k, max(4, (k + nslices - 1) / nslices));
    // (Any subset's k-th largest has k keys at or above it: a cap only loosens tau.)
    const int nt = min(nslices * m, TOPK_THREADS);
    for (int i = threadIdx.x; i < nt; i += blockDim.x) buf[i] = __ldcg(all + (size_t)(i / m) * k + i % m);
    if (threadIdx.x == 0) tau = 0ull;
    __syncthreads();
    if (nt >= k) kth_largest(buf, nt, k - 1, &tau);
    best_k([&](int i) { return __ldcg(all + i); }, total, k, tau, buf, top, &count);
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        const u64 b = top[i];
        const int id = key_id(b);
        out_id[(size_t)row * k + i] = id;
        out_val[(size_t)row * k + i] = b == 0ull ? NEG_INF : x[id];
    }
    // The log-sum-exp: every thread reads and scales some slices' parts (the max is
    // exact in any order), then one thread adds the terms in slice order.
    const float* pm = part_max + (size_t)row * nslices;
    const double* ps = part_sum + (size_t)row * nslices;
    float lm = NEG_INF;
    for (int q = threadIdx.x; q < nslices; q += blockDim.x) lm = fmaxf(lm, __ldcg(pm + q));
    const float mm = block_max(lm, fred);
    // buf is free again (best_k's result is in top); 2 * nslices <= TOPK_SLICE (launcher).
    double* fac = (double*)buf;
    for (int q = threadIdx.x; q < nslices; q += blockDim.x) {
        fac[2 * q] = __ldcg(ps + q);
        fac[2 * q + 1] = exp((double)__ldcg(pm + q) - (double)mm);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double sum = 0.0;
        for (int q = 0; q < nslices; ++q) sum += fac[2 * q] * fac[2 * q + 1];
        out_lse[row] = mm + (float)log(sum);
        done[row] = 0;
    }
}
