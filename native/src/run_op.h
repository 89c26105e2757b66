// run_op.h — one op on host data, for the conformance suite: upload, launch, download.
#ifndef UPDRAFT_NATIVE_RUN_OP_H
#define UPDRAFT_NATIVE_RUN_OP_H

#include <optional>
#include <vector>

#include "backend.h"
#include "host_array.h"
#include "op_params.h"

namespace updraft {

struct OpOperand {
  ud_dtype dtype = UD_F32;
  std::vector<int64_t> shape;      // outermost first
  std::optional<HostArray> data;   // required for srcs; for a dst, uploaded before the op
  int alias_of_src = -1;           // dst only: share src[alias_of_src]'s device buffer (in-place ops)
};

struct OpCall {
  ud_op_kind kind = UD_OP_EMBEDDING;
  NamedNumbers params;
  std::vector<std::optional<OpOperand>> src;  // nullopt: absent optional operand
  std::vector<std::optional<OpOperand>> dst;
};

// 1 when the backend implements the op for these dtypes (data not needed).
bool op_supported(Backend &backend, const OpCall &call);

// Runs the op and returns every dst's contents afterwards (nullopt for absent dsts). Locks the
// backend. Throws Error with the backend's message when the op fails.
std::vector<std::optional<HostArray>> run_op(Backend &backend, const OpCall &call);

}  // namespace updraft

#endif
