#include "communicator.h"

#include "errors.h"

namespace updraft {

std::vector<std::shared_ptr<Communicator>> Communicator::open_group(const std::vector<std::shared_ptr<Backend>> &ranks,
                                                                    bool host_only) {
  if (ranks.empty()) throw Error("a communicator group needs at least one rank");
  std::vector<ud_backend_handle> handles;
  for (const auto &rank : ranks) handles.push_back(rank->handle());
  std::vector<ud_comm_handle> comms(ranks.size());
  char error[512] = {0};
  const int32_t world = static_cast<int32_t>(ranks.size());
  const ud_status status = host_only ? ud_host_comms_open(handles.data(), world, comms.data(), error, sizeof error)
                                     : ud_comms_open(ranks[0]->name(), handles.data(), world, comms.data(), error, sizeof error);
  if (status != UD_OK)
    throw Error(std::string("cannot open the collectives of ") + std::to_string(world) + " " + ranks[0]->name() +
                    " ranks: " + (error[0] ? error : status_name(status)),
                status);
  std::vector<std::shared_ptr<Communicator>> group;
  for (const ud_comm_handle &comm : comms) group.push_back(std::shared_ptr<Communicator>(new Communicator(comm)));
  return group;
}

Communicator::~Communicator() { handle_.iface->destroy(handle_.ctx); }

void Communicator::all_reduce_sum(void *data, int64_t count, ud_dtype dtype, const std::string &what) {
  const ud_status status = handle_.iface->all_reduce_sum(handle_.ctx, data, count, dtype);
  if (status == UD_OK) return;
  const char *detail = handle_.iface->last_error(handle_.ctx);
  throw Error(what + ": " + (detail && detail[0] ? detail : status_name(status)), status);
}

void Communicator::abort() { handle_.iface->abort(handle_.ctx); }

}  // namespace updraft
