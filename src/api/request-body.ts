/**
 * Getting a JSON body in safely: the content type is checked before anything is read; the body is
 * received with a size limit (a too-large Content-Length is refused at once, a chunked body as soon
 * as its bytes pass the limit) and a deadline (a client that trickles its body, slowloris-style, gets
 * a 408 and loses the connection); then it must be UTF-8, nested at most MAX_JSON_DEPTH deep (checked
 * on the text, before JSON.parse, which takes seconds on megabytes of brackets), and JSON.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { errorResponse, invalidRequest, payloadTooLarge, requestTimeout, unsupportedMediaType } from './errors.ts';

export interface JsonBodyGuards {
  /** 415 unless the body is declared as JSON; runs before any byte is read. */
  requireJson: MiddlewareHandler;
  /** Receives the body: 413 as soon as it is known to exceed the limit, 408 past the read timeout. */
  limitSize: MiddlewareHandler;
}

export const DEFAULT_READ_TIMEOUT_MS = 30_000;
/** Deepest nesting of arrays and objects a request body may have. */
export const MAX_JSON_DEPTH = 64;

/** Middlewares for a route that takes a JSON body of at most `maxBytes`. */
export function jsonBodyGuards(maxBytes: number, options: { readTimeoutMs?: number } = {}): JsonBodyGuards {
  return {
    requireJson: requireJsonContentType,
    limitSize: receiveBody(maxBytes, options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS),
  };
}

/** Reads the whole body within the limits; the request then carries it in memory (as hono's bodyLimit does). */
function receiveBody(maxBytes: number, timeoutMs: number): MiddlewareHandler {
  return async (c, next) => {
    const raw = c.req.raw;
    if (raw.body === null) return next();
    const declared = raw.headers.get('content-length');
    if (declared !== null && !raw.headers.has('transfer-encoding') && Number(declared) > maxBytes) {
      return errorResponse(c, payloadTooLarge(maxBytes));
    }
    const reader = raw.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    try {
      for (;;) {
        const result = await Promise.race([reader.read(), deadline]);
        if (result === 'timeout') {
          void reader.cancel().catch(() => {});
          return errorResponse(c, requestTimeout(timeoutMs));
        }
        if (result.done) break;
        size += result.value.byteLength;
        if (size > maxBytes) {
          void reader.cancel().catch(() => {});
          return errorResponse(c, payloadTooLarge(maxBytes));
        }
        chunks.push(result.value);
      }
    } finally {
      clearTimeout(timer);
    }
    const body = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      body.set(chunk, offset);
      offset += chunk.byteLength;
    }
    c.req.raw = new Request(raw, { body });
    return next();
  };
}

/**
 * A missing Content-Type is read as JSON (lenient, like most JSON APIs); anything else must be
 * `application/json` or a `+json` type, with or without parameters such as charset.
 */
const requireJsonContentType: MiddlewareHandler = async (c, next) => {
  const contentType = c.req.header('content-type');
  if (contentType !== undefined && !isJsonMediaType(contentType)) return errorResponse(c, unsupportedMediaType(contentType));
  await next();
};

function isJsonMediaType(contentType: string): boolean {
  const mediaType = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'));
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The parsed body; a 400 in OpenAI's words when it is not UTF-8 JSON (or nested too deep). */
export async function readJsonBody(c: Context): Promise<unknown> {
  let text: string;
  try {
    text = strictUtf8.decode(await c.req.arrayBuffer());
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw invalidRequest('The request body is not valid UTF-8; JSON must be sent as UTF-8.', null, 'invalid_encoding');
  }
  if (text.trim() === '') throw invalidRequest('The request body is empty; expected a JSON object.');
  if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) {
    throw invalidRequest(`The JSON body is nested more than ${MAX_JSON_DEPTH} levels deep.`, null, 'invalid_value');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw invalidRequest(
      'We could not parse the JSON body of your request. The API expects a JSON payload, but what was sent was not valid JSON.',
    );
  }
}

/** Whether brackets outside strings nest deeper than `limit` (one linear pass; the JSON need not be valid). */
export function jsonNestingExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++; // backslash: skip the escaped character
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) {
      inString = true;
    } else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > limit) return true;
    } else if (ch === 0x5d || ch === 0x7d) {
      depth--;
    }
  }
  return false;
}
