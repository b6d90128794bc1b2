/**
 * Test projects, in tiers. `npm test` runs them all; one alone (the unit and drafters scripts run two
 * files at a time: each runs ORT on one thread, and vitest's default, cores - 1, is one here; the
 * setting lives in the scripts because vitest refuses projects with different maxWorkers in one run):
 *   unit      npm run test:unit      Node tests of src/engine and of src/worker's plain modules (and that the
 *                                    paths the docs cite exist), with the
 *                                    model-backed parity tests (greedy vs the PyTorch reference, tree
 *                                    verify vs one-token decodes): the edit loop
 *   drafters  npm run test:drafters  the slow sweeps: every drafter greedy-identical to plain over the real
 *                                    model (short and long prompts), sampled distributions against the exact
 *                                    ones (chi-square), bit-identity at every context length
 *   hf        npm run test:hf        transformers.js over model-hf/default against the engine
 *   convert   --project convert      training/convert_hf.py on random Llama checkpoints, and the draft head export, against PyTorch
 *   worker    npm run test:worker    the built Worker in workerd (test/worker/vitest.config.mts)
 *   browser   npm run test:browser   headless Chromium (test/browser/vitest.config.mts)
 */
import { defineConfig } from 'vitest/config';

/** The sweeps: from half a minute to several minutes each on 2 cores, so not in the edit loop. */
const SWEEPS = [
  'test/engine/drafters-model.test.ts',
  'test/engine/context-identity.test.ts',
  'test/engine/acceptance.distribution.test.ts',
  // draft head sessions end to end (fused and separate runs, snapshots, identity): ~25 s of CPU
  'test/engine/drafters/prefix-head.test.ts',
];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/engine/**/*.test.ts', 'test/worker/unit/**/*.test.ts', 'test/docs/**/*.test.ts'],
          exclude: SWEEPS,
          environment: 'node',
          // Model-backed files take a while to load ORT + the model once per file.
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'drafters',
          include: SWEEPS,
          environment: 'node',
          // one test runs every drafter over 20 long prompts: minutes on a loaded machine
          testTimeout: 600_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // transformers.js over model-hf/default (training/export_hf.py) vs the engine
          name: 'hf',
          include: ['test/hf/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // training/convert_hf.py on Llama checkpoints the test writes (needs Debian's python3-torch)
          name: 'convert',
          include: ['test/convert/**/*.test.ts'],
          environment: 'node',
          // a dozen python3 runs (torch loads in each): half a minute alone, minutes on a busy machine
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
      'test/worker/vitest.config.{mts,ts}',
      'test/browser/vitest.config.{mts,ts}',
    ],
  },
});
