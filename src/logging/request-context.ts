/**
 * The HTTP request a piece of work belongs to, carried through async calls (AsyncLocalStorage), so
 * that log lines written deep below the route handler (the request's summary when its generation
 * ends) carry the request id the client saw in `x-request-id`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  /** The x-request-id of the HTTP request. */
  requestId: string;
  method: string;
  path: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore();
}
