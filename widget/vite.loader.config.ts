import { defineConfig } from 'vite';

// The loader agencies paste into their sites: one small IIFE, no framework.
export default defineConfig({
  root: import.meta.dirname,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    lib: { entry: 'src/loader/index.ts', name: 'CaseBridgeLoader', formats: ['iife'], fileName: () => 'widget.js' },
  },
});
