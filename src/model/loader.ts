/**
 * From a model argument to a program on a device: resolve (local folder or Hub), read config and
 * tokenizer, size the KV cache from the memory budget, build the architecture's program and load it.
 */
import type { DeviceInfo, Program } from '../device/device.ts';
import type { DType, ProgramSpec } from '../device/program.ts';
import { ConfigError } from '../config.ts';
import type { DTypeOption, KvCacheDtypeOption, LoadFormat } from '../config.ts';
import { MAX_TOP_LOGPROBS } from '../sampling/params.ts';
import { TextTokenizer } from '../tokenizer/index.ts';
import { readDecoderConfig } from './hf-config.ts';
import type { DecoderConfig } from './hf-config.ts';
import { resolveModel } from './hub.ts';
import type { ResolvedModel } from './hub.ts';
import { explainKvCacheFailure, kvCacheDtypeFor, requireKvCacheSupport } from './kv-cache-dtype.ts';
import { kvBytesPerBlock, programMemory, formatBytes } from './memory.ts';
import type { ProgramMemory } from './memory.ts';
import { openModelTarget } from './model-target.ts';
import type { ModelTarget } from './model-target.ts';
import { buildModelProgram } from './registry.ts';
import type { DecoderBuildOptions } from './registry.ts';
import { shardPlan, validateTensorParallel } from './tensor-parallel.ts';
import type { RunnerLimits } from './runner.ts';
import { openWeights } from './weights.ts';
import { resolveBatchLimits } from './batch-limits.ts';
import { resolveModelDtypes } from './model-dtypes.ts';
import type { ProgressReporter } from './progress.ts';
import { watchBytesRead } from './read-progress.ts';

export interface LoadModelOptions {
  model: string;
  revision?: string;
  device: string;
  numThreads?: number;
  /** --tensor-parallel-size: ranks, one device each (default 1). */
  tensorParallelSize?: number;
  dtype?: DTypeOption;
  /** --kv-cache-dtype (default auto: the compute dtype). */
  kvCacheDtype?: KvCacheDtypeOption;
  loadFormat?: LoadFormat;
  maxModelLen?: number | null;
  /** null: the device's default (src/model/batch-limits.ts). */
  maxNumSeqs: number | null;
  maxNumBatchedTokens: number | null;
  blockSize?: number | null;
  kvCacheMemoryBytes?: number | null;
  gpuMemoryUtilization?: number;
  chatTemplate?: string | null;
  log?: (message: string) => void;
  /** Bytes downloaded from the Hub, then bytes of weights read. */
  progress?: ProgressReporter;
}

export interface LoadedModel {
  resolved: ResolvedModel;
  config: DecoderConfig;
  tokenizer: TextTokenizer;
  /** The device, or the devices of the tensor-parallel ranks. */
  device: ModelTarget;
  /** Rank 0's device. */
  deviceInfo: DeviceInfo;
  program: Program;
  maxModelLen: number;
  /** Including the reserved null block 0. */
  numKvBlocks: number;
  blockSize: number;
  /** The KV cache's storage dtype (the compute dtype, or f8e4m3 with --kv-cache-dtype fp8). */
  kvCacheDtype: DType;
  /** The step limits in force: maxNumSeqs and maxNumTokens (--max-num-batched-tokens) as resolved for the device. */
  limits: RunnerLimits;
  /** One rank's memory (every rank holds about the same). */
  memory: ProgramMemory;
  /** Frees the program and the device. */
  close(): void;
}

export async function loadModel(opts: LoadModelOptions): Promise<LoadedModel> {
  const log = opts.log ?? (() => {});
  const resolved = await resolveModel(opts.model, { revision: opts.revision, log, ...(opts.progress ? { progress: opts.progress } : {}) });
  const config = await readDecoderConfig(resolved.dir);
  const tokenizer = await TextTokenizer.fromDirectory(resolved.dir, { chatTemplate: opts.chatTemplate ?? null });
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new ConfigError(`the tokenizer knows ${tokenizer.vocabSize} tokens but the model only ${config.vocabSize}`);
  }

  const maxModelLen = opts.maxModelLen ?? config.maxModelLen;
  if (maxModelLen > config.maxModelLen) {
    throw new ConfigError(`--max-model-len ${maxModelLen} exceeds what the model supports (${config.maxModelLen})`);
  }

  const ranks = opts.tensorParallelSize ?? 1;
  validateTensorParallel(config, ranks);
  const device = openModelTarget(opts.device, ranks, opts.numThreads ?? 0);
  try {
    const deviceInfo = device.info;
    const { computeDtype, weightDtype } = resolveModelDtypes(opts.dtype, deviceInfo.preferredDtype);
    const kvOption = opts.kvCacheDtype ?? 'auto';
    const kvCacheDtype = kvCacheDtypeFor(kvOption, computeDtype);
    const blockSize = opts.blockSize ?? deviceInfo.defaultBlockSize;
    const batch = resolveBatchLimits(deviceInfo, opts);
    const limits: RunnerLimits & { maxTopLogprobs: number } = {
      blockSize,
      maxNumTokens: batch.maxNumBatchedTokens,
      maxNumSeqs: batch.maxNumSeqs,
      maxBlocksPerSeq: Math.ceil(maxModelLen / blockSize),
      maxTopLogprobs: MAX_TOP_LOGPROBS,
    };
    const weights = opts.loadFormat === 'dummy' ? ('dummy' as const) : await openWeights(resolved.dir);
    // One spec per rank (one rank: the unsharded program). Every rank has the same KV blocks, of its own heads.
    const build = (numBlocks: number): ProgramSpec[] =>
      Array.from({ length: ranks }, (_, rank) => {
        const buildOptions: DecoderBuildOptions = {
          weights,
          computeDtype,
          weightDtype,
          kv: { numBlocks, blockSize, dtype: kvCacheDtype },
          limits,
          ...(ranks > 1 ? { tensorParallel: { rank, size: ranks } } : {}),
        };
        return buildModelProgram(config, buildOptions);
      });
    // Per device: the largest rank (rank 0 holds the row-parallel biases).
    const perDevice = (specs: ProgramSpec[]): ProgramMemory =>
      specs.map(programMemory).reduce((largest, m) => (m.total > largest.total ? m : largest));

    // Size the KV cache: what the budget holds, capped at max-num-seqs full contexts (more would only
    // feed the prefix cache of a tiny model), and at least one full context.
    const oneBlock = build(1);
    // Before sizing or allocating: a device that cannot store this KV dtype says so, flag named.
    if (device.supportsOp) requireKvCacheSupport(kvOption, kvCacheDtype, oneBlock[0]!, { name: deviceInfo.name, supportsOp: device.supportsOp });
    const staticBytes = perDevice(oneBlock).total;
    const deviceBudget = deviceInfo.totalMemory * (opts.gpuMemoryUtilization ?? 0.9);
    if (deviceInfo.totalMemory > 0 && staticBytes > deviceBudget) {
      // Before anything is allocated: the weights and activations alone do not fit.
      throw new ConfigError(
        `the model does not fit: its weights and activations take ${formatBytes(staticBytes)}, but ${deviceInfo.name} offers ` +
          `${formatBytes(deviceBudget)} (${formatBytes(deviceInfo.totalMemory)} x --gpu-memory-utilization ${opts.gpuMemoryUtilization ?? 0.9}); ` +
          'use a smaller model or dtype, or a lower --max-num-batched-tokens',
      );
    }
    const bytesPerBlock = kvBytesPerBlock({ ...config, numKvHeads: shardPlan(config, { rank: 0, size: ranks }).numKvHeads }, blockSize, kvCacheDtype);
    const budget =
      opts.kvCacheMemoryBytes ??
      deviceInfo.totalMemory * (opts.gpuMemoryUtilization ?? 0.9) - staticBytes;
    const wantedBlocks = batch.maxNumSeqs * limits.maxBlocksPerSeq;
    const numUsableBlocks = Math.min(Math.floor(budget / bytesPerBlock), wantedBlocks);
    if (numUsableBlocks < limits.maxBlocksPerSeq) {
      throw new ConfigError(
        `the KV cache budget (${formatBytes(Math.max(0, budget))}) holds ${Math.max(0, numUsableBlocks)} blocks of ${blockSize} tokens, ` +
          `fewer than one ${maxModelLen}-token context needs (${limits.maxBlocksPerSeq}); lower --max-model-len or raise --kv-cache-memory`,
      );
    }
    const numKvBlocks = numUsableBlocks + 1; // + the null block
    const specs = build(numKvBlocks);
    const memory = perDevice(specs);
    const where = ranks > 1 ? `${ranks} x ${deviceInfo.name} (tensor parallel)` : deviceInfo.name;
    let program: Program;
    try {
      program = await createProgramWithProgress(device, specs, `${config.architecture} (${formatBytes(memory.weight)} of weights${ranks > 1 ? ' per rank' : ''}) on ${where}`, log, opts.progress);
    } catch (error) {
      // A group's ranks could not be asked beforehand: the addon checks their ops here.
      throw explainKvCacheFailure(error, kvOption, kvCacheDtype, where);
    }
    return {
      resolved,
      config,
      tokenizer,
      device,
      deviceInfo,
      program,
      maxModelLen,
      numKvBlocks,
      blockSize,
      kvCacheDtype,
      limits,
      memory,
      close: () => {
        program.dispose();
        device.close();
      },
    };
  } catch (error) {
    device.close();
    throw error;
  }
}

/**
 * device.createProgram, which reads the weights on a worker thread, with the bytes read shown as
 * progress (src/model/read-progress.ts) and the time it took logged.
 */
async function createProgramWithProgress(device: ModelTarget, specs: ProgramSpec[], what: string, log: (message: string) => void, progress: ProgressReporter | undefined): Promise<Program> {
  const fileBytes = specs
    .flatMap((spec) => spec.tensors)
    .reduce((sum, t) => sum + (t.init?.kind === 'file' ? t.init.segments.reduce((s, seg) => s + seg.byteLength, 0) : 0), 0);
  log(`loading ${what}`);
  const started = performance.now();
  const task = progress && fileBytes > 0 ? progress.begin('loading weights', fileBytes) : null;
  const stop = task ? watchBytesRead((read) => task.update(Math.min(read, fileBytes))) : null;
  try {
    const program = await device.createProgram(specs);
    const seconds = (performance.now() - started) / 1000;
    const rate = fileBytes > 0 ? `, ${formatBytes(Math.round(fileBytes / Math.max(seconds, 1e-3)))}/s` : '';
    const summary = `weights loaded in ${seconds.toFixed(1)} s${rate}`;
    if (task) task.end(summary);
    else log(summary);
    return program;
  } catch (error) {
    task?.end('loading the weights failed');
    throw error;
  } finally {
    stop?.();
  }
}
