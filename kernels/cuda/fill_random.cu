// UD_OP_FILL_RANDOM: dst0[i] = std * z(seed, i), bit-identical to the CPU kernel
// (kernels/cpu/fill_random.cc): z is an Irwin–Hall sum of the four 16-bit fields of
// r = ud_mix64(seed ^ ud_mix64(i)), one exact int→float conversion and two f32 products, each rounded
// (_rn: nothing to contract), then rounded to the dtype. A grid-stride loop: the tensors are weights,
// from kilobytes to gigabytes.
#include <cmath>

#include "rowwise.cuh"

namespace updraft::cuda {
namespace {

// ops.h's ud_mix64 (a host-only static inline), for the device: splitmix64's finalizer.
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

template <typename T>
__global__ void fill_random_kernel(T *__restrict__ out, int64_t n, uint64_t seed, float std_dev) {
  // sqrt(3) / 65536: the sum of four uniforms on [0, 65535] has standard deviation ~65536/sqrt(3).
  const float unit = 1.7320508f / 65536.0f;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const uint64_t r = mix64(seed ^ mix64(static_cast<uint64_t>(i)));
    const int32_t sum = static_cast<int32_t>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
    const float z = __fmul_rn(__int2float_rn(sum - 2 * 65535), unit);
    out[i] = from_float<T>(__fmul_rn(z, std_dev));
  }
}

}  // namespace

ud_status launch_fill_random(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &out = op.dst[0];  // any shape, float dtype
  const ud_fill_random_params &p = op.params.fill_random;
  rowwise::Checker check(ctx, "fill_random");
  check.required(out, "dst0 (out)").float_dtype(out, "dst0 (out)").that(std::isfinite(p.std), "std must be finite");
  if (!check.ok()) return check.status();
  const int64_t n = numel(out);
  if (n == 0) return UD_OK;

  constexpr int kThreads = 256;
  const int64_t wanted = (n + kThreads - 1) / kThreads;
  const int64_t cap = int64_t{ctx.sm_count > 0 ? ctx.sm_count : 132} * 16;  // enough blocks to fill every SM
  const auto blocks = static_cast<unsigned>(wanted < cap ? wanted : cap);
  const bool dispatched = dispatch_float(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    fill_random_kernel<T><<<blocks, kThreads, 0, ctx.stream>>>(static_cast<T *>(out.data), n, p.seed, p.std);
  });
  if (!dispatched) return ctx.fail(UD_ERR_UNSUPPORTED, "fill_random: unsupported dtype");
  return check_launch(ctx, "fill_random");
}

}  // namespace updraft::cuda
