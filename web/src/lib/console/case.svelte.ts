import type { CaseDetail } from './types';
import { api, ApiFailure } from '$lib/api';
import { CaseActions } from './case-actions.svelte';
import type { ConsoleSession } from './session.svelte';

/** A case on its own page (one opened by hand, or reached from another case): kept current by case:updated. */
export class OpenCase extends CaseActions {
  notFound = $state(false);
  private off: (() => void) | null = null;

  constructor(
    private readonly session: ConsoleSession,
    readonly id: string,
  ) {
    super();
  }

  async loadCase(): Promise<void> {
    try {
      this.caseDetail = await api<CaseDetail>(`/api/cases/${this.id}`);
    } catch (err) {
      if (err instanceof ApiFailure && (err.status === 404 || err.status === 400)) this.notFound = true;
      else throw err;
    }
  }

  async open(): Promise<void> {
    const s = this.session.socket;
    const onCase = (c: { caseId: string }) => {
      if (c.caseId === this.id) void this.loadCase().catch(() => undefined);
    };
    // Every connect, the first one too: changes made before the socket was live, or during a drop, reached no one.
    const onConnect = () => void this.loadCase().catch(() => undefined);
    s?.on('case:updated', onCase);
    s?.on('connect', onConnect);
    this.off = () => {
      s?.off('case:updated', onCase);
      s?.off('connect', onConnect);
    };
    await this.loadCase();
  }

  close(): void {
    this.off?.();
  }
}
