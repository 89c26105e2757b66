"""Summarises an Nsight Compute CSV (--csv --page raw --print-units base, metric gpu__time_duration.sum):
per kernel (short name, grid, block) the count and mean time, sorted by total; and the time per step,
a step being counted by its sampling kernel (one launch per decode step)."""
import csv
import re
import sys
from collections import defaultdict


def short_name(name: str) -> str:
    # "void updraft::cuda::matmul_detail::matmul_v5_kernel<__nv_bfloat16, ...>(...)" -> "matmul_v5_kernel<bf16, ...>"
    name = re.sub(r"^void ", "", name)
    name = re.sub(r"\(.*\)$", "", name)
    name = re.sub(r"updraft::cuda::(\w+::)*", "", name)
    return name.replace("__nv_bfloat16", "bf16")[:90]


def projection(prev: str, nxt: str) -> str:
    """Which Llama projection a decode GEMV is, from the kernels around it in launch order."""
    if "rope_kv_write" in nxt:
        return "(qkv)"
    if "silu_mul" in nxt:
        return "(gate_up)"
    if "silu_mul" in prev:
        return "(down)"
    if "attention" in prev:
        return "(o)"
    if "sample" in nxt or "gather_rows" in prev:
        return "(lm_head)"
    return "(?)"


def main(path: str) -> None:
    with open(path, newline="") as f:
        lines = [line for line in f if line.startswith('"')]  # ncu's own ==PROF== lines are not CSV
    rows = list(csv.DictReader(lines))
    def duration_ns(r):
        try:
            return float(r.get("gpu__time_duration.sum", "").replace(",", ""))
        except ValueError:  # the units row
            return None

    rows = [r for r in rows if duration_ns(r) is not None]
    if not rows:
        print(f"{path}: no kernel rows")
        sys.exit(1)
    names = [short_name(r["Kernel Name"]) for r in rows]
    groups = defaultdict(list)
    for i, r in enumerate(rows):
        name = names[i]
        if "matmul_v5_kernel" in name:
            name += " " + projection(names[i - 1] if i > 0 else "", names[i + 1] if i + 1 < len(rows) else "")
        key = (name, r.get("Grid Size", ""), r.get("Block Size", ""))
        groups[key].append(duration_ns(r) / 1000.0)  # ns -> us
    total = sum(sum(v) for v in groups.values())
    steps = sum(len(v) for k, v in groups.items() if re.search(r"sample_kernel", k[0])) or 1
    print(f"{len(rows)} kernels, {total / 1000:.3f} ms of kernel time; {steps} steps (sampling launches) -> {total / steps / 1000:.3f} ms of kernels per step")
    print(f"{'us/step':>9} {'count/step':>10} {'mean us':>9}  kernel [grid] [block]")
    for key, times in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
        print(f"{sum(times) / steps:9.1f} {len(times) / steps:10.2f} {sum(times) / len(times):9.2f}  {key[0]} [{key[1]}] [{key[2]}]")


if __name__ == "__main__":
    main(sys.argv[1])
