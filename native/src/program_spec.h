// program_spec.h — ProgramSpec (src/device/program.ts) as C++ structs.
//
// The addon converts the JS object into these once, on the JS thread; the executor validates them
// (names, dims, roles, shapes) when it builds, so every rule lives in one place (program.cc).
#ifndef UPDRAFT_NATIVE_PROGRAM_SPEC_H
#define UPDRAFT_NATIVE_PROGRAM_SPEC_H

#include <cstdint>
#include <string>
#include <vector>

#include "host_array.h"
#include "op_params.h"

namespace updraft {

// A dimension: a constant (`symbol` empty) or `symbol + offset`, e.g. "numSeqs+1".
struct DimExpr {
  std::string symbol;
  int64_t offset = 0;
};

// Parses 12, "numTokens" or "numSeqs+1"; throws Error naming `what` otherwise.
DimExpr parse_dim_string(const std::string &text, const std::string &what);

enum class TensorRole { Weight, State, Activation, Input, Output };
const char *role_name(TensorRole role);

struct FileSegment {
  std::string path;
  uint64_t offset = 0;       // absolute byte offset in the file
  uint64_t byte_length = 0;
  ud_dtype dtype = UD_F32;   // dtype of the stored data
  // Strided (a column slice of a row-major matrix, tensor parallelism): `rows` runs of
  // byte_length / rows bytes, run i starting at offset + i * row_stride. rows == 1: contiguous.
  uint64_t rows = 1;
  uint64_t row_stride = 0;
};

struct WeightInit {
  enum class Kind { None, File, Random, Data };
  Kind kind = Kind::None;
  std::vector<FileSegment> segments;  // File: concatenated along dim 0
  uint64_t seed = 0;                  // Random
  float std = 0.0f;                   // Random
  HostArray data;                     // Data: Float32Array or Int32Array
};

struct TensorDecl {
  std::string name;
  ud_dtype dtype = UD_F32;
  std::vector<DimExpr> shape;  // outermost first
  TensorRole role = TensorRole::Activation;
  WeightInit init;
};

struct OpDecl {
  ud_op_kind kind = UD_OP_EMBEDDING;
  std::vector<std::string> src;  // tensor names in ops.h operand order; "" = absent optional operand
  std::vector<std::string> dst;
  NamedNumbers params;
};

struct ProgramSpec {
  std::vector<std::pair<std::string, int64_t>> dims;  // symbol -> maximum
  std::vector<TensorDecl> tensors;
  std::vector<OpDecl> ops;
};

// One step's request: the dims' values and one array per input tensor.
struct StepRequest {
  std::vector<std::pair<std::string, int64_t>> dims;
  std::vector<std::pair<std::string, HostArray>> inputs;
  // The caller pads such steps to a few shapes: the executor may replay a captured graph for these
  // dims (StepRequest.graph in src/device/program.ts). Results are the same either way.
  bool graph = false;
};

using StepOutputs = std::vector<std::pair<std::string, HostArray>>;

}  // namespace updraft

#endif
