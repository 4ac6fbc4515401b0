import type { z } from 'zod';
import { fromZod } from '../errors.js';

/** The one place untyped HTTP input becomes typed; failures name the field at fault. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw fromZod(result.error);
  return result.data;
}
