/**
 * The server's logger: pino, one JSON object per line on stderr (what log shippers want), or
 * pino-pretty's human-readable lines when stderr is a terminal.
 *
 * What is logged about a request: its ids, token counts, timings and finish reason
 * (src/metrics/instrument.ts), never its prompt or output text.
 */
import { pino } from 'pino';
import type { DestinationStream, Level, Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { ApiLogger } from '../api/errors.ts';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerOptions {
  level?: LogLevel;
  /** auto (default): pretty when the destination is a terminal, else JSON. */
  format?: LogFormat;
  /** Default: stderr. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stderr;
  const tty = isTty(destination);
  const format = options.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && tty);
  const settings = {
    level: options.level ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"info" rather than 30: what log shippers and people grep for.
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (pretty) {
    const stream = pinoPretty({
      destination,
      colorize: tty,
      sync: true,
      ignore: 'pid,hostname',
      // One line per record: the fields of a request line after its message.
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
    });
    return pino(settings, stream);
  }
  // Synchronous writes: nothing is lost when the process exits right after logging.
  const stream: DestinationStream = destination === process.stderr ? pino.destination({ dest: 2, sync: true }) : (destination as DestinationStream);
  return pino(settings, stream);
}

/** Whether the logger writes human-readable lines (then the CLI may print banners and bars as text). */
export function isPrettyFormat(options: LoggerOptions = {}): boolean {
  const format = options.format ?? 'auto';
  return format === 'pretty' || (format === 'auto' && isTty(options.destination ?? process.stderr));
}

/** A logger that drops everything (tests, embedding). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** The API's error reporter (unexpected errors, with details) writing to the logger. */
export function apiLoggerFrom(logger: Logger): ApiLogger {
  return { error: (message, details) => logger.error(details ?? {}, message) };
}

export function isLogLevel(value: string): value is Level | 'silent' {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

function isTty(stream: NodeJS.WritableStream): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}
