// host_array.h — dtypes by name, and host-side arrays as they cross between JS and the executor.
//
// A HostArray is what a JS typed array becomes (and what an output becomes before it is a typed
// array again): its element kind, length and a private copy of the bytes. Copying on the JS thread
// keeps worker threads away from JS-owned memory; step inputs and outputs are small.
#ifndef UPDRAFT_NATIVE_HOST_ARRAY_H
#define UPDRAFT_NATIVE_HOST_ARRAY_H

#include <cstdint>
#include <string>
#include <vector>

#include "updraft/device_abi.h"

namespace updraft {

// The JS typed array kinds the addon accepts. f16 and bf16 travel as Uint16Array, f8e4m3 as
// Uint8Array (bit patterns).
enum class HostKind { F32, I32, U32, U64, U16, U8 };

struct HostArray {
  HostKind kind = HostKind::F32;
  int64_t length = 0;           // elements
  std::vector<uint8_t> bytes;   // length * element size
};

inline const char *dtype_name(ud_dtype dtype) {
  switch (dtype) {
    case UD_F32: return "f32";
    case UD_F16: return "f16";
    case UD_BF16: return "bf16";
    case UD_I32: return "i32";
    case UD_U32: return "u32";
    case UD_U64: return "u64";
    case UD_F8E4M3: return "f8e4m3";
    default: return "?";
  }
}

// Returns false for an unknown name.
inline bool dtype_from_name(const std::string &name, ud_dtype *out) {
  for (int d = 0; d < UD_DTYPE_COUNT; d++) {
    if (name == dtype_name(static_cast<ud_dtype>(d))) {
      *out = static_cast<ud_dtype>(d);
      return true;
    }
  }
  return false;
}

inline HostKind host_kind_for(ud_dtype dtype) {
  switch (dtype) {
    case UD_F32: return HostKind::F32;
    case UD_I32: return HostKind::I32;
    case UD_U32: return HostKind::U32;
    case UD_U64: return HostKind::U64;
    case UD_F8E4M3: return HostKind::U8;
    default: return HostKind::U16;  // f16, bf16
  }
}

inline const char *host_kind_name(HostKind kind) {
  switch (kind) {
    case HostKind::F32: return "Float32Array";
    case HostKind::I32: return "Int32Array";
    case HostKind::U32: return "Uint32Array";
    case HostKind::U64: return "BigUint64Array";
    case HostKind::U8: return "Uint8Array";
    default: return "Uint16Array";
  }
}

inline size_t host_kind_size(HostKind kind) {
  switch (kind) {
    case HostKind::U64: return 8;
    case HostKind::U16: return 2;
    case HostKind::U8: return 1;
    default: return 4;
  }
}

inline bool is_float(ud_dtype dtype) { return dtype == UD_F32 || dtype == UD_F16 || dtype == UD_BF16; }

}  // namespace updraft

#endif
