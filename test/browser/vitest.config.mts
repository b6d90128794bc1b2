/**
 * Browser tests: headless Chromium (Debian's `chromium`, driven by playwright-core: no browser download)
 * loading the demo page from the Worker with its static assets in local workerd (scripts/node/browser-server.ts,
 * what `npm start` serves). Without Chromium they skip with one line, except in CI (CI=1), where they fail.
 * `npm run test:browser` runs them alone.
 */
import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'browser',
    include: ['**/*.test.ts'],
    environment: 'node',
    globalSetup: ['./global-setup.ts'],
    fileParallelism: false,
    // SwiftShader's software WebGPU decodes about one token per second on 2 cores
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
