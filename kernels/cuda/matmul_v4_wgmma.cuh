// matmul variants 4 and 6 — Hopper GEMM (sm_90a): wgmma.mma_async (HGMMA) on operands that TMA
// (cp.async.bulk.tensor) brings into shared memory, with an mbarrier pipeline between a producer
// warpgroup and two consumer warpgroups. One kernel, two grids: variant 4 launches a CTA per output
// tile; variant 6 launches at most one per multiprocessor and each loops over tiles (persistent), so
// the loads of a CTA's next tile overlap the end of the current one (see matmul_v4_kernel).
//
// CTA tile 128 (M) × BN (N, 256 or 128) × 64 (K); 384 threads = 3 warpgroups:
//   warpgroup 0: producer. One thread waits for a free stage (empty barrier), posts the stage's byte
//                count on its full barrier (arrive.expect_tx) and issues two TMA loads (x tile 128×64,
//                W tile BN×64) that complete on that barrier. Its registers are given back (setmaxnreg 40).
//   warpgroups 1, 2: consumers, rows 0-63 and 64-127 of the tile. Each waits for a full stage, issues
//                4 wgmma m64nBNk16 (k = 0, 16, 32, 48 of the stage), commits them, waits until at most
//                that group is pending (so the previous stage's MMAs are done) and releases the previous
//                stage (one arrive per warp on its empty barrier). setmaxnreg 232 for the accumulators
//                (BN/2 f32 per thread).
// Shared memory: STAGES × (16 KiB + BN × 128 B), every stage 1024-byte aligned; TMA writes each tile with
// the 128-byte swizzle, which is exactly wgmma's K-major SWIZZLE_128B layout (8-row core groups 1024 B
// apart: SBO = 1024; LBO unused), so a k16 step is +32 bytes on the descriptor's start address.
// TMA zero-fills rows past M or N and k past K, so any M, N and any K % 8 == 0 work (the tensor map's
// row stride must be a multiple of 16 bytes). The epilogue writes y straight from the accumulators
// (bias added in f32, one rounding), bounds-checked.
//
// Tensor maps are encoded on the host for every launch (cuTensorMapEncodeTiled through
// cudaGetDriverEntryPointByVersion: no link against libcuda) and passed by value as __grid_constant__
// parameters, so a captured graph holds its own copy and nothing is cached between calls.
//
// Takes: x and W both bf16 or both f16, y f32 or x's dtype, K % 8 == 0 and K > 0, x and W 16-byte
// aligned, a compute capability 9.0 device, and a build for sm_90a (elsewhere the kernel body traps).
#ifndef UPDRAFT_CUDA_MATMUL_V4_WGMMA_CUH
#define UPDRAFT_CUDA_MATMUL_V4_WGMMA_CUH

#include <cuda.h>  // CUtensorMap and the encode function's types only; the function comes from the runtime

#include <atomic>

#include "matmul_common.cuh"
#include "matmul_ptx.cuh"
#include "matmul_v3_mma.cuh"  // ensure_smem_limit

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define UD_MATMUL_SM90A 1
#else
#define UD_MATMUL_SM90A 0
#endif

namespace updraft::cuda::matmul_detail {

constexpr int kV4BM = 128, kV4BK = 64, kV4Threads = 384;
constexpr int kV4GroupM = 8;

template <int BN> struct V4Config;
template <> struct V4Config<256> { static constexpr int kStages = 4; };
template <> struct V4Config<128> { static constexpr int kStages = 6; };

template <int BN> __host__ __device__ constexpr int v4_stage_bytes() { return (kV4BM + BN) * kV4BK * 2; }
// +1024: the dynamic shared-memory base is aligned up to 1024 bytes inside the kernel.
template <int BN> __host__ __device__ constexpr int v4_smem_bytes() { return V4Config<BN>::kStages * v4_stage_bytes<BN>() + 1024; }

// --- PTX wrappers (sm_90a) ------------------------------------------------------------------------
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
#if UD_MATMUL_SM90A
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#endif
}
__device__ __forceinline__ void mbar_fence_init() {
#if UD_MATMUL_SM90A
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
#if UD_MATMUL_SM90A
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
#if UD_MATMUL_SM90A
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}
// Waits until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#if UD_MATMUL_SM90A
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n"
        "}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
#endif
}
__device__ __forceinline__ void tma_load_2d(uint32_t smem_dst, const CUtensorMap *map, int c0, int c1,
                                            uint32_t bar) {
#if UD_MATMUL_SM90A
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
      "[%4];\n" ::"r"(smem_dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
#endif
}
// As tma_load_2d, but the box lands at the same shared-memory offset in every CTA of the cluster
// named in cta_mask, and completes bytes on the mbarrier at the same offset in each of them.
__device__ __forceinline__ void tma_load_2d_multicast(uint32_t smem_dst, const CUtensorMap *map, int c0, int c1,
                                                      uint32_t bar, uint16_t cta_mask) {
#if UD_MATMUL_SM90A
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster "
      "[%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(smem_dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(cta_mask)
      : "memory");
#endif
}
// Arrives on the mbarrier at shared-memory offset `bar` of CTA `rank` of this cluster (this CTA too).
// Default semantics (release, CTA scope), as CUTLASS's cluster barriers: what the arrive hands over is
// shared memory that wgmma has finished reading (wgmma_wait), not data another CTA reads.
__device__ __forceinline__ void mbar_arrive_cluster(uint32_t bar, uint32_t rank) {
#if UD_MATMUL_SM90A
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(bar), "r"(rank));
  asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];\n" ::"r"(remote) : "memory");
#endif
}
__device__ __forceinline__ uint32_t cluster_ctarank() {
  uint32_t r = 0;
#if UD_MATMUL_SM90A
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
#endif
  return r;
}
// Every thread of every CTA of the cluster: what each did before is seen by all after.
__device__ __forceinline__ void cluster_sync() {
#if UD_MATMUL_SM90A
  asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
  asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void tma_prefetch_map(const CUtensorMap *map) {
#if UD_MATMUL_SM90A
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#endif
}
__device__ __forceinline__ void wgmma_fence() {
#if UD_MATMUL_SM90A
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if UD_MATMUL_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N> __device__ __forceinline__ void wgmma_wait() {
#if UD_MATMUL_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
template <int N> __device__ __forceinline__ void setmaxnreg_inc() {
#if UD_MATMUL_SM90A
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N> __device__ __forceinline__ void setmaxnreg_dec() {
#if UD_MATMUL_SM90A
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// Shared-memory matrix descriptor for a K-major operand in the 128-byte swizzle layout TMA wrote:
// start address >> 4 (bits 0-13), leading byte offset 16 >> 4 (bits 16-29; unused for this layout),
// stride byte offset 1024 >> 4 (bits 32-45: 8 rows × 128 B), base offset 0 (stages are 1024-aligned),
// layout type 1 = SWIZZLE_128B (bits 62-63).
__device__ __forceinline__ uint64_t wgmma_desc_sw128(uint32_t smem_addr) {
  uint64_t desc = (uint64_t(smem_addr) & 0x3FFFF) >> 4;
  desc |= uint64_t(16 >> 4) << 16;
  desc |= uint64_t(1024 >> 4) << 32;
  desc |= uint64_t(1) << 62;
  return desc;
}

// d (64 × N per warpgroup, f32) += A (64 × 16 from desc_a) · B (N × 16 from desc_b)ᵀ.
template <int N, typename T>
__device__ __forceinline__ void wgmma_m64k16(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b);

template <> __device__ __forceinline__ void wgmma_m64k16<128, __nv_bfloat16>(float (&d)[64], uint64_t desc_a, uint64_t desc_b) {
#if UD_MATMUL_SM90A
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(desc_a), "l"(desc_b), "r"(1));
#else
  (void)d;
  (void)desc_a;
  (void)desc_b;
  __trap();
#endif
}

template <> __device__ __forceinline__ void wgmma_m64k16<128, __half>(float (&d)[64], uint64_t desc_a, uint64_t desc_b) {
#if UD_MATMUL_SM90A
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(desc_a), "l"(desc_b), "r"(1));
#else
  (void)d;
  (void)desc_a;
  (void)desc_b;
  __trap();
#endif
}

template <> __device__ __forceinline__ void wgmma_m64k16<256, __nv_bfloat16>(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
#if UD_MATMUL_SM90A
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, %128, %129, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(desc_a), "l"(desc_b), "r"(1));
#else
  (void)d;
  (void)desc_a;
  (void)desc_b;
  __trap();
#endif
}

template <> __device__ __forceinline__ void wgmma_m64k16<256, __half>(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
#if UD_MATMUL_SM90A
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, %128, %129, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(desc_a), "l"(desc_b), "r"(1));
#else
  (void)d;
  (void)desc_a;
  (void)desc_b;
  __trap();
#endif
}

// Output tile `tile` as (row of cluster tiles, n0): row-major over tiles, grouped along M by
// kV4GroupM for L2 reuse (as variant 3), so CTAs that run at the same time share W column blocks and x
// row blocks. A cluster tile is CM tiles of 128 rows stacked along M (one per CTA of the cluster).
__device__ __forceinline__ void v4_tile_origin(int tile, int num_m, int num_n, int bn, int &tile_m, int &n0) {
  const int group = tile / (kV4GroupM * num_n);
  const int first_m = group * kV4GroupM;
  const int group_size = min(num_m - first_m, kV4GroupM);
  tile_m = first_m + (tile % (kV4GroupM * num_n)) % group_size;
  n0 = ((tile % (kV4GroupM * num_n)) / group_size) * bn;
}

// Resources (nvcc 13.0, sm_90a): see kernels/dev/matmul/PREDICTIONS.md.
//
// Grids (the host picks; matmul.cu's ladder numbers them):
// - Each cluster of CM CTAs computes cluster tiles c, c + clusters, ... With one cluster per cluster
//   tile (variants 4, 7) that loop runs once; with one CTA per multiprocessor (variants 6, 8:
//   persistent) the producer runs on into the next tile while the consumers finish the last k-steps
//   and write the epilogue, so the next tile's first stages are already in shared memory when its
//   MMAs start. The stage ring and its barrier phases run on across tiles: `it` counts k-steps over the
//   CTA's whole life.
// - CM = 2 (variants 7, 8): a cluster of two CTAs computes rows [m0, m0 + 256) × the same BN columns,
//   so both need the same W tile. Each CTA's producer loads its own x tile and one half of the W tile,
//   multicast into both CTAs' shared memory: L2 sends each W byte to two SMs at once, and a stage costs
//   L2 two thirds of the bytes. A stage may then be refilled only when the consumers of both CTAs
//   have released it, so each consumer warp arrives on the empty barrier of every CTA in the cluster
//   (16 arrivals a phase). The full barrier of each
//   CTA expects the whole stage (its x tile and both W halves), whichever CTA's copy brings them.
template <typename T, typename TY, int BN, int CM>
__global__ void __launch_bounds__(kV4Threads, 1)
    matmul_v4_kernel(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_w,
                     const void *__restrict__ bias, int32_t bias_dtype, TY *__restrict__ y, int m, int n, int k) {
#if UD_MATMUL_SM90A
  static_assert(CM == 1 || CM == 2, "clusters of 1 or 2 CTAs along M");
  constexpr int STAGES = V4Config<BN>::kStages;
  constexpr uint32_t kABytes = kV4BM * kV4BK * 2;
  constexpr uint32_t kStageBytes = v4_stage_bytes<BN>();
  constexpr uint32_t kWPartBytes = (BN / CM) * kV4BK * 2;  // the W rows one CTA's producer copies
  static_assert(kABytes % 1024 == 0 && kStageBytes % 1024 == 0 && kWPartBytes % 1024 == 0,
                "stages and W parts must stay 1024-byte aligned (the 128-byte swizzle's period)");
  extern __shared__ __align__(1024) unsigned char v4_smem[];
  __shared__ __align__(8) uint64_t full_bar[STAGES];
  __shared__ __align__(8) uint64_t empty_bar[STAGES];

  const uint32_t tiles_base = (smem_u32(v4_smem) + 1023u) & ~1023u;
  const uint32_t full0 = smem_u32(&full_bar[0]), empty0 = smem_u32(&empty_bar[0]);

  // Rank in the cluster and the cluster's index: a cluster is CM consecutive CTAs along x.
  const uint32_t rank = CM == 1 ? 0u : cluster_ctarank();
  const int cluster = blockIdx.x / CM, clusters = gridDim.x / CM;
  const int num_m = (m + kV4BM - 1) / kV4BM, num_n = (n + BN - 1) / BN;
  const int num_cm = (num_m + CM - 1) / CM;  // rows of cluster tiles
  const int num_tiles = num_cm * num_n;
  const int k_tiles = (k + kV4BK - 1) / kV4BK;

  const int wg = threadIdx.x / 128;
  const int lane = threadIdx.x & 31;

  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; s++) {
      mbar_init(full0 + 8 * s, 1);        // the producer's arrive.expect_tx; the bytes come from TMA
      mbar_init(empty0 + 8 * s, 8 * CM);  // one arrive per consumer warp (2 warpgroups × 4) of each CTA
    }
    mbar_fence_init();
  }
  // The barriers exist before any CTA of the cluster copies into this one or arrives on them.
  if constexpr (CM == 1) __syncthreads();
  else cluster_sync();

  if (wg == 0) {
    setmaxnreg_dec<40>();
    if (threadIdx.x == 0) {
      tma_prefetch_map(&tmap_x);
      tma_prefetch_map(&tmap_w);
      uint32_t it = 0;
      for (int tile = cluster; tile < num_tiles; tile += clusters) {
        int tile_cm, n0;
        v4_tile_origin(tile, num_cm, num_n, BN, tile_cm, n0);
        const int m0 = (tile_cm * CM + static_cast<int>(rank)) * kV4BM;  // may be past m: TMA zero-fills
        for (int kt = 0; kt < k_tiles; kt++, it++) {
          const uint32_t s = it % STAGES, round = it / STAGES;
          // Round r of stage s needs round r-1's data released by the consumers (of every CTA that
          // this one's copies write into), i.e. the empty barrier's phase r-1 completed (parity
          // (r-1) & 1). Round 0 finds the stage free.
          if (round > 0) mbar_wait(empty0 + 8 * s, (round - 1) & 1);
          const uint32_t dst = tiles_base + s * kStageBytes;
          mbar_arrive_expect_tx(full0 + 8 * s, kStageBytes);  // full box bytes, zero-filled parts included
          tma_load_2d(dst, &tmap_x, kt * kV4BK, m0, full0 + 8 * s);
          if constexpr (CM == 1) {
            tma_load_2d(dst + kABytes, &tmap_w, kt * kV4BK, n0, full0 + 8 * s);
          } else {
            const int part = static_cast<int>(rank);
            tma_load_2d_multicast(dst + kABytes + part * kWPartBytes, &tmap_w, kt * kV4BK, n0 + part * (BN / CM),
                                  full0 + 8 * s, static_cast<uint16_t>((1u << CM) - 1));
          }
        }
      }
    }
  } else {
    setmaxnreg_inc<232>();
    const int cw = wg - 1;  // consumer index: rows 64*cw .. 64*cw+63 of the tile
    const int warp_in_group = (threadIdx.x % 128) / 32;
    // Hands stage s back to the producers that refill it: this CTA's, and with CM = 2 the peer's too.
    auto release = [&](uint32_t s) {
      if (lane != 0) return;
      if constexpr (CM == 1) {
        mbar_arrive(empty0 + 8 * s);
      } else {
#pragma unroll
        for (uint32_t r = 0; r < CM; r++) mbar_arrive_cluster(empty0 + 8 * s, r);
      }
    };
    uint32_t it = 0;
    for (int tile = cluster; tile < num_tiles; tile += clusters) {
      int tile_cm, n0;
      v4_tile_origin(tile, num_cm, num_n, BN, tile_cm, n0);
      const int m0 = (tile_cm * CM + static_cast<int>(rank)) * kV4BM;
      float d[BN / 2];
#pragma unroll
      for (int i = 0; i < BN / 2; i++) d[i] = 0.0f;

      for (int kt = 0; kt < k_tiles; kt++, it++) {
        const uint32_t s = it % STAGES;
        mbar_wait(full0 + 8 * s, (it / STAGES) & 1);
        __syncwarp();  // lanes leave the spin loop separately; wgmma's .sync.aligned needs the warp converged
        const uint32_t a_base = tiles_base + s * kStageBytes + cw * 64 * 128;
        const uint32_t b_base = tiles_base + s * kStageBytes + kABytes;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kV4BK / 16; kk++)
          wgmma_m64k16<BN, T>(d, wgmma_desc_sw128(a_base + kk * 32), wgmma_desc_sw128(b_base + kk * 32));
        wgmma_commit();
        // At most this k-step's group still pending: the previous one has finished reading its stage.
        wgmma_wait<1>();
        if (kt > 0) release((it - 1) % STAGES);
      }
      wgmma_wait<0>();
      // The tile's last stage is read: hand it back before the epilogue, so the producer can refill it
      // for the next tile while this one is written.
      release((it - 1) % STAGES);

      // Accumulator layout (per warpgroup, 64 × BN): warp w of the group owns rows 16w .. 16w+15;
      // d[4j + 0..1] = (row 16w + lane/4, cols 8j + 2(lane%4) + 0..1), d[4j + 2..3] = (that row + 8, same).
      const int row_lo = m0 + cw * 64 + warp_in_group * 16 + (lane >> 2);
      const int col_base = n0 + 2 * (lane & 3);
#pragma unroll
      for (int j = 0; j < BN / 8; j++) {
        const int col = col_base + 8 * j;
        if (col >= n) continue;
        float b0 = 0.0f, b1 = 0.0f;
        if (bias) {
          b0 = load_any(bias, bias_dtype, col);
          if (col + 1 < n) b1 = load_any(bias, bias_dtype, col + 1);
        }
        if (row_lo < m) store_pair<TY>(y, n, row_lo, col, d[4 * j] + b0, d[4 * j + 1] + b1);
        if (row_lo + 8 < m) store_pair<TY>(y, n, row_lo + 8, col, d[4 * j + 2] + b0, d[4 * j + 3] + b1);
      }
    }
  }
  // No CTA of a cluster leaves while another may still copy into its shared memory or arrive on its
  // barriers.
  if constexpr (CM == 2) {
    __syncwarp();  // the producer's lane 0 rejoins its warp: the barrier is .aligned
    cluster_sync();
  }
#else
  (void)bias;
  (void)bias_dtype;
  (void)y;
  (void)m;
  (void)n;
  (void)k;
  __trap();  // built without sm_90a: the host should never have launched this
#endif
}

// --- host side --------------------------------------------------------------------------------------
using TensorMapEncodeTiledFn = CUresult (*)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *,
                                            const cuuint64_t *, const cuuint64_t *, const cuuint32_t *,
                                            const cuuint32_t *, CUtensorMapInterleave, CUtensorMapSwizzle,
                                            CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

// The driver's cuTensorMapEncodeTiled, looked up once through the runtime (null when unavailable).
inline TensorMapEncodeTiledFn tensor_map_encoder() {
  static const TensorMapEncodeTiledFn fn = []() -> TensorMapEncodeTiledFn {
    void *p = nullptr;
    cudaDriverEntryPointQueryResult query = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &query) !=
            cudaSuccess ||
        query != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      return nullptr;
    }
    return reinterpret_cast<TensorMapEncodeTiledFn>(p);
  }();
  return fn;
}

// A [rows, k] row-major 16-bit matrix, read in boxes of box_rows × 64 with the 128-byte swizzle;
// out-of-range elements read as zero.
inline bool encode_tile_map(CUtensorMap *map, const void *base, int32_t dtype, int64_t rows, int64_t k,
                            int box_rows) {
  TensorMapEncodeTiledFn encode = tensor_map_encoder();
  if (!encode) return false;
  const cuuint64_t dims[2] = {cuuint64_t(k), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(k) * 2};
  const cuuint32_t box[2] = {cuuint32_t(kV4BK), cuuint32_t(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r = encode(map, dtype == UD_BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                            2, const_cast<void *>(base), dims, strides, box, elem_strides,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS;
}

// Compute capability 9.0 (sm_90a code runs there only), asked once per device.
inline bool device_is_sm90(int device) {
  static std::atomic<uint64_t> known{0}, yes{0};
  const uint64_t bit = (device >= 0 && device < 64) ? (uint64_t(1) << device) : 0;
  if (bit && (known.load(std::memory_order_relaxed) & bit)) return (yes.load(std::memory_order_relaxed) & bit) != 0;
  int major = 0, minor = 0;
  const bool ok = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess &&
                  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) == cudaSuccess;
  if (!ok) (void)cudaGetLastError();
  const bool result = ok && major == 9 && minor == 0;
  if (bit) {
    if (result) yes.fetch_or(bit, std::memory_order_relaxed);
    known.fetch_or(bit, std::memory_order_relaxed);
  }
  return result;
}

inline bool v4_accepts(const Problem &p, std::string *why) {
  auto no = [&](const std::string &reason) {
    if (why) *why = "variant 4 (wgmma + TMA) " + reason;
    return false;
  };
  if (!tensor_core_dtypes(p)) return no("needs x and W both bf16 or both f16");
  if (p.y_dtype != UD_F32 && p.y_dtype != p.w_dtype) return no("writes y as f32 or as x's dtype");
  if (p.k <= 0 || p.k % 8 != 0) return no("needs K a positive multiple of 8 (" + dims_string(p) + ")");
  if (p.m >= (int64_t(1) << 31) || p.n >= (int64_t(1) << 31) || p.k >= (int64_t(1) << 31))
    return no("takes M, N, K below 2^31");
  if ((p.x && !aligned16(p.x)) || (p.w && !aligned16(p.w))) return no("needs 16-byte aligned x and W");
  return true;
}

// BN = 256 unless the 128-wide tiles fill the multiprocessors in fewer waves (a 128-wide tile does half
// the work of a 256-wide one at a little lower efficiency: ~0.55 of its time).
// Benchmark/test hook (kernels/dev/matmul/bench_matmul.cu): 0 = choose, else force BN = 128 or 256.
inline int g_v4_force_bn = 0;

inline int v4_choose_bn(const Problem &p, int sm_count) {
  if (g_v4_force_bn == 128 || g_v4_force_bn == 256) return g_v4_force_bn;
  const int64_t tm = (p.m + kV4BM - 1) / kV4BM;
  const int64_t t256 = tm * ((p.n + 255) / 256), t128 = tm * ((p.n + 127) / 128);
  const double cost256 = double((t256 + sm_count - 1) / sm_count);
  const double cost128 = 0.55 * double((t128 + sm_count - 1) / sm_count);
  return cost256 <= cost128 ? 256 : 128;
}

// How variant 4's kernel is launched: a CTA per tile or a persistent grid, and the cluster size along M.
struct V4Launch {
  bool persistent = false;  // variants 6, 8
  int cluster_m = 1;        // 2: variants 7, 8 (W tiles multicast to two CTAs)
};

// Benchmark/test hook: caps a persistent grid (variants 6, 8) at this many CTAs when > 0, so that a
// small problem still walks several tiles per CTA (bench_matmul's checks).
inline int g_v6_max_ctas = 0;

// The launch attribute for clusters of `cm` CTAs along x.
inline cudaLaunchAttribute v4_cluster_attribute(int cm) {
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = static_cast<unsigned>(cm);
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  return attribute;
}

// Clusters of `cm` CTAs of `kernel` (its shared memory, kV4Threads) that fit on the device at once,
// asked once per device; 0 when the runtime cannot say.
template <typename Kernel>
int v4_resident_clusters(Kernel kernel, int smem, int cm, int device, std::atomic<int> (&cache)[64]) {
  if (device < 0 || device >= 64) return 0;
  if (const int known = cache[device].load(std::memory_order_relaxed); known != 0) return known > 0 ? known : 0;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(cm * 256), 1, 1);
  config.blockDim = dim3(kV4Threads, 1, 1);
  config.dynamicSmemBytes = static_cast<size_t>(smem);
  cudaLaunchAttribute attribute[1] = {v4_cluster_attribute(cm)};
  config.attrs = attribute;
  config.numAttrs = 1;
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
    (void)cudaGetLastError();
    clusters = 0;
  }
  cache[device].store(clusters > 0 ? clusters : -1, std::memory_order_relaxed);
  return clusters;
}

// CTAs to launch for `tiles` cluster tiles: one cluster per cluster tile, or (persistent) as many
// clusters as are resident at once (at most one CTA per SM: the kernel's 193 KiB of shared memory),
// each then looping over cluster tiles.
inline int64_t v4_grid_size(int64_t tiles, const V4Launch &how, int resident_clusters) {
  if (!how.persistent) return tiles * how.cluster_m;
  int64_t clusters = tiles < resident_clusters ? tiles : resident_clusters;
  if (g_v6_max_ctas > 0 && clusters * how.cluster_m > g_v6_max_ctas)
    clusters = g_v6_max_ctas / how.cluster_m > 0 ? g_v6_max_ctas / how.cluster_m : 1;
  return clusters * how.cluster_m;
}

template <typename T, typename TY, int BN, int CM>
ud_status run_v4_typed(const Problem &p, KernelContext &ctx, const V4Launch &how) {
  constexpr int kSmem = v4_smem_bytes<BN>();
  const char *name = how.persistent ? (CM == 2 ? "matmul variant 8" : "matmul variant 6")
                                    : (CM == 2 ? "matmul variant 7" : "matmul variant 4");
  if (ctx.max_smem_per_block > 0 && kSmem > ctx.max_smem_per_block)
    return ctx.fail(UD_ERR_UNSUPPORTED, std::string(name) + ": needs " + std::to_string(kSmem) +
                                            " bytes of shared memory per block");
  CUtensorMap map_x, map_w;
  if (!encode_tile_map(&map_x, p.x, p.x_dtype, p.m, p.k, kV4BM) ||
      !encode_tile_map(&map_w, p.w, p.w_dtype, p.n, p.k, BN / CM))
    return ctx.fail(UD_ERR_UNSUPPORTED, std::string(name) + ": could not encode the TMA tensor maps (" +
                                            dims_string(p) + ")");
  auto kernel = matmul_v4_kernel<T, TY, BN, CM>;
  static std::atomic<uint64_t> smem_set{0};
  if (ensure_smem_limit(kernel, kSmem, ctx.device, smem_set) != cudaSuccess)
    return check_launch(ctx, (std::string(name) + " (shared-memory attribute)").c_str());
  const int64_t num_cm = ((p.m + kV4BM - 1) / kV4BM + CM - 1) / CM;
  const int64_t tiles = num_cm * ((p.n + BN - 1) / BN);
  if (tiles * CM >= (int64_t(1) << 31)) return ctx.fail(UD_ERR_UNSUPPORTED, std::string(name) + ": too many tiles");
  int resident = sm_count_of(ctx) / CM;
  if (CM > 1) {
    static std::atomic<int> clusters_cache[64];
    resident = v4_resident_clusters(kernel, kSmem, CM, ctx.device, clusters_cache);
    if (resident <= 0) return ctx.fail(UD_ERR_UNSUPPORTED, std::string(name) + ": no cluster of " +
                                                               std::to_string(CM) + " CTAs fits on this device");
  }
  const int64_t grid = v4_grid_size(tiles, how, resident);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(grid), 1, 1);
  config.blockDim = dim3(kV4Threads, 1, 1);
  config.dynamicSmemBytes = kSmem;
  config.stream = ctx.stream;
  cudaLaunchAttribute attribute[1] = {v4_cluster_attribute(CM)};
  config.attrs = attribute;
  config.numAttrs = CM > 1 ? 1 : 0;
  const cudaError_t err = cudaLaunchKernelEx(&config, kernel, map_x, map_w, p.bias, p.bias_dtype, static_cast<TY *>(p.y),
                                             static_cast<int>(p.m), static_cast<int>(p.n), static_cast<int>(p.k));
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return ctx.fail(UD_ERR_DEVICE, std::string(name) + ": " + cudaGetErrorString(err));
  }
  return check_launch(ctx, name);
}

// y is x's dtype or f32 (v4_accepts): two output types per input type.
template <typename T, int BN, int CM>
ud_status run_v4_bn(const Problem &p, KernelContext &ctx, const V4Launch &how) {
  if (p.y_dtype == UD_F32) return run_v4_typed<T, float, BN, CM>(p, ctx, how);
  return run_v4_typed<T, T, BN, CM>(p, ctx, how);
}

template <typename T, int CM>
ud_status run_v4_cm(const Problem &p, KernelContext &ctx, const V4Launch &how, int bn) {
  return bn == 256 ? run_v4_bn<T, 256, CM>(p, ctx, how) : run_v4_bn<T, 128, CM>(p, ctx, how);
}

// Variants 4 and 6 (how.cluster_m 1: a CTA per tile / persistent) and 7 and 8 (2-CTA clusters).
inline ud_status run_v4(const Problem &p, KernelContext &ctx, const V4Launch &how = {}) {
  if (!device_is_sm90(ctx.device))
    return ctx.fail(UD_ERR_UNSUPPORTED, "matmul variants 4, 6, 7, 8: need a compute capability 9.0 (Hopper) device");
  const int bn = v4_choose_bn(p, sm_count_of(ctx));
  if (p.w_dtype == UD_BF16)
    return how.cluster_m == 2 ? run_v4_cm<__nv_bfloat16, 2>(p, ctx, how, bn) : run_v4_cm<__nv_bfloat16, 1>(p, ctx, how, bn);
  return how.cluster_m == 2 ? run_v4_cm<__half, 2>(p, ctx, how, bn) : run_v4_cm<__half, 1>(p, ctx, how, bn);
}

}  // namespace updraft::cuda::matmul_detail

#endif
