// llama.cpp on a GGUF model, without JavaScript in the loop: the independent reference of the test of
// `export --format gguf` (tests/gguf_test.ts) and the peer of the CPU decoding benchmark (lib/bench/llama.ts).
// Built by `deno task setup --with-llama` against the prebuilt libllama of node-llama-cpp's
// @node-llama-cpp/linux-x64 and the headers of the llama.cpp release it bundles.
//   llama_logits logits BINS_DIR MODEL.gguf IDS.i32 OUT.f32
//     every position's next-token logits (OUT: float32, one row of n_vocab per id) for IDS (little-endian
//     int32 token ids: bytes, for a byte vocabulary) read as one batch at positions 0..n-1 of one sequence
//   llama_logits bench BINS_DIR MODEL.gguf PROMPT.i32 GEN THREADS
//     the prompt read as one batch (prefill), then GEN greedy tokens one at a time; one JSON line on stdout
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "llama.h"
#include "ggml-backend.h"

static void errors_only(enum ggml_log_level level, const char *text, void *data) {
  (void)data;
  if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static bool no_progress(float progress, void *data) {
  (void)progress;
  (void)data;
  return true; // keep loading, print nothing
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static llama_token *read_ids(const char *path, long *n) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(1); }
  fseek(f, 0, SEEK_END);
  *n = ftell(f) / 4;
  fseek(f, 0, SEEK_SET);
  llama_token *ids = malloc(*n * sizeof(llama_token));
  if (fread(ids, 4, *n, f) != (size_t)*n) { fprintf(stderr, "%s: short read\n", path); exit(1); }
  fclose(f);
  return ids;
}

// ids at positions from..from+n-1 of sequence 0; logits for every position, or the last only
static void fill(struct llama_batch *b, const llama_token *ids, long n, long from, int every) {
  for (long i = 0; i < n; i++) {
    b->token[i] = ids[i];
    b->pos[i] = (llama_pos)(from + i);
    b->n_seq_id[i] = 1;
    b->seq_id[i][0] = 0;
    b->logits[i] = every || i == n - 1;
  }
  b->n_tokens = (int32_t)n;
}

int main(int argc, char **argv) {
  int bench = argc == 7 && strcmp(argv[1], "bench") == 0;
  if (!bench && !(argc == 6 && strcmp(argv[1], "logits") == 0)) {
    fprintf(stderr, "usage: llama_logits logits BINS_DIR MODEL.gguf IDS.i32 OUT.f32\n"
                    "       llama_logits bench BINS_DIR MODEL.gguf PROMPT.i32 GEN THREADS\n");
    return 2;
  }
  llama_log_set(errors_only, NULL);
  ggml_backend_load_all_from_path(argv[2]); // the CPU backend is a library of its own in the prebuilt bins
  llama_backend_init();
  long n;
  llama_token *ids = read_ids(argv[4], &n);
  int gen = bench ? atoi(argv[5]) : 0, threads = bench ? atoi(argv[6]) : 1;

  double t0 = seconds();
  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.progress_callback = no_progress;
  struct llama_model *model = llama_model_load_from_file(argv[3], mp);
  if (!model) { fprintf(stderr, "%s: llama.cpp could not load the model\n", argv[3]); return 1; }
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = (uint32_t)(n + gen);
  cp.n_batch = cp.n_ubatch = (uint32_t)n;
  cp.n_seq_max = 1;
  cp.n_threads = cp.n_threads_batch = threads;
  struct llama_context *ctx = llama_init_from_model(model, cp);
  if (!ctx) { fprintf(stderr, "llama.cpp could not create a context\n"); return 1; }
  int32_t vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  double loaded = seconds() - t0;

  struct llama_batch batch = llama_batch_init((int32_t)n, 0, 1);
  fill(&batch, ids, n, 0, !bench);
  double p0 = seconds();
  if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "llama_decode failed\n"); return 1; }
  double prefill = seconds() - p0;
  if (!bench) {
    FILE *out = fopen(argv[5], "wb");
    if (!out) { perror(argv[5]); return 1; }
    for (long i = 0; i < n; i++) fwrite(llama_get_logits_ith(ctx, (int32_t)i), 4, vocab, out);
    fclose(out);
  } else {
    // greedy: the most likely next token, fed back one at a time
    double d0 = seconds();
    llama_token next;
    long at = n;
    unsigned long sum = 0;
    for (int g = 0; g < gen; g++) {
      const float *l = llama_get_logits_ith(ctx, -1);
      next = 0;
      for (int32_t v = 1; v < vocab; v++) if (l[v] > l[next]) next = v;
      sum = sum * 31 + (unsigned long)next;
      fill(&batch, &next, 1, at++, 0);
      if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "llama_decode failed\n"); return 1; }
    }
    double decode = seconds() - d0;
    printf("{\"threads\": %d, \"prompt\": %ld, \"gen\": %d, \"load_s\": %.4f, \"prefill_s\": %.6f, "
           "\"decode_s\": %.6f, \"greedy_hash\": %lu}\n",
           threads, n, gen, loaded, prefill, decode, sum);
  }
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  free(ids);
  return 0;
}
