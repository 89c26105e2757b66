// UD_OP_SELECT_TOKENS: a step's token ids, some taken from the previous step's samples still on the
// device (async scheduling), or a plain copy of the samples for the next step. A source outside the
// table is reported through ctx.device_errors (the host may not read device memory) and that row keeps
// its own id, as on the CPU.
#include "common.cuh"

namespace updraft::cuda {
namespace {

__global__ void select_tokens_kernel(const int32_t *__restrict__ ids,      // [n]
                                     const int32_t *__restrict__ sources,  // [n] or null
                                     const int32_t *__restrict__ table,    // [table_rows] or null
                                     int64_t table_rows, int32_t *__restrict__ out, int64_t n,
                                     DeviceErrorRecord *errors, int32_t launch_index) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int32_t s = sources ? sources[i] : -1;
    if (s >= 0 && s < table_rows) {
      out[i] = table[s];
    } else {
      if (s >= table_rows) report_device_error(errors, kDeviceErrorOther, UD_OP_SELECT_TOKENS, launch_index, i, s, table_rows);
      out[i] = ids[i];
    }
  }
}

}  // namespace

ud_status launch_select_tokens(const ud_op &op, KernelContext &ctx) {
  const ud_tensor &ids = op.src[0];      // [T] i32
  const ud_tensor &sources = op.src[1];  // [T] i32, optional
  const ud_tensor &table = op.src[2];    // [R] i32, optional
  const ud_tensor &out = op.dst[0];      // [D >= T] i32
  if (!present(ids) || !present(out)) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: src0 (ids) and dst0 (out) are required");
  for (const ud_tensor *t : {&ids, &sources, &table, &out}) {
    if (present(*t) && t->dtype != UD_I32) return ctx.fail(UD_ERR_UNSUPPORTED, std::string("select_tokens: operands must be i32, got ") + dtype_name(t->dtype));
  }
  const int64_t n = numel(ids);
  if (numel(out) < n) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: dst0 (out) is smaller than src0 (ids)");
  if (present(sources) && numel(sources) != n) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: src1 (sources) must have one entry per id");
  if (present(sources) && !present(table)) return ctx.fail(UD_ERR_INVALID_ARGUMENT, "select_tokens: src1 (sources) needs src2 (table)");
  if (n == 0) return UD_OK;
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>(ceil_div(n, threads), 1024));
  select_tokens_kernel<<<blocks, threads, 0, ctx.stream>>>(
      static_cast<const int32_t *>(ids.data), present(sources) ? static_cast<const int32_t *>(sources.data) : nullptr,
      present(table) ? static_cast<const int32_t *>(table.data) : nullptr, present(table) ? numel(table) : 0,
      static_cast<int32_t *>(out.data), n, ctx.device_errors, ctx.launch_index);
  return check_launch(ctx, "select_tokens");
}

}  // namespace updraft::cuda
