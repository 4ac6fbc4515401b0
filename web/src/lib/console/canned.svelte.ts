import { api } from '$lib/api';

export interface Canned {
  id: string;
  title: string;
  body: string;
}

/** The agency's canned responses, fetched once per conversation view and searched as the agent types. */
export class CannedResponses {
  all = $state<Canned[]>([]);
  private loading: Promise<void> | null = null;

  load(): Promise<void> {
    this.loading ??= api<{ cannedResponses: Canned[] }>('/api/canned-responses')
      .then((r) => void (this.all = r.cannedResponses))
      .catch(() => void (this.loading = null));
    return this.loading;
  }

  search(q: string): Canned[] {
    const needle = q.trim().toLowerCase();
    return this.all
      .filter((c) => !needle || c.title.toLowerCase().includes(needle) || c.body.toLowerCase().includes(needle))
      .slice(0, 8);
  }
}
