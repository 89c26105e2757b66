// tiling.h — the launch parameters ("tiling data") each AscendC kernel takes by value, computed on the
// host by the op's launch function. Plain structs of fixed-width fields, shared by host and device code.
#ifndef UPDRAFT_ASCENDC_TILING_H
#define UPDRAFT_ASCENDC_TILING_H

#include <stdint.h>

namespace updraft_ascendc {

// Each block owns one slot of the device error area (common.h ErrorSlot): 8 int32 =
// {code, op, v0, v1, v2, launch, 0, 0}; code 0 = no error. `launch` is the reporting launch's index among
// those since the backend's last synchronize (or graph capture begin); a slot keeps its first error.
constexpr uint32_t kErrorSlotInts = 8;
constexpr uint32_t kMaxBlocks = 48;  // the most blocks any launch uses (the vector cores of a 910B)

enum DeviceErrorCode : int32_t {
  kDeviceErrorNone = 0,
  kSlotOutOfRange = 1,     // v = {token, slot, number of cache slots}                 (rope_kv_write)
  kBlockOutOfRange = 2,    // v = {sequence, block id, number of cache blocks}         (attention)
  kSeqLenTooShort = 3,     // v = {sequence, seq_len, query rows}                      (attention)
  kSeqLenBeyondTable = 4,  // v = {sequence, seq_len, positions its block table holds} (attention)
  kQueryStartLocBad = 5,   // v = {sequence, start, end}                               (attention)
  kSourceOutOfRange = 6,   // v = {row, source, table rows}                            (select_tokens)
  kMaskWords = 7,          // v = {row, words per row of allowed, vocab}               (process_logits)
};

// embedding, gather_rows: out[r, :] = src[index[r], :] or zeros. Work items are (row, chunk of the row).
struct RowGatherTiling {
  uint32_t num_rows;      // output rows
  uint32_t row_len;       // elements per row
  uint32_t num_src_rows;  // valid indices are [0, num_src_rows)
  uint32_t chunk;         // elements per work item (a multiple of 16)
  uint32_t chunks_per_row;
  uint32_t reserved;
};

// silu_mul: out[m, i] = silu(gate[m, i]) * up[m, i]. Work items are (row, chunk).
struct SiluMulTiling {
  uint32_t num_rows;
  uint32_t inter;  // I: out row length; gate_up rows are 2I
  uint32_t chunk;
  uint32_t chunks_per_row;
};

// rmsnorm: rows of `hidden`, processed in chunks of `chunk` (two passes when a row has several).
struct RmsNormTiling {
  uint32_t num_rows;
  uint32_t hidden;
  uint32_t chunk;
  uint32_t chunks_per_row;
  float eps;
  int32_t add_residual;
  int32_t write_residual;  // dst1 present
  int32_t reserved;
};

// rope_kv_write: per token, the rotated heads (q then k) in groups of `group` heads. Each head's first
// half, second half (of rotary_dim) and pass-through tail land in UB at padded strides (half_pad,
// pass_pad elements, multiples of 16 so every dtype's rows start 32-byte aligned).
struct RopeTiling {
  uint32_t num_tokens;
  uint32_t num_heads;
  uint32_t num_kv_heads;
  uint32_t head_dim;
  uint32_t rotary_dim;
  uint32_t half_pad;   // align_up(rotary_dim / 2, 16)
  uint32_t pass_pad;   // align_up(head_dim - rotary_dim, 16)
  uint32_t group;      // heads per UB pass
  uint32_t v_chunk;    // elements of the v row per copy
  uint32_t num_slots;  // cache rows (blocks * block_size)
};

// matmul on the cube unit: y[M, N] = x[M, K] · W[N, K]ᵀ in output tiles of base_m x base_n, K in L1
// chunks of k_l1 and L0 steps of base_k (all multiples of the fractal sizes).
struct MatmulTiling {
  uint32_t m, n, k;
  uint32_t base_m, base_n, base_k, k_l1;
  uint32_t tiles_m, tiles_n;
};

// Element-wise helpers of matmul (vector cores): dtype conversion of an operand, bias epilogue.
struct MatmulVectorTiling {
  uint64_t count;     // elements converted (cast), or M (bias epilogue)
  uint32_t row_len;   // N (bias epilogue)
  uint32_t chunk;
  uint32_t chunks_per_row;
  uint32_t reserved;
};

// attention (vector version): one work item per (query row, kv head); the context walks KV blocks in
// chunks of up to `chunk` positions.
struct AttentionTiling {
  uint32_t num_tokens;
  uint32_t num_heads;
  uint32_t num_kv_heads;
  uint32_t head_dim;
  uint32_t block_size;
  uint32_t num_seqs;
  uint32_t max_blocks;  // block table columns
  uint32_t num_blocks;  // cache blocks
  uint32_t group;       // q heads per kv head
  uint32_t d_pad;       // head_dim rounded up to the cache dtype's 32-byte block
  uint32_t q_pad;       // head_dim rounded up to 16 (q and out staging rows, any dtype)
  uint32_t chunk;       // positions per chunk (<= 128)
  float scale;
  uint32_t reserved;
};

// sample: one row of logits per work item; the row is streamed in chunks of `chunk` elements (a multiple
// of 64, whole vector repeats) as often as the filters need.
struct SampleTiling {
  uint32_t num_rows;
  uint32_t vocab;
  uint32_t chunk;
  uint32_t num_top;  // K of the top-logprob views (0: none)
  int32_t has_top_ids;
  int32_t has_top_logprobs;
};

// process_logits: rows [0, num_rows) of the logits, streamed in chunks of `chunk` (a multiple of 32,
// whole mask words) for the mask; biases and penalties touch single elements.
struct ProcessLogitsTiling {
  uint32_t num_rows;   // R
  uint32_t vocab;      // V
  uint32_t num_tokens; // P
  uint32_t num_bias;   // B
  uint32_t num_words;  // W (0 without a mask operand)
  int32_t has_extra;
  uint32_t chunk;
  uint32_t reserved;
};

struct FillRandomTiling {
  uint64_t seed;
  uint64_t count;  // elements
  float std;
  uint32_t chunk;
};

struct SelectTokensTiling {
  uint32_t count;       // T
  uint32_t table_rows;  // R (0 without a table)
  int32_t has_sources;
  uint32_t chunk;
};

}  // namespace updraft_ascendc

#endif
