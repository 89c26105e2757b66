/**
 * The chat playground (GET /) in real headless Chromium (playwright-core driving Debian's
 * /usr/bin/chromium, or UPDRAFT_CHROMIUM) against a real server on the CPU backend: type a message,
 * watch the reply stream in (its text grows over time), and check it ends equal to a non-streaming
 * completion with the same seed and settings. Skipped, with the reason, where Chromium is absent.
 */
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyModelDir } from '../fixtures/tiny-models.ts';
import { scratchDir } from '../helpers/paths.ts';
import { startTestServer } from './harness.ts';
import type { TestServer } from './harness.ts';

const CHROMIUM = process.env['UPDRAFT_CHROMIUM'] ?? '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const SKIP_REASON = HAS_CHROMIUM ? '' : ` (skipped: no Chromium at ${CHROMIUM}; apt-get install chromium, or set UPDRAFT_CHROMIUM)`;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const SETTINGS = { system: 'You are a storyteller.', temperature: '0.9', topP: '0.95', maxTokens: '48', seed: '1234' };

describe.skipIf(!HAS_CHROMIUM)(`chat playground in headless Chromium${SKIP_REASON}`, () => {
  let server: TestServer;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    server = await startTestServer(await tinyModelDir('tiny-qwen2'));
    context = await chromium.launchPersistentContext(await scratchDir('chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      // The page's CSP forbids eval, which Playwright's polling of string predicates needs.
      bypassCSP: true,
    });
    page = await context.newPage();
    await page.goto(`${server.url}/`);
    // Browser-side code is given as strings: the tests are type-checked without the DOM library.
    await page.waitForFunction("document.getElementById('model').options.length > 0");
  });
  afterAll(async () => {
    await context?.close();
    await server?.close();
  });

  it('serves the page with the model list from /v1/models', async () => {
    expect(await page.title()).toBe('Updraft playground');
    expect(await page.locator('#model option').allTextContents()).toEqual([server.runtime.service.model.id]);
  });

  it('streams the reply as it is generated and ends with the non-streaming result for the same seed', async () => {
    await page.fill('#system', SETTINGS.system);
    await page.fill('#temperature', SETTINGS.temperature);
    await page.fill('#top-p', SETTINGS.topP);
    await page.fill('#max-tokens', SETTINGS.maxTokens);
    await page.fill('#seed', SETTINGS.seed);
    // Record the reply's length at every change of the page.
    await page.evaluate(`
      window.lengths = [];
      new MutationObserver(() => {
        const content = document.querySelector('.msg.assistant .content');
        if (content) window.lengths.push(content.textContent.length);
      }).observe(document.getElementById('transcript'), { subtree: true, childList: true, characterData: true });
    `);
    await page.fill('#message', 'Tell me a story about a fox.');
    await page.press('#message', 'Enter');
    await page.waitForFunction(`(() => {
      const bubble = document.querySelector('.msg.assistant');
      return bubble !== null && !bubble.hasAttribute('aria-busy') && bubble.dataset.finishReason !== undefined;
    })()`);
    const streamed = (await page.textContent('.msg.assistant .content')) ?? '';
    const lengths = (await page.evaluate('window.lengths')) as number[];
    const distinct = [...new Set(lengths)];
    // The text grew in several steps, never shrinking, up to the final reply.
    expect(distinct.length, `lengths seen: ${distinct.join(', ')}`).toBeGreaterThanOrEqual(3);
    expect(lengths).toEqual([...lengths].sort((a, b) => a - b));
    expect(distinct.at(-1)).toBe(streamed.length);
    expect(await page.getAttribute('.msg.assistant', 'data-finish-reason')).toMatch(/^(length|stop)$/);
    expect(await page.textContent('.msg.assistant .stats')).toMatch(/\d+ tokens · [\d.]+ tok\/s · first token \d+ ms · finish: (length|stop)/);
    expect(await page.inputValue('#message')).toBe('');

    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { role: 'system', content: SETTINGS.system },
          { role: 'user', content: 'Tell me a story about a fox.' },
        ],
        temperature: Number(SETTINGS.temperature),
        top_p: Number(SETTINGS.topP),
        max_tokens: Number(SETTINGS.maxTokens),
        seed: Number(SETTINGS.seed),
      }),
    });
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    expect(streamed.length).toBeGreaterThan(0);
    expect(streamed).toBe(body.choices[0]!.message.content);
  });

  it('shows API errors in the conversation', async () => {
    await page.click('#clear');
    await page.fill('#max-tokens', '100000');
    await page.fill('#message', 'Hello');
    await page.click('#send');
    await page.waitForSelector('.msg.error');
    expect(await page.textContent('.msg.error')).toMatch(/max_tokens|context/i);
    expect(await page.isEnabled('#send')).toBe(true);
  });
});
