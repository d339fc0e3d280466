// The next-token logits llama.cpp computes for a GGUF model: the independent reference of the test of
// `export --format gguf` (tests/gguf_test.ts). Built by `deno task setup --with-llama` against the
// prebuilt libllama of node-llama-cpp's @node-llama-cpp/linux-x64 and the headers of the llama.cpp release
// it bundles.
//   llama_logits BINS_DIR MODEL.gguf IDS.i32 OUT.f32
// IDS: little-endian int32 token ids (bytes, for a byte vocabulary), read as one batch at positions 0..n-1
// of one sequence; OUT: float32 logits, one row of n_vocab per position.
#include <stdio.h>
#include <stdlib.h>
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

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: llama_logits BINS_DIR MODEL.gguf IDS.i32 OUT.f32\n");
    return 2;
  }
  llama_log_set(errors_only, NULL);
  ggml_backend_load_all_from_path(argv[1]); // the CPU backend is a library of its own in the prebuilt bins
  llama_backend_init();
  FILE *f = fopen(argv[3], "rb");
  if (!f) { perror(argv[3]); return 1; }
  fseek(f, 0, SEEK_END);
  long n = ftell(f) / 4;
  fseek(f, 0, SEEK_SET);
  llama_token *ids = malloc(n * sizeof(llama_token));
  if (fread(ids, 4, n, f) != (size_t)n) { fprintf(stderr, "%s: short read\n", argv[3]); return 1; }
  fclose(f);

  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.progress_callback = no_progress;
  struct llama_model *model = llama_model_load_from_file(argv[2], mp);
  if (!model) { fprintf(stderr, "%s: llama.cpp could not load the model\n", argv[2]); return 1; }
  struct llama_context_params cp = llama_context_default_params();
  cp.n_ctx = cp.n_batch = cp.n_ubatch = (uint32_t)n;
  cp.n_seq_max = 1;
  cp.n_threads = cp.n_threads_batch = 1;
  struct llama_context *ctx = llama_init_from_model(model, cp);
  if (!ctx) { fprintf(stderr, "llama.cpp could not create a context\n"); return 1; }

  struct llama_batch batch = llama_batch_init((int32_t)n, 0, 1);
  for (long i = 0; i < n; i++) {
    batch.token[i] = ids[i];
    batch.pos[i] = (llama_pos)i;
    batch.n_seq_id[i] = 1;
    batch.seq_id[i][0] = 0;
    batch.logits[i] = 1; // every position's logits
  }
  batch.n_tokens = (int32_t)n;
  if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "llama_decode failed\n"); return 1; }
  int32_t vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  FILE *out = fopen(argv[4], "wb");
  if (!out) { perror(argv[4]); return 1; }
  for (long i = 0; i < n; i++) fwrite(llama_get_logits_ith(ctx, (int32_t)i), 4, vocab, out);
  fclose(out);
  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  free(ids);
  return 0;
}
