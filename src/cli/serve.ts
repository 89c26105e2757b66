/**
 * `updraft serve`: load the model, start the OpenAI-compatible server, stop cleanly on SIGINT/SIGTERM.
 */
import { createApp } from '../api/app.ts';
import { startServer } from '../api/server.ts';
import { DEFAULT_HUB_MODEL } from '../config.ts';
import type { ServeConfig } from '../config.ts';
import { formatBytes } from '../model/memory.ts';
import { startRuntime } from '../runtime.ts';
import { detectToolCallParser, TOOL_CALL_PARSER_NAMES, type ToolCallParserName } from '../tools/index.ts';

export async function serve(config: ServeConfig, log: (message: string) => void = (m) => console.error(m)): Promise<number> {
  if (config.model === '') {
    config.model = DEFAULT_HUB_MODEL;
    log(`no --model given (nor UPDRAFT_MODEL): using ${DEFAULT_HUB_MODEL} from the Hugging Face Hub`);
  }
  let runtime;
  try {
    runtime = await startRuntime(config, { log });
  } catch (error) {
    log(`updraft: could not load ${config.model}: ${(error as Error).message}`);
    return 1;
  }
  const app = createApp(runtime.service, {
    maxRequestBodyBytes: config.maxRequestBodyBytes,
    maxN: config.maxN,
    toolCallParser: toolCallParserOption(config.toolCallParser),
  });
  const server = await startServer(app, { host: config.host, port: config.port });
  const { model } = runtime;
  const kvTokens = (model.numKvBlocks - 1) * model.blockSize;
  log(
    [
      `updraft serving ${runtime.service.model.id}`,
      `  model:    ${model.config.architecture}, ${model.config.numLayers} layers, from ${model.resolved.dir}`,
      `  device:   ${model.deviceInfo.name} (${model.deviceInfo.backend})`,
      `  memory:   ${formatBytes(model.memory.weight)} weights, ${formatBytes(model.memory.state)} KV cache = ${kvTokens} tokens in ${model.numKvBlocks - 1} blocks of ${model.blockSize}`,
      `  context:  ${model.maxModelLen} tokens; up to ${config.maxNumSeqs} sequences and ${config.maxNumBatchedTokens} tokens per step`,
      `  tools:    ${describeToolParsing(config.toolCallParser, runtime.service.chatTemplateSource)}`,
      `  listening on ${server.url}  (try: curl ${server.url}/v1/models)`,
    ].join('\n'),
  );

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log(`${signal}: no longer accepting requests; draining`);
      await server.close();
      await runtime.close();
      log('stopped');
      resolve(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}

/** The flag's value (already one of the choices the flag table lists) as a parser name. */
function toolCallParserOption(value: string | null): ToolCallParserName | null {
  return TOOL_CALL_PARSER_NAMES.find((name) => name === value) ?? null;
}

function describeToolParsing(flag: string | null, templateSource: string | null): string {
  if (flag !== null) return `${flag} tool-call format (--tool-call-parser)`;
  const detected = detectToolCallParser(templateSource);
  return detected === null ? 'no tool-call format in the chat template (requests with tools get a 400; see --tool-call-parser)' : `${detected} tool-call format (from the chat template)`;
}
