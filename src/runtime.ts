/**
 * Assembles a serving stack from a ServeConfig: model on a device → runner → KV manager + scheduler
 * → engine core → InferenceService. The CLI, the end-to-end tests and the offline benchmark all start
 * here, so they exercise exactly what `updraft serve` runs.
 */
import type { ServeConfig } from './config.ts';
import { headroomFromConservativeness } from './engine/sched-headroom.ts';
import { ConfigError } from './config.ts';
import { EngineCore } from './engine/engine.ts';
import type { EngineOptions } from './engine/engine.ts';
import type { ModelCard } from './engine/inference-service.ts';
import { LocalInferenceService } from './engine/local-service.ts';
import { Scheduler } from './engine/scheduler.ts';
import { KVCacheManager } from './kv/kv-cache-manager.ts';
import { loadModel } from './model/loader.ts';
import type { LoadedModel } from './model/loader.ts';
import { ModelRunner } from './model/runner.ts';
import type { RunnerOptions, StepRunner } from './model/runner.ts';
import type { ProgressReporter } from './model/progress.ts';
import { availableParallelism } from 'node:os';
import { EncodePool } from './tokenizer/index.ts';

/** Decode steps replay captured device graphs where the device has them, unless --enforce-eager. */
export function useDeviceGraphs(config: Pick<ServeConfig, 'enforceEager'>, deviceSupportsGraphs: boolean): boolean {
  return deviceSupportsGraphs && !config.enforceEager;
}

export interface Runtime {
  service: LocalInferenceService;
  engine: EngineCore;
  model: LoadedModel;
  /** Aborts in-flight requests and frees the device. */
  close(): Promise<void>;
}

export interface RuntimeOptions extends EngineOptions {
  log?: (message: string) => void;
  /** Hub download and weight-loading progress in bytes (the CLI draws it). */
  progress?: ProgressReporter;
  /** Overrides of the runner's choices (tests: graph-bucket padding on a device without graphs). */
  runner?: RunnerOptions;
  /**
   * Fault injection (tests only): wraps the model runner, e.g. to make the Nth step fail the way a
   * native call does (out of device memory, a kernel error) or return a corrupt result.
   */
  wrapRunner?: (runner: StepRunner) => StepRunner;
}

export async function startRuntime(config: ServeConfig, options: RuntimeOptions = {}): Promise<Runtime> {
  const model = await loadModel({
    model: config.model,
    revision: config.revision,
    device: config.device,
    numThreads: config.numThreads,
    tensorParallelSize: config.tensorParallelSize,
    dtype: config.dtype,
    kvCacheDtype: config.kvCacheDtype,
    loadFormat: config.loadFormat,
    maxModelLen: config.maxModelLen,
    maxNumSeqs: config.maxNumSeqs,
    maxNumBatchedTokens: config.maxNumBatchedTokens,
    blockSize: config.blockSize,
    kvCacheMemoryBytes: config.kvCacheMemoryBytes,
    gpuMemoryUtilization: config.gpuMemoryUtilization,
    chatTemplate: config.chatTemplate,
    log: options.log,
    ...(options.progress ? { progress: options.progress } : {}),
  });
  try {
    const kv = new KVCacheManager({
      numBlocks: model.numKvBlocks,
      blockSize: model.blockSize,
      enablePrefixCaching: config.enablePrefixCaching,
    });
    let scheduler: Scheduler;
    try {
      scheduler = new Scheduler(
        {
          maxNumSeqs: model.limits.maxNumSeqs,
          maxNumBatchedTokens: model.limits.maxNumTokens,
          maxModelLen: model.maxModelLen,
          enableChunkedPrefill: config.enableChunkedPrefill,
          eosTokenIds: model.tokenizer.eosTokenIds,
          maxStepsInFlight: config.asyncScheduling ? 2 : 1,
          headroom: headroomFromConservativeness(config.scheduleConservativeness),
        },
        kv,
      );
    } catch (error) {
      throw new ConfigError((error as Error).message);
    }
    const runner = new ModelRunner(model.program, model.limits, {
      useGraphs: useDeviceGraphs(config, model.deviceInfo.supportsGraphs),
      logits: { vocabSize: model.config.vocabSize, eosTokenIds: model.tokenizer.eosTokenIds, vocabulary: model.tokenizer },
      ...options.runner,
    });
    const stepRunner = options.wrapRunner ? options.wrapRunner(runner) : runner;
    const engine = new EngineCore(scheduler, stepRunner, model.tokenizer, { ...options, checkIntegrity: options.checkIntegrity || config.debugIntegrity });
    const card: ModelCard = {
      id: config.servedModelName ?? config.model,
      root: model.resolved.dir,
      created: Math.floor(Date.now() / 1000),
      maxModelLen: model.maxModelLen,
      vocabSize: model.config.vocabSize,
      kvCache: {
        cacheDtype: config.kvCacheDtype,
        storageDtype: model.kvCacheDtype,
        blockSize: model.blockSize,
        numBlocks: kv.pool.numUsableBlocks,
        enablePrefixCaching: config.enablePrefixCaching,
      },
    };
    const encodePool = await startEncodePool(config, model, options.log);
    const service = new LocalInferenceService(card, engine, model.tokenizer, {
      encodePool,
      maxQueuedRequests: config.maxQueuedRequests,
      request: {
        maxPromptTokens: config.maxPromptTokens,
        maxOutputTokens: config.maxOutputTokens,
        maxStopLength: config.maxStopLength,
        maxStopTokenIds: config.maxStopTokenIds,
      },
    });
    return {
      service,
      engine,
      model,
      close: async () => {
        await engine.stop();
        await service.close();
        model.close();
      },
    };
  } catch (error) {
    model.close();
    throw error;
  }
}

/** --tokenizer-workers (null: min(4, cores - 1)); null when prompts are tokenized on the main thread. */
export function tokenizerWorkerCount(configured: number | null): number {
  return configured ?? Math.max(0, Math.min(4, availableParallelism() - 1));
}

async function startEncodePool(config: ServeConfig, model: LoadedModel, log: ((message: string) => void) | undefined): Promise<EncodePool | null> {
  const size = tokenizerWorkerCount(config.tokenizerWorkers);
  if (size === 0) return null;
  try {
    // The workers read the same files the loader built model.tokenizer from.
    return await EncodePool.start({ source: model.resolved.dir, tokenizer: model.tokenizer, size });
  } catch (error) {
    log?.(`tokenizer workers could not start (${(error as Error).message}); tokenizing on the main thread`);
    return null;
  }
}
