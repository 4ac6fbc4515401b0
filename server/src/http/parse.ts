import type { z } from 'zod';
import { AppError, fromZod } from '../errors.js';

/**
 * Where the first NUL character is in untrusted input (a string value or an object key), or undefined.
 * PostgreSQL cannot store U+0000 in text or jsonb: without this check such input reached the database and
 * came back as a 500. Iterative, so deeply nested input cannot exhaust the stack.
 */
export function nulPath(input: unknown): (string | number)[] | undefined {
  // Each entry links to its parent: the path is built only when a NUL is found (deep input stays linear).
  type Node = { value: unknown; key?: string | number; parent?: Node };
  const pathOf = (n: Node | undefined): (string | number)[] => {
    const out: (string | number)[] = [];
    for (let at = n; at && at.key !== undefined; at = at.parent) out.unshift(at.key);
    return out;
  };
  const stack: Node[] = [{ value: input }];
  while (stack.length) {
    const node = stack.pop()!;
    const { value } = node;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return pathOf(node);
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => stack.push({ value: v, key: i, parent: node }));
    } else if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
      for (const [k, v] of Object.entries(value)) {
        if (k.includes('\u0000')) return [...pathOf(node), k];
        stack.push({ value: v, key: k, parent: node });
      }
    }
  }
  return undefined;
}

/** Refuses input with a NUL character anywhere, naming the field. */
export function assertNoNul(input: unknown): void {
  const path = nulPath(input);
  if (path) {
    const message = 'Text cannot contain NUL characters';
    throw new AppError('INVALID_PAYLOAD', `invalid payload (${path.join('.')}: ${message})`, { issues: [{ path, message }] });
  }
}

/** The one place untyped HTTP input becomes typed; failures name the field at fault. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  assertNoNul(input);
  const result = schema.safeParse(input);
  if (!result.success) throw fromZod(result.error);
  return result.data;
}
