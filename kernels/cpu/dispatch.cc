// launch_op / supports_op: the CPU backend's table from op kind to kernel and accepted dtypes.
#include "operand_checks.h"

namespace updraft::cpu {

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
    default: return ctx.fail(UD_ERR_UNSUPPORTED, "cpu: unknown op kind " + std::to_string(op.kind));
  }
}

namespace {

// Operand dtype rule: 'f' any float dtype, 'k' a KV cache dtype (a float dtype or f8e4m3), 'i' i32,
// 's' f32 only, 'u' u64, 'w' u32; '-' unused.
// A null operand always passes (whether it may be null is checked at launch).
bool dtypes_match(const ud_tensor *tensors, int count, const char *rule) {
  for (int i = 0; i < count && rule[i]; i++) {
    const ud_tensor &t = tensors[i];
    if (!present(t) || rule[i] == '-') continue;
    switch (rule[i]) {
      case 'f': if (!is_float_dtype(t.dtype)) return false; break;
      case 'k': if (!is_kv_cache_dtype(t.dtype)) return false; break;
      case 'i': if (t.dtype != UD_I32) return false; break;
      case 's': if (t.dtype != UD_F32) return false; break;
      case 'u': if (t.dtype != UD_U64) return false; break;
      case 'w': if (t.dtype != UD_U32) return false; break;
      default: return false;
    }
  }
  return true;
}

// Operands a and b (when both are there) share a dtype.
bool same_dtype_if_present(const ud_tensor *tensors, int count, int a, int b) {
  if (a >= count || b >= count || !present(tensors[a]) || !present(tensors[b])) return true;
  return tensors[a].dtype == tensors[b].dtype;
}

}  // namespace

int32_t supports_op(const ud_op &op) {
  const char *src_rule = nullptr;
  const char *dst_rule = nullptr;
  switch (op.kind) {
    case UD_OP_EMBEDDING: src_rule = "fi"; dst_rule = "f"; break;
    case UD_OP_MATMUL: src_rule = "fff"; dst_rule = "f"; break;
    case UD_OP_RMSNORM: src_rule = "fff"; dst_rule = "ff"; break;
    case UD_OP_ROPE_KV_WRITE:
      if (!same_dtype_if_present(op.dst, op.n_dst, 1, 2)) return 0;  // k_cache, v_cache
      src_rule = "fisi"; dst_rule = "fkk";
      break;
    case UD_OP_ATTENTION:
      if (!same_dtype_if_present(op.src, op.n_src, 1, 2)) return 0;  // k_cache, v_cache
      src_rule = "fkkiii"; dst_rule = "f";
      break;
    case UD_OP_SILU_MUL: src_rule = "f"; dst_rule = "f"; break;
    case UD_OP_GATHER_ROWS: src_rule = "fi"; dst_rule = "f"; break;
    case UD_OP_SAMPLE: src_rule = "ssissui"; dst_rule = "isis"; break;
    case UD_OP_FILL_RANDOM: src_rule = ""; dst_rule = "f"; break;
    case UD_OP_SELECT_TOKENS: src_rule = "iii"; dst_rule = "i"; break;
    case UD_OP_PROCESS_LOGITS: src_rule = "isiiiisw"; dst_rule = "s"; break;
    default: return 0;
  }
  return dtypes_match(op.src, op.n_src, src_rule) && dtypes_match(op.dst, op.n_dst, dst_rule) ? 1 : 0;
}

}  // namespace updraft::cpu
