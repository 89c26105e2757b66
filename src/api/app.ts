/**
 * The OpenAI-compatible HTTP API as a Hono app. It talks to the engine only through the
 * InferenceService interface, so tests run it over a fake service.
 */
import { createHash } from 'node:crypto';
import { Hono, type MiddlewareHandler } from 'hono';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import packageJson from '../../package.json' with { type: 'json' };
import type { InferenceService } from '../engine/inference-service.ts';
import type { ToolCallParserName } from '../tools/index.ts';
import { apiKeyAuth, PUBLIC_HEALTH_PATHS } from './auth.ts';
import type { ApiDeps, ApiEnv } from './context.ts';
import {
  clientClosedRequest,
  errorResponse,
  isDeliberate,
  methodNotAllowed as methodNotAllowedError,
  routeNotFound,
  toApiError,
  type ApiLogger,
} from './errors.ts';
import { chatCompletionsHandler } from './openai/chat.ts';
import { completionsHandler } from './openai/completions.ts';
import { listModelsHandler, retrieveModelHandler } from './openai/models.ts';
import { detokenizeHandler, tokenizeHandler } from './openai/tokenize.ts';
import { jsonBodyGuards } from './request-body.ts';
import { scopedService, type PromptLogger } from './request-scope.ts';
import { requestContextMiddleware } from '../logging/http-log.ts';
import type { Logger } from '../logging/logger.ts';
import { instrumentService } from '../metrics/instrument.ts';
import { ServerMetrics } from '../metrics/server-metrics.ts';
import { metricsHandler } from './metrics.ts';
import { playgroundHandler } from './playground/playground.ts';

export interface AppOptions {
  /** Largest request body in bytes (413 above); default 16 MiB. */
  maxRequestBodyBytes?: number;
  /** A single API key (same as apiKeys: [apiKey]). */
  apiKey?: string | null;
  /** When non-empty, every route requires `Authorization: Bearer <one of them>` (--api-key); see auth.ts. */
  apiKeys?: readonly string[];
  /** With API keys: /health, /metrics and /version stay open (--public-health). */
  publicHealth?: boolean;
  /** Origins allowed to call from a browser (--cors-origins); empty/absent: no CORS headers at all. */
  corsOrigins?: readonly string[];
  /** Receives every prompt and output (--log-prompts); absent: they are never logged. */
  promptLog?: PromptLogger | null;
  /** Milliseconds a client has to send its request body (408 after); default 30 s. */
  readTimeoutMs?: number;
  /** Reported by GET /version; default: package.json's version. */
  version?: string;
  /** OpenAI's `system_fingerprint`; default: derived from the version and the model card. */
  systemFingerprint?: string;
  /** Where unexpected errors (bugs) are reported; default: console.error. */
  logger?: ApiLogger;
  /** Largest `n` a request may ask for (--max-n); default 16. */
  maxN?: number;
  /** The tool-call format to parse (--tool-call-parser); default: detected from the chat template. */
  toolCallParser?: ToolCallParserName | null;
  /** GET /metrics; default: a new ServerMetrics (its own registry) for this app; false: no /metrics. */
  metrics?: ServerMetrics | false;
  /** Structured log: one line per finished generation, failed HTTP requests; default: none. */
  requestLog?: Logger;
}

export const DEFAULT_MAX_N = 16;

export const DEFAULT_MAX_REQUEST_BODY_BYTES = 16 * 1024 * 1024;

const consoleLogger: ApiLogger = {
  error: (message, details) => console.error(`[updraft api] ${message}`, details ?? ''),
};

export function createApp(service: InferenceService, options: AppOptions = {}): Hono<ApiEnv> {
  // Tenant cache salts (from the API key) and, when asked for, prompt logging: see request-scope.ts.
  service = scopedService(service, { promptLog: options.promptLog ?? null });
  const version = options.version ?? packageJson.version;
  const logger = options.logger ?? consoleLogger;
  const metrics = options.metrics === false ? null : (options.metrics ?? new ServerMetrics(service));
  const deps: ApiDeps = {
    // Generations are timed for /metrics and the request log; everything else passes straight through.
    service: instrumentService(service, { metrics, log: options.requestLog ?? null }),
    logger,
    systemFingerprint: options.systemFingerprint ?? defaultSystemFingerprint(version, service),
    maxN: options.maxN ?? DEFAULT_MAX_N,
    toolCallParser: options.toolCallParser ?? null,
  };
  const jsonBody = jsonBodyGuards(options.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES, { readTimeoutMs: options.readTimeoutMs });

  const app = new Hono<ApiEnv>();
  const corsOrigins = options.corsOrigins ?? [];
  if (corsOrigins.length > 0) {
    // First, so that preflights (OPTIONS, no credentials) are answered before routing and auth.
    app.use(
      cors({
        origin: corsOrigins.includes('*') ? '*' : [...corsOrigins],
        allowMethods: ['GET', 'POST', 'OPTIONS'],
        allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
        exposeHeaders: ['X-Request-Id', 'Retry-After'],
        maxAge: 600,
      }),
    );
  }
  // Turns the 404 of a known path with the wrong method into a 405 (it inspects app.routes).
  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, allowed) => errorResponse(c, methodNotAllowedError(c.req.method, c.req.path, allowed)),
    }),
  );
  app.use(requestId());
  app.use(requestContextMiddleware(options.requestLog ?? null));
  app.use(async (c, next) => {
    // Captured before any middleware can swap c.req.raw (bodyLimit re-wraps chunked bodies).
    c.set('clientSignal', c.req.raw.signal);
    await next();
  });
  const apiKeys = [...(options.apiKeys ?? []), ...(options.apiKey ? [options.apiKey] : [])];
  if (apiKeys.length > 0) {
    // Every route (not only /v1 as in vLLM): an operator who set a key expects it to guard the server.
    app.use(apiKeyAuth({ keys: apiKeys, publicPaths: options.publicHealth ? PUBLIC_HEALTH_PATHS : [] }));
  }
  // Overloaded: refuse new generations before their body is read, parsed and tokenized (cheap 429s).
  const admission: MiddlewareHandler = async (c, next) => {
    if (c.req.method === 'POST') service.checkAdmission?.();
    await next();
  };
  app.use('/v1/chat/completions', admission);
  app.use('/v1/completions', admission);

  app.get('/health', (c) => {
    // stats() is the cheapest call that fails (ServiceError 'unavailable' → 503) when the engine cannot serve.
    service.stats();
    return c.body(null, 200);
  });
  app.get('/version', (c) => c.json({ version }));
  if (metrics !== null) app.get('/metrics', metricsHandler(metrics));
  app.get('/', playgroundHandler());
  app.get('/v1/models', listModelsHandler(deps));
  app.get('/v1/models/:id{.+}', retrieveModelHandler(deps));
  app.post('/v1/chat/completions', jsonBody.requireJson, jsonBody.limitSize, chatCompletionsHandler(deps));
  app.post('/v1/completions', jsonBody.requireJson, jsonBody.limitSize, completionsHandler(deps));
  app.post('/tokenize', jsonBody.requireJson, jsonBody.limitSize, tokenizeHandler(deps));
  app.post('/detokenize', jsonBody.requireJson, jsonBody.limitSize, detokenizeHandler(deps));

  app.notFound((c) => errorResponse(c, routeNotFound(c.req.method, c.req.path)));
  app.onError((error, c) => {
    // A client that hangs up while sending its body makes the body read fail: no bug to log, no one to answer.
    if (c.get('clientSignal')?.aborted && !isDeliberate(error)) return errorResponse(c, clientClosedRequest());
    return errorResponse(c, toApiError(error, { requestId: c.get('requestId'), logger }));
  });
  return app;
}

function defaultSystemFingerprint(version: string, service: InferenceService): string {
  const { id, root, maxModelLen } = service.model;
  const digest = createHash('sha256').update(`updraft ${version} ${id} ${root} ${maxModelLen}`).digest('hex');
  return `fp_${digest.slice(0, 10)}`;
}
