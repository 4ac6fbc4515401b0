import type { SensitiveKind } from '@casebridge/shared';

/**
 * Masks sensitive numbers in what a constituent writes, before it is stored or shown (issue #11):
 *
 * - **SSN** (and ITIN, same shape): `123-45-6789`, `123 45 6789` or `123.45.6789` (one separator, used both
 *   times) → `***-**-6789`. Nine digits with no separator (`123456789`) only when a context word comes
 *   shortly before it ("SSN", "social", "seguro social", "ITIN", "TIN", "tax id"): on their own, nine digits
 *   are as likely an order or account number. Never-issued forms (area 000 or 666, group 00, serial 0000)
 *   are left alone, so are digits that run on into more digits.
 * - **Payment cards**: 13–19 digits, optionally grouped with single spaces or dashes, that pass the Luhn check
 *   → every digit but the last four becomes `*`, separators kept (`**** **** **** 1111`).
 * - **The agency's own patterns** (admin setting, validated by `checkPattern`): every letter and digit of a
 *   match but the last four becomes `*`.
 */
export interface MaskResult {
  text: string;
  /** The kinds that were masked, each once, in a fixed order; empty when nothing was. */
  kinds: SensitiveKind[];
}

const SSN_SEPARATED = /(?<![\d*])(\d{3})([-. ])(\d{2})\2(\d{4})(?![\d*]|[-.]\d)/g;
const SSN_BARE = /(?<![\d*])(\d{9})(?![\d*])/g;
const SSN_CONTEXT = /\b(ssn|ss#|s\.s\.n\.?|social|seguro|itin|tin|tax ?id)\b/i;
const CARD = /(?<![\d*])\d(?:[ -]?\d){12,18}(?![\d*])/g;

function plausibleSsn(area: string, group: string, serial: string): boolean {
  return area !== '000' && area !== '666' && group !== '00' && serial !== '0000';
}

export function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Every letter or digit but the last `keep` becomes `*`; separators stay. */
function starAllBut(s: string, keep: number): string {
  const total = (s.match(/[\p{L}\p{N}]/gu) ?? []).length;
  let seen = 0;
  return s.replace(/[\p{L}\p{N}]/gu, (c) => (++seen > total - keep ? c : '*'));
}

export function maskSensitive(input: string, custom: RegExp[] = []): MaskResult {
  const kinds = new Set<SensitiveKind>();
  let text = input.replace(SSN_SEPARATED, (m, area: string, sep: string, group: string, serial: string) => {
    if (!plausibleSsn(area, group, serial)) return m;
    kinds.add('ssn');
    return `***${sep}**${sep}${serial}`;
  });
  text = text.replace(SSN_BARE, (m: string, _d: string, offset: number, whole: string) => {
    if (!plausibleSsn(m.slice(0, 3), m.slice(3, 5), m.slice(5))) return m;
    const before = whole.slice(Math.max(0, offset - 40), offset);
    if (!SSN_CONTEXT.test(before)) return m;
    kinds.add('ssn');
    return `*****${m.slice(5)}`;
  });
  text = text.replace(CARD, (m) => {
    const digits = m.replace(/[ -]/g, '');
    if (digits.length < 13 || digits.length > 19 || !luhn(digits)) return m;
    kinds.add('card');
    return starAllBut(m, 4);
  });
  for (const re of custom) {
    re.lastIndex = 0;
    text = text.replace(re, (m) => {
      if (!m) return m;
      kinds.add('custom');
      return starAllBut(m, m.replace(/[^\p{L}\p{N}]/gu, '').length > 4 ? 4 : 0);
    });
  }
  const order: SensitiveKind[] = ['ssn', 'card', 'custom'];
  return { text, kinds: order.filter((k) => kinds.has(k)) };
}

/** Most unbounded repeats (`*`, `+`, `{n,}`, `{n,m}` with m > 20) one agency pattern may use. */
const MAX_UNBOUNDED = 2;

/**
 * Whether an agency's pattern is safe to run on every constituent message: it compiles, cannot match empty
 * text, has no backreferences, no repeated group that itself repeats or alternates (the shapes that backtrack
 * exponentially, like `(a+)+` or `(a|aa)*`), at most two unbounded repeats, and runs fast on hostile input.
 * Returns the problem in words, or undefined when the pattern is fine.
 */
export function checkPattern(pattern: string): string | undefined {
  if (pattern.length > 200) return 'is longer than 200 characters';
  let re: RegExp;
  try {
    re = new RegExp(pattern, 'g');
  } catch {
    return 'is not a valid regular expression';
  }
  if (/\\[1-9]|\\k</.test(pattern)) return 'uses a backreference';
  const shape = shapeProblem(pattern);
  if (shape) return shape;
  if (new RegExp(`^(?:${pattern})$`).test('')) return 'matches empty text';
  for (const probe of ['a', '1', ' ', '-', 'a1', '1-'].map((s) => `${s.repeat(2000)}\u0000!`)) {
    const start = performance.now();
    re.lastIndex = 0;
    probe.replace(re, '');
    if (performance.now() - start > 50) return 'is too slow on long text (simplify the repeats)';
  }
  return undefined;
}

interface Quant {
  end: number;
  unbounded: boolean;
}

function quantifierAt(p: string, i: number): Quant | undefined {
  const c = p[i];
  let q: Quant | undefined;
  if (c === '*' || c === '+') q = { end: i + 1, unbounded: true };
  else if (c === '?') q = { end: i + 1, unbounded: false };
  else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
    if (m) q = { end: i + m[0].length, unbounded: m[2] !== undefined && (m[3] === '' || Number(m[3]) > 20) };
  }
  if (q && p[q.end] === '?') q.end++; // lazy
  return q;
}

function shapeProblem(p: string): string | undefined {
  const stack: { repeats: boolean; alternates: boolean }[] = [{ repeats: false, alternates: false }];
  let unbounded = 0;
  let i = 0;
  while (i < p.length) {
    const c = p[i]!;
    const top = stack[stack.length - 1]!;
    let atomEnd = i + 1;
    if (c === '\\') atomEnd = i + 2;
    else if (c === '[') {
      let j = i + 1;
      if (p[j] === '^') j++;
      if (p[j] === ']') j++;
      while (j < p.length && p[j] !== ']') j += p[j] === '\\' ? 2 : 1;
      atomEnd = j + 1;
    } else if (c === '(') {
      stack.push({ repeats: false, alternates: false });
      i++;
      if (p[i] === '?') {
        const m = /^\?(?::|=|!|<=|<!|<[A-Za-z_][A-Za-z0-9_]*>)/.exec(p.slice(i));
        i += m ? m[0].length : 1;
      }
      continue;
    } else if (c === '|') {
      top.alternates = true;
      i++;
      continue;
    } else if (c === ')') {
      const group = stack.pop();
      const parent = stack[stack.length - 1];
      if (!group || !parent) return 'has unbalanced parentheses';
      const q = quantifierAt(p, i + 1);
      if (q) {
        if (q.unbounded) unbounded++;
        if (q.unbounded && (group.repeats || group.alternates)) return 'repeats a group that itself repeats or alternates (it could take forever)';
        parent.repeats = true;
        i = q.end;
      } else {
        if (group.repeats) parent.repeats = true;
        i++;
      }
      continue;
    }
    const q = quantifierAt(p, atomEnd);
    if (q) {
      if (q.unbounded) unbounded++;
      top.repeats = true;
      i = q.end;
    } else i = atomEnd;
  }
  if (unbounded > MAX_UNBOUNDED) return `uses more than ${MAX_UNBOUNDED} unbounded repeats (use {n,m} with small bounds)`;
  return undefined;
}

/** The agency's patterns, compiled; ones that fail the check now (they passed when saved) are skipped. */
export function compilePatterns(patterns: { pattern: string }[]): RegExp[] {
  const out: RegExp[] = [];
  for (const { pattern } of patterns) {
    try {
      out.push(new RegExp(pattern, 'g'));
    } catch {
      // skipped: cannot happen for a saved pattern
    }
  }
  return out;
}
