/**
 * Turns argv and the environment into a ServeConfig, from the flag table in src/config.ts.
 * Precedence: flag > UPDRAFT_<FLAG> environment variable > --config file (UPDRAFT_CONFIG) > default.
 */
import { parseArgs } from 'node:util';
import { configValueText, readConfigFile, type ConfigFileValue } from './config-file.ts';
import {
  ConfigError,
  SERVE_FLAGS,
  defaultServeConfig,
  parseBytes,
  validateServeConfig,
  type FlagSpec,
  type ServeConfig,
} from '../config.ts';

export function envName(flag: string): string {
  return `UPDRAFT_${flag.toUpperCase().replaceAll('-', '_')}`;
}

function convert(spec: FlagSpec, raw: string | boolean, source: string): ServeConfig[keyof ServeConfig] {
  if (spec.type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new ConfigError(`${source} must be true or false, got "${raw}"`);
  }
  const text = String(raw);
  switch (spec.type) {
    case 'list':
      return splitList(text);
    case 'string':
      if (spec.choices && !spec.choices.includes(text)) {
        throw new ConfigError(`${source} must be one of ${spec.choices.join(', ')}; got "${text}"`);
      }
      return text;
    case 'int': {
      if (!/^-?\d+$/.test(text)) throw new ConfigError(`${source} must be an integer, got "${text}"`);
      return Number(text);
    }
    case 'number': {
      const value = Number(text);
      if (text.trim() === '' || !Number.isFinite(value)) throw new ConfigError(`${source} must be a number, got "${text}"`);
      return value;
    }
    case 'bytes':
      return parseBytes(text);
  }
}

/** "a, b,,c" → ['a', 'b', 'c']. */
function splitList(text: string): string[] {
  return text.split(',').map((item) => item.trim()).filter((item) => item !== '');
}

export interface ParsedServeArgs {
  config: ServeConfig;
  help: boolean;
}

export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedServeArgs {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { help: { type: 'boolean' } };
  for (const spec of SERVE_FLAGS) {
    options[spec.flag] = { type: spec.type === 'boolean' ? 'boolean' : 'string', ...(spec.type === 'list' ? { multiple: true } : {}) };
    if (spec.type === 'boolean') options[`no-${spec.flag}`] = { type: 'boolean' };
  }
  options['config'] = { type: 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const config = defaultServeConfig();
  const writable = config as unknown as Record<string, unknown>;
  // --config FILE (or UPDRAFT_CONFIG): under the environment and the flags (null there: the default).
  const configPath = (parsed.values['config'] as string | undefined) ?? (env['UPDRAFT_CONFIG'] || undefined);
  const fromFile = configPath === undefined ? new Map<string, ConfigFileValue>() : readConfigFile(configPath);
  for (const spec of SERVE_FLAGS) {
    const fromFileValue = fromFile.get(spec.flag);
    if (fromFileValue !== undefined && fromFileValue !== null) writable[spec.key] = convert(spec, configValueText(fromFileValue), `${spec.flag} in ${configPath}`);
    const fromEnv = env[envName(spec.flag)];
    if (fromEnv !== undefined && fromEnv !== '') writable[spec.key] = convert(spec, fromEnv, envName(spec.flag));
    const fromFlag = parsed.values[spec.flag];
    if (Array.isArray(fromFlag)) writable[spec.key] = fromFlag.flatMap((item) => splitList(String(item)));
    else if (fromFlag !== undefined) writable[spec.key] = convert(spec, fromFlag, `--${spec.flag}`);
    if (spec.type === 'boolean' && parsed.values[`no-${spec.flag}`]) writable[spec.key] = false;
  }
  if (parsed.positionals.length > 1) throw new ConfigError(`unexpected arguments: ${parsed.positionals.slice(1).join(' ')}`);
  if (parsed.positionals.length === 1) {
    if (parsed.values.model !== undefined) throw new ConfigError('give the model either as an argument or with --model, not both');
    config.model = parsed.positionals[0]!;
  }
  validateServeConfig(config);
  return { config, help: parsed.values.help === true };
}

export function serveHelp(): string {
  const defaults = defaultServeConfig() as unknown as Record<string, unknown>;
  const lines = [
    'Usage: updraft serve [MODEL] [options]',
    '',
    'Serves an OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models, /health).',
    'MODEL is a local folder (config.json, *.safetensors, tokenizer.json) or a Hugging Face Hub id.',
    '',
    'Options (each also settable as the environment variable shown):',
  ];
  for (const spec of SERVE_FLAGS) {
    const value = defaults[spec.key];
    const shown = value === null || value === '' || (Array.isArray(value) && value.length === 0) ? '' : ` (default: ${String(value)})`;
    const arg = spec.type === 'boolean' ? '' : ` <${spec.choices ? spec.choices.join('|') : spec.type === 'list' ? 'a,b,...' : spec.type}>`;
    lines.push(`  --${spec.flag}${arg}`);
    lines.push(`      ${spec.help}${shown}  [${envName(spec.flag)}]`);
  }
  lines.push('  --config <file>', '      Settings from a JSON or flat YAML file (keys: the flag names); flags and variables win over it  [UPDRAFT_CONFIG]');
  lines.push('  --help', '      Show this help');
  return lines.join('\n');
}
