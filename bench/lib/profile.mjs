// Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, and by package/file.
import { readFileSync } from 'node:fs';

export function summariseProfile(file, top = 20) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const total = p.samples.length;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (const id of p.samples) self.set(id, (self.get(id) ?? 0) + 1);
  const fn = new Map();
  const area = new Map();
  for (const [id, hits] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const url = cf.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/work\/main\//, '');
    const key = `${cf.functionName || '(anonymous)'} ${url ? `${url}:${cf.lineNumber + 1}` : ''}`.trim();
    fn.set(key, (fn.get(key) ?? 0) + hits);
    const a = cf.url === '' ? cf.functionName.startsWith('(') ? cf.functionName : '(native/builtin)' :
      /node_modules\/(@[^/]+\/[^/]+|[^/]+)/.exec(url)?.[1] ?? (url.startsWith('node:') ? 'node core' : url.split('/').slice(0, 3).join('/'));
    area.set(a, (area.get(a) ?? 0) + hits);
  }
  const pct = (h) => Math.round((h / total) * 1000) / 10;
  const sort = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, h]) => ({ what: k, selfPct: pct(h) }));
  const ms = (p.endTime - p.startTime) / 1000;
  return { file, seconds: Math.round(ms / 100) / 10, samples: total, functions: sort(fn), areas: sort(area) };
}
