// Client sides of the relay-shaped variants, all in the generator process (one clock per measurement).
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { io as ioc } from 'socket.io-client';
import { DEMO_PASSWORD, procRssKb, wait } from './infra.mjs';
import { makePayload } from './load.mjs';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');
export const PROTOCOL_VERSION = (await import('@casebridge/shared')).PROTOCOL_VERSION;

/** Runs `fn` over `items` with at most `n` at once. */
export async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

const AGENTS = 3;

// ---- B1: bare ws ------------------------------------------------------------------------------------------
export async function wsTransport(url, pairs, serverPid) {
  const open = () =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url.replace('http', 'ws'), { perMessageDeflate: false });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  const t = { pairs, serverPids: [serverPid], onDeliver: () => {} };
  const agents = await Promise.all(Array.from({ length: AGENTS }, open));
  const rooms = Array.from({ length: pairs }, () => randomUUID());
  for (const a of agents) a.on('message', (d) => {
    const s = d.toString();
    if (s.charCodeAt(0) === 77 /* M */) t.onDeliver(JSON.parse(s.slice(2)).clientMessageId);
  });
  // Each agent joins its rooms; the relay answers every join with 'J', in order.
  await Promise.all(
    agents.map(
      (a, k) =>
        new Promise((resolve) => {
          const mine = rooms.filter((_, i) => i % AGENTS === k);
          let left = mine.length;
          const on = (d) => {
            if (d.toString() === 'J' && --left === 0) {
              a.off('message', on);
              resolve();
            }
          };
          a.on('message', on);
          for (const room of mine) a.send(`J|${room}`);
        }),
    ),
  );
  const senders = await pool(rooms, 50, () => open());
  const acks = new Map();
  for (const s of senders) s.on('message', (d) => {
    const str = d.toString();
    if (str.charCodeAt(0) !== 65 /* A */) return;
    const id = str.slice(2);
    const cb = acks.get(id);
    acks.delete(id);
    cb?.(true);
  });
  t.send = (pair, id, onAck) => {
    acks.set(id, onAck);
    senders[pair].send(`M|${JSON.stringify(makePayload(rooms[pair], id))}`);
  };
  t.close = () => [...agents, ...senders].forEach((s) => s.terminate());
  return t;
}

// ---- B2: bare Socket.IO -----------------------------------------------------------------------------------
export function sioConnect(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const s = ioc(url, { transports: ['websocket'], forceNew: true, reconnection: false, ...opts });
    s.once('connect', () => resolve(s));
    s.once('connect_error', (e) => {
      s.close();
      reject(e);
    });
  });
}

export async function sioTransport(url, pairs, serverPid) {
  const t = { pairs, serverPids: [serverPid], onDeliver: () => {} };
  const agents = await Promise.all(Array.from({ length: AGENTS }, () => sioConnect(url)));
  const rooms = Array.from({ length: pairs }, () => randomUUID());
  for (const a of agents) a.on('msg', (m) => t.onDeliver(m.clientMessageId));
  await Promise.all(rooms.map((room, i) => agents[i % AGENTS].emitWithAck('join', room)));
  const senders = await pool(rooms, 50, () => sioConnect(url));
  t.send = (pair, id, onAck) => senders[pair].emit('msg', makePayload(rooms[pair], id), (res) => onAck(res?.ok === true));
  t.close = () => [...agents, ...senders].forEach((s) => s.close());
  return t;
}

// ---- E1 / E2: the product ---------------------------------------------------------------------------------
async function call(url, path, { method = 'GET', body, cookie, token, csrf, ip } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (cookie) headers.cookie = cookie;
  if (token) headers.authorization = `Bearer ${token}`;
  if (csrf) headers['x-csrf-token'] = csrf;
  if (ip) headers['x-forwarded-for'] = ip;
  const res = await fetch(`${url}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const json = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
  return { json, res };
}
export const api = call;

export async function staffLogin(url, email) {
  const { json, res } = await call(url, '/api/auth/login', { method: 'POST', body: { email, password: DEMO_PASSWORD } });
  return { cookie: res.headers.get('set-cookie').split(';')[0], csrf: json.csrfToken, userId: json.id, email };
}

export const ipOf = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) || 1}`;

export async function widgetSession(url, i) {
  const { json } = await call(url, '/api/widget/session', { method: 'POST', body: { agencyKey: 'springfield-demo' }, ip: ipOf(i) });
  return json;
}

export const STAFF = ['agent@demo.gov', 'agent2@demo.gov', 'supervisor@demo.gov'];

/**
 * `pairs` widget conversations, each claimed by one of three staff (round robin). Constituents connect to
 * `constituentUrl`, staff to `agentUrl` (E2: different nodes). Latency is measured at the assignee's socket;
 * the product also fans each message out to the rest of the group and echoes it to the constituent.
 */
export async function productTransport({ constituentUrl, agentUrl, pairs, serverPids, metrics }) {
  const t = { pairs, serverPids, onDeliver: () => {}, ackedCreated: 0 };
  const staff = await Promise.all(STAFF.map((e) => staffLogin(agentUrl, e)));
  const convs = await pool(Array.from({ length: pairs }, (_, i) => i), 10, async (i) => {
    const s = await widgetSession(constituentUrl, 1000 + i);
    const { json } = await call(constituentUrl, '/api/widget/conversations', {
      method: 'POST',
      token: s.token,
      ip: ipOf(1000 + i),
      body: { name: `Bench resident ${i}`, language: 'en' },
    });
    return { id: json.conversation.id, token: s.token, ip: ipOf(1000 + i), agent: i % AGENTS };
  });
  for (const c of convs) {
    const s = staff[c.agent];
    await call(agentUrl, `/api/conversations/${c.id}/claim`, { method: 'POST', cookie: s.cookie, csrf: s.csrf });
  }
  const owner = new Map(convs.map((c) => [c.id, c.agent]));
  const agents = await Promise.all(
    staff.map((s) => sioConnect(agentUrl, { auth: { protocolVersion: PROTOCOL_VERSION }, extraHeaders: { cookie: s.cookie } })),
  );
  agents.forEach((a, k) =>
    a.on('message:created', (m) => {
      if (m.author?.kind === 'constituent' && owner.get(m.conversationId) === k) t.onDeliver(m.clientMessageId);
    }),
  );
  const senders = await pool(convs, 20, (c) =>
    sioConnect(constituentUrl, { auth: { protocolVersion: PROTOCOL_VERSION, token: c.token }, extraHeaders: { 'x-forwarded-for': c.ip } }),
  );
  t.conversationIds = convs.map((c) => c.id);
  t.send = (pair, id, onAck) =>
    senders[pair].emit('message:send', makePayload(convs[pair].id, id), (res) => {
      if (res?.ok && res.data?.created) t.ackedCreated++;
      onAck(res?.ok === true, res?.error?.code);
    });
  t.resetMetrics = () => Promise.all(metrics.map((m) => m())).catch(() => undefined);
  t.readMetrics = async () => {
    const all = await Promise.all(metrics.map((m) => m()));
    return all.map((x) => x.eventLoopDelayMs);
  };
  t.close = () => [...agents, ...senders].forEach((s) => s.close());
  return t;
}

export { procRssKb, wait };
