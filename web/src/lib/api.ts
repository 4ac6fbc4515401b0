import type { ApiError } from '@casebridge/shared';

/** A failed API call, carrying the server's typed error. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly error: ApiError,
  ) {
    super(error.message);
  }
}

let csrfToken = '';
/** Every state-changing request echoes the session's CSRF token. */
export function setCsrfToken(token: string) {
  csrfToken = token;
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const method = init.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  if (res.status === 204) return undefined as T;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const error: ApiError = data?.error ?? { code: 'INTERNAL', message: `Request failed (${res.status})` };
    throw new ApiFailure(res.status, error);
  }
  return data as T;
}

/** Uploads one file to a conversation; attach the returned id to the next message. */
export async function uploadFile<T>(conversationId: string, file: File): Promise<T> {
  const res = await fetch(`/api/conversations/${conversationId}/attachments`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      'x-filename': encodeURIComponent(file.name),
      ...(csrfToken ? { 'x-csrf-token': csrfToken } : {}),
    },
    credentials: 'same-origin',
    body: file,
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiFailure(res.status, data?.error ?? { code: 'INTERNAL', message: `Upload failed (${res.status})` });
  return data as T;
}
