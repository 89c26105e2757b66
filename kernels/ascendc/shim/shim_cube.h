// shim_cube.h — the cube unit: L1 -> L0A/L0B fractal loads (LoadData), the matrix multiply-accumulate
// (Mmad) into L0C, and Fixpipe from L0C to GM with the f32 -> f16/bf16 conversion.
//
// Layouts (public Mmad documentation): a fractal is 512 bytes. A in L0A is "Zz": fractals of
// 16 x C0 (C0 = 32 bytes / element size), row-major inside, row-major between fractals. B in L0B is
// "Zn": fractals of C0 x 16, column-major inside, row-major between fractals. C in L0C is "Nz": 16 x 16
// f32 fractals, row-major inside, column-major between fractals. A row-major [N, K] weight copied into
// L1 as Nz (DataCopy with Nd2NzParams) is, fractal for fractal, B = Wᵀ in Zn: it loads into L0B
// with one LoadData and no transpose.
//
// Accumulation: products of 16-bit inputs are exact in f32; the shim adds them in k order in f32 (the
// chip's internal order and width are not documented). K is processed in whole fractals: elements past
// k inside the last fractal take part, so they must be zero (ND->Nz copies zero-fill them). Rows of A
// and columns of B past m and n are computed too; their results are garbage that Fixpipe never writes,
// and the shim marks them uninitialised.
#ifndef UPDRAFT_ASCENDC_SHIM_CUBE_H
#define UPDRAFT_ASCENDC_SHIM_CUBE_H

#include "shim_tensor.h"

namespace AscendC {

struct LoadData2DParams {
  LoadData2DParams() = default;
  shim::Field<uint16_t> startIndex = 0;
  shim::Field<uint8_t> repeatTimes = 0;
  shim::Field<uint16_t> srcStride = 0;
  shim::Field<uint8_t> sid = 0;
  shim::Field<uint16_t> dstGap = 0;
  bool ifTranspose = false;
  shim::Field<uint8_t> addrMode = 0;
};

struct MmadParams {
  MmadParams() = default;
  MmadParams(shim::Field<uint16_t> m_, shim::Field<uint16_t> n_, shim::Field<uint16_t> k_, bool bias, int32_t flag, bool align, bool source, bool init)
      : m(m_), n(n_), k(k_), isBias(bias), unitFlag(flag), kDirectionAlign(align), cmatrixSource(source), cmatrixInitVal(init) {}
  shim::Field<uint16_t> m = 0;
  shim::Field<uint16_t> n = 0;
  shim::Field<uint16_t> k = 0;
  bool isBias = false;
  int32_t unitFlag = 0;
  bool kDirectionAlign = false;
  bool cmatrixSource = false;
  bool cmatrixInitVal = true;  // true: C = A·B; false: C += A·B
};

struct FixpipeConfig {
  bool nz_to_nd;
};
inline constexpr FixpipeConfig CFG_ROW_MAJOR{true};
inline constexpr FixpipeConfig CFG_NZ{false};

struct FixpipeParamsV220 {
  FixpipeParamsV220() = default;
  shim::Field<uint16_t> nSize = 0;
  shim::Field<uint16_t> mSize = 0;
  shim::Field<uint16_t> srcStride = 0;  // 16-element rows between consecutive 16-column strips of the L0C tile
  shim::Field<uint32_t> dstStride = 0;  // elements between consecutive rows of the row-major destination
  QuantMode_t quantPre = QuantMode_t::NoQuant;
  uint64_t deqScalar = 0;
  shim::Field<uint16_t> ndNum = 1;
  shim::Field<uint16_t> srcNdStride = 0;
  shim::Field<uint16_t> dstNdStride = 0;
  bool reluEn = false;
  uint8_t unitFlag = 0;
};

// L1 -> L0A / L0B, one 512-byte fractal per repeat: fractal startIndex + r * srcStride of the source
// goes to position r * (dstGap + 1) of the destination. ifTranspose transposes each 16 x 16 fractal
// (16-bit types only).
template <typename T> void LoadData(const LocalTensor<T> &dst, const LocalTensor<T> &src, const LoadData2DParams &p) {
  const char *op = "LoadData";
  const shim::Mem sm = shim::region_of(src, op).mem, dm = shim::region_of(dst, op).mem;
  if (sm != shim::Mem::L1 || (dm != shim::Mem::L0A && dm != shim::Mem::L0B))
    shim::violation("unsupported data path", std::string(op) + " moves L1 -> L0A/L0B, got " + shim::mem_name(sm) + " -> " + shim::mem_name(dm));
  const uint64_t start = p.startIndex.get("startIndex"), repeats = p.repeatTimes.get("repeatTimes");
  const uint64_t stride = p.srcStride.get("srcStride"), gap = p.dstGap.get("dstGap");
  (void)p.sid.get("sid");
  (void)p.addrMode.get("addrMode");
  if (repeats == 0) shim::violation("parameter out of range", "LoadData with repeatTimes 0 does nothing on the chip");
  if (p.ifTranspose && sizeof(T) != 2) shim::violation("unsupported transpose", "LoadData ifTranspose works on 16-bit types only");
  shim::Block &b = shim::cur();
  const uint32_t daddr = b.regions[dst.region_].addr + dst.offset_;
  if (daddr % 512 != 0) shim::violation("misaligned operand", std::string(op) + ": the L0 destination must be 512-byte aligned, got address " + std::to_string(daddr));
  constexpr uint64_t frac = 512 / sizeof(T);
  for (uint64_t r = 0; r < repeats; r++) {
    const uint64_t si = (start + r * stride) * frac, di = r * (gap + 1) * frac;
    std::vector<T> tmp(frac);
    std::vector<uint8_t> init(frac);
    {
      const T *s = shim::local_span(src, si, 0, PIPE_MTE1, false, op);  // hazard + bounds of the start
      (void)s;
      if (si + frac > src.GetSize()) shim::violation("out of bounds", std::string(op) + " reads fractal past the end of " + shim::describe(src));
      shim::Region &rs = b.regions[src.region_];
      const uint8_t *shadow = b.shadow_of(rs) + src.offset_ + si * sizeof(T);
      const T *data = reinterpret_cast<const T *>(b.bytes_of(rs) + src.offset_ + si * sizeof(T));
      for (uint64_t i = 0; i < frac; i++) {
        tmp[i] = data[i];
        init[i] = 1;
        for (size_t q = 0; q < sizeof(T); q++) init[i] &= shadow[i * sizeof(T) + q];
      }
    }
    if (p.ifTranspose) {
      std::vector<T> t2(frac);
      std::vector<uint8_t> i2(frac);
      for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
          t2[j * 16 + i] = tmp[i * 16 + j];
          i2[j * 16 + i] = init[i * 16 + j];
        }
      tmp.swap(t2);
      init.swap(i2);
    }
    T *d = shim::local_span(dst, di, frac, PIPE_MTE1, true, op, false);
    std::memcpy(d, tmp.data(), frac * sizeof(T));
    // Garbage travels as garbage: the destination's shadow follows the source's.
    shim::Region &rd = b.regions[dst.region_];
    uint8_t *shadow = b.shadow_of(rd) + dst.offset_ + di * sizeof(T);
    for (uint64_t i = 0; i < frac; i++) std::memset(shadow + i * sizeof(T), init[i], sizeof(T));
  }
}

// C (L0C, f32, Nz) = [C +] A (L0A, Zz) · B (L0B, Zn) for an m x k by k x n product.
template <typename D, typename A, typename B> void Mmad(const LocalTensor<D> &c, const LocalTensor<A> &a, const LocalTensor<B> &bt, const MmadParams &p) {
  const char *op = "Mmad";
  static_assert(std::is_same<D, float>::value, "Mmad accumulates into float (L0C)");
  static_assert(std::is_same<A, B>::value, "Mmad takes A and B of one dtype");
  static_assert(std::is_same<A, half>::value || std::is_same<A, bfloat16_t>::value || std::is_same<A, float>::value,
                "Mmad takes half, bfloat16_t or float inputs here");
  shim::Block &blk = shim::cur();
  if (shim::region_of(a, op).mem != shim::Mem::L0A || shim::region_of(bt, op).mem != shim::Mem::L0B || shim::region_of(c, op).mem != shim::Mem::L0C)
    shim::violation("wrong memory", "Mmad takes A in L0A (A2), B in L0B (B2) and C in L0C (CO1)");
  const uint64_t m = p.m.get("m"), n = p.n.get("n"), k = p.k.get("k");
  if (m == 0 || n == 0 || k == 0 || m > 4095 || n > 4095 || k > 4095)
    shim::violation("parameter out of range", "Mmad m, n, k must be in [1, 4095], got " + std::to_string(m) + ", " + std::to_string(n) + ", " + std::to_string(k));
  if (p.cmatrixSource || p.isBias) shim::violation("not emulated", "Mmad with a bias or C from the bias table");
  constexpr uint64_t c0 = 32 / sizeof(A);
  const uint64_t mf = (m + 15) / 16, nf = (n + 15) / 16, kf = (k + c0 - 1) / c0;
  const uint64_t kp = kf * c0;
  // Hazards on whole operands, and the extents the fractal counts need.
  if (mf * kf * 16 * c0 > a.GetSize())
    shim::violation("out of bounds", "Mmad: A needs " + std::to_string(mf * kf) + " fractals, " + shim::describe(a) + " has " + std::to_string(a.GetSize()) + " elements");
  if (kf * nf * 16 * c0 > bt.GetSize())
    shim::violation("out of bounds", "Mmad: B needs " + std::to_string(kf * nf) + " fractals, " + shim::describe(bt) + " has " + std::to_string(bt.GetSize()) + " elements");
  (void)shim::local_span(a, 0, 0, PIPE_M, false, op);  // alignment and pipe hazards of the operands
  (void)shim::local_span(bt, 0, 0, PIPE_M, false, op);
  auto raw = [&blk](const auto &t, uint64_t i, bool &ok) {
    using E = typename std::decay<decltype(t)>::type::PrimType;
    shim::Region &r = blk.regions[t.region_];
    const uint8_t *sh = blk.shadow_of(r) + t.offset_ + i * sizeof(E);
    ok = true;
    for (size_t q = 0; q < sizeof(E); q++) ok = ok && sh[q];
    return shim::to_f32(reinterpret_cast<const E *>(blk.bytes_of(r) + t.offset_)[i]);
  };
  std::vector<float> av(mf * 16 * kp), bv(kp * nf * 16);
  std::vector<uint8_t> row_ok(mf * 16, 1), col_ok(nf * 16, 1);
  for (uint64_t i = 0; i < mf * 16; i++)
    for (uint64_t kk = 0; kk < kp; kk++) {
      bool ok;
      av[i * kp + kk] = raw(a, ((i / 16) * kf + kk / c0) * 16 * c0 + (i % 16) * c0 + kk % c0, ok);
      if (!ok) row_ok[i] = 0;
    }
  for (uint64_t kk = 0; kk < kp; kk++)
    for (uint64_t j = 0; j < nf * 16; j++) {
      bool ok;
      bv[kk * nf * 16 + j] = raw(bt, ((kk / c0) * nf + j / 16) * c0 * 16 + (j % 16) * c0 + kk % c0, ok);
      if (!ok) col_ok[j] = 0;
    }
  // Valid rows / columns whose K range holds garbage corrupt real outputs: refuse rather than compute.
  for (uint64_t i = 0; i < m; i++)
    if (!row_ok[i]) shim::violation("uninitialised read", "Mmad: row " + std::to_string(i) + " of A (L0A) has unwritten elements within k (rounded up to whole fractals); zero the K padding");
  for (uint64_t j = 0; j < n; j++)
    if (!col_ok[j]) shim::violation("uninitialised read", "Mmad: column " + std::to_string(j) + " of B (L0B) has unwritten elements within k (rounded up to whole fractals); zero the K padding");
  const uint64_t c_elems = mf * nf * 256;
  if (c_elems > c.GetSize()) shim::violation("out of bounds", "Mmad: C needs " + std::to_string(c_elems) + " floats, " + shim::describe(c) + " has " + std::to_string(c.GetSize()));
  shim::Region &rc = blk.regions[c.region_];
  std::vector<float> old(c_elems);
  std::vector<uint8_t> old_ok(c_elems, 1);
  if (!p.cmatrixInitVal) {
    (void)shim::local_span(c, 0, 0, PIPE_M, false, op);
    for (uint64_t e = 0; e < c_elems; e++) {
      bool ok;
      old[e] = raw(c, e, ok);
      old_ok[e] = ok;
    }
  }
  float *cd = shim::local_span(c, 0, c_elems, PIPE_M, true, op);
  uint8_t *csh = blk.shadow_of(rc) + c.offset_;
  for (uint64_t i = 0; i < mf * 16; i++)
    for (uint64_t j = 0; j < nf * 16; j++) {
      const uint64_t e = ((j / 16) * mf + i / 16) * 256 + (i % 16) * 16 + j % 16;
      float acc = 0.0f;
      for (uint64_t kk = 0; kk < kp; kk++) acc += av[i * kp + kk] * bv[kk * nf * 16 + j];
      const bool ok = row_ok[i] && col_ok[j] && old_ok[e];
      cd[e] = ok ? (p.cmatrixInitVal ? acc : old[e] + acc) : std::numeric_limits<float>::quiet_NaN();
      std::memset(csh + e * 4, ok ? 1 : 0, 4);
    }
}

// L0C (Nz, f32) -> GM, row-major: element (i, j) of the mSize x nSize result goes to dst[i * dstStride + j],
// converted by quantPre (NoQuant: float; F322F16: half; F322BF16: bfloat16_t, round to nearest even).
template <typename D, typename S, const FixpipeConfig &config = CFG_ROW_MAJOR>
void Fixpipe(const GlobalTensor<D> &dst, const LocalTensor<S> &src, const FixpipeParamsV220 &p) {
  const char *op = "Fixpipe";
  static_assert(std::is_same<S, float>::value, "Fixpipe reads f32 results from L0C here");
  if (!config.nz_to_nd) shim::violation("not emulated", "Fixpipe without the Nz -> ND conversion");
  if (shim::region_of(src, op).mem != shim::Mem::L0C) shim::violation("wrong memory", "Fixpipe reads L0C (CO1)");
  const bool ok_type = (p.quantPre == QuantMode_t::NoQuant && std::is_same<D, float>::value) ||
                       (p.quantPre == QuantMode_t::F322F16 && std::is_same<D, half>::value) ||
                       (p.quantPre == QuantMode_t::F322BF16 && std::is_same<D, bfloat16_t>::value);
  if (!ok_type) shim::violation("invalid Fixpipe", std::string("quantPre does not produce ") + shim::TypeName<D>::get());
  const uint64_t n = p.nSize.get("nSize"), m = p.mSize.get("mSize"), ss = p.srcStride.get("srcStride"), ds = p.dstStride.get("dstStride");
  (void)p.ndNum.get("ndNum");
  if (ss < m) shim::violation("invalid Fixpipe", "srcStride " + std::to_string(ss) + " is smaller than mSize " + std::to_string(m));
  if (ss % 16 != 0) shim::violation("invalid Fixpipe", "srcStride " + std::to_string(ss) + " must be a multiple of 16 rows");
  if (ds < n) shim::violation("invalid Fixpipe", "dstStride " + std::to_string(ds) + " is smaller than nSize " + std::to_string(n));
  shim::Device &dev = *shim::cur().device;
  std::vector<D> row(n);
  for (uint64_t i = 0; i < m; i++) {
    for (uint64_t j = 0; j < n; j++) {
      const float v = *shim::local_span(src, (j / 16) * ss * 16 + i * 16 + j % 16, 1, PIPE_FIX, false, op, false);
      if constexpr (std::is_same<D, float>::value) row[j] = v;
      else if constexpr (std::is_same<D, half>::value) row[j] = half::from_bits(shim::f16_from_f32(v, RoundMode::CAST_RINT));
      else row[j] = bfloat16_t::from_bits(shim::bf16_from_f32(v, RoundMode::CAST_RINT));
    }
    D *to = dst.span(i * ds, n, true, op);
    dev.gm_write(to, row.data(), n * sizeof(D));
  }
}

}  // namespace AscendC

#endif
