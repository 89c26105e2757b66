// emulate_v5.cu — host emulation of matmul variant 5's work split, pipeline and reduction
// (kernels/cuda/matmul_v5_decode.cuh), to check its index math without a GPU.
//
// Build and run (host only, no GPU needed):
//   nvcc -std=c++17 -O2 -I kernels/cuda -o /tmp/emulate_v5 kernels/dev/matmul/emulate_v5.cu && /tmp/emulate_v5
//
// It replays the kernel's control flow block by block and warp by warp, with the kernel's own helpers
// (v5_cta_tile, v5_warp_begin, v5_warp_of, v5_segment_at, v5_slot, v5_pipeline), lane by lane:
// each lane's 16-byte loads (8 elements, same predicates as the kernel), the two-stage register buffers,
// mma.sync m16n8k16 on the fragments as PTX defines them (matmul_ptx.cuh), the epilogue's stores and the
// shared-memory partials. Values are small integers, so every sum is exact and y must equal the
// reference exactly. Also checked: a stage is loaded before it is computed and not reloaded in between
// (each stage slot records which chunk it holds), every y element is written exactly once, every
// partial read was written by this launch and no slot is written twice.
// Mutation check: --mutate N breaks one piece of the index math and expects failures.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "matmul_v5_decode.cuh"

namespace md = updraft::cuda::matmul_detail;

namespace {

int g_mutation = 0;  // 0: the real logic

struct Lane8 {
  double e[8];
  long chunk;  // which chunk this register holds (-1: zeros)
};

// d (per lane, 4 values) += A · B with A 16×16, B 16×8 given as per-lane fragments.
// a[l][0..3] are pairs: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..];
// b[l][0..1]: b0 = B[2t..2t+1][g], b1 = B[2t+8..][g]; d0,d1 = D[g][2t..], d2,d3 = D[g+8][2t..].
void mma(double d[32][4], const double a[32][4][2], const double b[32][2][2]) {
  double A[16][16], B[16][8];
  for (int l = 0; l < 32; l++) {
    const int g = l / 4, t = l % 4;
    for (int j = 0; j < 2; j++) {
      A[g][2 * t + j] = a[l][0][j];
      A[g + 8][2 * t + j] = a[l][1][j];
      A[g][2 * t + 8 + j] = a[l][2][j];
      A[g + 8][2 * t + 8 + j] = a[l][3][j];
      B[2 * t + j][g] = b[l][0][j];
      B[2 * t + 8 + j][g] = b[l][1][j];
    }
  }
  for (int l = 0; l < 32; l++) {
    const int g = l / 4, t = l % 4;
    for (int j = 0; j < 2; j++) {
      double s0 = 0, s1 = 0;
      for (int kk = 0; kk < 16; kk++) {
        s0 += A[g][kk] * B[kk][2 * t + j];
        s1 += A[g + 8][kk] * B[kk][2 * t + j];
      }
      d[l][j] += s0;
      d[l][2 + j] += s1;
    }
  }
}

struct Result {
  long failures = 0;
  std::string first;
  void fail(const std::string &s) {
    if (failures++ == 0) first = s;
  }
};

template <int NB, int U>
void run_block(int b, int ctas, int m, int n, int k, const std::vector<double> &x, const std::vector<double> &w,
               std::vector<double> &y, std::vector<int> &writes, Result &res) {
  const int64_t tiles = (n + 15) / 16, chunks = (k + md::kV5ChunkK - 1) / md::kV5ChunkK;
  const int64_t tb = md::v5_cta_tile(b, tiles, ctas);
  const int64_t total = (md::v5_cta_tile(b + 1, tiles, ctas) - tb) * chunks;
  // part[warp][slot][r][c] and "written" flags
  std::vector<double> part(size_t(md::kV5Warps) * 2 * 16 * 16, 0.0);
  std::vector<int> part_written(size_t(md::kV5Warps) * 2, 0);
  auto P = [&](int wp, int slot, int r, int c) -> double & { return part[((size_t(wp) * 2 + slot) * 16 + r) * 16 + c]; };

  for (int warp = 0; warp < md::kV5Warps; warp++) {
    const int64_t ib = md::v5_warp_begin(warp, total), ie = md::v5_warp_begin(warp + 1, total);
    for (int64_t i = ib; i < ie;) {
      int64_t lt;
      int cb, ce;
      md::v5_segment_at(i, ie, chunks, lt, cb, ce);
      if (g_mutation == 1 && ce > cb + 1) ce--;  // drops a chunk
      const int64_t n0 = (tb + lt) * 16;
      double acc[NB][32][4] = {};
      Lane8 wa[2][U][32], wb[2][U][32], xv[2][NB][U][32];
      auto load = [&](auto stage, int c0) {
        constexpr int S = decltype(stage)::value;
        for (int u = 0; u < U; u++)
          for (int l = 0; l < 32; l++) {
            const int g = l / 4, t = l % 4;
            const int kk = (c0 + u) * md::kV5ChunkK;
            const bool in = c0 + u < ce && kk + 8 * t < k;
            const bool row_a = n0 + g < n, row_b = n0 + g + 8 < n;
            auto ld = [&](Lane8 &r, bool ok, const std::vector<double> &src, int64_t row) {
              r.chunk = c0 + u;
              for (int e = 0; e < 8; e++) r.e[e] = ok ? src[size_t(row * k + kk + 8 * t + e)] : 0.0;
              if (ok && kk + 8 * t + 8 > k) res.fail("load past the end of a row");
            };
            ld(wa[S][u][l], in && row_a, w, n0 + g);
            ld(wb[S][u][l], in && row_b, w, n0 + g + 8);
            for (int nb = 0; nb < NB; nb++) ld(xv[S][nb][u][l], in && nb * 8 + g < m, x, nb * 8 + g);
          }
      };
      auto compute = [&](auto stage, int c0) {
        const int s = g_mutation == 2 ? 0 : decltype(stage)::value;  // mutation 2: always stage 0
        for (int u = 0; u < U; u++) {
          if (c0 + u >= ce) break;
          for (int l = 0; l < 32; l++)
            if (wa[s][u][l].chunk != c0 + u || wb[s][u][l].chunk != c0 + u || xv[s][0][u][l].chunk != c0 + u)
              res.fail("stage holds chunk " + std::to_string(wa[s][u][l].chunk) + ", computing chunk " +
                       std::to_string(c0 + u));
          for (int nb = 0; nb < NB; nb++)
            for (int half = 0; half < 2; half++) {  // MMA #1: words x,y (elements 0-3); #2: z,w (4-7)
              double a[32][4][2], bb[32][2][2];
              for (int l = 0; l < 32; l++)
                for (int j = 0; j < 2; j++) {
                  a[l][0][j] = wa[s][u][l].e[4 * half + j];
                  a[l][1][j] = wb[s][u][l].e[4 * half + j];
                  a[l][2][j] = wa[s][u][l].e[4 * half + 2 + j];
                  a[l][3][j] = wb[s][u][l].e[4 * half + 2 + j];
                  bb[l][0][j] = xv[s][nb][u][l].e[4 * half + j];
                  bb[l][1][j] = xv[s][nb][u][l].e[4 * half + 2 + j];
                }
              mma(acc[nb], a, bb);
            }
        }
      };
      md::v5_pipeline<U>(cb, ce, load, compute);

      if (cb == 0 && ce == chunks) {
        for (int l = 0; l < 32; l++) {
          const int g = l / 4, t = l % 4;
          for (int nb = 0; nb < NB; nb++)
            for (int h = 0; h < 2; h++) {
              const int64_t col = n0 + g + 8 * h;
              if (col >= n) continue;
              for (int j = 0; j < 2; j++) {
                const int row = nb * 8 + 2 * t + j;
                if (row < m) {
                  y[size_t(row * n + col)] = acc[nb][l][2 * h + j];
                  writes[size_t(row * n + col)]++;
                }
              }
            }
        }
      } else {
        int slot = md::v5_slot(ib, lt, chunks);
        if (g_mutation == 3) slot = 0;
        if (part_written[warp * 2 + slot]++) res.fail("partial slot written twice");
        for (int l = 0; l < 32; l++) {
          const int g = l / 4, t = l % 4;
          for (int nb = 0; nb < NB; nb++)
            for (int j = 0; j < 2; j++) {
              P(warp, slot, g, nb * 8 + 2 * t + j) = acc[nb][l][j];
              P(warp, slot, g + 8, nb * 8 + 2 * t + j) = acc[nb][l][2 + j];
            }
        }
      }
      i += ce - cb;
    }
  }
  // __syncthreads(); reduction
  for (int warp = 0; warp < md::kV5Warps; warp++) {
    const int64_t ib = md::v5_warp_begin(warp, total), ie = md::v5_warp_begin(warp + 1, total);
    if (ib >= ie) continue;
    const int64_t lt = (ie - 1) / chunks;
    const int first = md::v5_warp_of(lt * chunks, total), last = md::v5_warp_of((lt + 1) * chunks - 1, total);
    if (first != warp || last == warp) continue;
    const int64_t n0 = (tb + lt) * 16;
    for (int lane = 0; lane < 32; lane++)
      for (int o = lane; o < 16 * m; o += 32) {
        const int r = o & 15, c = o >> 4;
        const int64_t col = n0 + r;
        if (col >= n) continue;
        double s = 0.0;
        for (int v = first; v <= last - (g_mutation == 4 ? 1 : 0); v++) {
          const int64_t vb = md::v5_warp_begin(v, total);
          if (vb == md::v5_warp_begin(v + 1, total)) continue;
          const int slot = md::v5_slot(vb, lt, chunks);
          if (!part_written[v * 2 + slot]) res.fail("reads a partial nobody wrote");
          s += P(v, slot, r, c);
        }
        y[size_t(c * n + col)] = s;
        writes[size_t(c * n + col)]++;
      }
  }
}

void run_case(int m, int n, int k, int ctas_limit, std::mt19937 &rng, Result &res, long &cases) {
  std::uniform_int_distribution<int> val(-3, 3);
  std::vector<double> x(size_t(m) * k), w(size_t(n) * k), y(size_t(m) * n, -1e300);
  std::vector<int> writes(size_t(m) * n, 0);
  for (auto &v : x) v = val(rng);
  for (auto &v : w) v = val(rng);
  md::Problem p;
  p.m = m;
  p.n = n;
  p.k = k;
  const int ctas = md::v5_ctas(p, ctas_limit);
  const long before = res.failures;
  for (int b = 0; b < ctas; b++) {
    if (m <= 8)
      run_block<1, md::V5Unroll<1>::value>(b, ctas, m, n, k, x, w, y, writes, res);
    else
      run_block<2, md::V5Unroll<2>::value>(b, ctas, m, n, k, x, w, y, writes, res);
  }
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int kk = 0; kk < k; kk++) s += x[size_t(i) * k + kk] * w[size_t(j) * k + kk];
      if (writes[size_t(i) * n + j] != 1)
        res.fail("y[" + std::to_string(i) + "," + std::to_string(j) + "] written " +
                 std::to_string(writes[size_t(i) * n + j]) + " times");
      else if (y[size_t(i) * n + j] != s)
        res.fail("y[" + std::to_string(i) + "," + std::to_string(j) + "] = " + std::to_string(y[size_t(i) * n + j]) +
                 ", expected " + std::to_string(s));
    }
  if (res.failures != before && res.first.find(" (M=") == std::string::npos)
    res.first += " (M=" + std::to_string(m) + " N=" + std::to_string(n) + " K=" + std::to_string(k) +
                 " SMs=" + std::to_string(ctas_limit) + ")";
  cases++;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc == 3 && std::strcmp(argv[1], "--mutate") == 0) g_mutation = std::atoi(argv[2]);
  std::mt19937 rng(7);
  Result res;
  long cases = 0;
  // Fixed shapes: the bench's awkward ones, the tile/segment corner cases, scaled-down model shapes.
  const int fixed[][4] = {
      // m, n, k, SMs
      {3, 29, 40, 132},    {1, 1, 8, 132},     {16, 17, 8, 132},    {9, 1031, 8, 132},  {2, 3, 8, 132},
      {16, 77, 1000, 132}, {13, 2200, 512, 132}, {5, 520, 4096, 132}, {1, 520, 4096, 132}, {4, 40000, 64, 132},
      {9, 20011, 200, 132}, {2, 2100, 1336, 132}, {7, 4097, 96, 132}, {16, 4096, 256, 132}, {1, 6144, 128, 132},
      {8, 2500, 72, 7},    {16, 333, 264, 5},   {1, 48, 1024, 1},    {12, 200, 40, 3},   {5, 4096, 4104, 132},
  };
  for (auto &f : fixed) run_case(f[0], f[1], f[2], f[3], rng, res, cases);
  // Random shapes: small K and many tiles per block (warps cross tile boundaries), few SMs.
  std::uniform_int_distribution<int> mdist(1, 16), ndist(1, 3000), kdist(1, 80), smdist(1, 140);
  for (int i = 0; i < 300; i++) run_case(mdist(rng), ndist(rng), 8 * kdist(rng), smdist(rng), rng, res, cases);
  std::printf("emulate_v5%s: %ld cases, %ld failures%s%s\n",
              g_mutation ? (" (mutation " + std::to_string(g_mutation) + ")").c_str() : "", cases, res.failures,
              res.failures ? ": first: " : "", res.first.c_str());
  return res.failures ? 1 : 0;
}
