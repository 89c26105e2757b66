/*
 * sim_stream_task.h — how a shim-built kernel library (the sim build of library.cpp) hands a kernel launch
 * to a stand-in ACL runtime (test/ascend/native/fake_acl.cc), so that launches join the runtime's stream
 * order like copies do: run at once on an eager stream, recorded (not run) while the stream is captured by
 * aclmdlRICaptureBegin, and run again by every aclmdlRIExecuteAsync of the captured model.
 *
 * Not part of ACL: a real runtime has no such entry, and the bisheng build of the kernels never uses it
 * (its <<<>>> launches are the runtime's own kernel tasks).
 */
#ifndef UPDRAFT_ASCENDC_SIM_STREAM_TASK_H
#define UPDRAFT_ASCENDC_SIM_STREAM_TASK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct UpdraftSimStreamTask UpdraftSimStreamTask;
struct UpdraftSimStreamTask {
  /* Runs the kernel; 0 on success, else nonzero with the reason in error (capacity error_len). */
  int (*run)(UpdraftSimStreamTask *task, char *error, size_t error_len);
  /* Frees the task; the runtime calls it once it will not run the task again. */
  void (*release)(UpdraftSimStreamTask *task);
};

/* The runtime's entry (looked up by name in the loaded libascendcl.so): takes ownership of task.
 * Returns 0, or an ACL error code with the reason in error (capacity error_len) when an eager run failed
 * or the stream cannot take tasks. */
typedef int (*UpdraftSimStreamLaunchFn)(void *stream, UpdraftSimStreamTask *task, char *error, size_t error_len);
#define UPDRAFT_SIM_STREAM_LAUNCH_SYMBOL "updraftFakeAclLaunchTask"

#ifdef __cplusplus
}
#endif
#endif
