import { defineConfig } from 'vitest/config';

// Tests run in forked processes: the native WebGPU module (Dawn) is not safe in worker threads.
// Two forks match CI's two cores; GPU tests on lavapipe are slow, hence the long timeouts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
