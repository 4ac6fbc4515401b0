import { defineConfig } from 'drizzle-kit';

// Only `drizzle-kit generate` uses this file; the server applies the committed migrations itself at start-up.
export default defineConfig({
  dialect: 'postgresql',
  schema: './server/src/db/schema.ts',
  out: './server/drizzle',
});
