/**
 * One streaming request to an OpenAI-compatible server, timed the way `vllm bench serve` times it:
 * the clock starts when the request is sent; TTFT is the arrival of the first chunk carrying text; every
 * later text chunk adds one inter-token latency (the gap since the previous one); the latency ends with
 * the stream. Chunks without text (chat's opening role chunk, the finish chunk, the usage chunk) are not
 * tokens. Output tokens come from the usage chunk (stream_options.include_usage) when the server sends
 * one. node:http with a keep-alive agent: less overhead per chunk than fetch's web streams, which matters
 * with a thousand concurrent streams in one client process.
 */
import http from 'node:http';
import https from 'node:https';
import { SseReader } from './sse.ts';

export type Backend = 'openai' | 'openai-chat';

export interface RequestInput {
  prompt: string | number[];
  /** max_tokens. */
  expectedOutputLen: number;
}

export interface RequestOutput {
  success: boolean;
  /** '' when it succeeded. */
  error: string;
  /** When it was sent, seconds on the performance clock. */
  startTime: number;
  /** Seconds; 0 when no token came. */
  ttft: number;
  /** Seconds from sending to the end of the stream. */
  latency: number;
  /** Seconds between successive text chunks. */
  itl: number[];
  /** usage.completion_tokens / prompt_tokens when the server reported them. */
  usageOutputTokens: number | null;
  usagePromptTokens: number | null;
  /** Chunks that carried text. */
  textChunks: number;
  generatedText: string;
}

export interface ClientOptions {
  /** The full URL of the endpoint, e.g. http://127.0.0.1:8000/v1/completions. */
  url: URL;
  backend: Backend;
  model: string;
  ignoreEos: boolean;
  /** Merged into every body last (sampling settings, vendor fields). */
  extraBody: Record<string, unknown>;
  headers: Record<string, string>;
}

interface StreamChunk {
  choices?: { text?: string | null; delta?: { content?: string | null; reasoning_content?: string | null } | null; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string } | string;
}

const now = () => performance.now() / 1000;

export class BenchClient {
  readonly options: ClientOptions;
  readonly #agent: http.Agent;
  readonly #request: typeof http.request;

  constructor(options: ClientOptions) {
    this.options = options;
    const secure = options.url.protocol === 'https:';
    this.#agent = secure ? new https.Agent({ keepAlive: true, maxSockets: Infinity }) : new http.Agent({ keepAlive: true, maxSockets: Infinity });
    this.#request = secure ? https.request : http.request;
  }

  body(input: RequestInput): Record<string, unknown> {
    const { backend, model, ignoreEos, extraBody } = this.options;
    const common = {
      model,
      stream: true,
      stream_options: { include_usage: true },
      ...(ignoreEos ? { ignore_eos: true } : {}),
    };
    if (backend === 'openai-chat') {
      if (typeof input.prompt !== 'string') throw new TypeError('chat requests need text prompts');
      return { ...common, messages: [{ role: 'user', content: input.prompt }], max_completion_tokens: input.expectedOutputLen, ...extraBody };
    }
    return { ...common, prompt: input.prompt, max_tokens: input.expectedOutputLen, ...extraBody };
  }

  send(input: RequestInput, signal?: AbortSignal): Promise<RequestOutput> {
    const payload = Buffer.from(JSON.stringify(this.body(input)));
    const output: RequestOutput = {
      success: false,
      error: '',
      startTime: 0,
      ttft: 0,
      latency: 0,
      itl: [],
      usageOutputTokens: null,
      usagePromptTokens: null,
      textChunks: 0,
      generatedText: '',
    };
    return new Promise<RequestOutput>((resolve) => {
      let settled = false;
      let last = 0;
      let sawDone = false;
      let sawFinish = false;
      const finish = (error: string) => {
        if (settled) return;
        settled = true;
        output.latency = now() - output.startTime;
        if (error === '' && !sawDone && !sawFinish) error = 'the stream ended before [DONE]';
        output.success = error === '';
        output.error = error;
        signal?.removeEventListener('abort', onAbort);
        resolve(output);
      };
      const onData = (data: string) => {
        if (settled) return;
        if (data === '[DONE]') {
          sawDone = true;
          return;
        }
        let chunk: StreamChunk;
        try {
          chunk = JSON.parse(data) as StreamChunk;
        } catch {
          finish(`not JSON in the stream: ${data.slice(0, 200)}`);
          request.destroy();
          return;
        }
        if (chunk.error !== undefined && chunk.error !== null) {
          finish(`error in the stream: ${typeof chunk.error === 'string' ? chunk.error : (chunk.error.message ?? JSON.stringify(chunk.error))}`);
          request.destroy();
          return;
        }
        const choice = chunk.choices?.[0];
        if (choice !== undefined) {
          const text = choice.text ?? choice.delta?.content ?? choice.delta?.reasoning_content ?? '';
          if (text !== '') {
            const t = now();
            if (output.textChunks === 0) output.ttft = t - output.startTime;
            else output.itl.push(t - last);
            last = t;
            output.textChunks++;
            output.generatedText += text;
          }
          if (choice.finish_reason) sawFinish = true;
        }
        if (chunk.usage) {
          if (typeof chunk.usage.completion_tokens === 'number') output.usageOutputTokens = chunk.usage.completion_tokens;
          if (typeof chunk.usage.prompt_tokens === 'number') output.usagePromptTokens = chunk.usage.prompt_tokens;
        }
      };
      const headers: Record<string, string | number> = {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        'content-length': payload.length,
        ...this.options.headers,
      };
      const request = this.#request(this.options.url, { method: 'POST', agent: this.#agent, headers }, (response) => {
        response.setEncoding('utf8');
        if (response.statusCode !== 200) {
          let body = '';
          response.on('data', (text: string) => {
            if (body.length < 2000) body += text;
          });
          response.on('end', () => finish(`HTTP ${response.statusCode}: ${errorMessage(body)}`));
          response.on('error', (error) => finish(`HTTP ${response.statusCode}: ${error.message}`));
          return;
        }
        const reader = new SseReader(onData);
        response.on('data', (text: string) => reader.feed(text));
        response.on('end', () => {
          reader.end();
          finish('');
        });
        response.on('error', (error) => finish(`connection error mid-stream: ${error.message}`));
        // After 'end' this does nothing; without one, the connection broke mid-stream.
        response.on('close', () => finish('the connection closed mid-stream'));
      });
      const onAbort = () => {
        finish(`aborted: ${signal?.reason instanceof Error ? signal.reason.message : String(signal?.reason ?? 'cancelled')}`);
        request.destroy();
      };
      request.on('error', (error) => finish(`request failed: ${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`.trim()));
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      output.startTime = now();
      request.end(payload);
    });
  }

  /** GET a JSON document from the server (e.g. /v1/models). */
  getJson(path: string): Promise<unknown> {
    const url = new URL(path, this.options.url);
    return new Promise((resolve, reject) => {
      const request = this.#request(url, { method: 'GET', agent: this.#agent, headers: this.options.headers }, (response) => {
        response.setEncoding('utf8');
        let body = '';
        response.on('data', (text: string) => (body += text));
        response.on('end', () => {
          if (response.statusCode !== 200) return reject(new Error(`GET ${url.pathname}: HTTP ${response.statusCode}: ${errorMessage(body)}`));
          try {
            resolve(JSON.parse(body));
          } catch {
            reject(new Error(`GET ${url.pathname}: not JSON`));
          }
        });
      });
      request.on('error', reject);
      request.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** The message of an OpenAI-style error body, else the body's start. */
function errorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } | string; message?: string };
    const error = parsed.error;
    if (typeof error === 'string') return error;
    if (error?.message) return error.message;
    if (parsed.message) return parsed.message;
  } catch {
    // not JSON: fall through
  }
  return body.slice(0, 300).trim();
}
