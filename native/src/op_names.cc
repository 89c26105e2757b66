// op_names.cc — ud_op_name (declared in kernels/ops.h). The names are ProgramSpec's OpKind strings.
#include "updraft/device_abi.h"

extern "C" const char *ud_op_name(ud_op_kind kind) {
  switch (kind) {
    case UD_OP_EMBEDDING: return "embedding";
    case UD_OP_MATMUL: return "matmul";
    case UD_OP_RMSNORM: return "rmsnorm";
    case UD_OP_ROPE_KV_WRITE: return "rope_kv_write";
    case UD_OP_ATTENTION: return "attention";
    case UD_OP_SILU_MUL: return "silu_mul";
    case UD_OP_GATHER_ROWS: return "gather_rows";
    case UD_OP_SAMPLE: return "sample";
    case UD_OP_FILL_RANDOM: return "fill_random";
    case UD_OP_SELECT_TOKENS: return "select_tokens";
    case UD_OP_PROCESS_LOGITS: return "process_logits";
    case UD_OP_ALL_REDUCE: return "all_reduce";
    default: return "unknown";
  }
}
