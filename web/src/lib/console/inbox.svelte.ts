import type { Channel, ConversationSummary, InboxCounts, InboxPage, InboxView, Priority } from '@casebridge/shared';
import { api } from '$lib/api';

export const VIEWS: { id: InboxView; label: string }[] = [
  { id: 'mine', label: 'Mine' },
  { id: 'queue', label: 'Queue' },
  { id: 'open', label: 'All open' },
  { id: 'closed', label: 'Recently closed' },
];

const PAGE = 50;

/**
 * One inbox view: a page loaded from the server, then kept current by live events. A conversation that
 * stops matching the view (taken, transferred away, ended) leaves it; one that starts matching joins it.
 */
export class Inbox {
  view = $state<InboxView>('queue');
  q = $state('');
  channel = $state<Channel | ''>('');
  priority = $state<Priority | ''>('');
  groupId = $state('');
  caseTypeId = $state('');
  tag = $state('');
  items = $state<ConversationSummary[]>([]);
  nextCursor = $state<string | null>(null);
  loading = $state(false);
  /** The first page has come (it loads once the socket is live, so no event falls between the two). */
  loaded = $state(false);
  error = $state<string | null>(null);
  counts = $state<InboxCounts>({ mine: 0, queue: 0, open: 0, closed: 0 });
  private generation = 0;
  private countsTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly myId: () => string) {}

  private query(cursor?: string): string {
    const p = new URLSearchParams({ view: this.view, limit: String(PAGE) });
    if (this.q.trim()) p.set('q', this.q.trim());
    if (this.channel) p.set('channel', this.channel);
    if (this.priority) p.set('priority', this.priority);
    if (this.groupId) p.set('groupId', this.groupId);
    if (this.caseTypeId) p.set('caseTypeId', this.caseTypeId);
    if (this.tag.trim()) p.set('tag', this.tag.trim().toLowerCase());
    if (cursor) p.set('cursor', cursor);
    return p.toString();
  }

  /** Loads the first page of the current view and filters; a newer reload wins over an older one. */
  async reload(): Promise<void> {
    const gen = ++this.generation;
    this.loading = true;
    try {
      const page = await api<InboxPage>(`/api/inbox?${this.query()}`);
      if (gen !== this.generation) return;
      this.items = page.conversations;
      this.nextCursor = page.nextCursor;
      this.error = null;
      this.loaded = true;
    } catch (err) {
      if (gen === this.generation) this.error = (err as Error).message;
    } finally {
      if (gen === this.generation) this.loading = false;
    }
    this.refreshCounts(0);
  }

  async loadMore(): Promise<void> {
    if (!this.nextCursor || this.loading) return;
    const gen = this.generation;
    this.loading = true;
    try {
      const page = await api<InboxPage>(`/api/inbox?${this.query(this.nextCursor)}`);
      if (gen !== this.generation) return;
      const have = new Set(this.items.map((c) => c.id));
      this.items = [...this.items, ...page.conversations.filter((c) => !have.has(c.id))];
      this.nextCursor = page.nextCursor;
    } finally {
      this.loading = false;
    }
  }

  /** Counts change with every event; asking once per burst is enough. */
  refreshCounts(delayMs = 300): void {
    clearTimeout(this.countsTimer);
    this.countsTimer = setTimeout(() => {
      api<InboxCounts>('/api/inbox/counts')
        .then((c) => (this.counts = c))
        .catch(() => undefined);
    }, delayMs);
  }

  private matches(c: ConversationSummary): boolean {
    const inView =
      this.view === 'mine'
        ? c.assigneeId === this.myId() && c.status !== 'ended'
        : this.view === 'queue'
          ? c.status === 'queued'
          : this.view === 'open'
            ? c.status !== 'ended'
            : c.status === 'ended';
    return (
      inView &&
      (!this.channel || c.channel === this.channel) &&
      (!this.priority || c.priority === this.priority) &&
      (!this.groupId || c.groupId === this.groupId) &&
      (!this.caseTypeId || c.caseTypeId === this.caseTypeId) &&
      (!this.tag.trim() || c.tags.includes(this.tag.trim().toLowerCase()))
    );
  }

  /** A live change: place, replace or drop the conversation in this view. */
  apply(c: ConversationSummary): void {
    this.refreshCounts();
    const rest = this.items.filter((x) => x.id !== c.id);
    const present = rest.length !== this.items.length;
    // While searching, only rows already shown are updated: the server decides what matches a search.
    if (!this.matches(c) || (this.q.trim() && !present)) {
      if (present) this.items = rest;
      return;
    }
    const oldestFirst = this.view === 'queue';
    const key = (x: ConversationSummary) => (oldestFirst ? x.createdAt : x.updatedAt);
    const at = rest.findIndex((x) => (oldestFirst ? key(x) > key(c) : key(x) < key(c)));
    // Beyond the loaded page: the next page will bring it.
    if (at === -1 && this.nextCursor && !present) return;
    rest.splice(at === -1 ? rest.length : at, 0, c);
    this.items = rest;
  }

  /** A case changed: its conversations' rows show the new status and priority. */
  applyCase(caseId: string, change: { status: ConversationSummary['caseStatus']; priority: Priority; tags: string[] }): void {
    this.items = this.items.map((c) =>
      c.caseId === caseId ? { ...c, caseStatus: change.status, priority: change.priority, tags: change.tags } : c,
    );
  }
}
