/**
 * `updraft serve`: load the model, start the OpenAI-compatible server, stop cleanly on SIGINT/SIGTERM.
 */
import { createApp, type AppOptions } from '../api/app.ts';
import type { PromptLogger } from '../api/request-scope.ts';
import { startServer, type ServerOptions } from '../api/server.ts';
import { DEFAULT_HUB_MODEL } from '../config.ts';
import type { ServeConfig } from '../config.ts';
import { apiLoggerFrom, createLogger, isPrettyFormat, type Logger } from '../logging/logger.ts';
import { formatBytes } from '../model/memory.ts';
import { startRuntime } from '../runtime.ts';
import { createProgressDisplay } from './progress.ts';
import { detectToolCallParser, TOOL_CALL_PARSER_NAMES, type ToolCallParserName } from '../tools/index.ts';

export async function serve(config: ServeConfig, logger: Logger = createLogger({ level: config.logLevel, format: config.logFormat })): Promise<number> {
  const log = (message: string) => logger.info(message);
  // A progress bar on a terminal; otherwise periodic log lines (with the numbers as fields in JSON logs).
  const pretty = isPrettyFormat({ format: config.logFormat });
  const progress = createProgressDisplay(
    pretty && process.stderr.isTTY ? {} : { tty: false, writeLine: (text, fields) => (pretty ? logger.info(text) : logger.info(fields, text)) },
  );
  if (config.model === '') {
    config.model = DEFAULT_HUB_MODEL;
    log(`no --model given (nor UPDRAFT_MODEL): using ${DEFAULT_HUB_MODEL} from the Hugging Face Hub`);
  }
  let runtime;
  try {
    runtime = await startRuntime(config, {
      log,
      progress,
      onStepError: (error) => logger.error({ err: error }, 'a model step failed; its requests were failed, the engine carries on'),
      onLoopError: (error) => logger.error({ err: error }, 'the engine loop failed; its requests were failed and it restarted'),
    });
  } catch (error) {
    logger.error(`updraft: could not load ${config.model}: ${(error as Error).message}`);
    return 1;
  }
  const guards = guardOptions(config, (entry) => logger.info(entry, 'prompt and output (--log-prompts)'));
  const app = createApp(runtime.service, {
    ...guards.app,
    logger: apiLoggerFrom(logger),
    requestLog: logger,
    maxRequestBodyBytes: config.maxRequestBodyBytes,
    maxN: config.maxN,
    toolCallParser: toolCallParserOption(config.toolCallParser),
  });
  const server = await startServer(app, guards.server);
  const { model } = runtime;
  const kvTokens = (model.numKvBlocks - 1) * model.blockSize;
  if (!pretty) {
    // One structured line for log pipelines; the text banner below is for people.
    logger.info(
      { model: runtime.service.model.id, dir: model.resolved.dir, architecture: model.config.architecture, device: model.deviceInfo.name, backend: model.deviceInfo.backend, kvCacheTokens: kvTokens, kvCacheDtype: model.kvCacheDtype, maxModelLen: model.maxModelLen, url: server.url },
      `updraft serving ${runtime.service.model.id} on ${server.url}`,
    );
  } else log(
    [
      `updraft serving ${runtime.service.model.id}`,
      `  model:    ${model.config.architecture}, ${model.config.numLayers} layers, from ${model.resolved.dir}`,
      `  device:   ${model.deviceInfo.name} (${model.deviceInfo.backend})`,
      `  memory:   ${formatBytes(model.memory.weight)} weights, ${formatBytes(model.memory.state)} ${model.kvCacheDtype} KV cache = ${kvTokens} tokens in ${model.numKvBlocks - 1} blocks of ${model.blockSize}`,
      `  context:  ${model.maxModelLen} tokens; up to ${model.limits.maxNumSeqs} sequences and ${model.limits.maxNumTokens} tokens per step`,
      `  tools:    ${describeToolParsing(config.toolCallParser, runtime.service.chatTemplateSource)}`,
      `  listening on ${server.url}  (try: curl ${server.url}/v1/models)`,
      `  chat in a browser at ${server.url}/ ; Prometheus metrics at ${server.url}/metrics`,
    ].join('\n'),
  );

  // Graceful shutdown: stop accepting (new connections are refused, new requests on open ones get
  // 503), let in-flight requests and streams finish for up to --shutdown-timeout, then abort what is
  // left (each client gets an error, not a silent cut), free the device and exit 0. A second signal
  // aborts at once.
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const abortAll = () => void runtime.engine.stop();
    const stop = async (signal: string) => {
      if (stopping) {
        log(`${signal} again: aborting in-flight requests now`);
        abortAll();
        return;
      }
      stopping = true;
      // Close the listening socket first (synchronously, inside close()), then say so: whoever reads
      // the line may connect at once and must be refused.
      const closed = server.close();
      log(`${signal}: no longer accepting requests; draining in-flight requests for up to ${config.shutdownTimeout} s`);
      const cut = setTimeout(() => {
        log(`shutdown timeout (${config.shutdownTimeout} s): aborting the requests still running`);
        abortAll();
      }, config.shutdownTimeout * 1000);
      try {
        await closed;
      } catch (error) {
        logger.error({ err: error }, 'closing the HTTP server failed');
      }
      clearTimeout(cut);
      await runtime.close();
      log('stopped');
      resolve(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  });
}

/**
 * What the reliability and security flags set in the app and the HTTP server (the e2e harness builds
 * its server from these too). `promptLog` receives prompts and outputs only with --log-prompts.
 */
export function guardOptions(config: ServeConfig, promptLog: PromptLogger | null = null): { app: AppOptions; server: ServerOptions } {
  return {
    app: {
      maxRequestBodyBytes: config.maxRequestBodyBytes,
      maxN: config.maxN,
      apiKeys: config.apiKeys,
      publicHealth: config.publicHealth,
      corsOrigins: config.corsOrigins,
      readTimeoutMs: config.readTimeout * 1000,
      promptLog: config.logPrompts ? promptLog : null,
    },
    server: {
      host: config.host,
      port: config.port,
      readTimeoutMs: config.readTimeout * 1000,
      // The engine aborts what is left at --shutdown-timeout; connections still open a little later are cut.
      shutdownGraceMs: config.shutdownTimeout * 1000 + 2_000,
    },
  };
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
