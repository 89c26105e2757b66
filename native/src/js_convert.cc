#include "js_convert.h"

#include <cmath>
#include <cstring>

#include "errors.h"

namespace updraft::js {
namespace {

Napi::Object object_at(const Napi::Value &value, const std::string &what) {
  if (!value.IsObject() || value.IsArray()) throw Error(what + " must be an object");
  return value.As<Napi::Object>();
}

Napi::Array array_at(const Napi::Value &value, const std::string &what) {
  if (!value.IsArray()) throw Error(what + " must be an array");
  return value.As<Napi::Array>();
}

std::string string_at(const Napi::Value &value, const std::string &what) {
  if (!value.IsString()) throw Error(what + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

double number_at(const Napi::Value &value, const std::string &what) {
  if (!value.IsNumber()) throw Error(what + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

int64_t integer_at(const Napi::Value &value, const std::string &what, double min, double max) {
  const double v = number_at(value, what);
  if (v != std::floor(v) || v < min || v > max)
    throw Error(what + " must be an integer in [" + std::to_string(static_cast<int64_t>(min)) + ", " +
                std::to_string(static_cast<int64_t>(max)) + "], got " + std::to_string(v));
  return static_cast<int64_t>(v);
}

constexpr double kMaxSafeInteger = 9007199254740991.0;

ud_dtype dtype_at(const Napi::Value &value, const std::string &what) {
  const std::string name = string_at(value, what);
  ud_dtype dtype;
  if (!dtype_from_name(name, &dtype)) throw Error(what + ": unknown dtype '" + name + "' (f32, f16, bf16, i32, u32, u64, f8e4m3)");
  return dtype;
}

// { key: number } as ordered (name, value) pairs.
NamedNumbers named_numbers_at(const Napi::Value &value, const std::string &what) {
  NamedNumbers out;
  if (value.IsUndefined() || value.IsNull()) return out;
  const Napi::Object object = object_at(value, what);
  const Napi::Array keys = object.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    out.emplace_back(key, number_at(object.Get(key), what + "." + key));
  }
  return out;
}

std::vector<std::pair<std::string, int64_t>> dims_at(const Napi::Value &value, const std::string &what) {
  std::vector<std::pair<std::string, int64_t>> out;
  const Napi::Object object = object_at(value, what);
  const Napi::Array keys = object.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    out.emplace_back(key, integer_at(object.Get(key), what + "." + key, 0, 2147483647.0));
  }
  return out;
}

std::vector<std::string> names_at(const Napi::Value &value, const std::string &what) {
  std::vector<std::string> out;
  const Napi::Array array = array_at(value, what);
  for (uint32_t i = 0; i < array.Length(); i++) {
    const Napi::Value item = array.Get(i);
    const std::string where = what + "[" + std::to_string(i) + "]";
    if (item.IsNull() || item.IsUndefined()) {
      out.emplace_back();
    } else {
      std::string name = string_at(item, where);
      if (name.empty()) throw Error(where + " is an empty name (use null for an absent operand)");
      out.push_back(std::move(name));
    }
  }
  return out;
}

WeightInit weight_init_at(const Napi::Value &value, const std::string &what) {
  WeightInit init;
  if (value.IsUndefined() || value.IsNull()) return init;
  const Napi::Object object = object_at(value, what);
  const std::string kind = string_at(object.Get("kind"), what + ".kind");
  if (kind == "file") {
    init.kind = WeightInit::Kind::File;
    const Napi::Array segments = array_at(object.Get("segments"), what + ".segments");
    for (uint32_t i = 0; i < segments.Length(); i++) {
      const std::string where = what + ".segments[" + std::to_string(i) + "]";
      const Napi::Object seg = object_at(segments.Get(i), where);
      FileSegment segment;
      segment.path = string_at(seg.Get("path"), where + ".path");
      segment.offset = static_cast<uint64_t>(integer_at(seg.Get("offset"), where + ".offset", 0, kMaxSafeInteger));
      segment.byte_length =
          static_cast<uint64_t>(integer_at(seg.Get("byteLength"), where + ".byteLength", 0, kMaxSafeInteger));
      segment.dtype = dtype_at(seg.Get("dtype"), where + ".dtype");
      const Napi::Value rows = seg.Get("rows");
      if (!rows.IsUndefined()) {
        segment.rows = static_cast<uint64_t>(integer_at(rows, where + ".rows", 1, kMaxSafeInteger));
        segment.row_stride =
            static_cast<uint64_t>(integer_at(seg.Get("rowStride"), where + ".rowStride", 0, kMaxSafeInteger));
      }
      init.segments.push_back(std::move(segment));
    }
  } else if (kind == "random") {
    init.kind = WeightInit::Kind::Random;
    init.seed = static_cast<uint64_t>(integer_at(object.Get("seed"), what + ".seed", 0, kMaxSafeInteger));
    const double std_dev = number_at(object.Get("std"), what + ".std");
    if (!std::isfinite(std_dev)) throw Error(what + ".std must be finite");
    init.std = static_cast<float>(std_dev);
  } else if (kind == "data") {
    init.kind = WeightInit::Kind::Data;
    init.data = host_array_from_js(object.Get("data"), what + ".data");
    if (init.data.kind != HostKind::F32 && init.data.kind != HostKind::I32)
      throw Error(what + ".data must be a Float32Array or an Int32Array");
  } else {
    throw Error(what + ".kind must be 'file', 'random' or 'data', got '" + kind + "'");
  }
  return init;
}

TensorRole role_at(const Napi::Value &value, const std::string &what) {
  const std::string role = string_at(value, what);
  for (TensorRole r : {TensorRole::Weight, TensorRole::State, TensorRole::Activation, TensorRole::Input, TensorRole::Output})
    if (role == role_name(r)) return r;
  throw Error(what + ": unknown role '" + role + "' (weight, state, activation, input, output)");
}

std::vector<int64_t> shape_at(const Napi::Value &value, const std::string &what) {
  std::vector<int64_t> shape;
  const Napi::Array array = array_at(value, what);
  for (uint32_t i = 0; i < array.Length(); i++)
    shape.push_back(integer_at(array.Get(i), what + "[" + std::to_string(i) + "]", 0, 2147483647.0));
  return shape;
}

std::optional<OpOperand> operand_at(const Napi::Value &value, const std::string &what, bool is_dst) {
  if (value.IsNull() || value.IsUndefined()) return std::nullopt;
  const Napi::Object object = object_at(value, what);
  OpOperand operand;
  operand.dtype = dtype_at(object.Get("dtype"), what + ".dtype");
  operand.shape = shape_at(object.Get("shape"), what + ".shape");
  const Napi::Value data = object.Get("data");
  if (!data.IsUndefined() && !data.IsNull()) operand.data = host_array_from_js(data, what + ".data");
  const Napi::Value alias = object.Get("alias");
  if (!alias.IsUndefined() && !alias.IsNull()) {
    if (!is_dst) throw Error(what + ".alias is only allowed on dsts");
    operand.alias_of_src = static_cast<int>(integer_at(alias, what + ".alias", 0, UD_MAX_SRC - 1));
  }
  return operand;
}

}  // namespace

HostArray host_array_from_js(const Napi::Value &value, const std::string &what) {
  if (!value.IsTypedArray())
    throw Error(what + " must be a typed array (Float32Array, Int32Array, Uint32Array, BigUint64Array, Uint16Array or Uint8Array)");
  const Napi::TypedArray typed = value.As<Napi::TypedArray>();
  HostArray array;
  switch (typed.TypedArrayType()) {
    case napi_float32_array: array.kind = HostKind::F32; break;
    case napi_int32_array: array.kind = HostKind::I32; break;
    case napi_uint32_array: array.kind = HostKind::U32; break;
    case napi_biguint64_array: array.kind = HostKind::U64; break;
    case napi_uint16_array: array.kind = HostKind::U16; break;
    case napi_uint8_array: array.kind = HostKind::U8; break;
    default:
      throw Error(what + " must be a Float32Array, Int32Array, Uint32Array, BigUint64Array, Uint16Array or Uint8Array");
  }
  array.length = static_cast<int64_t>(typed.ElementLength());
  array.bytes.resize(typed.ByteLength());
  if (!array.bytes.empty()) {
    const uint8_t *base = static_cast<const uint8_t *>(typed.ArrayBuffer().Data());
    std::memcpy(array.bytes.data(), base + typed.ByteOffset(), array.bytes.size());
  }
  return array;
}

Napi::Value host_array_to_js(Napi::Env env, const HostArray &array) {
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, array.bytes.size());
  if (!array.bytes.empty()) std::memcpy(buffer.Data(), array.bytes.data(), array.bytes.size());
  const size_t n = static_cast<size_t>(array.length);
  switch (array.kind) {
    case HostKind::F32: return Napi::Float32Array::New(env, n, buffer, 0);
    case HostKind::I32: return Napi::Int32Array::New(env, n, buffer, 0);
    case HostKind::U32: return Napi::Uint32Array::New(env, n, buffer, 0);
    case HostKind::U64: return Napi::BigUint64Array::New(env, n, buffer, 0);
    case HostKind::U8: return Napi::Uint8Array::New(env, n, buffer, 0);
    default: return Napi::Uint16Array::New(env, n, buffer, 0);
  }
}

ProgramSpec program_spec_from_js(const Napi::Value &value) {
  ProgramSpec spec;
  const Napi::Object object = object_at(value, "spec");
  spec.dims = dims_at(object.Get("dims"), "spec.dims");
  const Napi::Array tensors = array_at(object.Get("tensors"), "spec.tensors");
  for (uint32_t i = 0; i < tensors.Length(); i++) {
    const std::string what = "spec.tensors[" + std::to_string(i) + "]";
    const Napi::Object t = object_at(tensors.Get(i), what);
    TensorDecl decl;
    decl.name = string_at(t.Get("name"), what + ".name");
    decl.dtype = dtype_at(t.Get("dtype"), what + ".dtype");
    decl.role = role_at(t.Get("role"), what + ".role");
    const Napi::Array shape = array_at(t.Get("shape"), what + ".shape");
    for (uint32_t d = 0; d < shape.Length(); d++) {
      const Napi::Value dim = shape.Get(d);
      const std::string where = what + ".shape[" + std::to_string(d) + "]";
      if (dim.IsString()) {
        decl.shape.push_back(parse_dim_string(dim.As<Napi::String>().Utf8Value(), where));
      } else {
        decl.shape.push_back(DimExpr{"", integer_at(dim, where, 0, 2147483647.0)});
      }
    }
    decl.init = weight_init_at(t.Get("init"), what + ".init");
    spec.tensors.push_back(std::move(decl));
  }
  const Napi::Array ops = array_at(object.Get("ops"), "spec.ops");
  for (uint32_t i = 0; i < ops.Length(); i++) {
    const std::string what = "spec.ops[" + std::to_string(i) + "]";
    const Napi::Object o = object_at(ops.Get(i), what);
    OpDecl decl;
    decl.kind = op_kind_from_name(string_at(o.Get("op"), what + ".op"));
    decl.src = names_at(o.Get("src"), what + ".src");
    decl.dst = names_at(o.Get("dst"), what + ".dst");
    decl.params = named_numbers_at(o.Get("params"), what + ".params");
    spec.ops.push_back(std::move(decl));
  }
  return spec;
}

StepRequest step_request_from_js(const Napi::Value &value) {
  StepRequest request;
  const Napi::Object object = object_at(value, "step request");
  request.dims = dims_at(object.Get("dims"), "step.dims");
  const Napi::Object inputs = object_at(object.Get("inputs"), "step.inputs");
  const Napi::Array keys = inputs.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    const std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    request.inputs.emplace_back(key, host_array_from_js(inputs.Get(key), "step.inputs." + key));
  }
  const Napi::Value graph = object.Get("graph");
  if (!graph.IsUndefined() && !graph.IsNull()) {
    if (!graph.IsBoolean()) throw Error("step.graph must be a boolean");
    request.graph = graph.As<Napi::Boolean>().Value();
  }
  return request;
}

OpCall op_call_from_js(const Napi::Value &value) {
  OpCall call;
  const Napi::Object object = object_at(value, "op call");
  call.kind = op_kind_from_name(string_at(object.Get("op"), "op call.op"));
  call.params = named_numbers_at(object.Get("params"), "op call.params");
  const Napi::Array src = array_at(object.Get("src"), "op call.src");
  for (uint32_t i = 0; i < src.Length(); i++) call.src.push_back(operand_at(src.Get(i), "src" + std::to_string(i), false));
  const Napi::Array dst = array_at(object.Get("dst"), "op call.dst");
  for (uint32_t i = 0; i < dst.Length(); i++) call.dst.push_back(operand_at(dst.Get(i), "dst" + std::to_string(i), true));
  return call;
}

ud_backend_options backend_options_from_js(const Napi::Value &value) {
  ud_backend_options options{0, 0};
  if (value.IsUndefined() || value.IsNull()) return options;
  const Napi::Object object = object_at(value, "options");
  const Napi::Value device_index = object.Get("deviceIndex");
  if (!device_index.IsUndefined())
    options.device_index = static_cast<int32_t>(integer_at(device_index, "options.deviceIndex", 0, 1024));
  const Napi::Value num_threads = object.Get("numThreads");
  if (!num_threads.IsUndefined())
    options.num_threads = static_cast<int32_t>(integer_at(num_threads, "options.numThreads", 0, 1024));
  return options;
}

DeviceGroupOptions device_group_options_from_js(const Napi::Value &value) {
  DeviceGroupOptions options;
  const Napi::Object object = object_at(value, "options");
  options.size = static_cast<int32_t>(integer_at(object.Get("size"), "options.size", 1, 64));
  const Napi::Value num_threads = object.Get("numThreads");
  if (!num_threads.IsUndefined())
    options.num_threads = static_cast<int32_t>(integer_at(num_threads, "options.numThreads", 0, 1024));
  const Napi::Value indices = object.Get("deviceIndices");
  if (!indices.IsUndefined()) {
    const Napi::Array array = array_at(indices, "options.deviceIndices");
    if (array.Length() != static_cast<uint32_t>(options.size))
      throw Error("options.deviceIndices must hold one index per rank (" + std::to_string(options.size) + ")");
    for (uint32_t i = 0; i < array.Length(); i++)
      options.device_indices.push_back(static_cast<int32_t>(
          integer_at(array.Get(i), "options.deviceIndices[" + std::to_string(i) + "]", 0, 1024)));
  } else {
    for (int32_t r = 0; r < options.size; r++) options.device_indices.push_back(r);
  }
  const Napi::Value communicator = object.Get("communicator");
  if (!communicator.IsUndefined()) {
    const std::string name = string_at(communicator, "options.communicator");
    if (name != "auto" && name != "host") throw Error("options.communicator must be 'auto' or 'host', got '" + name + "'");
    options.host_communicator = name == "host";
  }
  return options;
}

Napi::Object device_info_to_js(Napi::Env env, const char *backend, const ud_device_info &device) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", Napi::String::New(env, device.name));
  out.Set("backend", Napi::String::New(env, backend));
  out.Set("totalMemory", static_cast<double>(device.total_memory));
  out.Set("freeMemory", static_cast<double>(device.free_memory));
  out.Set("preferredDtype", Napi::String::New(env, dtype_name(static_cast<ud_dtype>(device.preferred_dtype))));
  out.Set("defaultBlockSize", device.default_block_size);
  out.Set("supportsGraphs", Napi::Boolean::New(env, device.supports_graphs != 0));
  return out;
}

}  // namespace updraft::js
