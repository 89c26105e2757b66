/*
 * device_abi.h — the one device ABI that every backend (cpu, cuda, ascend, ascend-sim) fills in.
 *
 * Modelled on ggml's backend interface: a backend is a vtable plus an opaque context. Entries marked
 * OPTIONAL may be NULL; the executor then uses the stated default. Nothing outside a backend's own
 * folder may ask which backend it is talking to: capability questions go through `supports_op`
 * and `ud_device_info`.
 *
 * Threading: a backend instance is used by one thread at a time (the executor serialises steps; with
 * tensor parallelism each rank has its own instance, driven by its own thread).
 * Errors: every entry returns a ud_status; `last_error` explains the most recent failure.
 */
#ifndef UPDRAFT_DEVICE_ABI_H
#define UPDRAFT_DEVICE_ABI_H

#include "../../../kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ud_status {
  UD_OK = 0,
  UD_ERR_INVALID_ARGUMENT = 1,
  UD_ERR_OUT_OF_MEMORY = 2,
  UD_ERR_UNSUPPORTED = 3,   /* op/dtype combination the backend does not implement */
  UD_ERR_DEVICE = 4,        /* kernel launch or runtime failure */
  UD_ERR_UNAVAILABLE = 5,   /* backend compiled in but no device / runtime library present */
  UD_ERR_IO = 6
} ud_status;

typedef struct ud_device_info {
  char name[128];              /* e.g. "CPU (2 threads)", "NVIDIA H100 80GB HBM3" */
  uint64_t total_memory;       /* bytes the backend may allocate in total */
  uint64_t free_memory;        /* bytes free right now */
  int32_t preferred_dtype;     /* ud_dtype the backend computes fastest in (CPU: f32, GPUs: bf16) */
  int32_t default_block_size;  /* KV block size the kernels are tuned for (Ascend: 128) */
  int32_t supports_graphs;     /* 1 when graph_begin/graph_end/graph_launch are implemented */
} ud_device_info;

typedef struct ud_backend_options {
  int32_t device_index;  /* which GPU / NPU; ignored by cpu */
  int32_t num_threads;   /* cpu worker threads; 0 = hardware concurrency */
} ud_backend_options;

typedef struct ud_backend ud_backend; /* opaque, owned by the backend */
typedef struct ud_graph ud_graph;     /* opaque captured op sequence */

typedef struct ud_backend_iface {
  const char *name; /* "cpu", "cuda", "ascend", "ascend-sim" */

  ud_status (*get_info)(ud_backend *b, ud_device_info *out);

  /* Device memory. alloc returns memory aligned to at least 256 bytes. */
  ud_status (*alloc)(ud_backend *b, size_t bytes, void **out);
  void (*free)(ud_backend *b, void *ptr);

  /* Copies, ordered with launched ops on the backend's stream. `host` stays valid until synchronize. */
  ud_status (*upload)(ud_backend *b, void *device_dst, const void *host_src, size_t bytes);
  ud_status (*download)(ud_backend *b, void *host_dst, const void *device_src, size_t bytes);
  ud_status (*memset_zero)(ud_backend *b, void *device_dst, size_t bytes);

  /* OPTIONAL host memory the device copies from fastest (CUDA: pinned). Default: malloc/free. */
  ud_status (*host_alloc)(ud_backend *b, size_t bytes, void **out);
  void (*host_free)(ud_backend *b, void *ptr);

  /* 1 when the backend implements this op with these dtypes and shapes. */
  int32_t (*supports_op)(ud_backend *b, const ud_op *op);
  /* Enqueue one op. */
  ud_status (*launch)(ud_backend *b, const ud_op *op);
  /* Block until every enqueued copy and op has finished. */
  ud_status (*synchronize)(ud_backend *b);

  /* OPTIONAL graph capture: ops launched between graph_begin and graph_end are recorded, not run;
   * graph_launch replays them with the same device pointers. Default: not supported. */
  ud_status (*graph_begin)(ud_backend *b);
  ud_status (*graph_end)(ud_backend *b, ud_graph **out);
  ud_status (*graph_launch)(ud_backend *b, ud_graph *g);
  void (*graph_destroy)(ud_backend *b, ud_graph *g);

  const char *(*last_error)(ud_backend *b);
  void (*destroy)(ud_backend *b);
} ud_backend_iface;

/* A backend instance: its vtable and its context. */
struct ud_backend_handle {
  const ud_backend_iface *iface;
  ud_backend *ctx;
};
typedef struct ud_backend_handle ud_backend_handle;

/* Each compiled-in backend exports one factory. UD_ERR_UNAVAILABLE when no device is present. */
typedef ud_status (*ud_backend_factory)(const ud_backend_options *opts, ud_backend_handle *out,
                                        char *error, size_t error_len);

/*
 * Collectives for tensor parallelism: one communicator per rank, each bound to that rank's backend
 * instance (its device and its stream). The executor runs UD_OP_ALL_REDUCE through it (kernels/ops.h).
 *
 * Threading: rank r's communicator is used by the thread that drives rank r's backend; the ranks of
 * a group call all_reduce_sum concurrently, in the same order, with the same count and dtype.
 * Errors: entries return a ud_status; `last_error` explains the most recent failure of that rank.
 */
typedef struct ud_comm ud_comm; /* opaque, owned by the communicator's implementation */

typedef struct ud_comm_iface {
  const char *name;    /* "host", "nccl", "hccl" */
  int32_t capturable;  /* 1 when all_reduce_sum may be recorded between graph_begin and graph_end */

  /* In place: `data` holds `count` elements of `dtype` (UD_F32, UD_BF16 or UD_F16) on this rank's
   * device. Afterwards every rank's buffer holds the elementwise sum over all ranks, the same values
   * on every rank. Ordered on the rank's stream after everything launched before it; work launched
   * after it sees the sum. */
  ud_status (*all_reduce_sum)(ud_comm *c, void *data, int64_t count, int32_t dtype);
  /* Makes every pending and later collective of the whole group fail instead of waiting for a rank
   * that will never arrive (another rank's step failed). The group is unusable afterwards. */
  void (*abort)(ud_comm *c);
  const char *(*last_error)(ud_comm *c);
  void (*destroy)(ud_comm *c);
} ud_comm_iface;

struct ud_comm_handle {
  const ud_comm_iface *iface;
  ud_comm *ctx;
};
typedef struct ud_comm_handle ud_comm_handle;

/* Opens the communicators of one group together: `ranks[r]` is rank r's backend instance (all of
 * one backend, each on its own device where the implementation needs that), `out[r]` its
 * communicator. All or nothing: on failure nothing is left open. */
typedef ud_status (*ud_comm_factory)(const ud_backend_handle *ranks, int32_t world, ud_comm_handle *out,
                                     char *error, size_t error_len);

typedef struct ud_backend_entry {
  const char *name;
  ud_backend_factory open;
  /* OPTIONAL the backend's own collectives (cuda: NCCL; ascend: HCCL, not implemented yet).
   * NULL: the host communicator (ud_host_comms_open), which works on every backend. */
  ud_comm_factory open_comms;
} ud_backend_entry;

/* The host communicator: each rank downloads its buffer (synchronising its stream), the ranks meet
 * at a barrier, every element is summed in f32 in rank order 0, 1, ..., world-1 (so results are
 * deterministic and the same on every rank), rounded once to the dtype and uploaded back. Correct on
 * any backend; fast only where device memory is host memory (cpu). Defined in native/src/host_comm.cc. */
ud_status ud_host_comms_open(const ud_backend_handle *ranks, int32_t world, ud_comm_handle *out, char *error,
                             size_t error_len);

/* The compiled-in backends (cpu always first). Defined in native/src/registry.cc. */
const ud_backend_entry *ud_backends(int32_t *count);
ud_status ud_backend_open(const char *name, const ud_backend_options *opts, ud_backend_handle *out,
                          char *error, size_t error_len);
/* The group's communicators over backend `name`: its entry's open_comms, else the host communicator. */
ud_status ud_comms_open(const char *name, const ud_backend_handle *ranks, int32_t world, ud_comm_handle *out,
                        char *error, size_t error_len);

#ifdef __cplusplus
}
#endif
#endif /* UPDRAFT_DEVICE_ABI_H */
