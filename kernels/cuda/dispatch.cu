// launch_op / supports_op: the CUDA backend's table from op kind to kernel and accepted operands, the
// messages of device-side operand errors, and the check that this build's kernels fit the GPU.
#include <string>

#include "common.cuh"

namespace updraft::cuda {

// Optional capability hooks of the op files whose kernels have their own rules (cuda_kernels.h):
// weak, so that an op file that does not define one still links, and the address is then null.
__attribute__((weak)) int32_t matmul_supports(const ud_op &op);
__attribute__((weak)) int32_t attention_supports(const ud_op &op);
__attribute__((weak)) int32_t sample_supports(const ud_op &op);

ud_status launch_op(const ud_op &op, KernelContext &ctx) {
  switch (op.kind) {
    case UD_OP_EMBEDDING: return launch_embedding(op, ctx);
    case UD_OP_MATMUL: return launch_matmul(op, ctx);
    case UD_OP_RMSNORM: return launch_rmsnorm(op, ctx);
    case UD_OP_ROPE_KV_WRITE: return launch_rope_kv_write(op, ctx);
    case UD_OP_ATTENTION: return launch_attention(op, ctx);
    case UD_OP_SILU_MUL: return launch_silu_mul(op, ctx);
    case UD_OP_GATHER_ROWS: return launch_gather_rows(op, ctx);
    case UD_OP_SAMPLE: return launch_sample(op, ctx);
    case UD_OP_FILL_RANDOM: return launch_fill_random(op, ctx);
    case UD_OP_SELECT_TOKENS: return launch_select_tokens(op, ctx);
    case UD_OP_PROCESS_LOGITS: return launch_process_logits(op, ctx);
    default: return ctx.fail(UD_ERR_UNSUPPORTED, "cuda: unknown op kind " + std::to_string(op.kind));
  }
}

namespace {

// Operand dtype rule, as the CPU backend's: 'f' any float dtype, 'i' i32, 's' f32 only, 'u' u64, 'w' u32,
// 'k' a KV cache (a float dtype or f8e4m3); '-' unused. A null operand always passes (whether it may be
// null is checked at launch, which then reports "... is required" rather than "unsupported").
bool dtypes_match(const ud_tensor *tensors, int count, const char *rule) {
  for (int i = 0; i < count && rule[i]; i++) {
    const ud_tensor &t = tensors[i];
    if (!present(t) || rule[i] == '-') continue;
    switch (rule[i]) {
      case 'f': if (!is_float_dtype(t.dtype)) return false; break;
      case 'k': if (!is_kv_dtype(t.dtype)) return false; break;  // a KV cache: float or f8e4m3
      case 'i': if (t.dtype != UD_I32) return false; break;
      case 's': if (t.dtype != UD_F32) return false; break;
      case 'u': if (t.dtype != UD_U64) return false; break;
      case 'w': if (t.dtype != UD_U32) return false; break;
      default: return false;
    }
  }
  return true;
}

// Both present with different dtypes: a combination the CUDA kernels do not instantiate.
bool differ(const ud_tensor &a, const ud_tensor &b) { return present(a) && present(b) && a.dtype != b.dtype; }

const ud_tensor &src(const ud_op &op, int i) {
  static const ud_tensor kAbsent{};
  return i < op.n_src ? op.src[i] : kAbsent;
}
const ud_tensor &dst(const ud_op &op, int i) {
  static const ud_tensor kAbsent{};
  return i < op.n_dst ? op.dst[i] : kAbsent;
}

}  // namespace

int32_t supports_op(const ud_op &op) {
  const char *src_rule = nullptr;
  const char *dst_rule = nullptr;
  switch (op.kind) {
    case UD_OP_EMBEDDING: src_rule = "fi"; dst_rule = "f"; break;
    case UD_OP_MATMUL:
      if (matmul_supports) return matmul_supports(op) ? 1 : 0;
      if (op.params.matmul.variant != 0) return 0;
      src_rule = "fff"; dst_rule = "f";
      break;
    case UD_OP_RMSNORM:
      // x, residual, out and residual out share one dtype (rmsnorm.cu); the weight may differ.
      if (differ(dst(op, 0), src(op, 0)) || differ(dst(op, 1), src(op, 0)) ||
          (op.params.rmsnorm.add_residual && differ(src(op, 1), src(op, 0))))
        return 0;
      src_rule = "fff"; dst_rule = "ff";
      break;
    case UD_OP_ROPE_KV_WRITE:
      // q_out has qkv's dtype, v_cache has k_cache's (rope_kv_write.cu).
      if (differ(dst(op, 0), src(op, 0)) || differ(dst(op, 2), dst(op, 1))) return 0;
      src_rule = "fisi"; dst_rule = "fkk";
      break;
    case UD_OP_ATTENTION:
      if (attention_supports) return attention_supports(op) ? 1 : 0;
      if (op.params.attention.variant != 0) return 0;
      src_rule = "fffiii"; dst_rule = "f";
      break;
    case UD_OP_SILU_MUL: src_rule = "f"; dst_rule = "f"; break;
    case UD_OP_GATHER_ROWS: src_rule = "fi"; dst_rule = "f"; break;
    case UD_OP_SAMPLE:
      if (sample_supports) return sample_supports(op) ? 1 : 0;
      src_rule = "ssissui"; dst_rule = "isis";
      break;
    case UD_OP_FILL_RANDOM: src_rule = ""; dst_rule = "f"; break;
    case UD_OP_SELECT_TOKENS: src_rule = "iii"; dst_rule = "i"; break;
    case UD_OP_PROCESS_LOGITS: src_rule = "isiiiisw"; dst_rule = "s"; break;
    default: return 0;
  }
  return dtypes_match(op.src, op.n_src, src_rule) && dtypes_match(op.dst, op.n_dst, dst_rule) ? 1 : 0;
}

std::string format_device_error(const DeviceErrorRecord &r) {
  const std::string a = std::to_string(r.v[0]), b = std::to_string(r.v[1]), c = std::to_string(r.v[2]);
  switch (r.code) {
    case kSlotOutOfRange:
      return "rope_kv_write: slot_mapping[" + a + "] = " + b + " is outside the cache's " + c + " slots";
    case kBlockOutOfRange:
      return "attention: sequence " + a + " uses block " + b + " outside the cache's " + c + " blocks";
    case kSeqLenTooShort:
      return "attention: sequence " + a + " has seq_len " + b + " < its " + c + " query rows";
    case kSeqLenBeyondTable:
      return "attention: sequence " + a + " has seq_len " + b + " beyond its block table (" + c + " positions)";
    case kQueryStartLocBad:
      return "attention: query_start_loc of sequence " + a + " is [" + b + ", " + c +
             "), which must be non-decreasing and within [0, numTokens]";
    default: {
      if (r.code == kDeviceErrorOther && r.op == UD_OP_SELECT_TOKENS)
        return "select_tokens: row " + a + " takes sample " + b + " of a table with " + c;
      if (r.code == kDeviceErrorOther && r.op == UD_OP_PROCESS_LOGITS)
        return "process_logits: row " + a + " asks for the mask, but src7 (allowed) has " + b + " words per row (a vocabulary of " +
               c + " needs " + std::to_string((r.v[2] + 31) / 32) + ")";
      const char *names[] = {"embedding", "matmul", "rmsnorm", "rope_kv_write", "attention",
                             "silu_mul", "gather_rows", "sample", "fill_random", "select_tokens",
                             "process_logits", "all_reduce"};
      static_assert(sizeof(names) / sizeof(names[0]) == UD_OP_COUNT, "one name per op");
      const char *name = r.op >= 0 && r.op < UD_OP_COUNT ? names[r.op] : "an op";
      return std::string(name) + ": an operand value in device memory is invalid (error " + std::to_string(r.code) +
             ": " + a + ", " + b + ", " + c + ")";
    }
  }
}

namespace {
__global__ void image_probe_kernel() {}
}  // namespace

ud_status check_kernel_image(KernelContext &ctx) {
  cudaFuncAttributes attributes;
  const cudaError_t err = cudaFuncGetAttributes(&attributes, image_probe_kernel);
  if (err == cudaSuccess) return UD_OK;
  (void)cudaGetLastError();  // not sticky: clear it so the next launch check does not see it
  cudaDeviceProp prop;
  std::string device = "this GPU";
  if (cudaGetDeviceProperties(&prop, ctx.device) == cudaSuccess)
    device = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
  (void)cudaGetLastError();
  return ctx.fail(UD_ERR_UNAVAILABLE, "no CUDA device: this build's kernels cannot run on " + device + " (" +
                                          cudaGetErrorString(err) +
                                          "); rebuild with its architecture in UPDRAFT_CUDA_ARCHS (default 90a: H100/H200)");
}

}  // namespace updraft::cuda
