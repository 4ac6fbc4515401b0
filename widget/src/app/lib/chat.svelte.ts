import { io, type Socket } from 'socket.io-client';
import type {
  Ack,
  Availability,
  ClientToServerEvents,
  ConstituentConversation,
  Message,
  PublicService,
  QueuePosition,
  ServerToClientEvents,
} from '@casebridge/shared';
// Values come from the dependency-free entry so zod stays out of the widget bundle.
import { PROTOCOL_VERSION } from '@casebridge/shared/constants';
import { ApiFailure, WidgetApi } from './api';
import { outbox, type Pending } from './outbox';
import type { TokenStore } from './token-store';

export type Phase = 'loading' | 'prechat' | 'chat' | 'offline-sent' | 'ended' | 'error';
export type PendingView = Pending & { state: 'sending' | 'waiting' | 'failed'; error?: string };

type WidgetSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
const ACK_TIMEOUT_MS = 10_000;

/** Everything the widget knows about the constituent's chat, and the only place that talks to the server. */
export class ChatState {
  phase = $state<Phase>('loading');
  availability = $state<Availability>({ open: true, reason: null, emailTranscript: false, textMe: false });
  /** The agency's published services, in the chosen language, for the pre-chat form. */
  services = $state<PublicService[]>([]);
  /** The address given in the pre-chat form, offered again for the transcript. */
  email = $state('');
  conversation = $state<ConstituentConversation | null>(null);
  messages = $state<Message[]>([]);
  pending = $state<PendingView[]>([]);
  connected = $state(false);
  everConnected = $state(false);
  queue = $state<QueuePosition | null>(null);
  agentTyping = $state<string | null>(null);
  agentReadSeq = $state(0);
  agentDeliveredSeq = $state(0);
  agentName = $state<string | null>(null);
  rated = $state(false);

  readonly api = new WidgetApi();
  private socket: WidgetSocket | null = null;
  private typingTimer: ReturnType<typeof setTimeout> | undefined;
  private typingSentAt = 0;

  constructor(
    private readonly agencyKey: string,
    private readonly tokens: TokenStore,
  ) {}

  get lastSeq(): number {
    return this.messages.length ? this.messages[this.messages.length - 1]!.seq : 0;
  }

  /** Resume the open conversation of this browser's session if there is one, else show the form. */
  async boot(): Promise<void> {
    try {
      this.api.token = await this.tokens.get();
      if (this.api.token) {
        try {
          const { conversations } = await this.api.conversations();
          this.availability = await this.api.availability();
          const open = conversations.find((c) => c.status !== 'ended');
          if (open) return this.enterChat(open);
          this.phase = 'prechat';
          return;
        } catch (err) {
          if (!(err instanceof ApiFailure && err.status === 401)) throw err;
        }
      }
      const session = await this.api.session(this.agencyKey);
      this.api.token = session.token;
      this.tokens.set(session.token);
      this.availability = session.availability;
      this.phase = 'prechat';
    } catch {
      this.phase = 'error';
    }
  }

  /** The catalog is a convenience: without it the form still takes a free description. */
  async loadServices(lang: 'en' | 'es'): Promise<void> {
    if (!this.api.token) return;
    this.services = (await this.api.services(lang).catch(() => ({ services: [] as PublicService[] }))).services;
  }

  async start(form: {
    name: string;
    email?: string;
    phone?: string;
    service?: string;
    serviceId?: string;
    answers?: Record<string, unknown>;
    language: 'en' | 'es';
    message?: string;
  }) {
    this.email = form.email ?? '';
    const offline = !this.availability.open;
    const res = await this.api.start({
      ...form,
      offline,
      ...(form.message ? { clientMessageId: crypto.randomUUID() } : {}),
    });
    if (offline) {
      this.conversation = res.conversation;
      this.phase = 'offline-sent';
      return;
    }
    await this.enterChat(res.conversation);
  }

  private async enterChat(conversation: ConstituentConversation) {
    this.conversation = conversation;
    this.messages = [];
    this.pending = (await outbox.list(conversation.id).catch(() => [])).map((p) => ({ ...p, state: 'waiting' as const }));
    this.phase = conversation.status === 'ended' ? 'ended' : 'chat';
    this.connect();
  }

  private connect() {
    this.socket?.close();
    const socket: WidgetSocket = io(location.origin, {
      path: '/socket.io',
      transports: ['websocket'],
      auth: { protocolVersion: PROTOCOL_VERSION, token: this.api.token },
    });
    this.socket = socket;
    socket.on('connect', () => {
      this.connected = true;
      this.everConnected = true;
      void this.catchUp().then(() => this.flush());
    });
    socket.on('disconnect', () => {
      this.connected = false;
      this.pending = this.pending.map((p) => (p.state === 'sending' ? { ...p, state: 'waiting' } : p));
    });
    socket.on('connect_error', (err) => {
      if (err.message === 'UNAUTHENTICATED') {
        this.tokens.set(null);
        this.phase = 'error';
      }
    });
    socket.on('message:created', (m) => this.accept(m));
    socket.on('conversation:status', (s) => {
      if (!this.conversation || s.conversationId !== this.conversation.id) return;
      this.conversation = { ...this.conversation, status: s.status };
      if (s.status !== 'queued') this.queue = null;
      if (s.status === 'ended') this.finish();
    });
    socket.on('queue:position', (q) => {
      if (q.conversationId === this.conversation?.id) this.queue = q;
    });
    socket.on('typing:changed', (t) => {
      if (t.conversationId !== this.conversation?.id || t.by !== 'agent') return;
      this.agentTyping = t.isTyping ? (this.agentName ?? '') : null;
    });
    socket.on('receipt:changed', (r) => {
      if (r.conversationId !== this.conversation?.id || r.by !== 'agent') return;
      this.agentDeliveredSeq = r.deliveredSeq;
      this.agentReadSeq = r.readSeq;
    });
  }

  /** Everything after the last seq we hold, page by page (seqs may skip: staff notes never reach us). */
  private async catchUp() {
    const conv = this.conversation;
    if (!conv || !this.socket) return;
    for (let guard = 0; guard < 100; guard++) {
      const res = (await this.socket
        .timeout(ACK_TIMEOUT_MS)
        .emitWithAck('conversation:sync', { conversationId: conv.id, afterSeq: this.lastSeq })
        .catch(() => null)) as Ack<{ messages: Message[]; hasMore: boolean }> | null;
      if (!res?.ok) return;
      res.data.messages.forEach((m) => this.accept(m));
      if (!res.data.hasMore) return;
    }
  }

  /** Adds a message once, in seq order, and settles its pending copy if it was ours. */
  private accept(m: Message) {
    if (m.conversationId !== this.conversation?.id) return;
    if (m.author.kind === 'agent') {
      this.agentName = m.author.displayName;
      this.agentTyping = null;
    }
    if (m.clientMessageId) {
      this.pending = this.pending.filter((p) => p.clientMessageId !== m.clientMessageId);
      void outbox.remove(m.clientMessageId).catch(() => undefined);
    }
    if (this.messages.some((x) => x.id === m.id)) return;
    const next = [...this.messages, m].sort((a, b) => a.seq - b.seq);
    this.messages = next;
  }

  async send(body: string, attachmentIds: string[] = []) {
    const conv = this.conversation;
    if (!conv) return;
    const p: Pending = { clientMessageId: crypto.randomUUID(), conversationId: conv.id, body, attachmentIds, createdAt: Date.now() };
    await outbox.put(p).catch(() => undefined);
    this.pending = [...this.pending, { ...p, state: this.connected ? 'sending' : 'waiting' }];
    this.setTyping(false);
    if (this.connected) await this.deliver(p);
  }

  retry(clientMessageId: string) {
    const p = this.pending.find((x) => x.clientMessageId === clientMessageId);
    if (p && this.connected) void this.deliver(p);
  }

  /** Sends every waiting message, oldest first, each with its original clientMessageId. */
  private async flush() {
    for (const p of [...this.pending]) {
      if (p.state !== 'failed') await this.deliver(p);
    }
  }

  private async deliver(p: Pending) {
    if (!this.socket) return;
    this.mark(p.clientMessageId, { state: 'sending', error: undefined });
    const res = (await this.socket
      .timeout(ACK_TIMEOUT_MS)
      .emitWithAck('message:send', {
        conversationId: p.conversationId,
        clientMessageId: p.clientMessageId,
        body: p.body,
        attachmentIds: p.attachmentIds,
      })
      .catch(() => null)) as Ack<{ message: Message }> | null;
    if (!res) {
      // No answer in time: keep it; the next connect resends it under the same id.
      this.mark(p.clientMessageId, { state: this.connected ? 'failed' : 'waiting' });
      return;
    }
    if (res.ok) return this.accept(res.data.message);
    const retryable = res.error.code === 'RATE_LIMITED' || res.error.code === 'UNAVAILABLE' || res.error.code === 'INTERNAL';
    if (!retryable) void outbox.remove(p.clientMessageId).catch(() => undefined);
    this.mark(p.clientMessageId, { state: 'failed', error: res.error.code });
  }

  private mark(id: string, patch: Partial<PendingView>) {
    this.pending = this.pending.map((x) => (x.clientMessageId === id ? { ...x, ...patch } : x));
  }

  /** Tells the agent we are typing: at most every 3 s, and "stopped" after 5 s of quiet. */
  setTyping(isTyping: boolean) {
    const conv = this.conversation;
    if (!conv || !this.socket?.connected) return;
    clearTimeout(this.typingTimer);
    if (isTyping) {
      if (Date.now() - this.typingSentAt > 3000) {
        this.typingSentAt = Date.now();
        this.socket.emit('typing:set', { conversationId: conv.id, isTyping: true }, () => undefined);
      }
      this.typingTimer = setTimeout(() => this.setTyping(false), 5000);
    } else if (this.typingSentAt) {
      this.typingSentAt = 0;
      this.socket.emit('typing:set', { conversationId: conv.id, isTyping: false }, () => undefined);
    }
  }

  /** Tells the agent how far we have read (called while the chat is visible). */
  markRead() {
    const conv = this.conversation;
    const last = this.lastSeq;
    if (!conv || !last || !this.socket?.connected) return;
    this.socket.emit('receipt:set', { conversationId: conv.id, readSeq: last }, () => undefined);
  }

  async end() {
    const conv = this.conversation;
    if (!conv || !this.socket) return;
    await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck('conversation:end', { conversationId: conv.id }).catch(() => null);
    this.conversation = { ...conv, status: 'ended' };
    this.finish();
  }

  private finish() {
    this.phase = 'ended';
    this.queue = null;
    this.agentTyping = null;
  }

  async rate(score: number, comment?: string) {
    if (!this.conversation) return;
    await this.api.rate(this.conversation.id, score, comment);
    this.rated = true;
  }

  transcript() {
    const conv = this.conversation;
    if (conv) void this.api.download(`/api/conversations/${conv.id}/transcript`, `transcript-${conv.caseReference}.txt`);
  }

  /** The number this chat also continues on by text, once the constituent asked for it. */
  textingTo = $state<string | null>(null);

  async continueByText(phone: string): Promise<void> {
    if (!this.conversation) return;
    this.textingTo = (await this.api.continueByText(this.conversation.id, phone)).phone;
  }

  async emailTranscript(email: string): Promise<void> {
    if (this.conversation) await this.api.emailTranscript(this.conversation.id, email);
  }

  download(attachmentId: string, filename: string) {
    void this.api.download(`/api/attachments/${attachmentId}`, filename);
  }

  newChat() {
    this.socket?.close();
    this.socket = null;
    this.conversation = null;
    this.messages = [];
    this.pending = [];
    this.rated = false;
    this.agentName = null;
    this.textingTo = null;
    this.phase = 'prechat';
    void this.api
      .availability()
      .then((a) => (this.availability = a))
      .catch(() => undefined);
  }
}
