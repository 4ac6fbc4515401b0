import type {
  ApiError,
  AttachmentRef,
  Availability,
  ConstituentConversation,
  Message,
  PublicService,
  StartConversationInput,
  SyncResult,
  WidgetSession,
} from '@casebridge/shared';

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly error: ApiError,
  ) {
    super(error.message);
  }
}

/** The widget's calls to the CaseBridge API (same origin as this iframe), with the constituent's token. */
export class WidgetApi {
  token = '';

  private async call<T>(path: string, init: RequestInit = {}): Promise<T> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set('authorization', `Bearer ${this.token}`);
    if (init.body && typeof init.body === 'string') headers.set('content-type', 'application/json');
    const res = await fetch(path, { ...init, headers, credentials: 'omit' });
    if (res.status === 204) return undefined as T;
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new ApiFailure(res.status, data?.error ?? { code: 'INTERNAL', message: `HTTP ${res.status}` });
    return data as T;
  }

  session(agencyKey: string) {
    return this.call<WidgetSession>('/api/widget/session', { method: 'POST', body: JSON.stringify({ agencyKey }) });
  }
  services(lang: 'en' | 'es') {
    return this.call<{ services: PublicService[] }>(`/api/widget/services?lang=${lang}`);
  }
  availability() {
    return this.call<Availability>('/api/widget/availability');
  }
  conversations() {
    return this.call<{ conversations: ConstituentConversation[] }>('/api/conversations');
  }
  start(input: StartConversationInput) {
    return this.call<{ conversation: ConstituentConversation; message: Message | null; created: boolean }>(
      '/api/widget/conversations',
      { method: 'POST', body: JSON.stringify(input) },
    );
  }
  messages(conversationId: string, afterSeq: number) {
    return this.call<SyncResult>(`/api/conversations/${conversationId}/messages?afterSeq=${afterSeq}`);
  }
  upload(conversationId: string, file: File) {
    return this.call<AttachmentRef>(`/api/conversations/${conversationId}/attachments`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'x-filename': encodeURIComponent(file.name) },
      body: file,
    });
  }
  continueByText(conversationId: string, phone: string) {
    return this.call<{ phone: string }>(`/api/conversations/${conversationId}/text`, {
      method: 'POST',
      body: JSON.stringify({ phone }),
    });
  }
  emailTranscript(conversationId: string, email: string) {
    return this.call<{ sent: boolean }>(`/api/conversations/${conversationId}/transcript/email`, {
      method: 'POST',
      body: JSON.stringify({ email }),
    });
  }
  rate(conversationId: string, score: number, comment?: string) {
    return this.call<void>(`/api/conversations/${conversationId}/rating`, {
      method: 'POST',
      body: JSON.stringify({ score, ...(comment ? { comment } : {}) }),
    });
  }
  /** A secure-field answer (issue #11): sealed by the server, never a chat message. */
  provideSecure(id: string, value: string) {
    return this.call<Message>(`/api/secure-fields/${id}`, { method: 'POST', body: JSON.stringify({ value }) });
  }
  /** Files and transcripts need the token, so they are fetched and handed to the browser as a blob. */
  async download(path: string, filename: string) {
    const res = await fetch(path, { headers: { authorization: `Bearer ${this.token}` } });
    if (!res.ok) throw new ApiFailure(res.status, { code: 'NOT_FOUND', message: 'Not found' });
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
