/**
 * Test projects. `engine`: plain Node tests of src/engine (test/engine/**). The Worker layer's
 * tests live under test/worker/ with their own config (workerd pool); it joins the run
 * automatically once `test/worker/vitest.config.mts` exists (a glob: absent = no project).
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'engine',
          include: ['test/engine/**/*.test.ts'],
          environment: 'node',
          // Model-backed files take a while to load ORT + the model once per file.
          testTimeout: 120_000,
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
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      'test/worker/vitest.config.{mts,ts}',
      'test/browser/vitest.config.{mts,ts}',
    ],
  },
});
