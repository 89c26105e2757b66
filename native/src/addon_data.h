// addon_data.h — per-environment state of the addon (the JS classes' constructors), stored with
// napi_set_instance_data so that worker_threads each get their own and nothing is process-global.
#ifndef UPDRAFT_NATIVE_ADDON_DATA_H
#define UPDRAFT_NATIVE_ADDON_DATA_H

#include <napi.h>

namespace updraft::js {

struct AddonData {
  Napi::FunctionReference device_class;
  Napi::FunctionReference program_class;
  Napi::FunctionReference device_group_class;
};

inline AddonData &addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace updraft::js

#endif
