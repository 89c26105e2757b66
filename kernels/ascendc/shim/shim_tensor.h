// shim_tensor.h — LocalTensor, GlobalTensor, TPipe, TQue, TBuf and the pipe synchronisation calls.
//
// A LocalTensor is a view (buffer, generation, byte offset, element count); every use goes through
// shim::local_span, which checks that the buffer is alive and not sitting in a queue, the view's bounds,
// 32-byte alignment where the instruction needs it, pipe hazards, and (for reads) that every byte read
// was written since the buffer was handed out.
#ifndef UPDRAFT_ASCENDC_SHIM_TENSOR_H
#define UPDRAFT_ASCENDC_SHIM_TENSOR_H

#include "shim_runtime.h"

namespace AscendC {

template <typename T> class LocalTensor;
template <typename T> class GlobalTensor;

namespace shim {

template <typename T> std::string describe(const LocalTensor<T> &t);

// The live region behind a tensor, or a violation naming what is wrong with it.
template <typename T> Region &region_of(const LocalTensor<T> &t, const char *op) {
  Block &b = cur();
  if (t.region_ < 0 || t.region_ >= static_cast<int>(b.regions.size()))
    violation("invalid tensor", std::string(op) + " got a LocalTensor that was never allocated");
  Region &r = b.regions[t.region_];
  if (r.generation != t.gen_ || r.state == Region::State::Free)
    violation("use after free", std::string(op) + " uses " + r.name + " after FreeTensor (the buffer may hold other data now)");
  if (r.state == Region::State::Queued)
    violation("tensor in a queue", std::string(op) + " uses " + r.name + " while it is EnQue'd: DeQue it first");
  return r;
}

// Checked access to bytes [byte_first, byte_first + byte_count) of `t` by pipe `pipe`. `aligned`: the
// instruction needs the tensor's start address 32-byte aligned (every vector and copy instruction does).
// `fill`: write the bytes as "garbage" (poison, uninitialised) rather than as data.
template <typename T>
uint8_t *local_bytes(const LocalTensor<T> &t, uint64_t byte_first, uint64_t byte_count, int pipe, bool write, const char *op,
                     bool aligned = true, bool garbage = false) {
  Region &r = region_of(t, op);
  Block &b = cur();
  const uint64_t size_bytes = uint64_t{t.size_} * sizeof(T);
  if (byte_first + byte_count > size_bytes)
    violation("out of bounds", std::string(op) + " touches bytes [" + std::to_string(byte_first) + ", " + std::to_string(byte_first + byte_count) +
                                   ") of " + describe(t) + ", which has " + std::to_string(size_bytes) + " bytes (" +
                                   std::to_string(t.size_) + " elements)");
  const uint32_t address = r.addr + t.offset_;
  if (aligned && address % 32 != 0)
    violation("misaligned operand", std::string(op) + ": " + describe(t) + " starts at " + mem_name(r.mem) + " address " +
                                        std::to_string(address) + ", not a multiple of 32 bytes");
  b.access(r, pipe, write, op);
  const uint32_t first = t.offset_ + static_cast<uint32_t>(byte_first);
  uint8_t *shadow = b.shadow_of(r) + first;
  uint8_t *data = b.bytes_of(r) + first;
  if (write) {
    std::memset(shadow, garbage ? 0 : 1, byte_count);
    if (garbage) std::memset(data, 0xff, byte_count);
  } else {
    const void *hole = byte_count ? std::memchr(shadow, 0, byte_count) : nullptr;
    if (hole) {
      const uint64_t i = static_cast<const uint8_t *>(hole) - shadow;
      violation("uninitialised read", std::string(op) + " reads element " + std::to_string((byte_first + i) / sizeof(T)) + " of " + describe(t) +
                                          ", which nothing has written since the buffer was handed out");
    }
  }
  return data;
}

// The same in elements: [first, first + count).
template <typename T>
T *local_span(const LocalTensor<T> &t, uint64_t first, uint64_t count, int pipe, bool write, const char *op, bool aligned = true) {
  return reinterpret_cast<T *>(local_bytes(t, first * sizeof(T), count * sizeof(T), pipe, write, op, aligned));
}

// A checked window on a whole tensor for instructions that touch scattered elements (repeat forms):
// liveness, alignment and pipe hazards are checked once, bounds and initialisation per element.
template <typename T> struct View {
  T *data = nullptr;
  uint8_t *shadow = nullptr;
  uint64_t size = 0;
  const LocalTensor<T> *tensor = nullptr;
  const char *op = "";
  T read(uint64_t i) const {
    if (i >= size) violation("out of bounds", std::string(op) + " reads element " + std::to_string(i) + " of " + describe(*tensor) + ", which has " + std::to_string(size));
    for (size_t q = 0; q < sizeof(T); q++)
      if (!shadow[i * sizeof(T) + q])
        violation("uninitialised read", std::string(op) + " reads element " + std::to_string(i) + " of " + describe(*tensor) +
                                            ", which nothing has written since the buffer was handed out");
    return data[i];
  }
  void write(uint64_t i, T v) const {
    if (i >= size) violation("out of bounds", std::string(op) + " writes element " + std::to_string(i) + " of " + describe(*tensor) + ", which has " + std::to_string(size));
    data[i] = v;
    std::memset(shadow + i * sizeof(T), 1, sizeof(T));
  }
};
template <typename T> View<T> view(const LocalTensor<T> &t, int pipe, bool write, const char *op, bool aligned = true) {
  (void)local_bytes(t, 0, 0, pipe, write, op, aligned);
  Block &b = cur();
  Region &r = b.regions[t.region_];
  View<T> v;
  v.data = reinterpret_cast<T *>(b.bytes_of(r) + t.offset_);
  v.shadow = b.shadow_of(r) + t.offset_;
  v.size = t.size_;
  v.tensor = &t;
  v.op = op;
  return v;
}

// Marks bytes a padding or fill wrote as initialised without a hazard check (the instruction already
// had one).
template <typename T> void mark_written(const LocalTensor<T> &t, uint64_t first, uint64_t count) {
  Block &b = cur();
  Region &r = b.regions[t.region_];
  std::memset(b.shadow_of(r) + t.offset_ + first * sizeof(T), 1, count * sizeof(T));
}

template <typename T> std::string describe(const LocalTensor<T> &t) {
  Block &b = cur();
  std::string s = "LocalTensor<" + std::string(TypeName<T>::get()) + ">";
  if (t.region_ >= 0 && t.region_ < static_cast<int>(b.regions.size())) {
    s += " in " + b.regions[t.region_].name;
    if (t.offset_) s += " at byte offset " + std::to_string(t.offset_);
  }
  return s;
}

}  // namespace shim

template <typename T> class LocalTensor {
 public:
  using PrimType = T;
  LocalTensor() = default;

  LocalTensor operator[](uint64_t offset) const {
    if (offset > size_)
      shim::violation("out of bounds", "LocalTensor[" + std::to_string(offset) + "] of " + shim::describe(*this) + " with " +
                                           std::to_string(size_) + " elements");
    LocalTensor r = *this;
    r.offset_ += static_cast<uint32_t>(offset * sizeof(T));
    r.size_ -= static_cast<uint32_t>(offset);
    return r;
  }
  uint32_t GetSize() const { return size_; }
  // Scalar-unit access (pipe S): orders with vector and copy pipes only through SetFlag/WaitFlag or
  // the queues.
  T GetValue(uint64_t i) const { return *shim::local_span(*this, i, 1, PIPE_S, false, "LocalTensor::GetValue", false); }
  void SetValue(uint64_t i, T v) const { *shim::local_span(*this, i, 1, PIPE_S, true, "LocalTensor::SetValue", false) = v; }
  template <typename U> LocalTensor<U> ReinterpretCast() const {
    LocalTensor<U> r;
    r.region_ = region_;
    r.gen_ = gen_;
    r.offset_ = offset_;
    r.size_ = static_cast<uint32_t>(uint64_t{size_} * sizeof(T) / sizeof(U));
    return r;
  }
  TPosition GetPosition() const { return shim::cur().regions.at(region_).pos; }

  // Shim bookkeeping (public so the free functions can reach it; kernels never touch these).
  int region_ = -1;
  uint32_t gen_ = 0;
  uint32_t offset_ = 0;  // bytes from the buffer's start
  uint32_t size_ = 0;    // elements
};

template <typename T> class GlobalTensor {
 public:
  using PrimType = T;
  GlobalTensor() = default;

  // The kernel's view of global memory: [buffer, buffer + bufferSize) elements, which must lie inside
  // one device allocation. Every later access is checked against this extent.
  void SetGlobalBuffer(__gm__ T *buffer, uint64_t bufferSize) {
    shim::Block &b = shim::cur();
    const auto alloc = b.device->allocation_of(buffer, bufferSize * sizeof(T));
    if (alloc.second == 0 && bufferSize > 0)
      shim::violation("global buffer outside device memory",
                      "SetGlobalBuffer of " + std::to_string(bufferSize) + " " + shim::TypeName<T>::get() + " elements at " +
                          b.device->describe(reinterpret_cast<uintptr_t>(buffer)) + " runs past the end of its allocation");
    addr_ = buffer;
    size_ = bufferSize;
    set_ = true;
  }
  // Without a size: up to the end of the allocation holding `buffer`.
  void SetGlobalBuffer(__gm__ T *buffer) {
    shim::Block &b = shim::cur();
    const auto alloc = b.device->allocation_of(buffer, 1);
    if (alloc.second == 0) shim::violation("global buffer outside device memory", "SetGlobalBuffer at an address no allocation holds");
    addr_ = buffer;
    size_ = (alloc.first + alloc.second - reinterpret_cast<uintptr_t>(buffer)) / sizeof(T);
    set_ = true;
  }
  GlobalTensor operator[](uint64_t offset) const {
    check_set("GlobalTensor[]");
    if (offset > size_)
      shim::violation("global memory out of bounds",
                      "GlobalTensor[" + std::to_string(offset) + "] of a buffer of " + std::to_string(size_) + " elements");
    GlobalTensor r = *this;
    r.addr_ += offset;
    r.size_ -= offset;
    return r;
  }
  uint64_t GetSize() const { return size_; }
  __gm__ T *GetPhyAddr() const { return addr_; }
  // Scalar reads and writes through the scalar unit's data cache.
  T GetValue(uint64_t i) const { return *span(i, 1, false, "GlobalTensor::GetValue"); }
  void SetValue(uint64_t i, T v) {
    T *p = span(i, 1, true, "GlobalTensor::SetValue");
    shim::cur().device->gm_write(p, &v, sizeof(T));
  }

  // Checked pointer to elements [first, first + count) (shim only).
  T *span(uint64_t first, uint64_t count, bool write, const char *op) const {
    check_set(op);
    if (first + count > size_)
      shim::violation("global memory out of bounds",
                      std::string(op) + (write ? " writes" : " reads") + " elements [" + std::to_string(first) + ", " +
                          std::to_string(first + count) + ") of a GlobalTensor<" + shim::TypeName<T>::get() + "> of " +
                          std::to_string(size_) + " elements (its SetGlobalBuffer extent)");
    return addr_ + first;
  }

 private:
  void check_set(const char *op) const {
    if (!set_) shim::violation("global buffer not set", std::string(op) + " on a GlobalTensor without SetGlobalBuffer");
  }
  T *addr_ = nullptr;
  uint64_t size_ = 0;
  bool set_ = false;
};

class TPipe;

template <TPosition pos, int32_t depth = 1> class TQue {
 public:
  template <typename T> LocalTensor<T> AllocTensor() {
    shim::Block &b = shim::cur();
    shim::QueueState &q = state("AllocTensor");
    for (int ri : q.regions) {
      shim::Region &r = b.regions[ri];
      if (r.state != shim::Region::State::Free) continue;
      r.state = shim::Region::State::Allocated;
      r.generation++;
      r.writer = -1;
      r.writer_synced = true;
      r.unsynced_readers = 0;
      LocalTensor<T> t;
      t.region_ = ri;
      t.gen_ = r.generation;
      t.size_ = r.bytes / sizeof(T);
      return t;
    }
    shim::violation("queue exhausted", "AllocTensor on " + q.name + " with all " + std::to_string(q.regions.size()) +
                                           " of its buffers in use: on the chip this waits forever (deadlock)");
  }
  template <typename T> bool EnQue(const LocalTensor<T> &t) {
    shim::Block &b = shim::cur();
    shim::QueueState &q = state("EnQue");
    shim::Region &r = shim::region_of(t, "EnQue");
    if (r.queue != id_) shim::violation("wrong queue", "EnQue on " + q.name + " of " + r.name + ", which belongs to another queue or a TBuf");
    if (t.offset_ != 0) shim::violation("partial tensor", "EnQue of a sub-tensor of " + r.name + ": enqueue the tensor AllocTensor returned");
    if (static_cast<int>(q.fifo.size()) >= depth)
      shim::violation("queue full", "EnQue on " + q.name + " beyond its depth " + std::to_string(depth) + " (the chip blocks)");
    r.state = shim::Region::State::Queued;
    b.sync_region(r);  // the queue orders the producing pipe before the consuming one
    q.fifo.push_back(t.region_);
    return true;
  }
  template <typename T> LocalTensor<T> DeQue() {
    shim::Block &b = shim::cur();
    shim::QueueState &q = state("DeQue");
    if (q.fifo.empty()) shim::violation("DeQue of an empty queue", "DeQue on " + q.name + " with nothing EnQue'd: on the chip this waits forever");
    const int ri = q.fifo.front();
    q.fifo.pop_front();
    shim::Region &r = b.regions[ri];
    r.state = shim::Region::State::Allocated;
    b.sync_region(r);
    LocalTensor<T> t;
    t.region_ = ri;
    t.gen_ = r.generation;
    t.size_ = r.bytes / sizeof(T);
    return t;
  }
  template <typename T> void FreeTensor(const LocalTensor<T> &t) {
    shim::Block &b = shim::cur();
    shim::QueueState &q = state("FreeTensor");
    if (t.region_ < 0 || t.region_ >= static_cast<int>(b.regions.size()))
      shim::violation("invalid tensor", "FreeTensor on " + q.name + " of a tensor that was never allocated");
    shim::Region &r = b.regions[t.region_];
    if (r.queue != id_) shim::violation("wrong queue", "FreeTensor on " + q.name + " of " + r.name + ", which belongs elsewhere");
    if (r.state == shim::Region::State::Free || r.generation != t.gen_)
      shim::violation("double free", "FreeTensor of " + r.name + ", which is already free");
    if (r.state == shim::Region::State::Queued) shim::violation("free of a queued tensor", "FreeTensor of " + r.name + " while it is EnQue'd");
    r.state = shim::Region::State::Free;
    b.poison(r);  // use after free reads NaN, and the shadow calls it uninitialised
  }
  bool VacantInQue() {
    shim::QueueState &q = state("VacantInQue");
    return static_cast<int>(q.fifo.size()) < depth;
  }

  int id_ = -1;  // shim: index of this queue in the block's queue table, set by InitBuffer

 private:
  shim::QueueState &state(const char *op) {
    shim::Block &b = shim::cur();
    if (id_ < 0 || id_ >= static_cast<int>(b.queues.size()))
      shim::violation("queue not initialised", std::string(op) + " on a TQue<" + shim::position_name(pos) + "> without TPipe::InitBuffer");
    return b.queues[id_];
  }
};

template <TPosition pos = TPosition::VECCALC> class TBuf {
 public:
  template <typename T> LocalTensor<T> Get() {
    shim::Block &b = shim::cur();
    if (region_ < 0) shim::violation("buffer not initialised", std::string("TBuf<") + shim::position_name(pos) + ">::Get without TPipe::InitBuffer");
    LocalTensor<T> t;
    t.region_ = region_;
    t.gen_ = b.regions[region_].generation;
    t.size_ = b.regions[region_].bytes / sizeof(T);
    return t;
  }
  template <typename T> LocalTensor<T> Get(uint32_t len) {
    LocalTensor<T> t = Get<T>();
    if (len > t.size_) shim::violation("out of bounds", "TBuf::Get(" + std::to_string(len) + ") beyond its " + std::to_string(t.size_) + " elements");
    t.size_ = len;
    return t;
  }
  int region_ = -1;
};

class TPipe {
 public:
  TPipe() { shim::cur().pipe = this; }
  ~TPipe() {
    if (shim::tls_block && shim::tls_block->pipe == this) shim::tls_block->pipe = nullptr;
  }
  TPipe(const TPipe &) = delete;
  TPipe &operator=(const TPipe &) = delete;

  // `num` buffers of `len` bytes each for a queue: 2 buffers = double buffering.
  template <TPosition pos, int32_t depth> void InitBuffer(TQue<pos, depth> &que, uint8_t num, uint32_t len) {
    shim::Block &b = shim::cur();
    if (que.id_ >= 0) shim::violation("queue initialised twice", std::string("InitBuffer on a TQue<") + shim::position_name(pos) + "> that already has buffers");
    if (num == 0) shim::violation("empty queue", std::string("InitBuffer with 0 buffers for a TQue<") + shim::position_name(pos) + ">");
    shim::QueueState q;
    q.pos = pos;
    q.depth = depth;
    q.name = std::string("TQue<") + shim::position_name(pos) + ">#" + std::to_string(b.queues.size());
    const int id = static_cast<int>(b.queues.size());
    for (int i = 0; i < num; i++) q.regions.push_back(b.claim(pos, len, id, q.name + " buffer " + std::to_string(i)));
    b.queues.push_back(q);
    que.id_ = id;
  }
  template <TPosition pos> void InitBuffer(TBuf<pos> &buf, uint32_t len) {
    shim::Block &b = shim::cur();
    if (buf.region_ >= 0) shim::violation("buffer initialised twice", std::string("InitBuffer on a TBuf<") + shim::position_name(pos) + "> that already has memory");
    buf.region_ = b.claim(pos, len, -1, std::string("TBuf<") + shim::position_name(pos) + ">#" + std::to_string(b.regions.size()));
  }
  template <HardEvent e> event_t FetchEventID() { return FetchEventID(e); }
  event_t FetchEventID(HardEvent) {
    shim::Block &b = shim::cur();
    return static_cast<event_t>(b.next_event++ % 8);
  }
  void Destroy() {}
};

inline TPipe *GetTPipePtr() {
  shim::Block &b = shim::cur();
  if (!b.pipe) shim::violation("no pipe", "GetTPipePtr() before a TPipe exists");
  return static_cast<TPipe *>(b.pipe);
}

// Orders pipe A's earlier work before pipe B's later work (A_B event). A WaitFlag without its SetFlag
// hangs the chip.
template <HardEvent e> void SetFlag(event_t id) { shim::cur().flags.push_back({e, id}); }
template <HardEvent e> void WaitFlag(event_t id) {
  shim::Block &b = shim::cur();
  for (auto it = b.flags.begin(); it != b.flags.end(); ++it) {
    if (it->first == e && it->second == id) {
      b.flags.erase(it);
      int from = -1, to = -1;
      shim::event_pipes(e, from, to);
      b.sync_pipe(from);
      return;
    }
  }
  shim::violation("WaitFlag without SetFlag", "WaitFlag on event id " + std::to_string(id) + " that no SetFlag raised: the chip waits forever");
}
// A barrier on one pipe orders that pipe's instructions (they already run in order); PIPE_ALL waits for
// every pipe.
template <pipe_t p> void PipeBarrier() {
  if (p == PIPE_ALL) shim::cur().sync_pipe(-1);
}
inline void pipe_barrier(pipe_t p) {
  if (p == PIPE_ALL) shim::cur().sync_pipe(-1);
}

}  // namespace AscendC

#endif
