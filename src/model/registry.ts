/**
 * Architecture name (config.json `architectures[0]`) → how to read its config and build its step.
 * Adding an architecture: a module in models/ exporting a ModelArchitecture, one line in ARCHITECTURES,
 * and its name in hf-config's SUPPORTED_ARCHITECTURES (or its own parseConfig).
 */
import type { ProgramSpec } from '../device/program.ts';
import { llamaArchitecture } from '../../models/llama.ts';
import type { DecoderBuildOptions } from '../../models/llama.ts';
export type { DecoderBuildOptions } from '../../models/llama.ts';
import { mistralArchitecture } from '../../models/mistral.ts';
import { qwen2Architecture } from '../../models/qwen2.ts';
import { SUPPORTED_ARCHITECTURES } from './hf-config.ts';
import type { DecoderArchitecture, DecoderConfig } from './hf-config.ts';

export interface ModelArchitecture {
  name: DecoderArchitecture;
  /** config.json contents → typed config; throws ConfigError with the reason. */
  parseConfig(raw: unknown, source?: string): DecoderConfig;
  buildProgram(cfg: DecoderConfig, opts: DecoderBuildOptions): ProgramSpec;
}

export const ARCHITECTURES: Readonly<Record<DecoderArchitecture, ModelArchitecture>> = {
  LlamaForCausalLM: llamaArchitecture,
  MistralForCausalLM: mistralArchitecture,
  Qwen2ForCausalLM: qwen2Architecture,
};

export function architectureFor(name: string): ModelArchitecture {
  const entry = (ARCHITECTURES as Record<string, ModelArchitecture | undefined>)[name];
  if (!entry) throw new Error(`architecture ${name} is not supported; supported architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}`);
  return entry;
}

/** Builds the step program of a parsed config with its architecture's builder. */
export function buildModelProgram(cfg: DecoderConfig, opts: DecoderBuildOptions): ProgramSpec {
  return architectureFor(cfg.architecture).buildProgram(cfg, opts);
}
