#!/usr/bin/env python3
"""Lane-level NumPy emulation of attention_decode_tc_kernel (variant 4) + the split reduce: the
byte-address arithmetic of the swizzled warp stages (issue_off ^ (q << 5), k_off ^ (kk << 5),
v_off ^ (db2 << 5)) on a byte-addressed shared memory, ldmatrix / mma.m16n8k16 fragments with the
q heads as M rows, the bias, the online softmax, the warp merge and the split-KV partials.
Mirrors the kernel's formulas (same names). Compared with a float64 reference of ops.h.

    python3 kernels/dev/attention/emulate_decode_tc.py
"""
import sys

import numpy as np

from emulate_decode import NEG_INF, find_row_seq, row_context, split_range, reduce as split_reduce
from emulate_prefill import gqa_chunk, ldmatrix_x4, ldmatrix_x4_trans, make_batch, mma_16816, reference

NW, P = 4, 16
LOG2E = 1.4426950408889634


def cache_row(a, s, pos):
    bi = pos // a.block_size
    b = a.block_tables[s, bi]
    if b < 0 or b >= a.num_blocks:
        return -1
    return b * a.block_size + (pos - bi * a.block_size)


class Smem:
    """Byte-addressed shared memory holding 16-bit elements (as float32 values, 2 bytes apart)."""

    def __init__(self, nbytes):
        self.v = np.full(nbytes // 2, np.nan, dtype=np.float32)

    def write16(self, addr, vals8):
        assert addr % 16 == 0
        self.v[addr // 2: addr // 2 + 8] = vals8

    def elems(self):
        return self.v


def run_cta(a, hd, gc, bx, split, num_splits, hsub, out, ws_acc, ws_ml):
    S = 3 if hd == 128 else 4
    LPR = 32 // P
    CPR = hd // 8
    CPL = CPR // LPR
    KSTEPS = hd // 16
    DBLK = hd // 8
    kRowBytes, kStageBytes, kVOff = hd * 2, 2 * P * hd * 2, P * hd * 2
    x = bx
    hs = x % hsub
    x //= hsub
    kvh = x % a.num_kv_heads
    t = x // a.num_kv_heads
    rc = row_context(a, t)
    if rc is None:
        return
    s, ctx = rc
    c0, c1 = split_range(ctx, num_splits, split)
    h0 = kvh * a.group + hs * gc
    lanes = np.arange(32)
    g, tq = lanes >> 2, lanes & 3
    # Q fragments (rows g < GC), as the kernel loads them: 2 bf16 at cols kk*16 + 2tq (+8)
    qa = np.zeros((32, KSTEPS, 2, 2), np.float32)
    for l in lanes:
        if g[l] < gc:
            for kk in range(KSTEPS):
                qa[l, kk, 0] = a.q[t, h0 + g[l], kk * 16 + 2 * tq[l]: kk * 16 + 2 * tq[l] + 2]
                qa[l, kk, 1] = a.q[t, h0 + g[l], kk * 16 + 8 + 2 * tq[l]: kk * 16 + 8 + 2 * tq[l] + 2]
    sl = np.float32(a.scale * LOG2E)
    ntiles = (c1 - c0 + P - 1) // P
    merged = []
    for warp in range(NW):
        smem = Smem(S * kStageBytes)
        bias_all = np.full(S * P, np.nan, np.float32)
        nt_w = (ntiles - warp + NW - 1) // NW if ntiles > warp else 0
        ri, u = lanes // LPR, lanes % LPR
        issue_off = ri * kRowBytes + ((u ^ (ri & 7)) << 4)
        k_off = ((lanes & 7) + ((lanes >> 4) << 3)) * kRowBytes + ((((lanes >> 3) & 1) ^ (lanes & 7)) << 4)
        v_off = kVOff + ((lanes & 7) + (((lanes >> 3) & 1) << 3)) * kRowBytes + (((lanes >> 4) ^ (lanes & 7)) << 4)
        o = np.zeros((32, DBLK, 4), np.float32)
        m_run = np.full(32, NEG_INF, np.float32)
        l_run = np.zeros(32, np.float32)

        def issue(stage, k):
            st = stage * kStageBytes
            for l in lanes:
                pos = c0 + (warp + k * NW) * P + ri[l]
                crow = cache_row(a, s, pos) if pos < c1 else -1
                for q in range(CPL):
                    dst = st + (issue_off[l] ^ (q << 5))
                    col = u[l] * 8 + q * LPR * 8
                    if crow >= 0:
                        blk, off = divmod(crow, a.block_size)
                        kv = a.k[blk, off, kvh, col: col + 8], a.v[blk, off, kvh, col: col + 8]
                    else:
                        kv = np.zeros(8, np.float32), np.zeros(8, np.float32)
                    smem.write16(dst, kv[0])
                    smem.write16(dst + kVOff, kv[1])
                if u[l] == 0:
                    bias_all[stage * P + ri[l]] = 0.0 if crow >= 0 else NEG_INF

        st_comp = 0
        for k in range(nt_w):
            issue(st_comp, k)  # the kernel issued it S-1 iterations earlier into this stage
            st = st_comp * kStageBytes
            bias = bias_all[st_comp * P: st_comp * P + P]
            assert not np.isnan(smem.v[st // 2: (st + kStageBytes) // 2]).any(), "stage not fully written"
            sc = np.zeros((32, 2, 4), np.float64)
            E = smem.elems()
            for kk in range(KSTEPS):
                b = ldmatrix_x4(E, [(st + (k_off[l] ^ (kk << 5))) // 2 for l in lanes])
                af = np.zeros((32, 4, 2), np.float32)
                af[:, 0] = qa[:, kk, 0]
                af[:, 2] = qa[:, kk, 1]
                d0 = sc[:, 0].copy(); mma_16816(d0, af, b[:, 0], b[:, 1]); sc[:, 0] = d0
                d1 = sc[:, 1].copy(); mma_16816(d1, af, b[:, 2], b[:, 3]); sc[:, 1] = d1
            sc = sc.astype(np.float32)
            xv = np.zeros((32, 2, 2), np.float32)
            for nb in range(2):
                for e in range(2):
                    xv[:, nb, e] = sc[:, nb, e] * sl + bias[nb * 8 + 2 * tq + e]
            mx = xv.reshape(32, 4).max(axis=1)
            mx = np.maximum(mx, mx[lanes ^ 1])
            mx = np.maximum(mx, mx[lanes ^ 2])
            m_new = np.maximum(m_run, mx)
            m_use = np.where(m_new == NEG_INF, 0, m_new)
            corr = np.exp2(m_run - m_use)
            m_run = m_new
            xv = np.exp2(xv - m_use[:, None, None])
            l_run = l_run * corr + xv.reshape(32, 4).sum(axis=1)
            o[:, :, 0:2] *= corr[:, None, None]
            pa = np.zeros((32, 4, 2), np.float32)
            pa[:, 0] = xv[:, 0]
            pa[:, 2] = xv[:, 1]
            for db2 in range(hd // 16):
                b = ldmatrix_x4_trans(E, [(st + (v_off[l] ^ (db2 << 5))) // 2 for l in lanes])
                d0 = o[:, 2 * db2].astype(np.float64); mma_16816(d0, pa, b[:, 0], b[:, 1]); o[:, 2 * db2] = d0
                d1 = o[:, 2 * db2 + 1].astype(np.float64); mma_16816(d1, pa, b[:, 2], b[:, 3]); o[:, 2 * db2 + 1] = d1
            st_comp = 0 if st_comp == S - 1 else st_comp + 1
        l_run = l_run + l_run[lanes ^ 1]
        l_run = l_run + l_run[lanes ^ 2]
        macc = np.zeros((gc, hd), np.float32)
        mm = np.zeros(gc, np.float32)
        ml = np.zeros(gc, np.float32)
        for l in lanes:
            if g[l] < gc:
                for d in range(DBLK):
                    macc[g[l], d * 8 + 2 * tq[l]] = o[l, d, 0]
                    macc[g[l], d * 8 + 2 * tq[l] + 1] = o[l, d, 1]
                if tq[l] == 0:
                    mm[g[l]] = m_run[l]
                    ml[g[l]] = l_run[l]
        merged.append((macc, mm, ml))
    for gg in range(gc):
        M = max(m[1][gg] for m in merged)
        Mu = 0.0 if M == NEG_INF else M
        L = sum(m[2][gg] * np.exp2(m[1][gg] - Mu) for m in merged)
        A = sum(m[0][gg] * np.exp2(m[1][gg] - Mu) for m in merged)
        th = t * a.num_heads + h0 + gg
        if num_splits == 1:
            out[t, h0 + gg] = A / L if L > 0 else 0
        else:
            part = th * num_splits + split
            ws_acc[part] = A
            ws_ml[part] = (M, L)


def run_case(rng, hd, num_heads, num_kv, block_size, query_lens, seq_lens, num_tokens, num_splits, mask_block=False):
    a = make_batch(rng, hd, num_heads, num_kv, block_size, query_lens, seq_lens, num_tokens, mask_block)
    gc = gqa_chunk(a.group)
    hsub = a.group // gc
    out = np.full((a.num_tokens, a.num_heads, hd), np.nan, np.float32)
    n_part = a.num_tokens * a.num_heads * num_splits
    ws_acc = np.full((n_part, hd), np.nan, np.float32)
    ws_ml = np.full((n_part, 2), np.nan, np.float32)
    for split in range(num_splits):
        for bx in range(a.num_tokens * a.num_kv_heads * hsub):
            run_cta(a, hd, gc, bx, split, num_splits, hsub, out, ws_acc, ws_ml)
    if num_splits > 1:
        split_reduce(a, hd, num_splits, out, ws_acc, ws_ml)
    ref = reference(a, hd)
    assert np.array_equal(np.isnan(out), np.isnan(ref)), "written rows differ from the reference's rows"
    both = ~np.isnan(ref)
    return np.max(np.abs(out[both] - ref[both])) if both.any() else 0.0


def check_xor_offsets():
    """The kernel's XOR shortcuts give exactly the plain swizzled offsets (swz), so the bank-conflict
    analysis of the swizzle applies to them."""
    def swz(hd, row, col):
        return row * hd + ((((col >> 3) ^ (row & 7))) << 3) + (col & 7)
    for hd in (64, 128):
        rb, kv = hd * 2, P * hd * 2
        for lane in range(32):
            ri, u = lane // 2, lane % 2
            io = ri * rb + ((u ^ (ri & 7)) << 4)
            ko = ((lane & 7) + ((lane >> 4) << 3)) * rb + ((((lane >> 3) & 1) ^ (lane & 7)) << 4)
            vo = kv + ((lane & 7) + (((lane >> 3) & 1) << 3)) * rb + (((lane >> 4) ^ (lane & 7)) << 4)
            for q in range(hd // 16):
                assert (io ^ (q << 5)) == 2 * swz(hd, ri, (u + 2 * q) * 8)
                assert (ko ^ (q << 5)) == 2 * swz(hd, (lane & 7) + ((lane >> 4) << 3), q * 16 + ((lane >> 3) & 1) * 8)
                assert (vo ^ (q << 5)) == kv + 2 * swz(hd, (lane & 7) + ((lane >> 3) & 1) * 8, q * 16 + (lane >> 4) * 8)
    print("XOR address shortcuts == plain swizzle offsets")


def main():
    check_xor_offsets()
    rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
    cases = [
        # hd, H, KV, bs, query_lens, seq_lens, num_tokens, num_splits, mask_block
        (128, 8, 2, 16, [1, 1, 1], [300, 17, 1], 3, 1, False),
        (128, 16, 2, 16, [1, 1], [300, 40], 2, 3, True),       # GQA 8
        (64, 4, 4, 4, [1, 1], [520, 129], 2, 5, True),         # MHA, bs 4
        (64, 6, 2, 32, [1, 7, 2, 5], [20, 7, 0, 13], 17, 2, False),  # GQA 3 -> GC 1, prompt rows
        (128, 4, 2, 128, [1], [700], 1, 4, False),
    ]
    worst = 0.0
    for c in cases:
        err = run_case(rng, *c)
        worst = max(worst, err)
        print(f"hd={c[0]} H={c[1]} KV={c[2]} bs={c[3]} qlens={c[4]} seqlens={c[5]} splits={c[7]}: max abs err {err:.2e}")
    print("worst", worst)
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
