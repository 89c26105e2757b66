/**
 * What every route handler gets: the Hono env (per-request variables) and the app-wide dependencies.
 */
import type { InferenceService } from '../engine/inference-service.ts';
import type { ToolCallParserName } from '../tools/index.ts';
import type { DirectResponseSlot } from './direct-response.ts';
import type { ApiLogger } from './errors.ts';

export interface ApiVariables {
  /** The x-request-id echoed to the client (theirs when valid, else generated). */
  requestId: string;
  /** Aborts when the client's connection closes before the response is complete. */
  clientSignal: AbortSignal;
}

export interface ApiBindings {
  /** Set by startServer: lets a streaming handler write to the socket itself (direct-response.ts). */
  directResponse?: DirectResponseSlot;
}

export type ApiEnv = { Variables: ApiVariables; Bindings: ApiBindings };

export interface ApiDeps {
  service: InferenceService;
  logger: ApiLogger;
  /** OpenAI's `system_fingerprint`: identifies the server build + model configuration. */
  systemFingerprint: string;
  /** Largest `n` (choices per prompt) a request may ask for (--max-n). */
  maxN: number;
  /** --tool-call-parser: the tool-call format to read; null = detect it from the chat template. */
  toolCallParser: ToolCallParserName | null;
}
