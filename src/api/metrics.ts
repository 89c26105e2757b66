/**
 * GET /metrics: the Prometheus exposition of this app's ServerMetrics (src/metrics). Open like
 * /health (vLLM leaves it open too): scrapers and the Inference Extension's endpoint picker read it
 * without the API key.
 */
import type { Handler } from 'hono';
import type { ServerMetrics } from '../metrics/server-metrics.ts';

export function metricsHandler(metrics: ServerMetrics): Handler {
  return async (c) => c.body(await metrics.scrape(), 200, { 'Content-Type': metrics.contentType });
}
