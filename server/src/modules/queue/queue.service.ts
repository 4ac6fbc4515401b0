import type { ConversationRepository } from '../conversations/conversation.repository.js';
import type { Notifier } from '../../realtime/notifier.js';
import { Coalescer } from '../../lib/coalesce.js';

/** Used until a group has taken a few chats: a plain two minutes a place in line. */
const DEFAULT_WAIT_SECONDS = 120;
const SAMPLE = 20;

/**
 * Tells every queued constituent of a group their place in line and an estimated wait, whenever
 * the queue moves. Position is arrival order within the group; priorities come with routing.
 */
export class QueueService {
  // A busy queue changes many times a second; each change is told by a run that starts after it, but changes
  // that arrive together share one run (one query and one message per waiting constituent, not one per change).
  private readonly runs = new Coalescer<void>();

  constructor(
    private readonly d: { conversations: ConversationRepository; notifier: Notifier },
  ) {}

  announce(groupId: string): Promise<void> {
    return this.runs.get(groupId, () => this.tell(groupId));
  }

  private async tell(groupId: string): Promise<void> {
    const queue = await this.d.conversations.queueOf(groupId);
    if (queue.length === 0) return;
    const mean = (await this.d.conversations.recentMeanWaitSeconds(groupId, SAMPLE)) ?? DEFAULT_WAIT_SECONDS;
    const perPlace = Math.max(30, Math.round(mean));
    queue.forEach((c, i) =>
      this.d.notifier.queuePosition(c.constituentId, {
        conversationId: c.id,
        position: i + 1,
        estimatedWaitSeconds: perPlace * (i + 1),
      }),
    );
  }

  /** The place in line of one conversation (for a constituent who just connected), or null if not queued. */
  async positionOf(groupId: string, conversationId: string) {
    const queue = await this.d.conversations.queueOf(groupId);
    const i = queue.findIndex((c) => c.id === conversationId);
    if (i < 0) return null;
    const mean = (await this.d.conversations.recentMeanWaitSeconds(groupId, SAMPLE)) ?? DEFAULT_WAIT_SECONDS;
    return { conversationId, position: i + 1, estimatedWaitSeconds: Math.max(30, Math.round(mean)) * (i + 1) };
  }
}
