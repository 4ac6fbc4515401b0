import type { ConversationSummary, Mention } from '@casebridge/shared';

/**
 * Signals new work while the agent looks elsewhere: a count in the tab title and, if the agent allowed it,
 * a browser notification. Cleared when the tab is looked at again.
 */
export class NewWorkSignal {
  private unseen = 0;
  private readonly onVisible = () => {
    if (document.visibilityState === 'visible') this.clear();
  };

  constructor() {
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', this.onVisible);
  }

  /** The agent's choice, kept in this browser. */
  get sound(): boolean {
    return localStorage.getItem('casebridge:sound') === 'on';
  }
  set sound(on: boolean) {
    localStorage.setItem('casebridge:sound', on ? 'on' : 'off');
  }

  /** A short two-tone chime, synthesised: no audio file to load. */
  private chime(): void {
    try {
      const ctx = new AudioContext();
      const gain = ctx.createGain();
      gain.gain.setValueAtTime(0.08, ctx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.5);
      gain.connect(ctx.destination);
      for (const [freq, at] of [[660, 0], [880, 0.15]] as const) {
        const osc = ctx.createOscillator();
        osc.frequency.value = freq;
        osc.connect(gain);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + 0.3);
      }
      setTimeout(() => void ctx.close(), 1000);
    } catch {
      // no audio: the title and the badge still say it
    }
  }

  arrived(c: ConversationSummary): void {
    if (this.sound) this.chime();
    if (document.visibilityState === 'visible') return;
    this.unseen++;
    document.title = `(${this.unseen}) ${stripCount(document.title)}`;
    if ('Notification' in window && Notification.permission === 'granted') {
      new Notification('New conversation waiting', { body: `${c.constituentName} · ${c.groupName}`, tag: c.id });
    }
  }

  mentioned(m: Mention): void {
    if (document.visibilityState === 'visible') return;
    this.unseen++;
    document.title = `(${this.unseen}) ${stripCount(document.title)}`;
    if ('Notification' in window && Notification.permission === 'granted') {
      new Notification(`${m.byName} mentioned you`, { body: `${m.caseReference}: ${m.preview}`, tag: `mention-${m.conversationId}` });
    }
  }

  /** Asked only when the agent clicks "Turn on notifications": browsers ignore requests nobody asked for. */
  async enable(): Promise<NotificationPermission | 'unsupported'> {
    if (!('Notification' in window)) return 'unsupported';
    return Notification.requestPermission();
  }

  get permission(): NotificationPermission | 'unsupported' {
    return typeof window !== 'undefined' && 'Notification' in window ? Notification.permission : 'unsupported';
  }

  private clear(): void {
    this.unseen = 0;
    document.title = stripCount(document.title);
  }

  dispose(): void {
    document.removeEventListener('visibilitychange', this.onVisible);
  }
}

function stripCount(title: string): string {
  return title.replace(/^\(\d+\) /, '');
}
