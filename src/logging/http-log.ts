/**
 * Hono middleware: runs each request inside its RequestContext (so deeper log lines carry its
 * x-request-id) and logs the requests that failed (status >= 400) at info, or >= 500 at error; the
 * others at debug. Generations get their own line with tokens and timings when they finish
 * (src/metrics/instrument.ts).
 */
import type { MiddlewareHandler } from 'hono';
import type { ApiEnv } from '../api/context.ts';
import type { Logger } from './logger.ts';
import { runWithRequestContext } from './request-context.ts';

export function requestContextMiddleware(log: Logger | null): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const start = performance.now();
    const context = { requestId: c.get('requestId'), method: c.req.method, path: c.req.path };
    await runWithRequestContext(context, next);
    if (log === null) return;
    const status = c.res.status;
    const level = status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug';
    if (!log.isLevelEnabled(level)) return;
    // For a stream, the time to its first byte (the response starts before the generation ends).
    log[level]({ ...context, status, ms: Math.round((performance.now() - start) * 10) / 10 }, 'http request');
  };
}
