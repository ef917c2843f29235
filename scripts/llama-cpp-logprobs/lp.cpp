#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <algorithm>
// usage: lp MODEL FLASH_ATTN [PROMPT_LENGTHS_FILE] < tokens (one sequence per line, space separated)
// Prints per position "id:lp:top1:lp1" of the next reference token and llama.cpp's top-1.
// Without a lengths file every sequence is one batch (logits at every position); with
// one, the first N tokens of line i are one batch and the rest are decoded one token per
// call, as a greedy generation made them (N read from the file, one per line of input).
int main(int argc, char** argv) {
    llama_backend_init();
    auto mp = llama_model_default_params();
    llama_model* m = llama_model_load_from_file(argv[1], mp);
    auto cp = llama_context_default_params();
    cp.n_ctx = 512; cp.n_batch = 512; cp.n_threads = 2; cp.n_threads_batch = 2;
    if (argc > 2) cp.flash_attn_type = (llama_flash_attn_type)atoi(argv[2]);
    std::vector<int> plens;
    if (argc > 3) { FILE* f = fopen(argv[3], "r"); int q; while (fscanf(f, "%d", &q) == 1) plens.push_back(q); fclose(f); }
    llama_context* ctx = llama_init_from_model(m, cp);
    const llama_vocab* v = llama_model_get_vocab(m);
    int nv = llama_vocab_n_tokens(v);
    char line[1<<16];
    size_t lineno = 0;
    while (fgets(line, sizeof line, stdin)) {
        std::vector<llama_token> t; char* p = line; int x, n;
        while (sscanf(p, "%d%n", &x, &n) == 1) { t.push_back(x); p += n; }
        llama_memory_clear(llama_get_memory(ctx), true);
        size_t first = plens.empty() ? t.size() : (size_t)plens[lineno];
        lineno++;
        std::vector<std::vector<float>> rows;
        llama_batch b = llama_batch_init(t.size(), 0, 1);
        for (size_t i = 0; i < first; i++) { b.token[i]=t[i]; b.pos[i]=i; b.n_seq_id[i]=1; b.seq_id[i][0]=0; b.logits[i]=1; }
        b.n_tokens = first;
        if (llama_decode(ctx, b)) { fprintf(stderr, "decode failed\n"); return 1; }
        for (size_t i = 0; i < first; i++) { float* lg = llama_get_logits_ith(ctx, i); rows.emplace_back(lg, lg + nv); }
        for (size_t i = first; i < t.size(); i++) {
            b.token[0]=t[i]; b.pos[0]=i; b.n_seq_id[0]=1; b.seq_id[0][0]=0; b.logits[0]=1; b.n_tokens=1;
            if (llama_decode(ctx, b)) { fprintf(stderr, "decode failed\n"); return 1; }
            float* lg = llama_get_logits_ith(ctx, 0); rows.emplace_back(lg, lg + nv);
        }
        for (size_t i = 0; i + 1 < t.size(); i++) {
            const float* lg = rows[i].data();
            double mx = *std::max_element(lg, lg+nv), s = 0; for (int k=0;k<nv;k++) s += exp(lg[k]-mx);
            double lse = mx + log(s);
            int best = std::max_element(lg, lg+nv) - lg;
            printf("%d:%.6f:%d:%.6f ", t[i+1], lg[t[i+1]]-lse, best, lg[best]-lse);
        }
        printf("\n");
        llama_batch_free(b);
    }
}
