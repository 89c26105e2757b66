/**
 * What a request carries from the middlewares down to service.generate() without every handler
 * passing it along: the tenant's prefix-cache salt (set by the API-key check, auth.ts). An
 * AsyncLocalStorage holds it for the request's async context; the service wrapper below adds it to
 * every GenerateRequest the handlers make.
 *
 * The same wrapper is the only place that may log a prompt or an output, and only when the operator
 * asked for it (--log-prompts): otherwise neither is ever logged.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { GenerateOutput, GenerateRequest, InferenceService } from '../engine/inference-service.ts';

export interface RequestScope {
  /** Prefix-cache salt of the tenant (API key) the request runs for. */
  cacheSalt: string | null;
}

const storage = new AsyncLocalStorage<RequestScope>();

export function runInRequestScope<T>(scope: RequestScope, fn: () => T): T {
  return storage.run(scope, fn);
}

export function currentRequestScope(): RequestScope | undefined {
  return storage.getStore();
}

/** One line per finished generation, when prompts may be logged. */
export interface PromptLogEntry {
  requestId: string;
  prompt: string;
  output: string;
  finishReason: string;
}

export type PromptLogger = (entry: PromptLogEntry) => void;

export interface ScopedServiceOptions {
  /** Set only with --log-prompts. */
  promptLog?: PromptLogger | null;
}

/** The service with the request scope applied to every generation; everything else passes through. */
export function scopedService(service: InferenceService, options: ScopedServiceOptions = {}): InferenceService {
  const promptLog = options.promptLog ?? null;
  const generate = (request: GenerateRequest): AsyncIterable<GenerateOutput> => {
    const tenantSalt = storage.getStore()?.cacheSalt ?? null;
    let salted = request;
    if (tenantSalt !== null) {
      // A salt the request brings is kept under the tenant's, so it can never equal another tenant's.
      const cacheSalt = request.cacheSalt ? `${tenantSalt}/${request.cacheSalt}` : tenantSalt;
      salted = { ...request, cacheSalt };
    }
    const outputs = service.generate(salted);
    return promptLog === null ? outputs : logged(outputs, request, service, promptLog);
  };
  return new Proxy(service, {
    get(target, property) {
      if (property === 'generate') return generate;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function* logged(
  outputs: AsyncIterable<GenerateOutput>,
  request: GenerateRequest,
  service: InferenceService,
  promptLog: PromptLogger,
): AsyncGenerator<GenerateOutput> {
  let text = '';
  let finishReason = 'incomplete';
  try {
    for await (const output of outputs) {
      text += output.text;
      if (output.finishReason !== null) finishReason = output.finishReason;
      yield output;
    }
  } catch (error) {
    finishReason = 'error';
    throw error;
  } finally {
    let prompt: string;
    try {
      prompt = service.decode(request.promptTokenIds, { skipSpecialTokens: false });
    } catch {
      prompt = JSON.stringify(request.promptTokenIds);
    }
    promptLog({ requestId: request.requestId, prompt, output: text, finishReason });
  }
}
