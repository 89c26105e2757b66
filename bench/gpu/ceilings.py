"""Ceilings of this GPU, measured now with PyTorch (cuBLAS): device-to-device copy bandwidth and
bf16 GEMM TFLOP/s at the Llama-3.1-8B projection shapes. Prints JSON on stdout.

    python3 bench/gpu/ceilings.py > ceilings.json
"""
import json

import torch


def timed_ms(fn, reps=20, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def main():
    dev = torch.device("cuda")
    nbytes = 2 << 30
    src = torch.empty(nbytes // 2, dtype=torch.bfloat16, device=dev).normal_()
    dst = torch.empty_like(src)
    copy_ms = timed_ms(lambda: dst.copy_(src))
    copy_gbs = 2 * nbytes / (copy_ms / 1e3) / 1e9
    del src, dst

    shapes = {"qkv": (4096, 6144), "o": (4096, 4096), "gate_up": (4096, 28672), "down": (14336, 4096), "lm_head": (4096, 128256)}
    gemm = []
    best = 0.0
    for name, (k, n) in shapes.items():
        w = torch.randn(n, k, dtype=torch.bfloat16, device=dev) * 0.02
        for m in (1, 16, 512, 2048, 4096):
            x = torch.randn(m, k, dtype=torch.bfloat16, device=dev)
            ms = timed_ms(lambda: torch.matmul(x, w.t()))
            tflops = 2 * m * n * k / (ms / 1e3) / 1e12
            gbs = (n * k * 2) / (ms / 1e3) / 1e9
            best = max(best, tflops)
            gemm.append({"name": name, "m": m, "k": k, "n": n, "ms": ms, "tflops": tflops, "weight_gbs": gbs})
    print(json.dumps({"device": torch.cuda.get_device_name(), "copy_gbs": copy_gbs, "cublas_bf16_tflops": best, "cublas_gemm": gemm}, indent=1))


if __name__ == "__main__":
    main()
