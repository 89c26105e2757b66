/**
 * Getting a JSON body in safely: the content type is checked before anything is read, the size
 * limit is enforced while the body streams in (hono's bodyLimit rejects a too-large Content-Length
 * at once and counts the bytes of a chunked body as they arrive), and only then is it parsed.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { errorResponse, invalidRequest, payloadTooLarge, unsupportedMediaType } from './errors.ts';

export interface JsonBodyGuards {
  /** 415 unless the body is declared as JSON; runs before any byte is read. */
  requireJson: MiddlewareHandler;
  /** 413 as soon as the body is known to exceed the limit. */
  limitSize: MiddlewareHandler;
}

/** Middlewares for a route that takes a JSON body of at most `maxBytes`. */
export function jsonBodyGuards(maxBytes: number): JsonBodyGuards {
  return {
    requireJson: requireJsonContentType,
    limitSize: bodyLimit({ maxSize: maxBytes, onError: (c) => errorResponse(c, payloadTooLarge(maxBytes)) }),
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

/** The parsed body; a 400 in OpenAI's words when it is not JSON. */
export async function readJsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') throw invalidRequest('The request body is empty; expected a JSON object.');
  try {
    return JSON.parse(text);
  } catch {
    throw invalidRequest(
      'We could not parse the JSON body of your request. The API expects a JSON payload, but what was sent was not valid JSON.',
    );
  }
}
