/**
 * Optional API key (vLLM's --api-key): when set, every /v1 request must send
 * `Authorization: Bearer <key>`, which is what the OpenAI SDKs do with their apiKey.
 */
import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { ApiError, errorResponse } from './errors.ts';

export function requireApiKey(apiKey: string): MiddlewareHandler {
  const expected = Buffer.from(apiKey, 'utf8');
  return async (c, next) => {
    const match = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '');
    const given = Buffer.from(match?.[1]?.trim() ?? '', 'utf8');
    // Constant-time comparison so the key cannot be guessed byte by byte from response times.
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      const message = match ? 'Incorrect API key provided.' : "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.";
      return errorResponse(c, new ApiError(401, message, { code: 'invalid_api_key' }));
    }
    await next();
  };
}
