import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30000,
    hookTimeout: 30000,
    // Cluster tests spawn real processes and share the machine's two cores.
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
