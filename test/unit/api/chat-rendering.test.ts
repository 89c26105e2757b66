/**
 * The production service's chat rendering with real tokenizers and templates: the developer role,
 * continue_final_message, and tools rendered into the Llama 3.2 and Qwen2.5 templates (whose formats
 * the tool-call parsers read back).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EngineCore } from '../../../src/engine/engine.ts';
import { ServiceError, type ChatMessage } from '../../../src/engine/inference-service.ts';
import { LocalInferenceService } from '../../../src/engine/local-service.ts';
import { detectToolCallParser, parseToolCalls } from '../../../src/tools/index.ts';
import { TextTokenizer } from '../../../src/tokenizer/index.ts';
import { TOK512_DIR } from '../../fixtures/tiny-models.ts';
import { HAS_SHARED_MODELS, SHARED_MODELS } from '../../helpers/paths.ts';

const CARD = { id: 'm', root: '/m', created: 0, maxModelLen: 4096 };
/** renderChat never touches the engine. */
const NO_ENGINE = {} as unknown as EngineCore;

async function serviceWith(dir: string, chatTemplate?: string): Promise<LocalInferenceService> {
  return new LocalInferenceService(CARD, NO_ENGINE, await TextTokenizer.fromDirectory(dir, { chatTemplate: chatTemplate ?? null }));
}

const ROLES_TEMPLATE = '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}';
const DEVELOPER_TEMPLATE = "{% for m in messages %}{% if m.role == 'developer' %}[dev]{% else %}[{{ m.role }}]{% endif %}{{ m.content }}{% endfor %}";
const CHATML = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

describe('developer role', () => {
  it('becomes system for templates that do not know it, and stays for those that do', async () => {
    const messages: ChatMessage[] = [
      { role: 'developer', content: 'Rules' },
      { role: 'user', content: 'Hi' },
    ];
    expect((await (await serviceWith(TOK512_DIR, ROLES_TEMPLATE)).renderChat(messages, { addGenerationPrompt: false })).prompt).toBe('[system]Rules[user]Hi');
    expect((await (await serviceWith(TOK512_DIR, DEVELOPER_TEMPLATE)).renderChat(messages, { addGenerationPrompt: false })).prompt).toBe('[dev]Rules[user]Hi');
  });
});

describe('continue_final_message', () => {
  const messages: ChatMessage[] = [
    { role: 'user', content: 'Tell a story.' },
    { role: 'assistant', content: 'Once upon a' },
  ];

  it('ends the prompt inside the final message (no end-of-turn), tokens included', async () => {
    const service = await serviceWith(TOK512_DIR, CHATML);
    const open = await service.renderChat(messages, { addGenerationPrompt: false, continueFinalMessage: true });
    expect(open.prompt).toBe('<|im_start|>user\nTell a story.<|im_end|>\n<|im_start|>assistant\nOnce upon a');
    const closed = await service.renderChat(messages, { addGenerationPrompt: false });
    expect(closed.prompt.endsWith('Once upon a<|im_end|>\n')).toBe(true);
    expect(open.promptTokenIds).toEqual(await service.encode(open.prompt));
  });

  it('is a 400 naming continue_final_message when the template drops the final message', async () => {
    const service = await serviceWith(TOK512_DIR, '{% for m in messages %}{{ m.role }}{% endfor %}');
    let caught: unknown;
    try {
      await service.renderChat(messages, { addGenerationPrompt: false, continueFinalMessage: true });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ServiceError);
    expect(caught).toMatchObject({ kind: 'invalid_request', param: 'continue_final_message' });
  });
});

describe.skipIf(!HAS_SHARED_MODELS)('tools in the real templates (../shared/tokenizers)', () => {
  const tools = [
    {
      type: 'function',
      function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
    },
  ];
  const history: ChatMessage[] = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
    { role: 'tool', content: '{"temperature": 18}', tool_call_id: 'call_1' },
  ];
  const tokenizerDir = (family: string) => join(SHARED_MODELS, '..', 'tokenizers', family);

  it('Llama 3.2: tools in the first user turn, the call as {"name", "parameters"}, the result as ipython', async () => {
    const service = await serviceWith(tokenizerDir('llama3.2'));
    const { prompt } = await service.renderChat(history, { addGenerationPrompt: true, tools, templateKwargs: { date_string: '01 Jan 2025' } });
    expect(prompt).toContain('Environment: ipython');
    expect(prompt).toContain('"name": "get_weather"');
    expect(prompt).toContain('Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.');
    expect(prompt).toContain('<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>');
    // As in transformers: a string is iterable to Jinja, so the template prints the result with tojson.
    expect(prompt).toContain('<|start_header_id|>ipython<|end_header_id|>\n\n"{\\"temperature\\": 18}"<|eot_id|>');
    expect(prompt.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
    expect(detectToolCallParser(service.chatTemplateSource)).toBe('llama3_json');
    // The format the template shows the model is the one the parser reads.
    const shown = '{"name": "get_weather", "parameters": {"city": "Paris"}}';
    expect(parseToolCalls('llama3_json', shown, { toolNames: new Set(['get_weather']), maxCalls: Infinity }).calls).toEqual([{ name: 'get_weather', arguments: '{"city": "Paris"}' }]);
  });

  it('Qwen2.5: tools in <tools>, the call in <tool_call> tags, the result in <tool_response>', async () => {
    const service = await serviceWith(tokenizerDir('qwen2.5'));
    const { prompt, promptTokenIds } = await service.renderChat(history, { addGenerationPrompt: true, tools });
    expect(prompt).toContain('<tools>\n{"type": "function", "function": {"name": "get_weather"');
    expect(prompt).toContain('<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>');
    expect(prompt).toContain('<|im_start|>user\n<tool_response>\n{"temperature": 18}\n</tool_response><|im_end|>');
    expect(promptTokenIds.length).toBeGreaterThan(50);
    expect(detectToolCallParser(service.chatTemplateSource)).toBe('hermes');
    const shown = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';
    expect(parseToolCalls('hermes', shown, { toolNames: null, maxCalls: Infinity }).calls).toEqual([{ name: 'get_weather', arguments: '{"city": "Paris"}' }]);
  });

  it('Qwen2.5 maps developer to system (its template does not know developer)', async () => {
    const service = await serviceWith(tokenizerDir('qwen2.5'));
    const { prompt } = await service.renderChat([{ role: 'developer', content: 'Answer in French.' }, { role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
    expect(prompt.startsWith('<|im_start|>system\nAnswer in French.<|im_end|>')).toBe(true);
  });
});
