#include "op_params.h"

#include <cmath>
#include <cstddef>
#include <cstring>

#include "errors.h"

namespace updraft {
namespace {

enum class FieldType { F32, I32, U64 };

struct FieldSpec {
  const char *name;
  FieldType type;
  bool required;
  size_t offset;  // into ud_op_params
};

const std::vector<FieldSpec> &fields_of(ud_op_kind kind) {
  static const std::vector<FieldSpec> none;
  static const std::vector<FieldSpec> rmsnorm = {
      {"eps", FieldType::F32, true, offsetof(ud_op_params, rmsnorm.eps)},
      {"add_residual", FieldType::I32, false, offsetof(ud_op_params, rmsnorm.add_residual)}};
  static const std::vector<FieldSpec> rope = {
      {"num_heads", FieldType::I32, true, offsetof(ud_op_params, rope_kv_write.num_heads)},
      {"num_kv_heads", FieldType::I32, true, offsetof(ud_op_params, rope_kv_write.num_kv_heads)},
      {"head_dim", FieldType::I32, true, offsetof(ud_op_params, rope_kv_write.head_dim)},
      {"rotary_dim", FieldType::I32, true, offsetof(ud_op_params, rope_kv_write.rotary_dim)}};
  static const std::vector<FieldSpec> attention = {
      {"scale", FieldType::F32, true, offsetof(ud_op_params, attention.scale)},
      {"num_heads", FieldType::I32, true, offsetof(ud_op_params, attention.num_heads)},
      {"num_kv_heads", FieldType::I32, true, offsetof(ud_op_params, attention.num_kv_heads)},
      {"head_dim", FieldType::I32, true, offsetof(ud_op_params, attention.head_dim)},
      {"block_size", FieldType::I32, true, offsetof(ud_op_params, attention.block_size)},
      {"variant", FieldType::I32, false, offsetof(ud_op_params, attention.variant)}};
  static const std::vector<FieldSpec> matmul = {
      {"variant", FieldType::I32, false, offsetof(ud_op_params, matmul.variant)}};
  static const std::vector<FieldSpec> sample = {
      {"num_top_logprobs", FieldType::I32, false, offsetof(ud_op_params, sample.num_top_logprobs)}};
  static const std::vector<FieldSpec> fill_random = {
      {"seed", FieldType::U64, true, offsetof(ud_op_params, fill_random.seed)},
      {"std", FieldType::F32, true, offsetof(ud_op_params, fill_random.std)}};
  switch (kind) {
    case UD_OP_MATMUL: return matmul;
    case UD_OP_RMSNORM: return rmsnorm;
    case UD_OP_ROPE_KV_WRITE: return rope;
    case UD_OP_ATTENTION: return attention;
    case UD_OP_SAMPLE: return sample;
    case UD_OP_FILL_RANDOM: return fill_random;
    default: return none;
  }
}

}  // namespace

ud_op_kind op_kind_from_name(const std::string &name) {
  for (int k = 0; k < UD_OP_COUNT; k++) {
    if (name == ud_op_name(static_cast<ud_op_kind>(k))) return static_cast<ud_op_kind>(k);
  }
  std::string known;
  for (int k = 0; k < UD_OP_COUNT; k++) known += std::string(k ? ", " : "") + ud_op_name(static_cast<ud_op_kind>(k));
  throw Error("unknown op '" + name + "' (known: " + known + ")");
}

ud_op_params parse_op_params(ud_op_kind kind, const NamedNumbers &given, const std::string &what) {
  ud_op_params params;
  std::memset(&params, 0, sizeof params);
  const std::vector<FieldSpec> &fields = fields_of(kind);
  for (const auto &[name, value] : given) {
    const FieldSpec *field = nullptr;
    for (const FieldSpec &f : fields)
      if (name == f.name) field = &f;
    if (!field) {
      std::string known;
      for (const FieldSpec &f : fields) known += std::string(known.empty() ? "" : ", ") + f.name;
      throw Error(what + ": unknown param '" + name + "' for " + ud_op_name(kind) +
                  (known.empty() ? " (it takes none)" : " (known: " + known + ")"));
    }
    char *dst = reinterpret_cast<char *>(&params) + field->offset;
    const std::string where = what + ": param '" + name + "' = " + std::to_string(value);
    switch (field->type) {
      case FieldType::F32: {
        if (!std::isfinite(value)) throw Error(where + " must be a finite number");
        const float v = static_cast<float>(value);
        std::memcpy(dst, &v, sizeof v);
        break;
      }
      case FieldType::I32: {
        if (value != std::floor(value) || value < -2147483648.0 || value > 2147483647.0)
          throw Error(where + " must be a 32-bit integer");
        const int32_t v = static_cast<int32_t>(value);
        std::memcpy(dst, &v, sizeof v);
        break;
      }
      case FieldType::U64: {
        if (value != std::floor(value) || value < 0 || value > 9007199254740991.0)
          throw Error(where + " must be an integer in [0, 2^53)");
        const uint64_t v = static_cast<uint64_t>(value);
        std::memcpy(dst, &v, sizeof v);
        break;
      }
    }
  }
  for (const FieldSpec &f : fields) {
    if (!f.required) continue;
    bool found = false;
    for (const auto &entry : given) found = found || entry.first == f.name;
    if (!found) throw Error(what + ": " + ud_op_name(kind) + " needs param '" + f.name + "'");
  }
  return params;
}

}  // namespace updraft
