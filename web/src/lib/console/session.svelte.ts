import { getContext, setContext } from 'svelte';
import type { Ack, CaseType, Group, Me, Mention, Presence, SlaAlert, StaffMember } from './types';
import { api, ApiFailure, setCsrfToken } from '$lib/api';
import { connectConsole, type ConsoleSocket } from '$lib/realtime';
import { Inbox } from './inbox.svelte';
import { NewWorkSignal } from './new-work';

const KEY = Symbol('console-session');

/** Rejects when the server does not acknowledge in time, so a dead socket never leaves a spinner forever. */
export async function ack<T>(p: Promise<Ack<T>>, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('The server did not answer. Check your connection and try again.')), ms);
  });
  try {
    const res = await Promise.race([p, timeout]);
    if (!res.ok) throw new ApiFailure(400, res.error);
    return res.data;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The signed-in console: who I am, my socket, my colleagues and my inbox. One per tab, shared with every
 * console page through context.
 */
export class ConsoleSession {
  me = $state<Me | null>(null);
  connection = $state<'connecting' | 'live' | 'reconnecting'>('connecting');
  staff = $state<StaffMember[]>([]);
  groups = $state<Group[]>([]);
  caseTypes = $state<CaseType[]>([]);
  readonly inbox = new Inbox(() => this.me?.id ?? '');
  readonly newWork = new NewWorkSignal();
  socket: ConsoleSocket | null = null;
  /** Internal notes that mentioned me, newest first, until dismissed. */
  mentions = $state<(Mention & { id: string })[]>([]);
  /** SLA warnings and breaches on my cases (or, for supervisors, the agency's), until dismissed. */
  slaAlerts = $state<(SlaAlert & { id: string })[]>([]);

  static provide(): ConsoleSession {
    return setContext(KEY, new ConsoleSession());
  }
  static use(): ConsoleSession {
    return getContext<ConsoleSession>(KEY);
  }

  get canWork(): boolean {
    return this.me !== null && this.me.role !== 'admin' && this.me.role !== 'auditor';
  }

  /** Returns false when not signed in (the caller sends the user to the sign-in page). */
  async boot(onSessionEnded: () => void): Promise<boolean> {
    // The socket, who I am and the groups load side by side: the first screen waits for the slowest, not the sum.
    const socket = connectConsole();
    this.socket = socket;
    this.wire(socket, onSessionEnded);
    const groups = api<{ groups: Group[] }>('/api/groups').catch(() => ({ groups: [] as Group[] }));
    const caseTypes = api<{ caseTypes: CaseType[] }>('/api/case-types').catch(() => ({ caseTypes: [] as CaseType[] }));
    try {
      this.me = await api<Me>('/api/auth/me');
      setCsrfToken(this.me.csrfToken);
    } catch (err) {
      socket.close();
      this.socket = null;
      if (err instanceof ApiFailure && err.status === 401) return false;
      throw err;
    }
    this.syncMyPresence();
    this.groups = (await groups).groups;
    this.caseTypes = (await caseTypes).caseTypes;
    return true;
  }

  private wire(socket: ConsoleSocket, onSessionEnded: () => void): void {
    // Pages fill their own gaps on every connect (conversation, dashboard); the inbox is the session's.
    socket.on('connect', () => {
      this.connection = 'live';
      // Auditors read the audit log only: no inbox, no colleagues (issue #11).
      if (this.me?.role === 'auditor') return;
      // Whatever changed while we were away comes back with a fresh first page and fresh counts.
      void this.inbox.reload();
      void this.loadStaff();
    });
    socket.on('disconnect', () => (this.connection = 'reconnecting'));
    socket.on('conversation:created', (c) => {
      this.inbox.apply(c);
      if (c.status === 'queued') this.newWork.arrived(c);
    });
    socket.on('conversation:updated', (c) => {
      this.inbox.apply(c);
      this.staffSoon(); // colleagues' load changed
    });
    socket.on('case:updated', (c) => this.inbox.applyCase(c.caseId, c));
    socket.on('presence:changed', ({ userId, presence }) => {
      this.staff = this.staff.map((s) => (s.id === userId ? { ...s, presence } : s));
      if (this.me && userId === this.me.id) this.me = { ...this.me, presence };
    });
    socket.on('mention:created', (m) => {
      this.mentions = [{ ...m, id: crypto.randomUUID() }, ...this.mentions].slice(0, 5);
      this.newWork.mentioned(m);
    });
    socket.on('sla:alert', (a) => {
      this.slaAlerts = [{ ...a, id: crypto.randomUUID() }, ...this.slaAlerts].slice(0, 5);
    });
    socket.on('session:ended', () => {
      socket.close();
      onSessionEnded();
    });
  }

  private staffTimer: ReturnType<typeof setTimeout> | undefined;
  private staffSoon(): void {
    clearTimeout(this.staffTimer);
    this.staffTimer = setTimeout(() => void this.loadStaff().catch(() => undefined), 500);
  }

  async loadStaff(): Promise<void> {
    this.staff = (await api<{ staff: StaffMember[] }>('/api/staff')).staff;
    this.syncMyPresence();
  }

  /** Connecting may itself change my presence (signing in makes an offline agent available). */
  private syncMyPresence(): void {
    const mine = this.staff.find((s) => s.id === this.me?.id);
    if (this.me && mine && mine.presence !== this.me.presence) this.me = { ...this.me, presence: mine.presence };
  }

  async setPresence(presence: Presence): Promise<void> {
    if (!this.socket) return;
    await ack(this.socket.emitWithAck('presence:set', { presence }));
    if (this.me) this.me = { ...this.me, presence };
  }

  async signOut(): Promise<void> {
    try {
      await api('/api/auth/logout', { method: 'POST' });
    } finally {
      this.close();
    }
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
    this.newWork.dispose();
  }
}
