/**
 * Starts the real app over a FakeInferenceService on a real socket (port 0) for route tests.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import OpenAI from 'openai';
import { createApp, type AppOptions } from '../../../src/api/app.ts';
import type { ApiLogger } from '../../../src/api/errors.ts';
import { startServer, type RunningServer } from '../../../src/api/server.ts';
import { FakeInferenceService, type FakeServiceOptions } from '../../helpers/fake-service.ts';

export interface TestServer {
  service: FakeInferenceService;
  url: string;
  /** Every logger.error call, so tests can assert that bugs are logged (and nothing else is). */
  loggedErrors: Array<{ message: string; details: Record<string, unknown> | undefined }>;
  /** An OpenAI SDK client pointed at the server, with retries off so errors surface at once. */
  client: OpenAI;
  server: RunningServer;
  close(): Promise<void>;
}

export async function startTestServer(serviceOptions: FakeServiceOptions = {}, appOptions: AppOptions = {}): Promise<TestServer> {
  const service = new FakeInferenceService(serviceOptions);
  const loggedErrors: TestServer['loggedErrors'] = [];
  const logger: ApiLogger = { error: (message, details) => loggedErrors.push({ message, details }) };
  const app = createApp(service, { logger, ...appOptions });
  const server = await startServer(app, { host: '127.0.0.1', port: 0, shutdownGraceMs: 200 });
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'x', maxRetries: 0 });
  return { service, url: server.url, loggedErrors, client, server, close: () => server.close() };
}

/** POST with a JSON body (a string is sent as is, e.g. broken JSON). */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body exactly as it came off the socket (chunked framing removed by node). */
  text: string;
}

/** A plain node:http request, to see headers (e.g. connection) and bytes that fetch would normalize. */
export function rawRequest(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(options.body);
  });
}
