/**
 * Several choices per request: `n` samples of each prompt (and, on /v1/completions, several prompts).
 *
 * Each choice is its own engine request with its own random stream. A prompt's first choice is
 * submitted alone; the other n-1 follow once its first output has arrived, i.e. once the whole prompt
 * has been computed and its full KV blocks sit in the prefix cache, so they reuse those blocks instead
 * of computing the prompt n times. One AbortController ends every choice: the client going away, an
 * error in any of them, or a consumer that stops early.
 */
import type { GenerateOutput, InferenceService, Usage } from '../../engine/inference-service.ts';
import { randomSeed, type SamplingParams } from '../../sampling/params.ts';
import { invalidRequest } from '../errors.ts';
import { collectOutputs, startGeneration, type CollectedOutput } from './generation.ts';

/** The request's `n` (default 1), refused above the server's --max-n. */
export function choicesPerPrompt(n: number | null | undefined, maxN: number): number {
  const value = n ?? 1;
  if (value > maxN) {
    throw invalidRequest(`Invalid 'n': expected a value <= ${maxN} (this server's --max-n), but got ${value} instead.`, 'n', 'value_above_max');
  }
  return value;
}

export interface PromptToRun {
  promptTokenIds: number[];
  /** The sampling parameters of choice 0; the others differ only in their seed. */
  params: SamplingParams;
}

export interface ChoicesRequest {
  /** The response id; choices run as `<id>` (a single choice) or `<id>-<index>`. */
  id: string;
  prompts: PromptToRun[];
  n: number;
  /** Whether params.seed came from the client (then every choice's seed derives from it). */
  clientSeeded: boolean;
  priority: number;
  clientSignal: AbortSignal;
}

export interface RunningChoices {
  /** Output streams by choice index (promptIndex × n + choiceIndex), each already past its first output. */
  streams: AsyncIterable<GenerateOutput>[];
  n: number;
  /** Ends every choice still running, freeing its KV blocks. */
  abort(): void;
}

/**
 * The seed of choice `i`: choice 0 keeps the request's seed (so n = 1 and choice 0 of n > 1 agree), the
 * others get independent seeds derived from (seed, i) with SplitMix64 when the client gave a seed, so
 * the same seed reproduces all n choices; fresh random seeds otherwise.
 */
export function choiceSeed(seed: bigint, clientSeeded: boolean, choiceIndex: number): bigint {
  if (choiceIndex === 0) return seed;
  if (!clientSeeded) return randomSeed();
  return splitMix64(BigInt.asUintN(64, seed + BigInt(choiceIndex) * 0x9e3779b97f4a7c15n));
}

function splitMix64(x: bigint): bigint {
  let z = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n);
  z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
  z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
  return z ^ (z >> 31n);
}

/**
 * Starts every choice and resolves once each has produced its first output, so that errors raised up
 * front (overload, a prompt the engine refuses) still become HTTP statuses. If any choice cannot start,
 * the others are aborted and the error is thrown.
 */
export async function startChoices(service: InferenceService, request: ChoicesRequest): Promise<RunningChoices> {
  const { prompts, n } = request;
  const controller = new AbortController();
  const signal = AbortSignal.any([request.clientSignal, controller.signal]);
  const total = prompts.length * n;
  const streams: AsyncIterable<GenerateOutput>[] = new Array<AsyncIterable<GenerateOutput>>(total);
  let failure: { error: unknown } | null = null;

  const startChoice = async (promptIndex: number, choiceIndex: number): Promise<void> => {
    if (failure !== null) return;
    const prompt = prompts[promptIndex]!;
    const index = promptIndex * n + choiceIndex;
    try {
      streams[index] = await startGeneration(service, {
        requestId: total === 1 ? request.id : `${request.id}-${index}`,
        promptTokenIds: prompt.promptTokenIds,
        params: { ...prompt.params, seed: choiceSeed(prompt.params.seed, request.clientSeeded, choiceIndex) },
        priority: request.priority,
        signal,
      });
    } catch (error) {
      if (failure === null) {
        failure = { error };
        controller.abort();
      }
    }
  };

  await Promise.all(
    prompts.map(async (_prompt, promptIndex) => {
      await startChoice(promptIndex, 0);
      // The prompt is computed now and its full blocks are cached: the siblings hit them.
      await Promise.all(Array.from({ length: n - 1 }, (_, i) => startChoice(promptIndex, i + 1)));
    }),
  );
  if (failure !== null) throw (failure as { error: unknown }).error;
  return { streams, n, abort: () => controller.abort() };
}

/** Every choice run to its end (non-streaming); any failure aborts the rest. */
export async function collectChoices(choices: RunningChoices): Promise<CollectedOutput[]> {
  try {
    return await Promise.all(choices.streams.map((stream) => collectOutputs(stream)));
  } catch (error) {
    choices.abort();
    throw error;
  }
}

export interface ChoiceOutput {
  index: number;
  output: GenerateOutput;
}

/**
 * The choices' outputs interleaved in the order they are produced (streaming). A consumer that stops
 * before the end (client gone, an error) aborts every choice.
 */
export async function* interleaveChoices(choices: RunningChoices): AsyncGenerator<ChoiceOutput> {
  const iterators = choices.streams.map((stream) => stream[Symbol.asyncIterator]());
  type Arrival = { index: number; result: IteratorResult<GenerateOutput> } | { index: number; error: unknown };
  // One pull in flight per choice; arrivals queue up in order and wake the consumer.
  const arrivals: Arrival[] = [];
  let wake: (() => void) | null = null;
  const arrive = (arrival: Arrival) => {
    arrivals.push(arrival);
    wake?.();
  };
  const pull = (index: number) => {
    iterators[index]!.next().then(
      (result) => arrive({ index, result }),
      (error: unknown) => arrive({ index, error }),
    );
  };
  iterators.forEach((_iterator, index) => pull(index));
  let running = iterators.length;
  let completed = false;
  try {
    while (running > 0) {
      if (arrivals.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      const arrival = arrivals.shift()!;
      if ('error' in arrival) throw arrival.error;
      if (arrival.result.done) {
        running--;
        continue;
      }
      yield { index: arrival.index, output: arrival.result.value };
      pull(arrival.index);
    }
    completed = true;
  } finally {
    if (!completed) {
      choices.abort();
      // Not awaited: a stream's pending next() settles once the abort reaches it.
      for (const iterator of iterators) void iterator.return?.()?.catch(() => {});
    }
  }
}

/**
 * Usage of the whole request: each prompt counted once (with its first choice's cached tokens), the
 * completion tokens of every choice added up. `usages` is indexed by choice; missing entries count 0.
 */
export function totalUsage(usages: ReadonlyArray<Usage | undefined>, promptLengths: readonly number[], n: number): Usage {
  let promptTokens = 0;
  let cachedPromptTokens = 0;
  let completionTokens = 0;
  promptLengths.forEach((length, promptIndex) => {
    promptTokens += length;
    cachedPromptTokens += usages[promptIndex * n]?.cachedPromptTokens ?? 0;
  });
  for (const usage of usages) completionTokens += usage?.completionTokens ?? 0;
  return { promptTokens, completionTokens, cachedPromptTokens };
}
