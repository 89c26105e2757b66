// UD_OP_MATMUL: y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N]), accumulated in f32.
//
// Work is split into tiles of (up to) 64 rows × 64 columns spread over the thread pool; inside a
// tile a register-blocked micro-kernel computes 4 rows × 2 columns of K-inner dot products with
// 8-lane vector accumulators. Every output element is computed by the same arithmetic whatever its
// tile (lanes over k mod 8, a fixed lane reduction, then the K tail in order), so a row's result
// does not depend on the batch it was computed in, and the AVX2 and baseline builds of the tile
// function (target_clones) give bit-identical results (FP contraction is off in this build).
// bf16 W is widened in registers for decode-sized tiles; otherwise 16-bit W is converted to f32
// once per tile and x once per call.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "dtype_convert.h"
#include "operand_checks.h"

namespace updraft::cpu {
namespace {

typedef float v8f __attribute__((vector_size(32)));

constexpr int kRowsPerMicro = 4;  // MR
constexpr int kColsPerMicro = 2;  // NR
constexpr int64_t kRowsPerTile = 64;
constexpr int64_t kMaxColsPerTile = 64;
constexpr int64_t kMinMacsPerTile = 1 << 15;

// Vectors are only ever locals or passed by reference: passing them by value between functions
// would tie the baseline build to the AVX calling convention (-Wpsabi).
typedef uint16_t v8u16 __attribute__((vector_size(16)));
typedef uint32_t v8u32 __attribute__((vector_size(32)));

// W elements: f32 as is, or bf16 widened in registers (a 16-bit shift, exact), so bf16 weights
// stream half the bytes of f32 ones without a conversion pass.
inline __attribute__((always_inline)) void load8(const float *p, v8f &out) { std::memcpy(&out, p, sizeof out); }
inline __attribute__((always_inline)) void load8(const uint16_t *p, v8f &out) {
  v8u16 h;
  std::memcpy(&h, p, sizeof h);
  const v8u32 bits = __builtin_convertvector(h, v8u32) << 16;
  std::memcpy(&out, &bits, sizeof out);
}
inline __attribute__((always_inline)) float load1(const float *p) { return *p; }
inline __attribute__((always_inline)) float load1(const uint16_t *p) { return bf16_to_f32(*p); }

// out[r * NR + c] = dot(x row r, w row c) over K.
template <int MR, int NR, typename WT>
inline __attribute__((always_inline)) void micro_kernel(const float *x, int64_t ldx, const WT *w, int64_t ldw,
                                                        int64_t k_len, float *out) {
  v8f acc[MR][NR];
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) acc[r][c] = v8f{0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= k_len; k += 8) {
    v8f wv[NR];
    for (int c = 0; c < NR; c++) load8(w + c * ldw + k, wv[c]);
    for (int r = 0; r < MR; r++) {
      v8f xv;
      load8(x + r * ldx + k, xv);
      for (int c = 0; c < NR; c++) acc[r][c] += xv * wv[c];
    }
  }
  for (int r = 0; r < MR; r++) {
    for (int c = 0; c < NR; c++) {
      float lane[8];
      std::memcpy(lane, &acc[r][c], sizeof lane);
      float s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
      for (int64_t kk = k; kk < k_len; kk++) s += x[r * ldx + kk] * load1(w + c * ldw + kk);
      out[r * NR + c] = s;
    }
  }
}

template <int MR, int NR, typename WT>
inline __attribute__((always_inline)) void micro_tile(const float *x, const WT *w, int64_t k_len,
                                                      const float *bias, float *y, int64_t ldy) {
  float out[MR * NR];
  micro_kernel<MR, NR>(x, k_len, w, k_len, k_len, out);
  for (int r = 0; r < MR; r++)
    for (int c = 0; c < NR; c++) y[r * ldy + c] = bias ? out[r * NR + c] + bias[c] : out[r * NR + c];
}

// One tile: y[rows, cols] (row stride ldy) from x[rows, K] and w[cols, K], contiguous.
// Blocks of 4 rows take columns in pairs (8 accumulators); leftover rows, which is every row of a
// decode step, take columns in fours so that more weight rows stream at once.
template <typename WT>
inline __attribute__((always_inline)) void tile_body(const float *x, int64_t num_rows, const WT *w, int64_t num_cols,
                                                     int64_t k_len, const float *bias, float *y, int64_t ldy) {
  const int64_t full_rows = num_rows / kRowsPerMicro * kRowsPerMicro;
  for (int64_t j = 0; j < num_cols; j += kColsPerMicro) {
    const bool full_cols = j + kColsPerMicro <= num_cols;
    const WT *wj = w + j * k_len;
    const float *bj = bias ? bias + j : nullptr;
    for (int64_t i = 0; i < full_rows; i += kRowsPerMicro) {
      if (full_cols) micro_tile<4, 2>(x + i * k_len, wj, k_len, bj, y + i * ldy + j, ldy);
      else micro_tile<4, 1>(x + i * k_len, wj, k_len, bj, y + i * ldy + j, ldy);
    }
  }
  constexpr int kDecodeCols = std::is_same<WT, float>::value ? 8 : 8;
  for (int64_t i = full_rows; i < num_rows; i++) {
    int64_t j = 0;
    for (; j + kDecodeCols <= num_cols; j += kDecodeCols)
      micro_tile<1, kDecodeCols>(x + i * k_len, w + j * k_len, k_len, bias ? bias + j : nullptr, y + i * ldy + j, ldy);
    for (; j < num_cols; j++)
      micro_tile<1, 1>(x + i * k_len, w + j * k_len, k_len, bias ? bias + j : nullptr, y + i * ldy + j, ldy);
  }
}

// x86-64: an AVX2 clone picked at load time (ifunc), the baseline clone elsewhere; same results.
#if defined(__x86_64__) && defined(__linux__)
#define UD_MATMUL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define UD_MATMUL_CLONES
#endif

UD_MATMUL_CLONES void matmul_tile_f32(const float *x, int64_t num_rows, const float *w, int64_t num_cols,
                                      int64_t k_len, const float *bias, float *y, int64_t ldy) {
  tile_body(x, num_rows, w, num_cols, k_len, bias, y, ldy);
}

UD_MATMUL_CLONES void matmul_tile_bf16(const float *x, int64_t num_rows, const uint16_t *w, int64_t num_cols,
                                       int64_t k_len, const float *bias, float *y, int64_t ldy) {
  tile_body(x, num_rows, w, num_cols, k_len, bias, y, ldy);
}

}  // namespace

ud_status launch_matmul(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &x = op.src[0];     // [M, K]
  const ud_tensor &w = op.src[1];     // [N, K]
  const ud_tensor &bias = op.src[2];  // [N], optional
  const ud_tensor &y = op.dst[0];     // [M, N]
  OperandChecker check(ctx, "matmul");
  check.required(x, "src0 (x)").required(w, "src1 (W)").shape_valid(bias, "src2 (bias)").required(y, "dst0 (y)")
      .float_dtype(x, "src0 (x)").float_dtype(w, "src1 (W)").float_dtype(bias, "src2 (bias)")
      .float_dtype(y, "dst0 (y)");
  if (!check.ok()) return check.status();
  const int64_t m = rows(x), k_len = row_size(x), n = rows(w);
  check.row_size_is(w, k_len, "src1 (W)").numel_is(bias, n, "src2 (bias)").rows_are(y, m, "dst0 (y)")
      .row_size_is(y, n, "dst0 (y)");
  if (!check.ok()) return check.status();
  if (m == 0 || n == 0) return UD_OK;

  std::vector<float> bias_f32;
  if (present(bias)) {
    bias_f32.resize(static_cast<size_t>(n));
    load_row_f32(bias.data, bias.dtype, 0, n, bias_f32.data());
  }
  const float *bias_ptr = present(bias) ? bias_f32.data() : nullptr;

  // x as contiguous f32 rows.
  std::vector<float> x_f32;
  const float *xp = static_cast<const float *>(x.data);
  if (x.dtype != UD_F32) {
    x_f32.resize(static_cast<size_t>(m * k_len));
    ctx.pool.parallel_for(m, 16, [&](int64_t begin, int64_t end) {
      load_row_f32(x.data, x.dtype, begin * k_len, (end - begin) * k_len, x_f32.data() + begin * k_len);
    });
    xp = x_f32.data();
  }
  // y written directly when f32, else through an f32 scratch converted at the end.
  std::vector<float> y_f32;
  float *yp = static_cast<float *>(y.data);
  if (y.dtype != UD_F32) {
    y_f32.resize(static_cast<size_t>(m * n));
    yp = y_f32.data();
  }

  // Tile sizes: enough column tiles that every thread gets several tiles even for one row (decode),
  // but no splitting of tiny products, where handing work to another thread costs more than it saves.
  const int64_t num_row_tiles = (m + kRowsPerTile - 1) / kRowsPerTile;
  const int64_t wanted_tiles = std::clamp<int64_t>(m * n * k_len / kMinMacsPerTile, 1, 4 * int64_t{ctx.pool.num_threads()});
  const int64_t wanted_col_tiles = std::max<int64_t>(1, (wanted_tiles + num_row_tiles - 1) / num_row_tiles);
  int64_t cols_per_tile = (n + wanted_col_tiles - 1) / wanted_col_tiles;
  cols_per_tile = std::clamp<int64_t>((cols_per_tile + kColsPerMicro - 1) / kColsPerMicro * kColsPerMicro,
                                      kColsPerMicro, kMaxColsPerTile);
  const int64_t num_col_tiles = (n + cols_per_tile - 1) / cols_per_tile;

  ctx.pool.parallel_for(num_row_tiles * num_col_tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> w_tile;
    for (int64_t t = begin; t < end; t++) {
      const int64_t col0 = (t / num_row_tiles) * cols_per_tile, row0 = (t % num_row_tiles) * kRowsPerTile;
      const int64_t num_cols = std::min(cols_per_tile, n - col0), num_rows = std::min(kRowsPerTile, m - row0);
      const float *x_tile = xp + row0 * k_len;
      const float *b_tile = bias_ptr ? bias_ptr + col0 : nullptr;
      float *y_tile = yp + row0 * n + col0;
      // bf16 W: widened in registers when few rows reuse it; converted once per tile when many do.
      if (w.dtype == UD_BF16 && num_rows < 2 * kRowsPerMicro) {
        const uint16_t *wp = static_cast<const uint16_t *>(w.data) + col0 * k_len;
        matmul_tile_bf16(x_tile, num_rows, wp, num_cols, k_len, b_tile, y_tile, n);
        continue;
      }
      const float *wp = static_cast<const float *>(w.data) + col0 * k_len;
      if (w.dtype != UD_F32) {
        w_tile.resize(static_cast<size_t>(num_cols * k_len));
        load_row_f32(w.data, w.dtype, col0 * k_len, num_cols * k_len, w_tile.data());
        wp = w_tile.data();
      }
      matmul_tile_f32(x_tile, num_rows, wp, num_cols, k_len, b_tile, y_tile, n);
    }
  });

  if (y.dtype != UD_F32) {
    ctx.pool.parallel_for(m, 16, [&](int64_t begin, int64_t end) {
      store_row_f32(y.data, y.dtype, begin * n, (end - begin) * n, y_f32.data() + begin * n);
    });
  }
  return UD_OK;
}

}  // namespace updraft::cpu
