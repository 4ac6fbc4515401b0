import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * A constituent's widget token: `cbw1.<widgetSessionId>.<HMAC-SHA256>`. The signature stops forgery
 * without a database hit; the widget_sessions row makes it revocable.
 */
export class WidgetTokens {
  constructor(private readonly secret: string) {}

  issue(widgetSessionId: string): string {
    return `cbw1.${widgetSessionId}.${this.sign(widgetSessionId)}`;
  }

  /** The widget session id if the token is well-formed and correctly signed, else undefined. */
  verify(token: string | undefined): string | undefined {
    if (!token || token.length > 200) return undefined;
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== 'cbw1') return undefined;
    const [, id, sig] = parts as [string, string, string];
    if (!/^[0-9a-f-]{36}$/.test(id)) return undefined;
    const expected = Buffer.from(this.sign(id));
    const given = Buffer.from(sig);
    return expected.length === given.length && timingSafeEqual(expected, given) ? id : undefined;
  }

  private sign(id: string): string {
    return createHmac('sha256', this.secret).update(`widget-session:${id}`).digest('base64url');
  }
}
