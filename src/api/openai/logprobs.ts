/**
 * The engine's per-token logprobs in the two formats OpenAI clients read:
 * - chat: `{content: [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}`;
 * - legacy completions: `{tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}`.
 */
import type { InferenceService, TokenLogprob } from '../../engine/inference-service.ts';

/** How token ids become the strings clients see. */
export interface TokenRenderer {
  /** The token's text, or `token_id:<id>` when the client asked for return_tokens_as_token_ids (vLLM). */
  display(tokenId: number): string;
  /** The token's real text (for text offsets). */
  text(tokenId: number): string;
  /** OpenAI's `bytes`: the token's own UTF-8 bytes (those of `token_id:<id>` when that is what is displayed). */
  bytes(tokenId: number): number[];
}

export function tokenRenderer(service: InferenceService, asTokenIds: boolean): TokenRenderer {
  const display = asTokenIds ? (tokenId: number) => `token_id:${tokenId}` : (tokenId: number) => service.tokenText(tokenId);
  return {
    display,
    text: (tokenId) => service.tokenText(tokenId),
    bytes: (tokenId) => (asTokenIds || service.tokenBytes === undefined ? utf8Bytes(display(tokenId)) : Array.from(service.tokenBytes(tokenId))),
  };
}

/** JSON has no -Infinity; vLLM reports impossible tokens as -9999.0, and so do we. */
function finiteLogprob(logprob: number): number {
  return Number.isFinite(logprob) ? logprob : -9999;
}

function utf8Bytes(text: string): number[] {
  return Array.from(Buffer.from(text, 'utf8'));
}

export interface ChatTopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface ChatTokenLogprob extends ChatTopLogprob {
  top_logprobs: ChatTopLogprob[];
}

export interface ChatLogprobs {
  content: ChatTokenLogprob[];
  refusal: null;
}

export function toChatLogprobs(logprobs: TokenLogprob[], tokens: TokenRenderer): ChatLogprobs {
  const entry = (tokenId: number, logprob: number): ChatTopLogprob => {
    return { token: tokens.display(tokenId), logprob: finiteLogprob(logprob), bytes: tokens.bytes(tokenId) };
  };
  return {
    content: logprobs.map((chosen) => ({
      ...entry(chosen.tokenId, chosen.logprob),
      top_logprobs: chosen.top.map((alternative) => entry(alternative.tokenId, alternative.logprob)),
    })),
    refusal: null,
  };
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  /** The top alternatives per position, plus the chosen token (as OpenAI's legacy format does). */
  top_logprobs: Array<Record<string, number>>;
  /** Character offset of each token in the generated text. */
  text_offset: number[];
}

/**
 * @param initialOffset characters generated before these tokens (streaming continues the offsets).
 * @returns the logprobs and the offset after the last token, for the next streamed chunk.
 */
export function toCompletionLogprobs(
  logprobs: TokenLogprob[],
  tokens: TokenRenderer,
  initialOffset: number,
): { logprobs: CompletionLogprobs; nextOffset: number } {
  const result: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let offset = initialOffset;
  for (const chosen of logprobs) {
    const token = tokens.display(chosen.tokenId);
    result.tokens.push(token);
    result.token_logprobs.push(finiteLogprob(chosen.logprob));
    const top: Record<string, number> = {};
    for (const alternative of chosen.top) top[tokens.display(alternative.tokenId)] = finiteLogprob(alternative.logprob);
    top[token] = finiteLogprob(chosen.logprob);
    result.top_logprobs.push(top);
    result.text_offset.push(offset);
    offset += tokens.text(chosen.tokenId).length;
  }
  return { logprobs: result, nextOffset: offset };
}
