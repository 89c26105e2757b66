#!/usr/bin/env python3
"""Lane-level NumPy emulation of attention_decode_kernel + attention_split_reduce_kernel (variant 2):
the row -> sequence lookup, split ranges, each warp's tile assignment and cp.async issue layout into
its stage buffers (with the flags), the compute layout (TD lanes per position, xor-shuffle reductions,
warp-wide running max), the lane / warp merges, and the split-KV partials and their reduction.
Compared with a float64 reference of ops.h. Mirrors the kernel's formulas (same names).

    python3 kernels/dev/attention/emulate_decode.py
"""
import math
import sys

import numpy as np

from emulate_prefill import bf16_round, gqa_chunk, make_batch, reference

NW, S = 4, 4
MIN_CHUNK = 128
NEG_INF = -np.inf
LOG2E = 1.4426950408889634


class Shape:
    def __init__(self, hd):
        self.TD = hd // 8
        self.RPW = 32 // self.TD
        p0 = 1024 // hd
        self.P = 32 if p0 > 32 else (self.RPW if p0 < self.RPW else p0)
        self.NR = self.P // self.RPW
        self.LPR = 32 // self.P
        self.CPL = self.TD // self.LPR


def find_row_seq(a, t):
    if a.num_seqs <= 0:
        return -1
    if t < a.num_seqs and a.qsl[t] <= t < a.qsl[t + 1]:
        return t
    if a.qsl[0] > t:
        return -1
    lo, hi = 0, a.num_seqs - 1
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if a.qsl[mid] <= t:
            lo = mid
        else:
            hi = mid - 1
    return lo if t < a.qsl[lo + 1] else -1


def row_context(a, t):
    s = find_row_seq(a, t)
    if s < 0:
        return None
    length = a.seq_lens[s]
    if length <= 0:
        return None
    qb, qe = a.qsl[s], a.qsl[s + 1]
    c = length - (qe - qb) + (t - qb) + 1
    c = min(max(c, 0), a.ctx_cap)
    return s, c


def split_range(ctx, num_splits, split):
    if ctx <= 0:
        return 0, 0
    active = min(num_splits, (ctx + MIN_CHUNK - 1) // MIN_CHUNK)
    chunk = (ctx + active - 1) // active
    chunk = (chunk + 15) & ~15
    c0 = min(ctx, split * chunk)
    return c0, min(ctx, c0 + chunk)


def cache_row(a, s, pos):
    bi = pos // a.block_size
    b = a.block_tables[s, bi]
    if b < 0 or b >= a.num_blocks:
        return -1
    return b * a.block_size + (pos - bi * a.block_size)


def shfl_xor(x, o):
    lanes = np.arange(32)
    return x[lanes ^ o]


def run_cta(a, hd, gc, bx, split, num_splits, hsub, out, ws_acc, ws_ml):
    sh = Shape(hd)
    TD, RPW, P, NR, LPR, CPL = sh.TD, sh.RPW, sh.P, sh.NR, sh.LPR, sh.CPL
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
    dl, r = lanes % TD, lanes // TD
    qscale = np.float32(a.scale * LOG2E)
    qv = np.zeros((32, gc, 8), np.float32)
    for g in range(gc):
        for l in range(32):
            qv[l, g] = a.q[t, h0 + g, dl[l] * 8: dl[l] * 8 + 8] * qscale
    ntiles = (c1 - c0 + P - 1) // P
    ri, u = lanes // LPR, lanes % LPR
    merged = []
    for warp in range(NW):
        nt_w = (ntiles - warp + NW - 1) // NW if ntiles > warp else 0
        m_run = np.full((32, gc), NEG_INF, np.float32)
        l_run = np.zeros((32, gc), np.float32)
        acc = np.zeros((32, gc, 8), np.float32)
        for k in range(nt_w):
            # issue (the kernel does it S-1 tiles ahead into stage k % S; the data is the same)
            ks = np.full((P, hd), np.nan, np.float32)
            vs = np.full((P, hd), np.nan, np.float32)
            fl = np.full(P, -7)
            for l in range(32):
                pos = c0 + (warp + k * NW) * P + ri[l]
                crow = cache_row(a, s, pos) if pos < c1 else -1
                for q in range(CPL):
                    dc = (u[l] + q * LPR) * 8
                    if crow >= 0:
                        blk, off = divmod(crow, a.block_size)
                        ks[ri[l], dc: dc + 8] = a.k[blk, off, kvh, dc: dc + 8]
                        vs[ri[l], dc: dc + 8] = a.v[blk, off, kvh, dc: dc + 8]
                    else:
                        ks[ri[l], dc: dc + 8] = 0
                        vs[ri[l], dc: dc + 8] = 0
                if u[l] == 0:
                    fl[ri[l]] = 1 if crow >= 0 else 0
            assert not np.isnan(ks).any() and (fl >= 0).all(), "stage not fully written"
            sc = np.zeros((32, NR, gc), np.float32)
            for jj in range(NR):
                j = r + jj * RPW
                kf = np.stack([ks[j[l], dl[l] * 8: dl[l] * 8 + 8] for l in range(32)])
                for g in range(gc):
                    sc[:, jj, g] = np.sum(qv[:, g, :] * kf, axis=1)
            o = TD // 2
            while o > 0:
                sc = sc + sc[lanes ^ o]
                o >>= 1
            for jj in range(NR):
                j = r + jj * RPW
                sc[:, jj, :] = np.where((fl[j] == 0)[:, None], NEG_INF, sc[:, jj, :])
            for g in range(gc):
                mt = sc[:, :, g].max(axis=1)
                o = TD
                while o < 32:
                    mt = np.maximum(mt, shfl_xor(mt, o))
                    o <<= 1
                m_new = np.maximum(m_run[:, g], mt)
                m_use = np.where(m_new == NEG_INF, 0, m_new)
                corr = np.exp2(m_run[:, g] - m_use)
                m_run[:, g] = m_new
                sc[:, :, g] = np.exp2(sc[:, :, g] - m_use[:, None])
                l_run[:, g] = l_run[:, g] * corr + sc[:, :, g].sum(axis=1)
                acc[:, g, :] *= corr[:, None]
            for jj in range(NR):
                j = r + jj * RPW
                vf = np.stack([vs[j[l], dl[l] * 8: dl[l] * 8 + 8] for l in range(32)])
                for g in range(gc):
                    acc[:, g, :] += sc[:, jj, g][:, None] * vf
        o = TD
        while o < 32:
            l_run = l_run + l_run[lanes ^ o]
            acc = acc + acc[lanes ^ o]
            o <<= 1
        assert np.all(m_run == m_run[0]), "running max not warp-uniform"
        macc = np.zeros((gc, hd), np.float32)
        for l in range(32):
            if r[l] == 0:
                macc[:, dl[l] * 8: dl[l] * 8 + 8] = acc[l]
        merged.append((macc, m_run[0].copy(), l_run[0].copy()))
    for g in range(gc):
        M = max(m[1][g] for m in merged)
        Mu = 0.0 if M == NEG_INF else M
        L = sum(m[2][g] * np.exp2(m[1][g] - Mu) for m in merged)
        A = sum(m[0][g] * np.exp2(m[1][g] - Mu) for m in merged)
        th = t * a.num_heads + h0 + g
        if num_splits == 1:
            out[t, h0 + g] = A / L if L > 0 else 0
        else:
            part = th * num_splits + split
            ws_acc[part] = A
            ws_ml[part] = (M, L)


def reduce(a, hd, num_splits, out, ws_acc, ws_ml):
    for t in range(a.num_tokens):
        if row_context(a, t) is None:
            continue
        for h in range(a.num_heads):
            th = t * a.num_heads + h
            parts = range(th * num_splits, (th + 1) * num_splits)
            assert not np.isnan(ws_ml[list(parts)]).any(), "a partial was not written"
            M = max(ws_ml[p][0] for p in parts)
            Mu = 0.0 if M == NEG_INF else M
            L = sum(ws_ml[p][1] * np.exp2(ws_ml[p][0] - Mu) for p in parts)
            inv = 1 / L if L > 0 else 0
            A = sum(ws_acc[p] * np.exp2(ws_ml[p][0] - Mu) for p in parts)
            out[t, h] = A * inv


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
        reduce(a, hd, num_splits, out, ws_acc, ws_ml)
    ref = reference(a, hd)
    assert np.array_equal(np.isnan(out), np.isnan(ref)), "written rows differ from the reference's rows"
    both = ~np.isnan(ref)
    return np.max(np.abs(out[both] - ref[both])) if both.any() else 0.0


def main():
    rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    cases = [
        # hd, H, KV, bs, query_lens, seq_lens, num_tokens, num_splits, mask_block
        (128, 8, 2, 16, [1, 1, 1], [300, 17, 1], 3, 1, False),
        (128, 8, 2, 16, [1, 1, 1], [300, 17, 1], 3, 3, True),
        (64, 4, 4, 4, [1, 1], [520, 129], 2, 5, True),
        (256, 2, 1, 32, [1], [200], 1, 2, False),
        (32, 8, 1, 16, [1, 7, 2, 5], [20, 7, 0, 13], 17, 1, False),   # prompt rows too, GQA 8
        (16, 4, 2, 4, [1, 7, 2, 5], [20, 7, 0, 13], 17, 2, False),
        (8, 6, 2, 16, [1, 1, 3], [40, 0, 150], 6, 2, True),           # GQA 3 -> GC 1
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
