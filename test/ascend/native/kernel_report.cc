// kernel_report.cc — runs every AscendC kernel through the ascend-sim backend at model-sized shapes
// (Llama-3-8B-like layers: hidden 4096, 32 q / 8 kv heads of 128, MLP 14336, 128-token KV blocks, a
// 32000-token vocabulary) and prints each kernel's peak use of UB, L1, L0A, L0B and L0C (the sum of its
// InitBuffer sizes, per core) against the 910B's capacities. Exit status 1 when an op fails.
// test/ascend/kernel-report.test.ts runs it; `build/native/ascend/ascend_kernel_report` prints the table.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../../kernels/ascendc/shim/kernel_operator.h"
#include "../../../native/backends/ascend_sim/ascend_sim_backend.h"

namespace {

ud_backend_handle backend;
int failures = 0;

struct Buffer {
  void *data = nullptr;
  ud_tensor tensor{};
};

uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// A device tensor of `shape`, filled with small pseudo-random floats (or the given i32 values).
Buffer tensor(ud_dtype dtype, std::vector<int64_t> shape, const std::vector<int32_t> &ints = {}, float scale = 0.5f) {
  Buffer b;
  b.tensor.dtype = dtype;
  b.tensor.ndim = static_cast<int32_t>(shape.size());
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); i++) {
    b.tensor.ne[i] = shape[i];
    n *= shape[i];
  }
  for (size_t i = shape.size(); i < UD_MAX_DIMS; i++) b.tensor.ne[i] = 1;
  const size_t bytes = static_cast<size_t>(n) * ud_dtype_size(dtype);
  if (backend.iface->alloc(backend.ctx, bytes, &b.data) != UD_OK) {
    std::fprintf(stderr, "alloc failed\n");
    std::exit(1);
  }
  std::vector<uint8_t> host(bytes);
  uint32_t state = 12345;
  for (int64_t i = 0; i < n; i++) {
    state = state * 1664525u + 1013904223u;
    const float v = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 2 * scale;
    switch (dtype) {
      case UD_F32: std::memcpy(&host[i * 4], &v, 4); break;
      case UD_BF16: {
        const uint16_t h = bf16_bits(v);
        std::memcpy(&host[i * 2], &h, 2);
        break;
      }
      case UD_I32: {
        const int32_t x = i < static_cast<int64_t>(ints.size()) ? ints[i] : 0;
        std::memcpy(&host[i * 4], &x, 4);
        break;
      }
      case UD_U64: {
        const uint64_t x = static_cast<uint64_t>(i) * 7919u;
        std::memcpy(&host[i * 8], &x, 8);
        break;
      }
      case UD_U32: {
        const uint32_t x = 0xffffffffu;
        std::memcpy(&host[i * 4], &x, 4);
        break;
      }
      default: break;
    }
  }
  backend.iface->upload(backend.ctx, b.data, host.data(), bytes);
  b.tensor.data = b.data;
  return b;
}

void run(const char *what, ud_op_kind kind, std::vector<const Buffer *> src, std::vector<const Buffer *> dst, ud_op_params params = {}) {
  ud_op op{};
  op.kind = kind;
  op.n_src = static_cast<int32_t>(src.size());
  op.n_dst = static_cast<int32_t>(dst.size());
  op.params = params;
  for (size_t i = 0; i < src.size(); i++)
    if (src[i]) op.src[i] = src[i]->tensor;
  for (size_t i = 0; i < dst.size(); i++)
    if (dst[i]) op.dst[i] = dst[i]->tensor;
  if (backend.iface->launch(backend.ctx, &op) != UD_OK) {
    std::fprintf(stderr, "%s failed: %s\n", what, backend.iface->last_error(backend.ctx));
    failures++;
  }
}

std::vector<int32_t> iota(int n, int step = 1, int start = 0) {
  std::vector<int32_t> v(n);
  for (int i = 0; i < n; i++) v[i] = start + i * step;
  return v;
}

}  // namespace

int main() {
  setenv("UPDRAFT_ASCEND_SIM_ORDERS", "forward", 1);  // resource use does not depend on the block order
  char error[256] = {0};
  if (ud_ascend_sim_backend_open(nullptr, &backend, error, sizeof error) != UD_OK) {
    std::fprintf(stderr, "cannot open ascend-sim: %s\n", error);
    return 1;
  }
  const int64_t hidden = 4096, heads = 32, kv = 8, hd = 128, inter = 14336, vocab = 32000, tokens = 8, bs = 128;
  ud_op_params p{};

  // Embedding and gather of decode-sized batches.
  Buffer table = tensor(UD_BF16, {4096, hidden}), ids = tensor(UD_I32, {tokens}, iota(tokens, 97));
  Buffer h = tensor(UD_BF16, {tokens, hidden});
  run("embedding", UD_OP_EMBEDDING, {&table, &ids}, {&h});
  Buffer rows = tensor(UD_I32, {4}, {7, 0, 3, -1}), picked = tensor(UD_BF16, {4, hidden});
  run("gather_rows", UD_OP_GATHER_ROWS, {&h, &rows}, {&picked});

  // RMSNorm with the residual add; also a row longer than one UB chunk.
  Buffer res = tensor(UD_BF16, {tokens, hidden}), w = tensor(UD_BF16, {hidden}), normed = tensor(UD_BF16, {tokens, hidden});
  p.rmsnorm = {1e-5f, 1};
  run("rmsnorm", UD_OP_RMSNORM, {&h, &res, &w}, {&normed, &res}, p);
  Buffer wide = tensor(UD_BF16, {2, 3 * hidden}), wide_w = tensor(UD_BF16, {3 * hidden}), wide_out = tensor(UD_BF16, {2, 3 * hidden});
  p.rmsnorm = {1e-5f, 0};
  run("rmsnorm (12288 wide)", UD_OP_RMSNORM, {&wide, nullptr, &wide_w}, {&wide_out}, p);

  // Projections on the cube: decode rows and a 128-row prefill tile, with and without bias.
  Buffer wqkv = tensor(UD_BF16, {(heads + 2 * kv) * hd, hidden}, {}, 0.02f), qkv = tensor(UD_BF16, {tokens, (heads + 2 * kv) * hd});
  p = {};
  run("matmul qkv", UD_OP_MATMUL, {&normed, &wqkv, nullptr}, {&qkv}, p);
  Buffer x128 = tensor(UD_BF16, {128, 1024}), w1024 = tensor(UD_BF16, {1024, 1024}, {}, 0.02f), bias = tensor(UD_BF16, {1024});
  Buffer y128 = tensor(UD_F32, {128, 1024});
  run("matmul prefill + bias", UD_OP_MATMUL, {&x128, &w1024, &bias}, {&y128}, p);
  Buffer x32 = tensor(UD_F32, {16, 1024}), y32 = tensor(UD_F32, {16, 1024});
  run("matmul f32 x, bf16 W", UD_OP_MATMUL, {&x32, &w1024, nullptr}, {&y32}, p);

  // RoPE + KV write into 128-token blocks, then attention: decode over 300 positions, a 64-row prompt.
  const int64_t num_blocks = 16;
  Buffer pos = tensor(UD_I32, {tokens}, iota(tokens, 1, 292)), inv = tensor(UD_F32, {hd / 2}, {}, 0.5f);
  Buffer slots = tensor(UD_I32, {tokens}, iota(tokens, 1, 292)), q = tensor(UD_BF16, {tokens, heads, hd});
  Buffer kc = tensor(UD_BF16, {num_blocks, bs, kv, hd}), vc = tensor(UD_BF16, {num_blocks, bs, kv, hd});
  p.rope_kv_write = {static_cast<int32_t>(heads), static_cast<int32_t>(kv), static_cast<int32_t>(hd), static_cast<int32_t>(hd)};
  run("rope_kv_write", UD_OP_ROPE_KV_WRITE, {&qkv, &pos, &inv, &slots}, {&q, &kc, &vc}, p);
  Buffer tables = tensor(UD_I32, {4, 4}, {0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1});
  Buffer lens = tensor(UD_I32, {4}, {300, 300, 129, 1}), starts = tensor(UD_I32, {5}, {0, 1, 2, 3, 4});
  Buffer q4 = tensor(UD_BF16, {4, heads, hd}), out4 = tensor(UD_BF16, {4, heads * hd});
  p.attention = {0.0883883f, static_cast<int32_t>(heads), static_cast<int32_t>(kv), static_cast<int32_t>(hd), static_cast<int32_t>(bs), 0};
  run("attention decode", UD_OP_ATTENTION, {&q4, &kc, &vc, &tables, &lens, &starts}, {&out4}, p);
  Buffer tables1 = tensor(UD_I32, {1, 2}, {12, 13}), lens1 = tensor(UD_I32, {1}, {64}), starts1 = tensor(UD_I32, {2}, {0, 64});
  Buffer q64 = tensor(UD_BF16, {64, heads, hd}), out64 = tensor(UD_BF16, {64, heads * hd});
  run("attention prefill", UD_OP_ATTENTION, {&q64, &kc, &vc, &tables1, &lens1, &starts1}, {&out64}, p);

  // MLP activation.
  Buffer gate_up = tensor(UD_BF16, {tokens, 2 * inter}), act = tensor(UD_BF16, {tokens, inter});
  run("silu_mul", UD_OP_SILU_MUL, {&gate_up}, {&act});

  // Logits processing and sampling over a 32000-token vocabulary, top-5 logprobs.
  const int64_t s = 4;
  Buffer logits = tensor(UD_F32, {s, vocab}, {}, 4.0f);
  Buffer flags = tensor(UD_I32, {s}, {7, 1, 2, 0}), pens = tensor(UD_F32, {s, 3}, {}, 0.5f);
  Buffer seen = tensor(UD_I32, {s, 16}, iota(64, 13)), counts = tensor(UD_I32, {s, 16}, iota(64, 0));
  Buffer bias_ids = tensor(UD_I32, {s, 4}, iota(16, 101)), bias_vals = tensor(UD_F32, {s, 4});
  Buffer allowed = tensor(UD_U32, {s, (vocab + 31) / 32});
  run("process_logits", UD_OP_PROCESS_LOGITS, {&flags, &pens, &seen, &counts, nullptr, &bias_ids, &bias_vals, &allowed}, {&logits});
  Buffer temp = tensor(UD_F32, {s}), topk = tensor(UD_I32, {s}, {0, 50, 0, 1}), topp = tensor(UD_F32, {s}), minp = tensor(UD_F32, {s});
  Buffer seeds = tensor(UD_U64, {s}), ctr = tensor(UD_I32, {s}, {1, 2, 3, 4});
  Buffer tok = tensor(UD_I32, {s}), lp = tensor(UD_F32, {s}), top_ids = tensor(UD_I32, {s, 5}), top_lp = tensor(UD_F32, {s, 5});
  p.sample = {5};
  run("sample", UD_OP_SAMPLE, {&logits, &temp, &topk, &topp, &minp, &seeds, &ctr}, {&tok, &lp, &top_ids, &top_lp}, p);
  Buffer next = tensor(UD_I32, {8}), sources = tensor(UD_I32, {s}, {3, -1, 0, 1});
  run("select_tokens", UD_OP_SELECT_TOKENS, {&ctr, &sources, &tok}, {&next});
  Buffer dummy = tensor(UD_BF16, {hidden, 256});
  p.fill_random = {42, 0.02f};
  run("fill_random", UD_OP_FILL_RANDOM, {}, {&dummy}, p);

  // The table.
  const auto &stats = updraft::ascend_sim::sim_device(backend.ctx)->stats();
  using AscendC::shim::kMemCapacity;
  std::printf("%-32s %-4s %6s  %15s  %15s  %15s  %15s  %15s\n", "kernel", "core", "blocks", "UB (192 KiB)", "L1 (512 KiB)", "L0A (64 KiB)", "L0B (64 KiB)",
              "L0C (128 KiB)");
  for (const auto &entry : stats) {
    const auto &k = entry.second;
    std::printf("%-32s %-4s %6u", entry.first.c_str(), k.kernel_type == AscendC::KERNEL_TYPE_AIC_ONLY ? "AIC" : "AIV", k.max_blocks);
    for (int m = 0; m < AscendC::shim::kMemCount; m++) {
      char cell[32];
      if (k.peak[m] == 0) std::snprintf(cell, sizeof cell, "-");
      else std::snprintf(cell, sizeof cell, "%u (%.0f%%)", k.peak[m], 100.0 * k.peak[m] / kMemCapacity[m]);
      std::printf("  %15s", cell);
    }
    std::printf("\n");
  }
  backend.iface->destroy(backend.ctx);
  return failures ? 1 : 0;
}
