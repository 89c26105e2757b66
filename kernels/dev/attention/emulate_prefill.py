#!/usr/bin/env python3
"""Lane-level NumPy emulation of attention_prefill_kernel (variant 3), for checking its index math
without a GPU: the slot -> (sequence, q tile) search, the Q / K / V copies into swizzled shared
memory, ldmatrix (.x4 and .x4.trans) and mma.m16n8k16 fragment layouts as the PTX ISA defines them,
the masks, the online softmax and the output staging. Compared with a float64 reference of ops.h.

It mirrors the kernel's formulas line by line (same names); it does not prove the PTX semantics
themselves (those are transcribed from the PTX ISA fragment-layout figures), nor races.

    python3 kernels/dev/attention/emulate_prefill.py        # random batches, prints max errors
"""
import math
import sys

import numpy as np

BM = BN = 64
THREADS = 128
NEG_INF = -np.inf
LOG2E = 1.4426950408889634


def swz(hd, row, col):
    return row * hd + ((((col >> 3) ^ (row & 7))) << 3) + (col & 7)


def bf16_round(x):
    """Round float32 to bf16 (nearest even) and back."""
    x = np.asarray(x, dtype=np.float32)
    b = x.view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.astype(np.uint32).view(np.float32)


# --- PTX fragment semantics -------------------------------------------------------------------
def ldmatrix_x4(smem, addrs):
    """addrs[lane] = element offset of that lane's row (8 consecutive b16). Returns r[lane][i][2]."""
    out = np.zeros((32, 4, 2), dtype=np.float32)
    for i in range(4):
        rows = [smem[addrs[8 * i + r]: addrs[8 * i + r] + 8] for r in range(8)]
        for l in range(32):
            out[l, i, 0] = rows[l // 4][2 * (l % 4)]
            out[l, i, 1] = rows[l // 4][2 * (l % 4) + 1]
    return out


def ldmatrix_x4_trans(smem, addrs):
    out = np.zeros((32, 4, 2), dtype=np.float32)
    for i in range(4):
        rows = [smem[addrs[8 * i + r]: addrs[8 * i + r] + 8] for r in range(8)]
        for l in range(32):
            out[l, i, 0] = rows[2 * (l % 4)][l // 4]
            out[l, i, 1] = rows[2 * (l % 4) + 1][l // 4]
    return out


def mma_16816(d, a, b0, b1):
    """d[lane][4], a[lane][4][2], b0/b1[lane][2] -> d += A·B with the m16n8k16 layouts."""
    A = np.zeros((16, 16), dtype=np.float64)
    B = np.zeros((16, 8), dtype=np.float64)
    for l in range(32):
        g, t = l // 4, l % 4
        A[g, 2 * t: 2 * t + 2] = a[l][0]
        A[g + 8, 2 * t: 2 * t + 2] = a[l][1]
        A[g, 2 * t + 8: 2 * t + 10] = a[l][2]
        A[g + 8, 2 * t + 8: 2 * t + 10] = a[l][3]
        B[2 * t: 2 * t + 2, g] = b0[l]
        B[2 * t + 8: 2 * t + 10, g] = b1[l]
    C = A @ B
    for l in range(32):
        g, t = l // 4, l % 4
        d[l][0] += C[g, 2 * t]
        d[l][1] += C[g, 2 * t + 1]
        d[l][2] += C[g + 8, 2 * t]
        d[l][3] += C[g + 8, 2 * t + 1]


# --- the kernel -------------------------------------------------------------------------------
class Batch:
    pass


def cache_row(a, s, pos):
    bi = pos // a.block_size
    b = a.block_tables[s, bi]
    if b < 0 or b >= a.num_blocks:
        return -1
    return b * a.block_size + (pos - bi * a.block_size)


def find_tile_seq(a, bq, x):
    def key(s):
        v = min(max(a.qsl[s], 0), a.num_tokens)
        return v // bq + s
    if a.num_seqs <= 0 or key(0) > x:
        return -1
    lo, hi = 0, a.num_seqs - 1
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if key(mid) <= x:
            lo = mid
        else:
            hi = mid - 1
    return lo


def run_cta(a, hd, gp, slot, by, out):
    bq = BM // gp
    cpr = hd // 8
    rpp = THREADS // cpr
    npass = BN // rpp
    ksteps = hd // 16
    dblk = hd // 8
    hsub = a.group // gp
    hs, kvh = by % hsub, by // hsub
    s = find_tile_seq(a, bq, slot)
    if s < 0:
        return 0
    length = a.seq_lens[s]
    if length <= 0:
        return 0
    qb = min(max(a.qsl[s], 0), a.num_tokens)
    qe = min(max(a.qsl[s + 1], qb), a.num_tokens)
    qlen = qe - qb
    q0 = (slot - (qb // bq + s)) * bq
    if q0 >= qlen:
        return 0
    rows_here = min(bq, qlen - q0)
    first_pos = length - qlen + q0
    kvl = min(max(first_pos + rows_here, 0), a.ctx_cap)
    kv_len = kvl
    nt = (kv_len + BN - 1) // BN
    h_first = kvh * a.group + hs * gp

    sQ = np.full(BM * hd, np.nan, dtype=np.float32)
    sK = np.full((2, BN * hd), np.nan, dtype=np.float32)
    sV = np.full((2, BN * hd), np.nan, dtype=np.float32)
    sBias = np.full((2, BN), np.nan, dtype=np.float32)
    q = a.q  # [T, H, hd]
    for tid in range(THREADS):
        ch, r0 = tid % cpr, tid // cpr
        for p in range(npass):
            m = r0 + p * rpp
            qi = m % bq
            if qi < rows_here:
                src = q[qb + q0 + qi, h_first + m // bq, ch * 8: ch * 8 + 8]
            else:
                src = np.zeros(8, dtype=np.float32)
            o = swz(hd, m, ch * 8)
            sQ[o: o + 8] = src

    def issue(stage, n0):
        for tid in range(THREADS):
            ch, r0 = tid % cpr, tid // cpr
            for p in range(npass):
                n = r0 + p * rpp
                pos = n0 + n
                crow = cache_row(a, s, pos) if pos < kv_len else -1
                o = swz(hd, n, ch * 8)
                if crow >= 0:
                    blk, off = divmod(crow, a.block_size)
                    sK[stage, o: o + 8] = a.k[blk, off, kvh, ch * 8: ch * 8 + 8]
                    sV[stage, o: o + 8] = a.v[blk, off, kvh, ch * 8: ch * 8 + 8]
                else:
                    sK[stage, o: o + 8] = 0
                    sV[stage, o: o + 8] = 0
                if ch == 0:
                    sBias[stage, n] = 0.0 if crow >= 0 else NEG_INF

    sl = np.float32(a.scale * LOG2E)
    warps = []
    for warp in range(4):
        w = {'o': np.zeros((32, dblk, 4), dtype=np.float32),
             'm0': np.full(32, NEG_INF, np.float32), 'm1': np.full(32, NEG_INF, np.float32),
             'l0': np.zeros(32, np.float32), 'l1': np.zeros(32, np.float32)}
        warps.append(w)
    if nt > 0:
        issue(0, 0)
    lanes = np.arange(32)
    for j in range(nt):
        st = j & 1
        if j + 1 < nt:
            issue((j + 1) & 1, (j + 1) * BN)  # in the kernel this overlaps tile j; same data
        for warp in range(4):
            w = warps[warp]
            if j == 0:
                w['qf'] = [ldmatrix_x4(sQ, [swz(hd, warp * 16 + (l & 15), kk * 16 + (l >> 4) * 8) for l in lanes])
                           for kk in range(ksteps)]
            qf = w['qf']
            sc = np.zeros((32, 8, 4), dtype=np.float64)
            for kk in range(ksteps):
                for nb2 in range(4):
                    b = ldmatrix_x4(sK[st], [swz(hd, nb2 * 16 + (l & 7) + ((l >> 4) << 3), kk * 16 + ((l >> 3) & 1) * 8) for l in lanes])
                    d0 = sc[:, 2 * nb2, :].copy(); mma_16816(d0, qf[kk], b[:, 0], b[:, 1]); sc[:, 2 * nb2, :] = d0
                    d1 = sc[:, 2 * nb2 + 1, :].copy(); mma_16816(d1, qf[kk], b[:, 2], b[:, 3]); sc[:, 2 * nb2 + 1, :] = d1
            sc = sc.astype(np.float32)
            n0 = j * BN
            diag = n0 + BN - 1 > first_pos
            g = lanes >> 2
            tq = lanes & 3
            m0 = warp * 16 + g
            m1 = m0 + 8
            pos0 = first_pos + m0 % bq
            pos1 = first_pos + m1 % bq
            for nb in range(8):
                for e in range(4):
                    col = nb * 8 + 2 * tq + (e & 1)
                    x = sc[:, nb, e] * sl + sBias[st, col]
                    if diag:
                        pos = pos0 if e < 2 else pos1
                        x = np.where(n0 + col > pos, NEG_INF, x)
                    sc[:, nb, e] = x
            mx0 = np.max(sc[:, :, 0:2], axis=(1, 2))
            mx1 = np.max(sc[:, :, 2:4], axis=(1, 2))
            for off in (1, 2):
                mx0 = np.maximum(mx0, mx0[lanes ^ off])
                mx1 = np.maximum(mx1, mx1[lanes ^ off])
            mn0 = np.maximum(w['m0'], mx0)
            mn1 = np.maximum(w['m1'], mx1)
            mu0 = np.where(mn0 == NEG_INF, 0, mn0)
            mu1 = np.where(mn1 == NEG_INF, 0, mn1)
            with np.errstate(invalid='ignore'):
                corr0 = np.exp2(w['m0'] - mu0)
                corr1 = np.exp2(w['m1'] - mu1)
            w['m0'], w['m1'] = mn0, mn1
            sc[:, :, 0:2] = np.exp2(sc[:, :, 0:2] - mu0[:, None, None])
            sc[:, :, 2:4] = np.exp2(sc[:, :, 2:4] - mu1[:, None, None])
            w['l0'] = w['l0'] * corr0 + sc[:, :, 0:2].sum(axis=(1, 2))
            w['l1'] = w['l1'] * corr1 + sc[:, :, 2:4].sum(axis=(1, 2))
            w['o'][:, :, 0:2] *= corr0[:, None, None]
            w['o'][:, :, 2:4] *= corr1[:, None, None]
            pb = bf16_round(sc) if a.round_p else sc
            for kk in range(BN // 16):
                pa = np.stack([pb[:, 2 * kk, 0:2], pb[:, 2 * kk, 2:4], pb[:, 2 * kk + 1, 0:2], pb[:, 2 * kk + 1, 2:4]], axis=1)
                for db2 in range(hd // 16):
                    b = ldmatrix_x4_trans(sV[st], [swz(hd, kk * 16 + (l & 7) + ((l >> 3) & 1) * 8, db2 * 16 + (l >> 4) * 8) for l in lanes])
                    o = w['o']
                    d0 = o[:, 2 * db2, :].astype(np.float64); mma_16816(d0, pa, b[:, 0], b[:, 1]); o[:, 2 * db2, :] = d0
                    d1 = o[:, 2 * db2 + 1, :].astype(np.float64); mma_16816(d1, pa, b[:, 2], b[:, 3]); o[:, 2 * db2 + 1, :] = d1
    # output
    sQ[:] = np.nan
    written = 0
    for warp in range(4):
        w = warps[warp]
        l0, l1 = w['l0'].copy(), w['l1'].copy()
        for off in (1, 2):
            l0 = l0 + l0[lanes ^ off]
            l1 = l1 + l1[lanes ^ off]
        inv0 = np.where(l0 > 0, 1 / np.where(l0 > 0, l0, 1), 0)
        inv1 = np.where(l1 > 0, 1 / np.where(l1 > 0, l1, 1), 0)
        g = lanes >> 2
        tq = lanes & 3
        m0 = warp * 16 + g
        m1 = m0 + 8
        for d in range(dblk):
            for l in range(32):
                o0 = swz(hd, m0[l], d * 8) + 2 * tq[l]
                o1 = swz(hd, m1[l], d * 8) + 2 * tq[l]
                sQ[o0: o0 + 2] = w['o'][l, d, 0:2] * inv0[l]
                sQ[o1: o1 + 2] = w['o'][l, d, 2:4] * inv1[l]
        for lane in range(32):
            for idx in range(lane, 16 * cpr, 32):
                m = warp * 16 + idx // cpr
                c = idx % cpr
                qi = m % bq
                if qi < rows_here:
                    o = swz(hd, m, c * 8)
                    out[qb + q0 + qi, h_first + m // bq, c * 8: c * 8 + 8] = sQ[o: o + 8]
                    written += 1
    return written


def reference(a, hd):
    out = np.full((a.num_tokens, a.num_heads, hd), np.nan)
    for s in range(a.num_seqs):
        qb, qe, length = a.qsl[s], a.qsl[s + 1], a.seq_lens[s]
        if length == 0:
            continue
        qlen = qe - qb
        for t in range(qb, qe):
            pos = length - qlen + (t - qb)
            ctx = pos + 1
            for h in range(a.num_heads):
                kvh = h // a.group
                sc = np.full(ctx, -np.inf)
                vs = np.zeros((ctx, hd))
                for c in range(ctx):
                    b = a.block_tables[s, c // a.block_size]
                    if b < 0:
                        continue
                    k = a.k[b, c % a.block_size, kvh].astype(np.float64)
                    sc[c] = float(np.dot(a.q[t, h].astype(np.float64), k)) * a.scale
                    vs[c] = a.v[b, c % a.block_size, kvh]
                mx = sc.max()
                w = np.zeros(ctx) if mx == -np.inf else np.exp(sc - mx)
                ssum = w.sum()
                out[t, h] = (w @ vs) / ssum if ssum > 0 else 0
    return out


def make_batch(rng, hd, num_heads, num_kv, block_size, query_lens, seq_lens, num_tokens, mask_block=False):
    a = Batch()
    a.num_seqs = len(seq_lens)
    a.num_tokens = num_tokens
    a.num_heads, a.num_kv_heads, a.group = num_heads, num_kv, num_heads // num_kv
    a.block_size = block_size
    a.qsl = np.zeros(a.num_seqs + 1, dtype=np.int64)
    a.qsl[1:] = np.cumsum(query_lens)
    need = [math.ceil(l / block_size) for l in seq_lens]
    a.max_blocks = max(need) + 1
    a.num_blocks = sum(need) + 3
    free = list(rng.permutation(a.num_blocks))
    a.block_tables = np.full((a.num_seqs, a.max_blocks), -1, dtype=np.int64)
    for s, n in enumerate(need):
        for b in range(n):
            a.block_tables[s, b] = free.pop()
    if mask_block:
        for s, n in enumerate(need):
            if n > 2:
                a.block_tables[s, 1] = -1
    a.seq_lens = np.array(seq_lens)
    a.ctx_cap = a.max_blocks * block_size
    a.scale = 1 / math.sqrt(hd)
    a.q = bf16_round(rng.standard_normal((num_tokens, num_heads, hd)).astype(np.float32))
    a.k = bf16_round(rng.standard_normal((a.num_blocks, block_size, num_kv, hd)).astype(np.float32))
    a.v = bf16_round(rng.standard_normal((a.num_blocks, block_size, num_kv, hd)).astype(np.float32))
    a.round_p = False
    return a


def gqa_chunk(group):
    for c in (8, 4, 2, 1):
        if group % c == 0:
            return c
    return 1


def run_case(rng, hd, num_heads, num_kv, block_size, query_lens, seq_lens, num_tokens, mask_block=False):
    a = make_batch(rng, hd, num_heads, num_kv, block_size, query_lens, seq_lens, num_tokens, mask_block)
    gp = gqa_chunk(a.group)
    bq = BM // gp
    slots = a.num_tokens // bq + a.num_seqs
    ys = a.num_kv_heads * (a.group // gp)
    out = np.full((a.num_tokens, a.num_heads, hd), np.nan, dtype=np.float32)
    for by in range(ys):
        for bx in range(slots):
            run_cta(a, hd, gp, slots - 1 - bx, by, out)
    ref = reference(a, hd)
    both = ~np.isnan(ref)
    assert np.array_equal(np.isnan(out), np.isnan(ref)), "written rows differ from the reference's rows"
    err = np.max(np.abs(out[both] - ref[both])) if both.any() else 0.0
    return err


def main():
    rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    cases = [
        # hd, H, KV, bs, query_lens, seq_lens, num_tokens, mask_block
        (64, 4, 4, 16, [70], [70], 70, False),              # GQA 1, fresh prompt, tail tile
        (128, 8, 2, 16, [1, 7, 2, 5], [20, 7, 0, 13], 17, False),   # conformance-like mixed batch, GQA 4
        (64, 8, 1, 4, [33, 1, 40], [100, 64, 40], 76, True),        # GQA 8, bs 4, masked block, chunked
        (128, 4, 2, 32, [65, 3], [130, 3], 70, False),              # GQA 2, two q tiles + decode-ish
        (64, 6, 2, 16, [20, 1], [150, 90], 22, True),               # GQA 3 -> GP 1, 3 head subgroups
    ]
    worst = 0.0
    for c in cases:
        err = run_case(rng, *c)
        worst = max(worst, err)
        print(f"hd={c[0]} H={c[1]} KV={c[2]} bs={c[3]} qlens={c[4]} seqlens={c[5]}: max abs err {err:.2e}")
    print("worst", worst)
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
