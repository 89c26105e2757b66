import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../../src/engine/inference-service.ts';
import { ChatTemplate, detectContentFormat } from '../../../src/tokenizer/chat-template.ts';
import { ChatTemplateError, NoChatTemplateError } from '../../../src/tokenizer/chat-template-errors.ts';
import { TextTokenizer } from '../../../src/tokenizer/tokenizer.ts';
import { readTokenizerFiles } from '../../../src/tokenizer/tokenizer-files.ts';
import { hasShared, loadTokenizer, NEEDS_SHARED, sharedPath, TOK512_DIR } from './helpers.ts';

const render = (source: string, messages: ChatMessage[], options: Partial<Parameters<ChatTemplate['render']>[1]> = {}): string =>
  new ChatTemplate(source).render(messages, { addGenerationPrompt: false, ...options });

const user = (content: ChatMessage['content']): ChatMessage => ({ role: 'user', content });

describe('ChatTemplate', () => {
  it('renders the variables transformers provides', () => {
    const source = '{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}{{ eos_token }}';
    expect(render(source, [user('hi')], { bosToken: '<s>', eosToken: '</s>', addGenerationPrompt: true })).toBe('<s>[user:hi]></s>');
    expect(render(source, [user('hi')], { bosToken: '<s>', eosToken: '</s>' })).toBe('<s>[user:hi]</s>');
  });

  it('leaves bos_token undefined for a model without one', () => {
    expect(render('{{ bos_token is defined }}', [], { bosToken: null })).toBe('false');
  });

  it('turns raise_exception into a ChatTemplateError carrying the message', () => {
    const template = new ChatTemplate("{% if messages|length == 0 %}{{ raise_exception('no messages!') }}{% endif %}ok");
    expect(() => template.render([], { addGenerationPrompt: false })).toThrow(ChatTemplateError);
    expect(() => template.render([], { addGenerationPrompt: false })).toThrow(/^no messages!$/);
    expect(template.render([user('x')], { addGenerationPrompt: false })).toBe('ok');
  });

  it('reports templates that do not compile or fail to render as ChatTemplateError', () => {
    expect(() => new ChatTemplate('{% for m in messages %}')).toThrow(ChatTemplateError);
    expect(() => render('{{ messages[0].content.nope() }}', [user('x')])).toThrow(ChatTemplateError);
  });

  it('gives strftime_now a fixed clock and English names, like Python in the C locale', () => {
    const now = new Date(2025, 2, 4, 15, 7, 9);
    expect(render("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d %H:%M:%S %p %j %%') }}", [], { now })).toBe(
      '04 Mar 2025|Tuesday March %-d 15:07:09 PM 063 %',
    );
  });

  it('prints tools with tojson, including indent', () => {
    const tools = [{ type: 'function', function: { name: 'f', parameters: { a: 1 } } }];
    expect(render('{{ tools | tojson }}', [], { tools })).toBe('[{"type": "function", "function": {"name": "f", "parameters": {"a": 1}}}]');
    expect(render('{{ tools[0].function.parameters | tojson(indent=2) }}', [], { tools })).toBe('{\n  "a": 1\n}');
    expect(render('{{ tools is defined }}', [])).toBe('false');
  });

  it('passes template kwargs through and keeps the builtin globals', () => {
    expect(render('{{ date_string }}|{{ enable_thinking }}|{{ range(3) | join(",") }}|{{ none is none }}', [], {
      templateKwargs: { date_string: '26 Jul 2024', enable_thinking: false },
    })).toBe('26 Jul 2024|false|0,1,2|true');
  });

  it('flattens text content parts (joined by newlines) for templates that expect strings', () => {
    const parts = [{ type: 'text', text: 'first' }, { type: 'text', text: 'second' }];
    expect(render('{{ messages[0].content }}', [user(parts)])).toBe('first\nsecond');
    expect(() => render('{{ messages[0].content }}', [user([{ type: 'image_url' }])])).toThrow(/image_url/);
  });

  it('gives content parts to templates that loop over them, wrapping plain strings', () => {
    const source = "{% for m in messages %}{% for part in m['content'] %}<{{ part.type }}:{{ part.text }}>{% endfor %}{% endfor %}";
    expect(detectContentFormat(source)).toBe('openai');
    expect(detectContentFormat('{{ messages[0].content }}')).toBe('string');
    expect(render(source, [user('plain'), user([{ type: 'text', text: 'part' }])])).toBe('<text:plain><text:part>');
  });

  it('leaves absent message fields out, so `in` tests work', () => {
    const message: ChatMessage = { role: 'assistant', content: 'x', tool_calls: undefined, name: undefined };
    expect(render("{{ 'tool_calls' in messages[0] }}{{ 'name' in messages[0] }}{{ 'role' in messages[0] }}", [message])).toBe('falsefalsetrue');
  });

  it('parses tool call arguments from their JSON string, as vLLM does for templates', () => {
    const message: ChatMessage = {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'a', type: 'function', function: { name: 'f', arguments: '{"city": "Paris"}' } },
        { id: 'b', type: 'function', function: { name: 'g', arguments: '' } },
      ],
    };
    const source = '{% for c in messages[0].tool_calls %}{{ c.function.name }}={{ c.function.arguments | tojson }};{% endfor %}';
    expect(render(source, [message])).toBe('f={"city": "Paris"};g={};');
  });
});

describe('TextTokenizer chat rendering on the committed tok512 fixture', () => {
  it('renders the story template and encodes it with a single BOS (the double-BOS case)', async () => {
    const tokenizer = await loadTokenizer(TOK512_DIR);
    const messages = [user('Once upon a time'), { role: 'assistant', content: 'there was a dog' }];
    const { prompt, promptTokenIds } = tokenizer.renderChat(messages, { addGenerationPrompt: true });
    // trim_blocks eats the template's newline between messages, in Python's Jinja as here.
    expect(prompt).toBe('<s>Once upon a timethere was a dog');
    // The template prints <s> itself; adding special tokens as well would give [1, 1, ...].
    expect(tokenizer.encode(prompt).slice(0, 2)).toEqual([1, 1]);
    expect(promptTokenIds.filter((id) => id === 1)).toEqual([1]);
    expect(promptTokenIds).toEqual(tokenizer.encode(prompt, { addSpecialTokens: false }));
    expect(promptTokenIds[0]).toBe(1);
  });

  it('adds the BOS a template leaves out, when the tokenizer adds one', async () => {
    const tokenizer = await TextTokenizer.fromDirectory(TOK512_DIR, { chatTemplate: '{% for m in messages %}{{ m.content }}{% endfor %}' });
    const { prompt, promptTokenIds } = tokenizer.renderChat([user('Once upon a time')], { addGenerationPrompt: true });
    expect(prompt).toBe('Once upon a time');
    expect(promptTokenIds).toEqual(tokenizer.encode('Once upon a time'));
    expect(promptTokenIds[0]).toBe(1);
  });

  it('throws NoChatTemplateError for a model without a template', async () => {
    const files = await readTokenizerFiles(TOK512_DIR);
    const tokenizer = new TextTokenizer({ ...files, chatTemplateJinja: null }, { name: 'tok512' });
    expect(tokenizer.chatTemplateSource).toBeNull();
    expect(() => tokenizer.renderChat([user('hi')], { addGenerationPrompt: true })).toThrow(NoChatTemplateError);
    expect(() => tokenizer.chatTemplate()).toThrow(ChatTemplateError);
    expect(() => tokenizer.chatTemplate()).toThrow(/tok512 has no chat template.*--chat-template/);
  });

  it("prefers chat_template.jinja, else tokenizer_config's template, picking 'default' from a list", async () => {
    const files = await readTokenizerFiles(TOK512_DIR);
    const config = (chat_template: unknown): TextTokenizer =>
      new TextTokenizer({ ...files, chatTemplateJinja: null, tokenizerConfig: { ...files.tokenizerConfig, chat_template } });
    expect(config('A{{ messages[0].content }}').renderChat([user('x')], { addGenerationPrompt: false }).prompt).toBe('Ax');
    const named = [
      { name: 'tool_use', template: 'T' },
      { name: 'default', template: 'D{{ messages[0].content }}' },
    ];
    expect(config(named).renderChat([user('x')], { addGenerationPrompt: false }).prompt).toBe('Dx');
    expect(new TextTokenizer({ ...files, tokenizerConfig: { ...files.tokenizerConfig, chat_template: 'ignored' } }).chatTemplateSource).toBe(
      files.chatTemplateJinja,
    );
  });

  it('takes a --chat-template override inline (escapes interpreted) or from a .jinja or .json file', async () => {
    const inline = await TextTokenizer.fromDirectory(TOK512_DIR, { chatTemplate: '{% for m in messages %}{{ m.content }}\\n{% endfor %}' });
    expect(inline.renderChat([user('a'), user('b')], { addGenerationPrompt: false }).prompt).toBe('a\nb\n');

    const dir = mkdtempSync(path.join(tmpdir(), 'updraft-template-'));
    writeFileSync(path.join(dir, 'story.jinja'), '[{{ messages[0].content }}]\n');
    writeFileSync(path.join(dir, 'story.json'), JSON.stringify({ chat_template: '({{ messages[0].content }})' }));
    const fromJinja = await TextTokenizer.fromDirectory(TOK512_DIR, { chatTemplate: path.join(dir, 'story.jinja') });
    expect(fromJinja.renderChat([user('a')], { addGenerationPrompt: false }).prompt).toBe('[a]');
    const fromJson = await TextTokenizer.fromDirectory(TOK512_DIR, { chatTemplate: path.join(dir, 'story.json') });
    expect(fromJson.renderChat([user('a')], { addGenerationPrompt: false }).prompt).toBe('(a)');

    await expect(TextTokenizer.fromDirectory(TOK512_DIR, { chatTemplate: path.join(dir, 'missing.jinja') })).rejects.toThrow(
      /looks like a file path/,
    );
  });
});

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

describe.skipIf(!hasShared('tokenizers/llama3.2'))(`llama3.2 chat template ${NEEDS_SHARED}`, () => {
  const load = (): Promise<TextTokenizer> => loadTokenizer(sharedPath('tokenizers/llama3.2'));

  it('renders tools into the first user message, with a fixed date, and one BOS', async () => {
    const tokenizer = await load();
    const { prompt, promptTokenIds } = tokenizer.renderChat(
      [{ role: 'system', content: 'Be brief.' }, user('Weather in Paris?')],
      { addGenerationPrompt: true, tools: TOOLS, now: new Date(2025, 2, 4) },
    );
    expect(prompt.startsWith('<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n')).toBe(true);
    expect(prompt).toContain('Cutting Knowledge Date: December 2023\nToday Date: 04 Mar 2025\n\nBe brief.<|eot_id|>');
    expect(prompt).toContain('<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions');
    // tojson(indent=4) of the tool, then the user's question.
    expect(prompt).toContain('{\n    "type": "function",\n    "function": {\n        "name": "get_weather",');
    expect(prompt).toContain('"required": [\n                "city"\n            ]');
    expect(prompt).toContain('}\n\nWeather in Paris?<|eot_id|>');
    expect(prompt.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
    expect(promptTokenIds[0]).toBe(128000);
    expect(promptTokenIds.filter((id) => id === 128000)).toHaveLength(1);
    expect(promptTokenIds.slice(-4)).toEqual(tokenizer.encode('<|start_header_id|>assistant<|end_header_id|>\n\n', { addSpecialTokens: false }));
    expect(tokenizer.decode(promptTokenIds)).toBe(prompt);
  });

  it('takes the date from a date_string template kwarg and renders a tool call and its result', async () => {
    const tokenizer = await load();
    const { prompt } = tokenizer.renderChat(
      [
        user('Weather in Paris?'),
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
        { role: 'tool', content: 'sunny', tool_call_id: 'c1' },
      ],
      { addGenerationPrompt: true, templateKwargs: { date_string: '26 Jul 2024' } },
    );
    expect(prompt).toContain('Today Date: 26 Jul 2024\n\n<|eot_id|>');
    expect(prompt).not.toContain('Environment: ipython');
    expect(prompt).toContain('<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>');
    // Python Jinja treats a string as iterable, so the template prints a tool result through tojson.
    expect(prompt).toContain('<|start_header_id|>ipython<|end_header_id|>\n\n"sunny"<|eot_id|>');
  });

  it("surfaces the template's own raise_exception as ChatTemplateError", async () => {
    const tokenizer = await load();
    const call = { id: 'x', type: 'function', function: { name: 'get_weather', arguments: '{}' } };
    expect(() =>
      tokenizer.renderChat([user('hi'), { role: 'assistant', content: null, tool_calls: [call, call] }], { addGenerationPrompt: true }),
    ).toThrow(new ChatTemplateError('This model only supports single tool-calls at once!'));
  });
});

describe.skipIf(!hasShared('tokenizers/qwen2.5'))(`qwen2.5 chat template ${NEEDS_SHARED}`, () => {
  const load = (): Promise<TextTokenizer> => loadTokenizer(sharedPath('tokenizers/qwen2.5'));
  const DEFAULT_SYSTEM = '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n';

  it('adds its default system prompt, and no BOS', async () => {
    const tokenizer = await load();
    const { prompt, promptTokenIds } = tokenizer.renderChat([user('Hi')], { addGenerationPrompt: true });
    expect(prompt).toBe(`${DEFAULT_SYSTEM}<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n`);
    const [imStart, imEnd] = [151644, 151645];
    expect(promptTokenIds[0]).toBe(imStart);
    expect(promptTokenIds.filter((id) => id === imStart)).toHaveLength(3);
    expect(promptTokenIds.filter((id) => id === imEnd)).toHaveLength(2);
    expect(tokenizer.decode(promptTokenIds)).toBe(prompt);
  });

  it("uses the request's system message instead", async () => {
    const tokenizer = await load();
    const { prompt } = tokenizer.renderChat([{ role: 'system', content: 'Answer in French.' }, user('Hi')], { addGenerationPrompt: false });
    expect(prompt).toBe('<|im_start|>system\nAnswer in French.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n');
  });

  it('lists tools as one-line JSON inside <tools>', async () => {
    const tokenizer = await load();
    const { prompt } = tokenizer.renderChat([user('Weather?')], { addGenerationPrompt: true, tools: TOOLS });
    expect(prompt.startsWith('<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n')).toBe(true);
    expect(prompt).toContain(`<tools>\n${JSON.stringify(TOOLS[0]).replaceAll('":', '": ').replaceAll(',"', ', "')}\n</tools>`);
  });
});

describe.skipIf(!hasShared('tokenizers/phi3-mini'))(`phi3-mini chat template ${NEEDS_SHARED}`, () => {
  it('renders <|role|> turns and the generation prompt, or eos_token without it', async () => {
    const tokenizer = await loadTokenizer(sharedPath('tokenizers/phi3-mini'));
    const messages = [{ role: 'system', content: 'Be kind.' }, user('Hi')];
    const { prompt, promptTokenIds } = tokenizer.renderChat(messages, { addGenerationPrompt: true });
    expect(prompt).toBe('<|system|>\nBe kind.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n');
    // <|system|>, <|end|>, <|user|>, <|assistant|> are single tokens; no BOS (add_bos_token false).
    expect(promptTokenIds[0]).toBe(32006);
    expect(promptTokenIds.filter((id) => id === 32007)).toHaveLength(2);
    expect(promptTokenIds.at(-1)).toBe(32001);
    const closed = tokenizer.renderChat([...messages, { role: 'assistant', content: 'Hello!' }], { addGenerationPrompt: false });
    expect(closed.prompt.endsWith('<|assistant|>\nHello!<|end|>\n<|endoftext|>')).toBe(true);
  });
});

describe.skipIf(!hasShared('tokenizers/llama2') || !hasShared('chat_templates'))(`llama2 without a template ${NEEDS_SHARED}`, () => {
  it('has none, and takes one from a --chat-template .json file, encoding it with a single BOS', async () => {
    await expect(loadTokenizer(sharedPath('tokenizers/llama2')).then((t) => t.chatTemplate())).rejects.toThrow(NoChatTemplateError);
    const tokenizer = await TextTokenizer.fromDirectory(sharedPath('tokenizers/llama2'), { chatTemplate: sharedPath('chat_templates/mistralrs-llama2.json') });
    const { prompt, promptTokenIds } = tokenizer.renderChat(
      [{ role: 'system', content: 'Be brief.' }, user('Hi'), { role: 'assistant', content: 'Hello' }, user('Bye')],
      { addGenerationPrompt: true },
    );
    expect(prompt).toBe('<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] Bye [/INST]');
    expect(promptTokenIds[0]).toBe(1);
    expect(promptTokenIds[1]).not.toBe(1);
    // (The second turn's '<s>' follows '</s>' without a space; this tokenizer.json marks <s> as normalized,
    // so it only matches as '▁<s>' and is spelled out there, as the Rust tokenizers would too.)
    expect(() => tokenizer.renderChat([user('a'), user('b')], { addGenerationPrompt: true })).toThrow(/roles must alternate/);
  });
});
