// launch_op / supports_op: the AscendC kernels' table from op kind to launch function and accepted
// operands, and the messages of device-side operand errors.
#include "host_common.h"

namespace updraft::ascendc {

ud_status launch_op(const ud_op &op, LaunchContext &ctx) {
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
    default: return ctx.fail(UD_ERR_UNSUPPORTED, "ascendc: unknown op kind " + std::to_string(op.kind));
  }
}

namespace {

// Operand dtype rule, as the CPU backend's: 'f' any float dtype, 'i' i32, 's' f32 only, 'u' u64, 'w' u32.
// A null operand always passes (whether it may be null is checked at launch).
bool dtypes_match(const ud_tensor *tensors, int count, const char *rule) {
  for (int i = 0; i < count && rule[i]; i++) {
    const ud_tensor &t = tensors[i];
    if (!present(t) || rule[i] == '-') continue;
    switch (rule[i]) {
      case 'f': if (!is_float_dtype(t.dtype)) return false; break;
      case 'i': if (t.dtype != UD_I32) return false; break;
      case 's': if (t.dtype != UD_F32) return false; break;
      case 'u': if (t.dtype != UD_U64) return false; break;
      case 'w': if (t.dtype != UD_U32) return false; break;
      default: return false;
    }
  }
  return true;
}

}  // namespace

int32_t supports_op(const ud_op &op) {
  const char *src_rule = nullptr;
  const char *dst_rule = nullptr;
  switch (op.kind) {
    case UD_OP_EMBEDDING: src_rule = "fi"; dst_rule = "f"; break;
    case UD_OP_MATMUL:
      if (op.params.matmul.variant != 0) return 0;
      src_rule = "fff"; dst_rule = "f";
      break;
    case UD_OP_RMSNORM: {
      // x, residual, out and residual out share one dtype (rmsnorm.cpp); the weight may differ.
      const int32_t t = op.src[0].dtype;
      if ((present(op.dst[0]) && op.dst[0].dtype != t) || (op.n_dst > 1 && present(op.dst[1]) && op.dst[1].dtype != t) ||
          (op.params.rmsnorm.add_residual && op.n_src > 1 && present(op.src[1]) && op.src[1].dtype != t))
        return 0;
      src_rule = "fff"; dst_rule = "ff";
      break;
    }
    case UD_OP_ROPE_KV_WRITE:
      // q_out shares qkv's dtype, v_cache k_cache's (rope_kv_write.cpp).
      if (op.n_dst > 2 && ((present(op.dst[0]) && op.dst[0].dtype != op.src[0].dtype) || (present(op.dst[2]) && op.dst[2].dtype != op.dst[1].dtype)))
        return 0;
      src_rule = "fisi"; dst_rule = "fff";
      break;
    case UD_OP_ATTENTION:
      // out shares q's dtype, v_cache k_cache's (attention.cpp).
      if (op.params.attention.variant != 0) return 0;
      if ((op.n_dst > 0 && present(op.dst[0]) && op.dst[0].dtype != op.src[0].dtype) || (present(op.src[2]) && op.src[2].dtype != op.src[1].dtype))
        return 0;
      src_rule = "fffiii"; dst_rule = "f";
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

std::string format_device_error(const int32_t *slot) {
  using namespace updraft_ascendc;
  const std::string a = std::to_string(slot[2]), b = std::to_string(slot[3]), c = std::to_string(slot[4]);
  switch (slot[0]) {
    case kSlotOutOfRange: return "rope_kv_write: slot_mapping[" + a + "] = " + b + " is outside the cache's " + c + " slots";
    case kBlockOutOfRange: return "attention: sequence " + a + " uses block " + b + " outside the cache's " + c + " blocks";
    case kSeqLenTooShort: return "attention: sequence " + a + " has seq_len " + b + " < its " + c + " query rows";
    case kSeqLenBeyondTable: return "attention: sequence " + a + " has seq_len " + b + " beyond its block table (" + c + " positions)";
    case kQueryStartLocBad:
      return "attention: query_start_loc of sequence " + a + " is [" + b + ", " + c + "), which must be non-decreasing and within [0, numTokens]";
    case kSourceOutOfRange: return "select_tokens: row " + a + " takes sample " + b + " of a table with " + c;
    case kMaskWords:
      return "process_logits: row " + a + " asks for the mask, but src7 (allowed) has " + b + " words per row (a vocabulary of " + c + " needs " +
             std::to_string((int64_t{slot[4]} + 31) / 32) + ")";
    default: {
      const int32_t op = slot[1];
      static const char *names[] = {"embedding", "matmul", "rmsnorm", "rope_kv_write", "attention", "silu_mul", "gather_rows", "sample", "fill_random", "select_tokens", "process_logits"};
      const char *name = op >= 0 && op < static_cast<int32_t>(sizeof names / sizeof names[0]) ? names[op] : "an op";
      return std::string(name) + ": an operand value in device memory is invalid (error " + std::to_string(slot[0]) + ": " + a + ", " + b + ", " + c + ")";
    }
  }
}

std::string first_device_error(const int32_t *slots, int32_t *launch) {
  // Every slot keeps its block's first error (common.h ErrorSlot), so the first failing launch is the
  // lowest launch index among the slots in use.
  const int32_t *first = nullptr;
  for (uint32_t b = 0; b < updraft_ascendc::kMaxBlocks; b++) {
    const int32_t *slot = slots + b * updraft_ascendc::kErrorSlotInts;
    if (slot[0] != 0 && (!first || slot[5] < first[5])) first = slot;
  }
  if (launch) *launch = first ? first[5] : -1;
  return first ? format_device_error(first) : "";
}

}  // namespace updraft::ascendc
