// The k best logits of each row (k <= TOPK_MAX), best first with ties to the lower
// id, and the row's log-sum-exp: what a draw needs, so rows stay on the device.
//
// Two launches. `topk_slices`: each block sorts one slice of TOPK_SLICE logits of a
// row (bitonic, in shared memory) and keeps its k best, with the slice's max and
// sum of exp(l - max) (f64, fixed order). `topk_merge`: one block per row merges the
// slices' candidates in slice order, TOPK_SLICE at a time, and combines the sums.
// Exact (the best k of a row are among the best k of its slices) and the same
// whatever the batch (slices are fixed by position in the row). Blocks: 1024 threads.
#define TOPK_MAX 64
#define TOPK_SLICE 4096

__device__ __forceinline__ bool better(float a, int ia, float b, int ib) {
    return a > b || (a == b && ia < ib);
}

// Sorts v/id (TOPK_SLICE entries in shared memory) best first.
__device__ void sort_best_first(float* v, int* id) {
    for (int size = 2; size <= TOPK_SLICE; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < TOPK_SLICE; i += blockDim.x) {
                const int j = i ^ stride;
                if (j > i) {
                    const bool best_first = (i & size) == 0;
                    const float a = v[i], b = v[j];
                    const int ia = id[i], ib = id[j];
                    if (better(b, ib, a, ia) == best_first) {
                        v[i] = b;
                        v[j] = a;
                        id[i] = ib;
                        id[j] = ia;
                    }
                }
            }
            __syncthreads();
        }
    }
}

// Grid (slices, rows). cand: [row][slice][k]; part_max/part_sum: [row][slice].
extern "C" __global__ void __launch_bounds__(1024)
    topk_slices(const float* __restrict__ logits, int vocab, int k, float* __restrict__ cand_val,
                int* __restrict__ cand_id, float* __restrict__ part_max, double* __restrict__ part_sum) {
    __shared__ float v[TOPK_SLICE];
    __shared__ int id[TOPK_SLICE];
    __shared__ double red[32];
    const int slice = blockIdx.x, row = blockIdx.y, nslices = gridDim.x;
    const float* x = logits + (size_t)row * vocab;
    const int base = slice * TOPK_SLICE;
    float mx = NEG_INF;
    for (int i = threadIdx.x; i < TOPK_SLICE; i += blockDim.x) {
        const int g = base + i;
        const bool in = g < vocab;
        v[i] = in ? x[g] : NEG_INF;
        id[i] = in ? g : 0x7fffffff;
        if (in) mx = fmaxf(mx, v[i]);
    }
    // The slice's max (exact in any order), then its sum of exp in a fixed order.
    __shared__ float fred[32];
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(FULL_MASK, mx, off));
    if ((threadIdx.x & 31) == 0) fred[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = NEG_INF;
    for (int w = 0; w < (int)(blockDim.x >> 5); ++w) mx = fmaxf(mx, fred[w]);
    double s = 0.0;
    for (int i = threadIdx.x; i < TOPK_SLICE; i += blockDim.x)
        if (base + i < vocab) s += (double)expf(v[i] - mx);
    s = block_sum_d(s, red);
    sort_best_first(v, id);
    const size_t o = ((size_t)row * nslices + slice) * k;
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        cand_val[o + i] = v[i];
        cand_id[o + i] = id[i];
    }
    if (threadIdx.x == 0) {
        part_max[(size_t)row * nslices + slice] = mx;
        part_sum[(size_t)row * nslices + slice] = s;
    }
}

// Grid (rows). Output: val/id [row][k], lse [row].
extern "C" __global__ void __launch_bounds__(1024)
    topk_merge(const float* __restrict__ cand_val, const int* __restrict__ cand_id, int nslices, int k,
               const float* __restrict__ part_max, const double* __restrict__ part_sum,
               float* __restrict__ out_val, int* __restrict__ out_id, float* __restrict__ out_lse) {
    __shared__ float v[TOPK_SLICE];
    __shared__ int id[TOPK_SLICE];
    const int row = blockIdx.x;
    const int total = nslices * k;
    const float* cv = cand_val + (size_t)row * total;
    const int* ci = cand_id + (size_t)row * total;
    // The first chunk fills all of the buffer; later ones refill it behind the k kept.
    int next = 0, keep = 0;
    do {
        const int room = TOPK_SLICE - keep;
        for (int i = threadIdx.x; i < room; i += blockDim.x) {
            const int c = next + i;
            v[keep + i] = c < total ? cv[c] : NEG_INF;
            id[keep + i] = c < total ? ci[c] : 0x7fffffff;
        }
        __syncthreads();
        sort_best_first(v, id);
        next += room;
        keep = k;
    } while (next < total);
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        out_val[(size_t)row * k + i] = v[i];
        out_id[(size_t)row * k + i] = id[i];
    }
    if (threadIdx.x == 0) {
        const float* pm = part_max + (size_t)row * nslices;
        const double* ps = part_sum + (size_t)row * nslices;
        float m = NEG_INF;
        for (int s = 0; s < nslices; ++s) m = fmaxf(m, pm[s]);
        double sum = 0.0;
        for (int s = 0; s < nslices; ++s) sum += ps[s] * exp((double)pm[s] - (double)m);
        out_lse[row] = m + (float)log(sum);
    }
}
