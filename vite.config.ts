/// <reference types="vitest/config" />
// Vite builds the studio; Vitest runs the tests (GPU tests in separate processes, each with its own Dawn device).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [react()],
  server: { port: 5173, fs: { allow: ['.'] } },
  preview: { port: 4173 },
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 2048 },
  test: {
    include: ['tests/**/*.test.ts'],
    pool: 'forks',
    // Two cores: SwiftShader already uses both for one GPU test file, so files run one after another.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', './tests/helpers/summary-reporter.ts'],
  },
});
