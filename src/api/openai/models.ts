/**
 * GET /v1/models and /v1/models/:id, and the check that a request names the served model.
 */
import type { Context } from 'hono';
import type { ModelCard } from '../../engine/inference-service.ts';
import type { ApiDeps, ApiEnv } from '../context.ts';
import { modelNotFound } from '../errors.ts';

/** OpenAI's model object plus vLLM's extras (root, parent, max_model_len). */
export interface OpenAIModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  root: string;
  parent: null;
  max_model_len: number;
}

export function toOpenAIModel(card: ModelCard): OpenAIModel {
  return { id: card.id, object: 'model', created: card.created, owned_by: 'updraft', root: card.root, parent: null, max_model_len: card.maxModelLen };
}

export function listModelsHandler(deps: ApiDeps) {
  return (c: Context<ApiEnv>) => c.json({ object: 'list', data: [toOpenAIModel(deps.service.model)] });
}

export function retrieveModelHandler(deps: ApiDeps) {
  return (c: Context<ApiEnv>) => {
    // The route captures the rest of the path, so hub ids with a slash work with or without %2F.
    const id = c.req.param('id') ?? '';
    requireServedModel(deps.service.model, id);
    return c.json(toOpenAIModel(deps.service.model));
  };
}

/** `model` is optional, as in vLLM (the one served model is meant); a different name is a 404. */
export function requireServedModel(card: ModelCard, requested: string | null | undefined): void {
  if (requested !== null && requested !== undefined && requested !== card.id) throw modelNotFound(requested);
}
