import { defineConfig } from 'vitest/config';

/**
 * `npm run test:soak`: the long reliability runs (test/soak), apart from `npm test`. The worker runs
 * with --expose-gc so the soak can force collections and compare the heap before and after.
 */
export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    pool: 'forks',
    execArgv: ['--expose-gc'],
    testTimeout: 20 * 60_000,
    hookTimeout: 120_000,
    // One file at a time: each measures the machine (latency, heap) and must not share it.
    fileParallelism: false,
  },
});
