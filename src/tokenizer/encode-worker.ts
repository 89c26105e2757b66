/**
 * A tokenizer worker of the encode pool (encode-pool.ts): loads the tokenizer once from the files the
 * main thread's tokenizer came from, then encodes the texts it is sent, one message each, answering with
 * the ids in a transferred Int32Array.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EncodeWorkerData, WorkerReply, WorkerRequest } from './encode-pool.ts';
import { TextTokenizer } from './tokenizer.ts';
import { readTokenizerFiles } from './tokenizer-files.ts';

const port = parentPort!;
const data = workerData as EncodeWorkerData;
try {
  const files = typeof data.source === 'string' ? await readTokenizerFiles(data.source) : data.source;
  const tokenizer = new TextTokenizer(files, { name: typeof data.source === 'string' ? data.source : 'the tokenizer' });
  port.on('message', (request: WorkerRequest) => {
    let reply: WorkerReply;
    try {
      const ids = Int32Array.from(tokenizer.encode(request.text, { addSpecialTokens: request.addSpecialTokens }));
      reply = { id: request.id, ids };
      port.postMessage(reply, [ids.buffer]);
    } catch (error) {
      reply = { id: request.id, error: error instanceof Error ? error.message : String(error) };
      port.postMessage(reply);
    }
  });
  port.postMessage({ ready: true });
} catch (error) {
  port.postMessage({ ready: false, error: error instanceof Error ? error.message : String(error) });
}
