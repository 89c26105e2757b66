/**
 * API keys (--api-key, UPDRAFT_API_KEY; several allowed): every request must send
 * `Authorization: Bearer <key>`, which is what the OpenAI SDKs do with their apiKey.
 *
 * - Only SHA-256 digests of the keys are kept, and a presented key is compared by digest with
 *   crypto.timingSafeEqual against every configured key (fixed-length inputs, no early exit), so
 *   response times say nothing about how much of a key was right.
 * - Every route is guarded, /health, /metrics and /version included, unless the operator makes
 *   those three public (--public-health): "exempt only if configured". (vLLM guards only /v1; an
 *   operator who sets a key here gets a server that answers nothing to strangers.)
 * - Each key is a tenant: its requests run with a prefix-cache salt derived from the key's digest
 *   (request-scope.ts), so one tenant's cached prompt blocks are never hits for another, and
 *   nobody can probe someone else's prompts by timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { ApiError, errorResponse } from './errors.ts';
import { runInRequestScope } from './request-scope.ts';

/** Served without a key when the operator asks for it (--public-health). */
export const PUBLIC_HEALTH_PATHS: readonly string[] = ['/health', '/metrics', '/version'];

export interface ApiKeyAuthOptions {
  keys: readonly string[];
  /** Paths answered without a key (exact match). Default: none. */
  publicPaths?: readonly string[];
}

function digestOf(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * The prefix-cache salt of the tenant holding a key: derived from the key's digest (never the key),
 * one-way, and distinct per key.
 */
export function cacheSaltForDigest(digest: Buffer): string {
  return createHash('sha256').update('updraft prefix-cache salt\0').update(digest).digest('base64url');
}

/** The salt the requests carrying `key` run with (tests compare against it). */
export function cacheSaltForKey(key: string): string {
  return cacheSaltForDigest(digestOf(key));
}

export function apiKeyAuth(options: ApiKeyAuthOptions): MiddlewareHandler {
  const keys = options.keys.filter((key) => key !== '');
  if (keys.length === 0) throw new Error('apiKeyAuth needs at least one non-empty key');
  const digests = keys.map(digestOf);
  const salts = digests.map(cacheSaltForDigest);
  const publicPaths = new Set(options.publicPaths ?? []);
  return async (c, next) => {
    if (publicPaths.has(c.req.path)) return next();
    const match = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '');
    const given = digestOf(match?.[1]?.trim() ?? '');
    let matched = -1;
    // Every configured key is compared, whichever matches: the time does not depend on which one did.
    for (let i = 0; i < digests.length; i++) {
      const equal = timingSafeEqual(digests[i]!, given);
      if (equal && matched < 0) matched = i;
    }
    if (match === null || matched < 0) {
      const message = match ? 'Incorrect API key provided.' : "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.";
      return errorResponse(c, new ApiError(401, message, { code: 'invalid_api_key', headers: { 'WWW-Authenticate': 'Bearer' } }));
    }
    await runInRequestScope({ cacheSalt: salts[matched]! }, next);
  };
}

/** The original single-key form, for callers that mount it on chosen paths themselves. */
export function requireApiKey(apiKey: string): MiddlewareHandler {
  return apiKeyAuth({ keys: [apiKey] });
}
