// op_params.h — op kinds by name and their params structs from named numbers.
//
// ProgramSpec and runOp describe params as { field: number } with the field names of the ops.h
// structs; this is the one table that knows which fields each op has.
#ifndef UPDRAFT_NATIVE_OP_PARAMS_H
#define UPDRAFT_NATIVE_OP_PARAMS_H

#include <string>
#include <utility>
#include <vector>

#include "updraft/device_abi.h"

namespace updraft {

using NamedNumbers = std::vector<std::pair<std::string, double>>;

// Throws Error for an unknown name.
ud_op_kind op_kind_from_name(const std::string &name);

// Throws Error naming the field for an unknown field, a missing required one, or a value that does
// not fit (non-integers for integer fields, negative seeds). `what` prefixes messages.
ud_op_params parse_op_params(ud_op_kind kind, const NamedNumbers &fields, const std::string &what);

}  // namespace updraft

#endif
