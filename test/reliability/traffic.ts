import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { io as ioc } from 'socket.io-client';
import type { Message } from '@casebridge/shared';
import { PROTOCOL_VERSION } from '@casebridge/shared';
import { DEMO_PASSWORD, type ClientSocket } from '../support/harness.js';

/**
 * Background traffic for fault tests, and the checker of RELIABILITY.md §5.1 that runs after each fault.
 *
 * Each conversation has a constituent and an agent, both real socket.io clients that behave like ours: they
 * send with an idempotency key and retry the same key until acknowledged, and on a gap or a reconnect they catch
 * up with `conversation:sync`. The ledger remembers every acknowledgement the server gave.
 */

export interface Sent {
  conversationId: string;
  clientMessageId: string;
  by: 'constituent' | 'agent';
  body: string;
  /** The seq the server acknowledged (every ack of one key must agree). */
  seqs: number[];
  /** Acks that said ok:false, by error code; a retryable error must never come with the message stored... */
  errors: string[];
}

interface Party {
  socket: ClientSocket;
  /** What this client received, per conversation, in arrival order (after catch-up). */
  seen: Map<string, Message[]>;
  /** Events for conversations this client may not see: must stay empty. */
  foreign: string[];
  own: Set<string>;
  reconnects: number;
  catchingUp: Map<string, Promise<void>>;
}

export interface Chat {
  conversationId: string;
  constituent: Party;
  agent: Party;
  /** Which node URL each side was connected to first (for same-node vs cross-node checks). */
  constituentUrl: string;
  agentUrl: string;
}

async function json(url: string, path: string, init: RequestInit & { cookie?: string; token?: string; csrf?: string; ip?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.cookie) headers.cookie = init.cookie;
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.csrf) headers['x-csrf-token'] = init.csrf;
  if (init.ip) headers['x-forwarded-for'] = init.ip;
  const res = await fetch(`${url}${path}`, { ...init, headers });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path} → ${res.status} ${JSON.stringify(body)}`);
  return { body, res };
}

export async function staffLogin(url: string, email: string): Promise<{ cookie: string; csrf: string; userId: string }> {
  const { body, res } = await json(url, '/api/auth/login', { method: 'POST', body: JSON.stringify({ email, password: DEMO_PASSWORD }) });
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  return { cookie, csrf: body.csrfToken, userId: body.id };
}

export async function widgetSession(url: string, ip?: string): Promise<string> {
  const { body } = await json(url, '/api/widget/session', { method: 'POST', body: JSON.stringify({ agencyKey: 'springfield-demo' }), ip });
  return body.token as string;
}

/** A client socket that reconnects on its own (jittered backoff, like the widget and console). */
export function connect(url: string, auth: Record<string, unknown>, headers: Record<string, string> = {}): Promise<ClientSocket> {
  return new Promise((resolve, reject) => {
    const s: ClientSocket = ioc(url, {
      transports: ['websocket'],
      forceNew: true,
      reconnectionDelay: 250,
      reconnectionDelayMax: 2000,
      randomizationFactor: 0.5,
      auth: { protocolVersion: PROTOCOL_VERSION, ...auth },
      extraHeaders: headers,
    });
    const fail = (err: Error) => {
      s.close();
      reject(err);
    };
    s.once('connect', () => {
      s.off('connect_error', fail);
      resolve(s);
    });
    s.once('connect_error', fail);
  });
}

/**
 * `own`: the conversations this client follows; `mayHear`: others it is entitled to hear about (an agent hears
 * its whole group). Anything else it receives is a foreign delivery.
 */
function party(socket: ClientSocket, own: string[], mayHear: Set<string> = new Set()): Party {
  const p: Party = { socket, seen: new Map(), foreign: [], own: new Set(own), reconnects: 0, catchingUp: new Map() };
  for (const id of own) p.seen.set(id, []);
  socket.on('message:created', (m) => {
    if (!p.own.has(m.conversationId)) {
      if (!mayHear.has(m.conversationId)) p.foreign.push(m.conversationId);
      return;
    }
    hold(p, m);
  });
  socket.io.on('reconnect', () => {
    p.reconnects++;
    for (const id of p.own) void catchUp(p, id);
  });
  return p;
}

/** A message this client now has (an event, or the acknowledgement of its own send): kept in order, gaps filled. */
function hold(p: Party, m: Message): void {
  const list = p.seen.get(m.conversationId)!;
  const last = list.at(-1)?.seq ?? 0;
  if (m.seq === last + 1) list.push(m);
  else if (m.seq > last + 1) void catchUp(p, m.conversationId);
  // seq <= last: already held (a duplicate delivery is ignored by seq, as our clients do)
}

/** Fills a client's gap from the server, in order: what our widget and console do. */
export function catchUp(p: Party, conversationId: string): Promise<void> {
  const running = p.catchingUp.get(conversationId);
  if (running) return running;
  const job = (async () => {
    try {
      for (;;) {
        const list = p.seen.get(conversationId)!;
        const afterSeq = list.at(-1)?.seq ?? 0;
        const res = (await p.socket.timeout(5000).emitWithAck('conversation:sync', { conversationId, afterSeq, limit: 100 })) as {
          ok: boolean;
          data?: { messages: Message[]; hasMore: boolean };
        };
        if (!res.ok || !res.data) return;
        for (const m of res.data.messages) if (m.seq === (list.at(-1)?.seq ?? 0) + 1) list.push(m);
        if (!res.data.hasMore) return;
      }
    } catch {
      /* disconnected mid-sync: the reconnect starts another */
    } finally {
      p.catchingUp.delete(conversationId);
    }
  })();
  p.catchingUp.set(conversationId, job);
  return job;
}

export class Traffic {
  readonly chats: Chat[] = [];
  readonly ledger: Sent[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private stopped = false;

  /**
   * Opens `count` conversations. Constituent i talks to `constituentUrls[i % n]` and its agent to
   * `agentUrls[i % m]`; each conversation is claimed by one of the given agents (round robin).
   */
  static async open(opts: {
    count: number;
    constituentUrls: string[];
    agentUrls: string[];
    agents: string[];
    /** Sessions come from distinct client addresses (the nodes trust the proxy header in these tests). */
    ipBase?: number;
  }): Promise<Traffic> {
    const t = new Traffic();
    const staff = await Promise.all(opts.agents.map((email) => staffLogin(opts.agentUrls[0]!, email)));
    const convs: { id: string; token: string; curl: string; aurl: string; agent: number; ip: string }[] = [];
    for (let i = 0; i < opts.count; i++) {
      const curl = opts.constituentUrls[i % opts.constituentUrls.length]!;
      const ip = `10.9.${Math.floor(((opts.ipBase ?? 0) + i) / 250)}.${((opts.ipBase ?? 0) + i) % 250 + 1}`;
      const token = await widgetSession(curl, ip);
      const { body } = await json(curl, '/api/widget/conversations', {
        method: 'POST',
        token,
        ip,
        body: JSON.stringify({ name: `Resident ${i}`, language: 'en' }),
      });
      convs.push({ id: body.conversation.id, token, curl, aurl: opts.agentUrls[i % opts.agentUrls.length]!, agent: i % staff.length, ip });
    }
    // One socket per agent per node they are reached on, shared by that agent's conversations there.
    const agentSockets = new Map<string, Party>();
    // Every traffic conversation is in the demo agency's General group, which every agent here belongs to.
    const group = new Set(convs.map((c) => c.id));
    for (const c of convs) {
      const s = staff[c.agent]!;
      await json(c.aurl, `/api/conversations/${c.id}/claim`, { method: 'POST', cookie: s.cookie, csrf: s.csrf });
    }
    for (const c of convs) {
      const key = `${c.agent}@${c.aurl}`;
      let agent = agentSockets.get(key);
      const mine = convs.filter((x) => x.agent === c.agent && x.aurl === c.aurl).map((x) => x.id);
      if (!agent) {
        agent = party(await connect(c.aurl, {}, { cookie: staff[c.agent]!.cookie }), mine, group);
        agentSockets.set(key, agent);
      }
      const constituent = party(await connect(c.curl, { token: c.token }, { 'x-forwarded-for': c.ip }), [c.id]);
      t.chats.push({ conversationId: c.id, constituent, agent, constituentUrl: c.curl, agentUrl: c.aurl });
    }
    return t;
  }

  /** Sides that stop typing for a while (a constituent with no signal does not write 70 messages). */
  readonly quiet = new Set<'constituent' | 'agent'>();

  /** Sends about `perSecond` messages a second, from a random side of a random conversation. */
  start(perSecond: number): void {
    const every = Math.max(5, Math.round(1000 / perSecond));
    this.timer = setInterval(() => {
      const chat = this.chats[Math.floor(Math.random() * this.chats.length)]!;
      const by = Math.random() < 0.5 ? 'constituent' : 'agent';
      if (!this.quiet.has(by)) this.send(chat, by);
    }, every);
  }

  /** One message, retried with the same key until acknowledged (or until `drain` gives up). */
  send(chat: Chat, by: 'constituent' | 'agent', body = `${by} ${randomUUID().slice(0, 8)}`): Sent {
    const entry: Sent = { conversationId: chat.conversationId, clientMessageId: randomUUID(), by, body, seqs: [], errors: [] };
    this.ledger.push(entry);
    const sender = by === 'constituent' ? chat.constituent : chat.agent;
    const socket = sender.socket;
    const attempt = async (): Promise<void> => {
      while (!entry.seqs.length) {
        if (socket.connected) {
          try {
            const res = (await socket.timeout(4000).emitWithAck('message:send', {
              conversationId: entry.conversationId,
              clientMessageId: entry.clientMessageId,
              body: entry.body,
              visibility: 'public',
            })) as { ok: boolean; data?: { message: Message }; error?: { code: string; retryable?: boolean } };
            if (res.ok) {
              entry.seqs.push(res.data!.message.seq);
              // The sender learns its message from the acknowledgement (it is not broadcast back to it).
              hold(sender, res.data!.message);
              return;
            }
            entry.errors.push(res.error!.code);
            if (res.error!.code === 'RATE_LIMITED' || res.error!.retryable) {
              await new Promise((r) => setTimeout(r, 500));
              continue;
            }
            return; // a final refusal: nothing was stored (the checker verifies)
          } catch {
            entry.errors.push('TIMEOUT');
          }
        }
        if (this.stopped && this.giveUp) return;
        await new Promise((r) => setTimeout(r, 300));
      }
    };
    const p = attempt().finally(() => this.inflight.delete(p));
    this.inflight.add(p);
    return entry;
  }

  private giveUp = false;

  /** Stops sending and waits (up to `ms`) for every message to be acknowledged. */
  async drain(ms = 30_000): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const deadline = Date.now() + ms;
    while (this.inflight.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    this.giveUp = true;
  }

  /** Every client catches up, as it would on its next event or reconnect. */
  async settle(): Promise<void> {
    const parties = new Set<Party>();
    for (const c of this.chats) parties.add(c.constituent).add(c.agent);
    await Promise.all(
      [...parties].flatMap((p) => [...p.own].map((id) => (p.socket.connected ? catchUp(p, id) : Promise.resolve()))),
    );
  }

  close(): void {
    clearInterval(this.timer);
    for (const c of this.chats) {
      c.constituent.socket.close();
      c.agent.socket.close();
    }
  }

  /** How many clients reconnected at least once (a fault moved them). */
  reconnected(): number {
    const parties = new Set<Party>();
    for (const c of this.chats) parties.add(c.constituent).add(c.agent);
    return [...parties].filter((p) => p.reconnects > 0).length;
  }
}

export interface Verdict {
  acked: number;
  unacked: number;
  /** I1: acknowledged but missing from the database. */
  lost: string[];
  /** I2: stored more than once, or acknowledged with two different seqs. */
  duplicated: string[];
  /** I3: a gap or disorder in the database's seqs, or in a client's view. */
  disorder: string[];
  /** I1 (delivery): acknowledged messages some participant never received after catching up. */
  undelivered: string[];
  /** I4: events a client received for someone else's conversation. */
  foreign: string[];
}

/** RELIABILITY.md §5.1 I1–I4, read from the database and every client's log. */
export async function check(databaseUrl: string, t: Traffic): Promise<Verdict> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const ids = t.chats.map((c) => c.conversationId);
    const { rows } = await db.query<{ conversation_id: string; seq: number; client_message_id: string | null; id: string; visibility: string }>(
      'select conversation_id, seq, client_message_id, id, visibility from messages where conversation_id = any($1) order by conversation_id, seq',
      [ids],
    );
    const byConv = new Map<string, typeof rows>();
    for (const r of rows) byConv.set(r.conversation_id, [...(byConv.get(r.conversation_id) ?? []), r]);
    const v: Verdict = { acked: 0, unacked: 0, lost: [], duplicated: [], disorder: [], undelivered: [], foreign: [] };

    for (const e of t.ledger) {
      const stored = (byConv.get(e.conversationId) ?? []).filter((r) => r.client_message_id === e.clientMessageId);
      if (!e.seqs.length) {
        v.unacked++;
        if (stored.length > 1) v.duplicated.push(`${e.clientMessageId} (unacked) stored ${stored.length}×`);
        continue;
      }
      v.acked++;
      if (stored.length === 0) v.lost.push(`${e.clientMessageId} acked as seq ${e.seqs[0]}`);
      if (stored.length > 1 || new Set(e.seqs).size > 1) v.duplicated.push(`${e.clientMessageId} stored ${stored.length}×, acked ${e.seqs.join('/')}`);
      if (stored.length === 1 && stored[0]!.seq !== e.seqs[0]) v.duplicated.push(`${e.clientMessageId} acked seq ${e.seqs[0]} but stored ${stored[0]!.seq}`);
    }
    for (const c of t.chats) {
      const list = byConv.get(c.conversationId) ?? [];
      list.forEach((r, i) => {
        if (r.seq !== i + 1) v.disorder.push(`${c.conversationId}: db seq ${r.seq} at position ${i + 1}`);
      });
      // Each participant's view: an in-order, gap-free copy of what it may see.
      for (const [who, p, visible] of [
        ['constituent', c.constituent, list.filter((r) => r.visibility === 'public')],
        ['agent', c.agent, list],
      ] as const) {
        const seen = p.seen.get(c.conversationId) ?? [];
        const seenIds = seen.map((m) => m.id);
        if (new Set(seenIds).size !== seenIds.length) v.duplicated.push(`${who} of ${c.conversationId} holds a message twice`);
        for (let i = 1; i < seen.length; i++) if (seen[i]!.seq <= seen[i - 1]!.seq) v.disorder.push(`${who} of ${c.conversationId}: seq ${seen[i]!.seq} after ${seen[i - 1]!.seq}`);
        const missing = visible.filter((r) => !seenIds.includes(r.id));
        if (missing.length) v.undelivered.push(`${who} of ${c.conversationId} never got seq ${missing.map((r) => r.seq).join(',')}`);
      }
      for (const p of [c.constituent, c.agent]) v.foreign.push(...p.foreign);
    }
    return v;
  } finally {
    await db.end();
  }
}

/** A short line per invariant, printed by the reliability suite. */
export function report(fault: string, v: Verdict, extra: Record<string, unknown> = {}): string {
  const mark = (bad: string[]) => (bad.length ? `✗ ${bad.length}` : '✓ 0');
  return [
    `fault: ${fault}`,
    `  acked ${v.acked}, unacked at end ${v.unacked}`,
    `  I1 lost ${mark(v.lost)} · undelivered ${mark(v.undelivered)}`,
    `  I2 duplicated ${mark(v.duplicated)}`,
    `  I3 out of order ${mark(v.disorder)}`,
    `  I4 foreign deliveries ${mark(v.foreign)}`,
    ...Object.entries(extra).map(([k, val]) => `  ${k}: ${typeof val === 'string' ? val : JSON.stringify(val)}`),
  ].join('\n');
}

/**
 * Prints a fault's result for whoever runs the tier (`npm run test:reliability` shows each fault with its
 * invariants). Counts and timings only: never message bodies, names or numbers.
 */
export function printFault(text: string): void {
  console.log(text);
}
