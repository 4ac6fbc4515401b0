import type { CaseDetail, ConversationSummary, Message, SyncResult } from './types';
import { deliveryIsNewer, type AttachmentRef, type DeliveryChanged, type Visibility } from '@casebridge/shared';
import { api, ApiFailure } from '$lib/api';
import { ack, type ConsoleSession } from './session.svelte';
import { CaseActions } from './case-actions.svelte';

export interface PendingSend {
  clientMessageId: string;
  body: string;
  visibility: Visibility;
  attachments: AttachmentRef[];
  state: 'sending' | 'failed';
  error?: string;
}

const TYPING_IDLE_MS = 3000;

/**
 * The conversation open in the console: its messages in seq order (no gaps, no duplicates: anything
 * after a jump in seq is fetched from the last seq we hold), its case, and what I am sending.
 */
export class OpenConversation extends CaseActions {
  summary = $state<ConversationSummary | null>(null);
  messages = $state<Message[]>([]);
  pending = $state<PendingSend[]>([]);
  constituentTyping = $state(false);
  constituentReadSeq = $state(0);
  notFound = $state(false);
  private typingSent = 0;
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private catchingUp: Promise<void> | null = null;
  private catchUpAgain = false;
  private readonly offs: (() => void)[] = [];

  constructor(
    private readonly session: ConsoleSession,
    readonly id: string,
  ) {
    super();
  }

  get lastSeq(): number {
    return this.messages.at(-1)?.seq ?? 0;
  }

  /** A supervisor who joined this conversation replies too. */
  joined = $state(false);

  get canReply(): boolean {
    const s = this.summary;
    return Boolean(s && this.session.canWork && s.status === 'active' && (s.assigneeId === this.session.me?.id || this.joined));
  }

  async join(): Promise<void> {
    this.setSummary(await api<ConversationSummary>(`/api/conversations/${this.id}/join`, { method: 'POST' }));
    this.joined = true;
  }

  /**
   * Keeps the newest state: a look started before a change (the resync on connect, while a Take is on its
   * way) can answer after the change's own reply and must not put the old state back. Versions, not times:
   * two changes' clocks can disagree with the order their row locks gave them.
   */
  private setSummary(next: ConversationSummary): void {
    if (this.summary && next.version < this.summary.version) return;
    this.summary = next;
  }

  async open(): Promise<void> {
    this.listen();
    try {
      this.setSummary(await api<ConversationSummary>(`/api/conversations/${this.id}`));
    } catch (err) {
      if (err instanceof ApiFailure && (err.status === 404 || err.status === 400)) {
        this.notFound = true;
        return;
      }
      throw err;
    }
    await Promise.all([this.catchUp(), this.loadCase()]);
  }

  async loadCase(): Promise<void> {
    if (this.summary) this.caseDetail = await api<CaseDetail>(`/api/cases/${this.summary.caseId}`);
  }

  /**
   * Fetches everything after the last seq we hold, page by page. One catch-up at a time; one asked for while
   * another runs makes it look once more, because the running one may have read before the newest message was
   * stored (joining it alone lost that message until the next one came).
   */
  catchUp(): Promise<void> {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return this.catchingUp;
    }
    this.catchingUp = (async () => {
      try {
        do {
          this.catchUpAgain = false;
          for (;;) {
            const page = await api<SyncResult>(`/api/conversations/${this.id}/messages?afterSeq=${this.lastSeq}`);
            page.messages.forEach((m) => this.insert(m));
            if (!page.hasMore) break;
          }
        } while (this.catchUpAgain);
        this.markRead();
      } finally {
        this.catchingUp = null;
      }
    })();
    return this.catchingUp;
  }

  /** The attempt each text's shown delivery state belongs to (from live updates). */
  private readonly deliveryAttempts = new Map<string, number>();

  /** Sends a text that failed again; the result arrives as a delivery update too. */
  async retryDelivery(messageId: string): Promise<void> {
    const delivery = await api<Message['delivery']>(`/api/messages/${messageId}/retry-delivery`, { method: 'POST' });
    this.messages = this.messages.map((m) => (m.id === messageId ? { ...m, delivery } : m));
  }

  private insert(m: Message): void {
    if (m.conversationId !== this.id || m.seq <= this.lastSeq) return; // duplicate or already held
    this.messages = [...this.messages, m];
    this.pending = this.pending.filter((p) => p.clientMessageId !== m.clientMessageId);
  }

  private accept(m: Message): void {
    if (m.conversationId !== this.id) return;
    if (m.seq === this.lastSeq + 1) {
      this.insert(m);
      if (m.author.kind === 'constituent') this.constituentTyping = false;
      this.markRead();
    } else if (m.seq > this.lastSeq + 1) {
      void this.catchUp(); // a gap: something was missed; the server has it in order
    }
  }

  private listen(): void {
    const s = this.session.socket;
    if (!s) return;
    const onMessage = (m: Message) => this.accept(m);
    const onUpdated = (c: ConversationSummary) => {
      if (c.id !== this.id) return;
      this.setSummary(c);
      void this.loadCase().catch(() => undefined);
    };
    const onTyping = (t: { conversationId: string; by: string; isTyping: boolean }) => {
      if (t.conversationId === this.id && t.by === 'constituent') this.constituentTyping = t.isTyping;
    };
    const onReceipt = (r: { conversationId: string; by: string; readSeq: number }) => {
      if (r.conversationId === this.id && r.by === 'constituent') this.constituentReadSeq = r.readSeq;
    };
    const onCase = (c: { caseId: string }) => {
      if (c.caseId === this.summary?.caseId) void this.loadCase().catch(() => undefined);
    };
    const onDelivery = (d: DeliveryChanged) => {
      if (d.conversationId !== this.id) return;
      // Two nodes may announce "sent" and "delivered" in either order: keep the newest state.
      const held = this.deliveryAttempts.get(d.messageId);
      const current = this.messages.find((m) => m.id === d.messageId)?.delivery;
      if (!deliveryIsNewer(current && held !== undefined ? { status: current.status, attempt: held } : undefined, { status: d.delivery.status, attempt: d.attempt })) return;
      this.deliveryAttempts.set(d.messageId, d.attempt);
      this.messages = this.messages.map((m) => (m.id === d.messageId ? { ...m, delivery: d.delivery } : m));
    };
    // Every connect, the first one too: a page opened before its socket was live missed what happened in
    // between, and what was typed meanwhile waits in `pending` for a live socket.
    const onConnect = () => void this.resync();
    s.on('connect', onConnect);
    s.on('message:created', onMessage);
    s.on('message:delivery', onDelivery);
    s.on('conversation:updated', onUpdated);
    s.on('typing:changed', onTyping);
    s.on('receipt:changed', onReceipt);
    s.on('case:updated', onCase);
    this.offs.push(() => {
      s.off('connect', onConnect);
      s.off('message:created', onMessage);
      s.off('message:delivery', onDelivery);
      s.off('conversation:updated', onUpdated);
      s.off('typing:changed', onTyping);
      s.off('receipt:changed', onReceipt);
      s.off('case:updated', onCase);
    });
  }

  /** After a (re)connect: the summary, the case and every message we missed. */
  async resync(): Promise<void> {
    if (this.notFound) return;
    try {
      this.setSummary(await api<ConversationSummary>(`/api/conversations/${this.id}`));
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 404) this.notFound = true; // transferred away meanwhile
      return;
    }
    await Promise.all([this.catchUp(), this.loadCase()]);
    // Whatever was sending when the line dropped is sent again with the same id: never twice.
    for (const p of this.pending.filter((x) => x.state === 'sending')) void this.deliver(p);
  }

  send(body: string, visibility: Visibility, attachments: AttachmentRef[] = []): void {
    const p: PendingSend = { clientMessageId: crypto.randomUUID(), body, visibility, attachments, state: 'sending' };
    this.pending = [...this.pending, p];
    this.stopTyping();
    void this.deliver(p);
  }

  retry(clientMessageId: string): void {
    const p = this.pending.find((x) => x.clientMessageId === clientMessageId);
    if (!p) return;
    this.setPending(clientMessageId, { state: 'sending', error: undefined });
    void this.deliver(p);
  }

  discard(clientMessageId: string): void {
    this.pending = this.pending.filter((x) => x.clientMessageId !== clientMessageId);
  }

  private setPending(id: string, patch: Partial<PendingSend>): void {
    this.pending = this.pending.map((x) => (x.clientMessageId === id ? { ...x, ...patch } : x));
  }

  private async deliver(p: PendingSend): Promise<void> {
    const socket = this.session.socket;
    if (!socket?.connected) return; // sent once the socket connects (resync)
    try {
      const res = await ack(
        socket.emitWithAck('message:send', {
          conversationId: this.id,
          clientMessageId: p.clientMessageId,
          body: p.body,
          visibility: p.visibility,
          attachmentIds: p.attachments.map((a) => a.id),
        }),
      );
      this.accept(res.message);
      if (this.pending.some((x) => x.clientMessageId === p.clientMessageId)) void this.catchUp();
    } catch (err) {
      this.setPending(p.clientMessageId, { state: 'failed', error: (err as Error).message });
    }
  }

  /** Typing: say so at most every 2 s while keys are pressed, and stop after 3 s of quiet. */
  typing(): void {
    const socket = this.session.socket;
    if (!socket?.connected || !this.canReply) return;
    if (Date.now() - this.typingSent > 2000) {
      this.typingSent = Date.now();
      socket.emit('typing:set', { conversationId: this.id, isTyping: true }, () => undefined);
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  private stopTyping(): void {
    clearTimeout(this.typingTimer);
    if (!this.typingSent) return;
    this.typingSent = 0;
    this.session.socket?.emit('typing:set', { conversationId: this.id, isTyping: false }, () => undefined);
  }

  private markRead(): void {
    const socket = this.session.socket;
    if (!socket?.connected || !this.canReply || document.visibilityState !== 'visible') return;
    socket.emit('receipt:set', { conversationId: this.id, readSeq: this.lastSeq }, () => undefined);
  }

  async claim(): Promise<void> {
    const socket = this.session.socket;
    if (!socket) return;
    this.setSummary(await ack(socket.emitWithAck('conversation:claim', { conversationId: this.id })));
    await this.loadCase();
  }

  async transfer(to: { toUserId?: string; toGroupId?: string; note?: string }): Promise<void> {
    const socket = this.session.socket;
    if (!socket) return;
    this.setSummary(await ack(socket.emitWithAck('conversation:transfer', { conversationId: this.id, ...to })));
  }

  /** Ends the chat, first telling the constituent what happens next if there is something to say. */
  async end(closingMessage: string, resolve: boolean): Promise<void> {
    const socket = this.session.socket;
    if (!socket) return;
    if (closingMessage.trim()) {
      const res = await ack(
        socket.emitWithAck('message:send', {
          conversationId: this.id,
          clientMessageId: crypto.randomUUID(),
          body: closingMessage.trim(),
          visibility: 'public',
        }),
      );
      this.accept(res.message);
    }
    await ack(socket.emitWithAck('conversation:end', { conversationId: this.id }));
    if (resolve && this.caseDetail?.allowedStatuses.includes('resolved')) {
      await this.updateCase({ status: 'resolved' });
    }
  }

  async moveToCase(reference: string): Promise<void> {
    this.setSummary(await api<ConversationSummary>(`/api/conversations/${this.id}/case`, { method: 'POST', body: { reference } }));
    await this.loadCase();
  }

  close(): void {
    this.stopTyping();
    this.offs.splice(0).forEach((off) => off());
  }
}
