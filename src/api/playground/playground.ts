/**
 * GET /: the chat playground, one static page (index.html beside this file, inline CSS and JS, no
 * build step) that talks to this server's own /v1/models and /v1/chat/completions.
 */
import { readFileSync } from 'node:fs';
import type { Handler } from 'hono';

let page: string | null = null;

export function playgroundHandler(): Handler {
  return (c) => {
    page ??= readFileSync(new URL('./index.html', import.meta.url), 'utf-8');
    return c.html(page, 200, {
      'Cache-Control': 'no-cache',
      // Everything the page needs is inline or on this origin.
      'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
    });
  };
}
