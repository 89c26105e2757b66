import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/api/errors.ts';
import { toSamplingParams, type SamplingContext } from '../../../src/api/openai/sampling.ts';

const chatContext: SamplingContext = { promptTokens: 100, maxModelLen: 1000, defaultMaxTokens: null, logprobs: null, promptParam: 'messages' };

describe('toSamplingParams', () => {
  it('fills OpenAI defaults and gives chat the rest of the context', () => {
    const params = toSamplingParams({}, chatContext);
    expect(params).toMatchObject({ temperature: 1, topP: 1, topK: 0, minP: 0, maxTokens: 900, minTokens: 0, stop: [], stopTokenIds: [], ignoreEos: false, logprobs: null, skipSpecialTokens: true });
    expect(params.seed).toBeGreaterThanOrEqual(0n);
    expect(params.seed).toBeLessThan(2n ** 64n);
  });

  it('uses the endpoint default when there is one, clamped to the context', () => {
    expect(toSamplingParams({}, { ...chatContext, defaultMaxTokens: 16 }).maxTokens).toBe(16);
    expect(toSamplingParams({}, { ...chatContext, promptTokens: 990, defaultMaxTokens: 16 }).maxTokens).toBe(10);
  });

  it('rejects a requested max tokens past the context window, naming the field that asked', () => {
    const attempt = (fields: Parameters<typeof toSamplingParams>[0]) => {
      try {
        toSamplingParams(fields, chatContext);
      } catch (error) {
        return error as ApiError;
      }
      throw new Error('expected a 400');
    };
    const error = attempt({ max_tokens: 901 });
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 400, param: 'max_tokens', code: 'context_length_exceeded' });
    expect(error.message).toBe(
      "This model's maximum context length is 1000 tokens. However, you requested 1001 tokens (100 in the messages, 901 in the completion). Please reduce the length of the messages or completion.",
    );
    expect(attempt({ max_tokens: 5, max_completion_tokens: 901 }).param).toBe('max_completion_tokens');
    expect(toSamplingParams({ max_tokens: 900 }, chatContext).maxTokens).toBe(900);
  });

  it('clamps min tokens to the context window', () => {
    expect(toSamplingParams({ min_tokens: 950 }, chatContext).minTokens).toBe(900);
  });

  it('lets max_completion_tokens win over max_tokens', () => {
    expect(toSamplingParams({ max_tokens: 10, max_completion_tokens: 20 }, chatContext).maxTokens).toBe(20);
  });

  it('maps top_k -1 to 0 (off) and keeps positive values', () => {
    expect(toSamplingParams({ top_k: -1 }, chatContext).topK).toBe(0);
    expect(toSamplingParams({ top_k: 40 }, chatContext).topK).toBe(40);
  });

  it('turns client seeds into unsigned 64-bit seeds, the same every time', () => {
    expect(toSamplingParams({ seed: 42 }, chatContext).seed).toBe(42n);
    expect(toSamplingParams({ seed: -1 }, chatContext).seed).toBe(2n ** 64n - 1n);
    expect(toSamplingParams({ seed: 42 }, chatContext).seed).toBe(toSamplingParams({ seed: 42 }, chatContext).seed);
  });

  it('normalizes a single stop string to a list and passes logprobs through', () => {
    expect(toSamplingParams({ stop: 'END' }, chatContext).stop).toEqual(['END']);
    expect(toSamplingParams({}, { ...chatContext, logprobs: 3 }).logprobs).toBe(3);
  });

  it('rejects a prompt that leaves no room to generate, naming the prompt field', () => {
    for (const promptTokens of [1000, 1001]) {
      let caught: unknown;
      try {
        toSamplingParams({}, { ...chatContext, promptTokens, promptParam: 'prompt' });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ApiError);
      expect((caught as ApiError).status).toBe(400);
      expect((caught as ApiError).param).toBe('prompt');
      expect((caught as ApiError).message).toContain(`However, your request has ${promptTokens} input tokens`);
    }
    expect(toSamplingParams({}, { ...chatContext, promptTokens: 999 }).maxTokens).toBe(1);
  });
});
