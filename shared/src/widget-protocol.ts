/**
 * Messages between the host page's loader (widget.js) and the chat iframe served from our origin.
 * Dependency-free on purpose: the loader must stay tiny. Both sides check `event.origin` and
 * `event.source` and never post to '*'.
 */

/** Host page → iframe. */
export type HostToWidget =
  | { type: 'cb:open' }
  | { type: 'cb:close' }
  | { type: 'cb:identify'; name?: string; email?: string; phone?: string }
  /** The resume token the host page keeps for us when the browser blocks storage in third-party frames. */
  | { type: 'cb:token'; token: string | null };

/** Iframe → host page. */
export type WidgetToHost =
  | { type: 'cb:ready' }
  | { type: 'cb:opened' }
  | { type: 'cb:closed' }
  | { type: 'cb:message'; preview: string }
  | { type: 'cb:resize'; width: number; height: number }
  /** Keep (or, with null, forget) the resume token on the host page; sent only when our own storage is blocked. */
  | { type: 'cb:store-token'; token: string | null };

const MAX_TOKEN = 512;
const tokenOrNull = (v: unknown): v is string | null => v === null || (typeof v === 'string' && v.length <= MAX_TOKEN);

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}
const optStr = (v: unknown) => v === undefined || (typeof v === 'string' && v.length <= 254);

/** Returns the message if it is a well-formed HostToWidget, else null. */
export function parseHostToWidget(data: unknown): HostToWidget | null {
  if (!isRecord(data)) return null;
  switch (data.type) {
    case 'cb:open':
    case 'cb:close':
      return { type: data.type };
    case 'cb:identify':
      if (!optStr(data.name) || !optStr(data.email) || !optStr(data.phone)) return null;
      return {
        type: 'cb:identify',
        name: data.name as string | undefined,
        email: data.email as string | undefined,
        phone: data.phone as string | undefined,
      };
    case 'cb:token':
      return tokenOrNull(data.token) ? { type: 'cb:token', token: data.token } : null;
    default:
      return null;
  }
}

/** Returns the message if it is a well-formed WidgetToHost, else null. */
export function parseWidgetToHost(data: unknown): WidgetToHost | null {
  if (!isRecord(data)) return null;
  switch (data.type) {
    case 'cb:ready':
    case 'cb:opened':
    case 'cb:closed':
      return { type: data.type };
    case 'cb:message':
      return typeof data.preview === 'string' ? { type: 'cb:message', preview: data.preview.slice(0, 200) } : null;
    case 'cb:resize': {
      const { width, height } = data;
      if (typeof width !== 'number' || typeof height !== 'number') return null;
      if (!Number.isFinite(width) || !Number.isFinite(height) || width < 0 || height < 0) return null;
      return { type: 'cb:resize', width: Math.min(width, 4000), height: Math.min(height, 4000) };
    }
    case 'cb:store-token':
      return tokenOrNull(data.token) ? { type: 'cb:store-token', token: data.token } : null;
    default:
      return null;
  }
}
