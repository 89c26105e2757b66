// kernel_operator.h — entry point of the clean-room AscendC shim (the same header name the CANN toolkit
// uses, so kernels/ascendc/*.cpp include "kernel_operator.h" unchanged and build with g++ against this
// folder or with bisheng against CANN).
//
// Written from the public AscendC API documentation only; no Huawei header was used or copied. Only the
// API subset Updraft's kernels need exists, with the same spellings. What it checks and what it cannot
// tell: kernels/ascendc/README.md.
#ifndef UPDRAFT_ASCENDC_SHIM_KERNEL_OPERATOR_H
#define UPDRAFT_ASCENDC_SHIM_KERNEL_OPERATOR_H

#define UPDRAFT_ASCENDC_SHIM 1

#include "shim_types.h"
#include "shim_runtime.h"
#include "shim_tensor.h"
#include "shim_copy.h"
#include "shim_vector.h"
#include "shim_cube.h"

#endif
