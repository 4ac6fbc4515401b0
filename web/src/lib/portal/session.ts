import { ApiFailure } from '$lib/api';
import type { ApiError } from '@casebridge/shared';

/** The portal sign-in for one agency, kept for this tab only. */
export interface PortalAuth {
  token: string;
  reference: string;
}

const key = (agency: string) => `cb-portal:${agency}`;

export function loadAuth(agency: string): PortalAuth | null {
  try {
    const raw = sessionStorage.getItem(key(agency));
    return raw ? (JSON.parse(raw) as PortalAuth) : null;
  } catch {
    return null;
  }
}

export function saveAuth(agency: string, auth: PortalAuth | null): void {
  if (auth) sessionStorage.setItem(key(agency), JSON.stringify(auth));
  else sessionStorage.removeItem(key(agency));
}

/** A portal API call, with the constituent token when there is one. */
export async function portalApi<T>(path: string, init: { method?: string; body?: unknown; token?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers,
    credentials: 'omit',
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const error: ApiError = data?.error ?? { code: 'INTERNAL', message: `Request failed (${res.status})` };
    throw new ApiFailure(res.status, error);
  }
  return data as T;
}

export async function portalUpload<T>(conversationId: string, file: File, token: string): Promise<T> {
  const res = await fetch(`/api/conversations/${conversationId}/attachments`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'x-filename': encodeURIComponent(file.name), authorization: `Bearer ${token}` },
    credentials: 'omit',
    body: file,
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiFailure(res.status, data?.error ?? { code: 'INTERNAL', message: `Upload failed (${res.status})` });
  return data as T;
}

/** The field each error names, so a form can put the message under it. */
export function fieldErrors(err: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (err instanceof ApiFailure) for (const i of err.error.issues ?? []) out[i.path.join('.')] ??= i.message;
  return out;
}
