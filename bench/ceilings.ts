/**
 * Ceilings measured in the same run as a benchmark, so ratios compare like with like:
 * host memory bandwidth (a large typed-array copy) and the device's matmul rate (one big f32 matmul
 * through the addon's runOp, upload and download included, so slightly pessimistic).
 */
import { loadNativeAddon } from '../src/device/binding.ts';

export interface Ceilings {
  bandwidthGBs: number;
  matmulGflops: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export function measureCeilings(device: string, numThreads: number): Ceilings {
  // Copy bandwidth: read + write of 256 MiB.
  const bytes = 256 * 1024 * 1024;
  const src = new Float64Array(bytes / 8).fill(1.5);
  const dst = new Float64Array(bytes / 8);
  const copyTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    dst.set(src);
    copyTimes.push(performance.now() - t);
  }
  const bandwidthGBs = (2 * bytes) / (median(copyTimes) / 1000) / 1e9;

  const dev = loadNativeAddon().openDevice(device, { numThreads });
  // Large enough that the copies in and out are a few percent of the time.
  const m = 512;
  const k = 2048;
  const n = 2048;
  const x = Float32Array.from({ length: m * k }, (_, i) => ((i * 7919) % 97) / 97 - 0.5);
  const w = Float32Array.from({ length: n * k }, (_, i) => ((i * 104729) % 89) / 89 - 0.5);
  const call = {
    op: 'matmul' as const,
    src: [{ dtype: 'f32' as const, shape: [m, k], data: x }, { dtype: 'f32' as const, shape: [n, k], data: w }, null],
    dst: [{ dtype: 'f32' as const, shape: [m, n] }],
  };
  dev.runOp(call);
  const matmulTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    dev.runOp(call);
    matmulTimes.push(performance.now() - t);
  }
  dev.close();
  const matmulGflops = (2 * m * n * k) / (median(matmulTimes) / 1000) / 1e9;
  return { bandwidthGBs, matmulGflops };
}
