/**
 * Worker tests: the built bundle in real workerd through miniflare's Node API (faster than
 * vitest-pool-workers: the 14 MB ORT wasm is compiled once per miniflare, not per test file), with the
 * real default model seeded into an in-memory R2 bucket and the official `openai` client as the caller.
 * test/worker/unit/ holds Node tests of the Worker's plain modules; they run in the unit tier.
 */
import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'worker',
    include: ['**/*.test.ts'],
    // Node tests of the Worker's plain modules: the unit tier (root vitest.config.mts)
    exclude: ['unit/**'],
    environment: 'node',
    globalSetup: ['./global-setup.ts'],
    // Each file starts its own workerd; run them one after another so timings stay sane on 2 cores.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
