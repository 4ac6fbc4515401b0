import type { CaseDetail } from './types';
import { api } from '$lib/api';

export type CaseChange = {
  status?: CaseDetail['status'];
  priority?: CaseDetail['priority'];
  tags?: string[];
  caseTypeId?: string;
  fields?: Record<string, unknown>;
  request?: string;
  stage?: CaseDetail['stage'];
};

export type NewTask = { title: string; assigneeId: string | null; groupId: string | null; dueAt: string | null };

/**
 * A case open in the console, whether reached through a conversation or on its own page: what the case panel
 * reads and the changes it makes. Every change sends the version it saw, so nobody overwrites a colleague.
 */
export abstract class CaseActions {
  caseDetail = $state<CaseDetail | null>(null);

  abstract loadCase(): Promise<void>;

  /** Whether "this conversation belongs to another case" applies (only for an active conversation of mine). */
  get canReply(): boolean {
    return false;
  }

  async updateCase(change: CaseChange): Promise<void> {
    if (!this.caseDetail) return;
    this.caseDetail = await api<CaseDetail>(`/api/cases/${this.caseDetail.id}`, {
      method: 'PATCH',
      body: { version: this.caseDetail.version, ...change },
    });
  }

  async link(reference: string): Promise<void> {
    if (!this.caseDetail) return;
    this.caseDetail = await api<CaseDetail>(`/api/cases/${this.caseDetail.id}/links`, { method: 'POST', body: { reference } });
  }

  /** Merges this case into the one with `reference`; returns the survivor's id. */
  async merge(reference: string): Promise<string | null> {
    if (!this.caseDetail) return null;
    const survivor = await api<CaseDetail>(`/api/cases/${this.caseDetail.id}/merge`, { method: 'POST', body: { reference } });
    await this.loadCase();
    return survivor.id;
  }

  async unlink(otherId: string): Promise<void> {
    if (!this.caseDetail) return;
    this.caseDetail = await api<CaseDetail>(`/api/cases/${this.caseDetail.id}/links/${otherId}`, { method: 'DELETE' });
  }

  async setTaskDone(taskId: string, done: boolean): Promise<void> {
    if (!this.caseDetail) return;
    this.caseDetail = await api<CaseDetail>(`/api/cases/${this.caseDetail.id}/tasks/${taskId}`, { method: 'PATCH', body: { done } });
  }

  async addTask(task: NewTask): Promise<void> {
    if (!this.caseDetail) return;
    this.caseDetail = await api<CaseDetail>(`/api/cases/${this.caseDetail.id}/tasks`, { method: 'POST', body: task });
  }

  moveToCase?(reference: string): Promise<void>;
}
