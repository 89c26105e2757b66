// shim_rules.cc — negative tests of the AscendC shim: one small kernel per rule of the chip, each broken
// on purpose, and control kernels that obey every rule. `ascend_shim_rules <case>` runs one case and
// prints "OK" or "VIOLATION: <message>" (exit 0 either way; 2 for an unknown case); `--list` names them.
// test/ascend/shim-rules.test.ts checks that each broken kernel fails with its rule's message, that the
// controls pass, and that a failed launch leaves global memory as it was.
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kernel_operator.h"

using namespace AscendC;

namespace {

constexpr uint32_t kN = 256;  // elements per buffer in most cases

struct Memory {
  std::vector<float> in = std::vector<float>(4 * kN, 1.5f);
  std::vector<float> out = std::vector<float>(4 * kN, 0.0f);
};

// A correct vector kernel: out[b-th slice] = exp(in) * 2, double-buffered queues, any block count.
void good_kernel(GM_ADDR in, GM_ADDR out, uint32_t per_block) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  TPipe pipe;
  TQue<QuePosition::VECIN, 2> qin;
  TQue<QuePosition::VECOUT, 2> qout;
  pipe.InitBuffer(qin, 2, 64 * sizeof(float));
  pipe.InitBuffer(qout, 2, 64 * sizeof(float));
  GlobalTensor<float> x, y;
  x.SetGlobalBuffer(reinterpret_cast<float *>(in) + GetBlockIdx() * per_block, per_block);
  y.SetGlobalBuffer(reinterpret_cast<float *>(out) + GetBlockIdx() * per_block, per_block);
  for (uint32_t i = 0; i < per_block; i += 64) {
    LocalTensor<float> a = qin.AllocTensor<float>();
    DataCopy(a, x[i], 64);
    qin.EnQue(a);
    a = qin.DeQue<float>();
    LocalTensor<float> b = qout.AllocTensor<float>();
    Exp(b, a, 64);
    Muls(b, b, 2.0f, 64);
    qin.FreeTensor(a);
    qout.EnQue(b);
    b = qout.DeQue<float>();
    DataCopy(y[i], b, 64);
    qout.FreeTensor(b);
  }
}

// A vector kernel skeleton: one VECIN buffer pair; `body` breaks a rule.
void vector_kernel(GM_ADDR in, GM_ADDR out, const std::function<void(TPipe &, GlobalTensor<float> &, GlobalTensor<float> &)> &body) {
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
  TPipe pipe;
  GlobalTensor<float> x, y;
  x.SetGlobalBuffer(reinterpret_cast<float *>(in), kN);
  y.SetGlobalBuffer(reinterpret_cast<float *>(out), kN);
  body(pipe, x, y);
}

using Case = std::function<bool(shim::Device &, Memory &, std::string &)>;

bool launch(shim::Device &dev, const char *name, uint32_t blocks, const std::function<void()> &body, std::string &error) {
  return dev.launch(name, blocks, body, error);
}

std::map<std::string, Case> cases() {
  std::map<std::string, Case> c;
  auto in_of = [](Memory &m) { return reinterpret_cast<uint8_t *>(m.in.data()); };
  auto out_of = [](Memory &m) { return reinterpret_cast<uint8_t *>(m.out.data()); };

  // --- controls -------------------------------------------------------------------------------
  c["control"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "control", 4, [&] { good_kernel(in_of(m), out_of(m), kN); }, e);
  };
  c["control_single_block"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "control_single_block", 1, [&] { good_kernel(in_of(m), out_of(m), 4 * kN); }, e);
  };

  // --- budgets ------------------------------------------------------------------------------------
  c["ub_budget"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "ub_budget", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &, GlobalTensor<float> &) {
        TQue<QuePosition::VECIN, 2> q;
        TBuf<TPosition::VECCALC> big;
        pipe.InitBuffer(q, 2, 64 * 1024);  // 128 KiB
        pipe.InitBuffer(big, 80 * 1024);   // + 80 KiB > 192 KiB
      });
    }, e);
  };
  c["l0c_budget"] = [=](shim::Device &d, Memory &m, std::string &e) {
    (void)m;
    return launch(d, "l0c_budget", 1, [&] {
      KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
      TPipe pipe;
      TQue<TPosition::CO1, 2> c0;
      pipe.InitBuffer(c0, 2, 128 * 128 * 4 + 32);  // two 64 KiB tiles and a bit: over L0C's 128 KiB
    }, e);
  };
  c["wrong_core_type"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "wrong_core_type", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &, GlobalTensor<float> &) {
        TQue<TPosition::A1, 1> a1;
        pipe.InitBuffer(a1, 1, 1024);  // L1 on a vector core
      });
    }, e);
  };
  c["too_many_blocks"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "too_many_blocks", 49, [&] { good_kernel(in_of(m), out_of(m), 0); }, e);
  };
  c["undeclared_core_type"] = [=](shim::Device &d, Memory &, std::string &e) {
    return launch(d, "undeclared_core_type", 1, [&] { TPipe pipe; }, e);
  };

  // --- alignment and parameter ranges -------------------------------------------------------------
  c["misaligned_copy"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "misaligned_copy", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &x, GlobalTensor<float> &) {
        TQue<QuePosition::VECIN, 1> q;
        pipe.InitBuffer(q, 1, 1024);
        LocalTensor<float> a = q.AllocTensor<float>();
        DataCopy(a, x, 20);  // 80 bytes: not whole 32-byte blocks
        q.FreeTensor(a);
      });
    }, e);
  };
  c["misaligned_operand"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "misaligned_operand", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &, GlobalTensor<float> &) {
        TBuf<TPosition::VECCALC> b;
        pipe.InitBuffer(b, 1024);
        LocalTensor<float> t = b.Get<float>();
        Duplicate(t, 1.0f, 64);
        Adds(t[3], t[3], 1.0f, 16);  // starts 12 bytes into a block
      });
    }, e);
  };
  c["u16_parameter_wraps"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "u16_parameter_wraps", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &x, GlobalTensor<float> &) {
        TQue<QuePosition::VECIN, 1> q;
        pipe.InitBuffer(q, 1, 1024);
        LocalTensor<float> a = q.AllocTensor<float>();
        const uint32_t blocks = 70000;  // a count computed in 32 bits, assigned to a u16 field
        DataCopyParams p;
        p.blockCount = blocks;
        p.blockLen = 1;
        DataCopy(a, x, p);
        q.FreeTensor(a);
      });
    }, e);
  };
  c["u8_repeat_wraps"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "u8_repeat_wraps", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &, GlobalTensor<float> &) {
        TBuf<TPosition::VECCALC> b;
        pipe.InitBuffer(b, 64 * 1024);
        LocalTensor<float> t = b.Get<float>();
        Duplicate(t, 1.0f, 16384);
        const uint32_t rows = 300;
        BinaryRepeatParams p;
        Add(t, t, t, 64, rows, p);  // 300 repeats do not fit the u8 repeat count
      });
    }, e);
  };

  // --- queue discipline ---------------------------------------------------------------------------
  c["leaked_buffer"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "leaked_buffer", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &x, GlobalTensor<float> &) {
        TQue<QuePosition::VECIN, 2> q;
        pipe.InitBuffer(q, 2, 1024);
        LocalTensor<float> a = q.AllocTensor<float>();
        DataCopy(a, x, 64);
        q.EnQue(a);
        (void)q.DeQue<float>();  // never freed
      });
    }, e);
  };
  c["double_free"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "double_free", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &, GlobalTensor<float> &) {
        TQue<QuePosition::VECIN, 2> q;
        pipe.InitBuffer(q, 2, 1024);
        LocalTensor<float> a = q.AllocTensor<float>();
        q.FreeTensor(a);
        q.FreeTensor(a);
      });
    }, e);
  };
  c["deque_empty"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "deque_empty", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &, GlobalTensor<float> &) {
        TQue<QuePosition::VECIN, 2> q;
        pipe.InitBuffer(q, 2, 1024);
        LocalTensor<float> a = q.DeQue<float>();
        q.FreeTensor(a);
      });
    }, e);
  };
  c["alloc_deadlock"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "alloc_deadlock", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &, GlobalTensor<float> &) {
        TQue<QuePosition::VECIN, 2> q;
        pipe.InitBuffer(q, 2, 1024);
        LocalTensor<float> a = q.AllocTensor<float>(), b = q.AllocTensor<float>(), c3 = q.AllocTensor<float>();
        q.FreeTensor(a);
        q.FreeTensor(b);
        q.FreeTensor(c3);
      });
    }, e);
  };
  c["use_after_free"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "use_after_free", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &x, GlobalTensor<float> &) {
        TQue<QuePosition::VECIN, 1> q;
        TBuf<TPosition::VECCALC> w;
        pipe.InitBuffer(q, 1, 1024);
        pipe.InitBuffer(w, 1024);
        LocalTensor<float> a = q.AllocTensor<float>();
        DataCopy(a, x, 64);
        q.EnQue(a);
        a = q.DeQue<float>();
        q.FreeTensor(a);
        Exp(w.Get<float>(), a, 64);  // `a` went back to the queue
      });
    }, e);
  };

  // --- memory contents and synchronisation ---------------------------------------------------------
  c["uninitialised_read"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "uninitialised_read", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &x, GlobalTensor<float> &) {
        TQue<QuePosition::VECIN, 1> q;
        TBuf<TPosition::VECCALC> w;
        pipe.InitBuffer(q, 1, 1024);
        pipe.InitBuffer(w, 1024);
        LocalTensor<float> a = q.AllocTensor<float>();
        DataCopy(a, x, 32);  // only the first 32 elements are written
        q.EnQue(a);
        a = q.DeQue<float>();
        Exp(w.Get<float>(), a, 64);  // reads 32 more
        q.FreeTensor(a);
      });
    }, e);
  };
  c["missing_sync"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "missing_sync", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &x, GlobalTensor<float> &) {
        TBuf<TPosition::VECCALC> b;
        pipe.InitBuffer(b, 1024);
        LocalTensor<float> t = b.Get<float>();
        DataCopy(t, x, 64);  // MTE2 ...
        Exp(t, t, 64);       // ... then V with no EnQue/DeQue or MTE2_V flag in between
      });
    }, e);
  };
  c["missing_sync_fixed"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "missing_sync_fixed", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &x, GlobalTensor<float> &y) {
        TBuf<TPosition::VECCALC> b;
        pipe.InitBuffer(b, 1024);
        LocalTensor<float> t = b.Get<float>();
        DataCopy(t, x, 64);
        event_t ev = pipe.FetchEventID(HardEvent::MTE2_V);
        SetFlag<HardEvent::MTE2_V>(ev);
        WaitFlag<HardEvent::MTE2_V>(ev);
        Exp(t, t, 64);
        ev = pipe.FetchEventID(HardEvent::V_MTE3);
        SetFlag<HardEvent::V_MTE3>(ev);
        WaitFlag<HardEvent::V_MTE3>(ev);
        DataCopy(y, t, 64);
      });
    }, e);
  };
  c["waitflag_without_setflag"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "waitflag_without_setflag", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &, GlobalTensor<float> &, GlobalTensor<float> &) { WaitFlag<HardEvent::MTE2_V>(0); });
    }, e);
  };
  c["bf16_arithmetic"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "bf16_arithmetic", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &, GlobalTensor<float> &) {
        TBuf<TPosition::VECCALC> b;
        pipe.InitBuffer(b, 1024);
        LocalTensor<bfloat16_t> t = b.Get<bfloat16_t>();
        Duplicate(t, bfloat16_t(1.0f), 64);
        Add(t, t, t, 64);
      });
    }, e);
  };

  // --- global memory ----------------------------------------------------------------------------------
  c["gm_out_of_bounds_write"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "gm_out_of_bounds_write", 1, [&] {
      vector_kernel(in_of(m), out_of(m), [](TPipe &pipe, GlobalTensor<float> &x, GlobalTensor<float> &y) {
        TQue<QuePosition::VECIN, 1> q;
        pipe.InitBuffer(q, 1, 1024);
        LocalTensor<float> a = q.AllocTensor<float>();
        DataCopy(a, x, 64);
        q.EnQue(a);
        a = q.DeQue<float>();
        DataCopy(y[kN - 32], a, 64);  // 32 elements past the extent SetGlobalBuffer gave
        q.FreeTensor(a);
      });
    }, e);
  };
  c["gm_outside_allocation"] = [=](shim::Device &d, Memory &m, std::string &e) {
    return launch(d, "gm_outside_allocation", 1, [&] {
      KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
      GlobalTensor<float> y;
      y.SetGlobalBuffer(reinterpret_cast<float *>(out_of(m)), 8 * kN);  // the allocation holds 4 * kN
    }, e);
  };
  c["cross_block_race"] = [=](shim::Device &d, Memory &m, std::string &e) {
    // Every block computes the same slice and writes it to the same place (a tiling that forgot the
    // block offset on the output): identical bytes, but a race on the chip.
    return launch(d, "cross_block_race", 4, [&] {
      KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
      TPipe pipe;
      TQue<QuePosition::VECIN, 1> q;
      pipe.InitBuffer(q, 1, 256);
      GlobalTensor<float> x, y;
      x.SetGlobalBuffer(reinterpret_cast<float *>(in_of(m)) + GetBlockIdx() * 64, 64);
      y.SetGlobalBuffer(reinterpret_cast<float *>(out_of(m)), 64);
      LocalTensor<float> a = q.AllocTensor<float>();
      DataCopy(a, x, 64);
      q.EnQue(a);
      a = q.DeQue<float>();
      DataCopy(y, a, 64);
      q.FreeTensor(a);
    }, e);
  };
  c["block_order_dependence"] = [=](shim::Device &d, Memory &m, std::string &e) {
    // Block b writes out[b] = out[b - 1] + 1: it reads what another block wrote (no conflict, but the
    // result depends on which block ran first).
    return launch(d, "block_order_dependence", 4, [&] {
      KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);
      TPipe pipe;
      TQue<QuePosition::VECIN, 1> q;
      TQue<QuePosition::VECOUT, 1> o;
      pipe.InitBuffer(q, 1, 256);
      pipe.InitBuffer(o, 1, 256);
      GlobalTensor<float> y;
      y.SetGlobalBuffer(reinterpret_cast<float *>(out_of(m)), 4 * kN);
      const uint32_t b = static_cast<uint32_t>(GetBlockIdx());
      LocalTensor<float> a = q.AllocTensor<float>();
      DataCopy(a, y[(b == 0 ? 3 : b - 1) * 64], 64);
      q.EnQue(a);
      a = q.DeQue<float>();
      LocalTensor<float> r = o.AllocTensor<float>();
      Adds(r, a, 1.0f, 64);
      q.FreeTensor(a);
      o.EnQue(r);
      r = o.DeQue<float>();
      DataCopy(y[b * 64], r, 64);
      o.FreeTensor(r);
    }, e);
  };
  // A launch that fails half way leaves global memory as it was.
  c["rollback"] = [=](shim::Device &d, Memory &m, std::string &e) {
    const bool ok = launch(d, "rollback", 2, [&] {
      good_kernel(in_of(m), out_of(m), 2 * kN);
      if (GetBlockIdx() == 1) shim::violation("test", "a rule broken after block 0 wrote its output");
    }, e);
    for (float v : m.out)
      if (v != 0.0f) {
        e = "global memory was not restored after a failed launch";
        return false;
      }
    return ok;
  };

  // --- cube -------------------------------------------------------------------------------------------
  c["mmad_unzeroed_k_padding"] = [=](shim::Device &d, Memory &, std::string &e) {
    return launch(d, "mmad_unzeroed_k_padding", 1, [&] {
      KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIC_ONLY);
      TPipe pipe;
      TQue<TPosition::A2, 1> a2;
      TQue<TPosition::B2, 1> b2;
      TQue<TPosition::CO1, 1> c1;
      pipe.InitBuffer(a2, 1, 512);
      pipe.InitBuffer(b2, 1, 512);
      pipe.InitBuffer(c1, 1, 1024);
      // A and B are one fractal each, never written: k = 10 reads all 16 columns of it.
      LocalTensor<half> a = a2.AllocTensor<half>(), bb = b2.AllocTensor<half>();
      LocalTensor<float> cc = c1.AllocTensor<float>();
      MmadParams p;
      p.m = 16;
      p.n = 16;
      p.k = 10;
      Mmad(cc, a, bb, p);
      a2.FreeTensor(a);
      b2.FreeTensor(bb);
      c1.FreeTensor(cc);
    }, e);
  };
  return c;
}

}  // namespace

int main(int argc, char **argv) {
  const auto all = cases();
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const auto &entry : all) std::printf("%s\n", entry.first.c_str());
    return 0;
  }
  if (argc != 2 || !all.count(argv[1])) {
    std::fprintf(stderr, "usage: ascend_shim_rules <case> | --list\n");
    return 2;
  }
  shim::Device device;
  Memory memory;
  device.add_allocation(memory.in.data(), memory.in.size() * sizeof(float));
  device.add_allocation(memory.out.data(), memory.out.size() * sizeof(float));
  std::string error;
  const bool ok = all.at(argv[1])(device, memory, error);
  if (ok && error.empty()) std::printf("OK\n");
  else std::printf("VIOLATION: %s\n", error.c_str());
  return 0;
}
