/**
 * OpenAI's error shape and the one place that turns any failure into an HTTP response.
 *
 * Every error the API returns — bad JSON, a failed validation, an unknown route, an overloaded
 * engine — leaves through `errorResponse`, so clients (the OpenAI SDKs map status codes to error
 * classes and read `error.message`) always see `{"error": {message, type, param, code}}`.
 */
import type { Context } from 'hono';
import { ServiceError } from '../engine/inference-service.ts';

/** The body OpenAI returns for every error (also sent as an SSE event when a stream fails). */
export interface OpenAIErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

export type ApiErrorStatus = 400 | 401 | 404 | 405 | 408 | 413 | 415 | 429 | 431 | 500 | 503;

/** An error the API raises on purpose: it knows its status and what the client should read. */
export class ApiError extends Error {
  readonly status: ApiErrorStatus;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  readonly headers: Record<string, string>;

  constructor(
    status: ApiErrorStatus,
    message: string,
    options: { type?: string; param?: string | null; code?: string | null; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = options.type ?? defaultTypeFor(status);
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.headers = options.headers ?? {};
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

function defaultTypeFor(status: ApiErrorStatus): string {
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function invalidRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, { param, code });
}

export function modelNotFound(model: string): ApiError {
  return new ApiError(404, `The model \`${model}\` does not exist.`, { param: 'model', code: 'model_not_found' });
}

/** OpenAI's wording for a path it does not serve. */
export function routeNotFound(method: string, path: string): ApiError {
  return new ApiError(404, `Invalid URL (${method} ${path})`);
}

export function methodNotAllowed(method: string, path: string, allowed: string[]): ApiError {
  return new ApiError(405, `Invalid method for URL (${method} ${path}); allowed: ${allowed.join(', ')}`, {
    code: 'method_not_allowed',
    headers: { Allow: allowed.join(', ') },
  });
}

export function payloadTooLarge(limitBytes: number): ApiError {
  return new ApiError(413, `Request body too large: the limit is ${limitBytes} bytes.`, { code: 'request_too_large' });
}

/** The client took longer than --read-timeout to send its request; the connection is closed after this. */
export function requestTimeout(timeoutMs: number): ApiError {
  return new ApiError(408, `The request body did not arrive within ${timeoutMs / 1000} s.`, {
    code: 'request_timeout',
    headers: { Connection: 'close' },
  });
}

export function unsupportedMediaType(contentType: string): ApiError {
  return new ApiError(
    415,
    `Unsupported Content-Type '${contentType}': send the request body as JSON with 'Content-Type: application/json'.`,
    { code: 'unsupported_media_type' },
  );
}

/** What a client sees for a bug: no stack, no internals, just the id to find the log line. */
export function internalError(requestId: string | undefined): ApiError {
  const suffix = requestId ? ` (request id ${requestId})` : '';
  return new ApiError(500, `The server had an error while processing your request${suffix}.`, { code: 'internal_error' });
}

/** The answer to a request whose client is already gone (it is never read; it only has to be valid). */
export function clientClosedRequest(): ApiError {
  return new ApiError(400, 'The client closed the connection before the request was complete.', { code: 'client_closed_request' });
}

/** Errors raised on purpose (as opposed to bugs). */
export function isDeliberate(error: unknown): error is ApiError | ServiceError {
  return error instanceof ApiError || error instanceof ServiceError;
}

/** Maps the engine's deliberate errors onto HTTP: the service decides *what* went wrong, we decide the status. */
export function fromServiceError(error: ServiceError): ApiError {
  switch (error.kind) {
    case 'invalid_request':
      return new ApiError(400, error.message, { param: error.param });
    case 'overloaded': {
      // Retry-After is whole seconds; the SDKs honour it when they retry.
      const retryAfter = Math.max(1, Math.ceil(error.retryAfterSeconds ?? 1));
      return new ApiError(429, error.message, { code: 'overloaded', headers: { 'Retry-After': String(retryAfter) } });
    }
    case 'unavailable':
      return new ApiError(503, error.message, { code: 'service_unavailable' });
    case 'internal':
      return new ApiError(500, error.message, { code: 'internal_error' });
  }
}

export interface ApiLogger {
  error(message: string, details?: Record<string, unknown>): void;
}

/**
 * Any thrown value → the ApiError the client sees. Only the unexpected (bugs, and the service's
 * own 'internal' errors) are logged, with the stack; the client never sees the stack.
 */
export function toApiError(error: unknown, context: { requestId?: string; logger: ApiLogger }): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ServiceError) {
    const apiError = fromServiceError(error);
    if (apiError.status === 500) {
      context.logger.error('inference service reported an internal error', { requestId: context.requestId, error: describe(error) });
    }
    return apiError;
  }
  context.logger.error('unhandled error while serving a request', { requestId: context.requestId, error: describe(error) });
  return internalError(context.requestId);
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
}

export function errorResponse(c: Context, error: ApiError): Response {
  return c.json(error.toBody(), error.status, error.headers);
}
