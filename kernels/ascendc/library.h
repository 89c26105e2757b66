/*
 * library.h — the C interface of the AscendC kernel library (libupdraft_ascendc_kernels.so, built with
 * bisheng by `-DUPDRAFT_ASCEND=ON`). The `ascend` backend loads it with dlopen at open time, so the addon
 * itself never links the CANN runtime and loads on every machine.
 *
 * Plain C; one context struct per backend instance, owned by the backend.
 */
#ifndef UPDRAFT_ASCENDC_LIBRARY_H
#define UPDRAFT_ASCENDC_LIBRARY_H

#include <stddef.h>
#include <stdint.h>

#include "../../native/include/updraft/device_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2: launch_index in the context, recorded with device-side errors; updraft_ascendc_device_error returns it. */
#define UPDRAFT_ASCENDC_ABI_VERSION 2

typedef struct updraft_ascendc_context {
  void *stream;          /* aclrtStream the kernels are queued on */
  uint32_t aiv_cores;    /* vector cores of the SoC */
  uint32_t aic_cores;    /* cube cores of the SoC */
  void *error_slots;     /* device memory: kMaxBlocks slots of 8 int32 (kernels/ascendc/tiling.h) */
  int32_t launch_index;  /* this launch's index among the backend's launches since its last synchronize
                            (or capture begin); kernels record it with a device-side operand error */
  void *workspace;       /* device scratch */
  size_t workspace_bytes;
  /* Grows the workspace (not during graph capture); NULL: no growth. Returns a ud_status. */
  int32_t (*reserve_workspace)(void *owner, size_t bytes, void **workspace, size_t *workspace_bytes);
  void *owner;           /* passed back to reserve_workspace */
  char error[512];       /* why the last call failed */
} updraft_ascendc_context;

int32_t updraft_ascendc_abi_version(void);
/* Queues one op on ctx->stream; a ud_status, ctx->error on failure. */
int32_t updraft_ascendc_launch(const ud_op *op, updraft_ascendc_context *ctx);
/* 1 when the kernels implement the op with these operands. */
int32_t updraft_ascendc_supports(const ud_op *op);
/* The message of the first error in an error area copied to the host (kMaxBlocks slots): the one of the
 * lowest launch index; "" when none. Writes into `out` (capacity out_len); returns that error's launch
 * index (the context's launch_index when its kernel was queued), -1 when there is none. */
int32_t updraft_ascendc_device_error(const int32_t *slots, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif
#endif
