import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The chat app that runs inside the iframe, served by the CaseBridge server at /widget/.
export default defineConfig({
  root: `${import.meta.dirname}/src/app`,
  base: '/widget/',
  plugins: [svelte({ configFile: false, compilerOptions: { runes: true } })],
  build: { outDir: `${import.meta.dirname}/dist/app`, emptyOutDir: true, target: 'es2020' },
});
