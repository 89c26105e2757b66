/**
 * Where a model runs: one device, or the ranks of a tensor-parallel group (one device each). The
 * loader builds one ProgramSpec per rank and gets back one Program either way, so nothing above the
 * model runner knows how many devices there are.
 */
import { openDevice, openDeviceGroup } from '../device/device.ts';
import type { DeviceInfo, OpCall, Program } from '../device/device.ts';
import type { ProgramSpec } from '../device/program.ts';

export interface ModelTarget {
  /** Ranks of tensor parallelism (1: a single device). */
  readonly ranks: number;
  /** Rank 0's device; every rank is one of the same kind. */
  readonly info: DeviceInfo;
  /** One spec per rank, rank 0 first. */
  createProgram(specs: ProgramSpec[]): Promise<Program>;
  /**
   * Whether the device implements an op for these operand dtypes, asked before any allocation; null
   * where it cannot be asked (a group: the addon checks each rank's ops when it creates the program).
   */
  readonly supportsOp: ((call: OpCall) => boolean) | null;
  /** Idempotent. */
  close(): void;
}

export function openModelTarget(backend: string, ranks: number, numThreads: number): ModelTarget {
  if (ranks === 1) {
    const device = openDevice(backend, { numThreads });
    return {
      ranks,
      info: device.info(),
      createProgram: (specs) => device.createProgram(onlySpec(specs)),
      supportsOp: (call) => device.supportsOp(call),
      close: () => device.close(),
    };
  }
  const group = openDeviceGroup(backend, { size: ranks, numThreads });
  try {
    return { ranks, info: group.info()[0]!, createProgram: (specs) => group.createProgram(specs), supportsOp: null, close: () => group.close() };
  } catch (error) {
    group.close();
    throw error;
  }
}

function onlySpec(specs: ProgramSpec[]): ProgramSpec {
  if (specs.length !== 1) throw new Error(`a single device takes one program spec, got ${specs.length}`);
  return specs[0]!;
}
