/**
 * The device API the rest of the app uses: open a backend by name, build a Program from a
 * ProgramSpec, run one step per call. Backends are named, never branched on: what differs between
 * them is answered by `info()`.
 */
import { loadNativeAddon } from './binding.ts';
import type { MemoryUsage, NativeDeviceGroupOptions, NativeDeviceInfo, NativeDeviceOptions, OpCall } from './binding.ts';
import type { ProgramSpec, StepRequest, StepResult } from './program.ts';

export type DeviceInfo = NativeDeviceInfo;
export type DeviceOptions = NativeDeviceOptions;
export type DeviceGroupOptions = NativeDeviceGroupOptions;
export type { MemoryUsage, OpCall };

/** A model step made real on a device. */
export interface Program {
  /** Runs one step off the event loop; steps of one program run in call order. */
  step(request: StepRequest): Promise<StepResult>;
  /** Device bytes held, by tensor role. */
  memoryUsage(): MemoryUsage;
  /** Frees device memory; idempotent. Pending steps are rejected. */
  dispose(): void;
}

export interface Device {
  info(): DeviceInfo;
  /** Allocates the program's tensors and loads its weights (off the event loop). */
  createProgram(spec: ProgramSpec): Promise<Program>;
  /**
   * Whether the backend implements this op for these operand dtypes (shapes and params matter, data
   * is not needed): lets the loader refuse an option the backend lacks before allocating anything.
   */
  supportsOp(call: OpCall): boolean;
  /** Idempotent. Programs already created keep working until disposed. */
  close(): void;
}

/**
 * Tensor parallelism: one backend instance per rank (GPU r for rank r), programs built from one spec
 * per rank. A step of its program is still one asynchronous native call; it returns rank 0's outputs.
 */
export interface DeviceGroup {
  readonly size: number;
  /** Each rank's device, rank 0 first. */
  info(): DeviceInfo[];
  createProgram(specs: ProgramSpec[]): Promise<Program>;
  close(): void;
}

export function openDeviceGroup(name: string, options: DeviceGroupOptions): DeviceGroup {
  const group = loadNativeAddon().openDeviceGroup(name, options);
  return {
    size: options.size,
    info: () => group.info(),
    createProgram: (specs) => group.createProgram(specs),
    close: () => group.close(),
  };
}

/** Every backend the project knows of, in preference order after cpu. */
export const KNOWN_BACKENDS = ['cpu', 'cuda', 'ascend', 'ascend-sim'] as const;

/** Backends compiled into this build of the addon. */
export function compiledBackends(): string[] {
  return loadNativeAddon().listBackends();
}

export function openDevice(name: string, options: DeviceOptions = {}): Device {
  return loadNativeAddon().openDevice(name, options);
}

export interface BackendAvailability {
  name: string;
  available: boolean;
  /** Why it is unavailable: not compiled in, or the open error (no device, no runtime library). */
  reason?: string;
}

/** Whether each known backend can be opened here, and why not. Opens (and closes) each compiled one. */
export function probeBackends(): BackendAvailability[] {
  const compiled = new Set(compiledBackends());
  const names = [...new Set<string>([...KNOWN_BACKENDS, ...compiled])];
  return names.map((name) => {
    if (!compiled.has(name)) return { name, available: false, reason: `not compiled into this build of the addon` };
    try {
      openDevice(name).close();
      return { name, available: true };
    } catch (error) {
      return { name, available: false, reason: error instanceof Error ? error.message : String(error) };
    }
  });
}

/** Names of the backends that open on this machine (cpu always). */
export function availableBackends(): string[] {
  return probeBackends()
    .filter((b) => b.available)
    .map((b) => b.name);
}
