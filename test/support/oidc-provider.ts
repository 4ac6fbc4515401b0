import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** One person at the test identity provider: the claims it releases about them. */
export interface TestAccount {
  email?: string;
  email_verified?: boolean;
  name?: string;
  roles?: string[];
  groups?: string[];
}

export interface TestOidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  accounts: Map<string, TestAccount>;
  /** Who the next authorization signs in as (the provider's login screen, answered by the test). */
  signInAs(sub: string): void;
  /**
   * Changes the claims of the next ID tokens the token endpoint returns, re-signed with the provider's own key
   * (a misbehaving or confused provider: wrong audience, wrong issuer, already expired). Undefined: as issued.
   */
  tamperIdToken(fn: ((claims: Record<string, unknown>) => Record<string, unknown>) | undefined): void;
  /** The provider's own server errors, by name and message only (never printed: they can carry tokens). */
  serverErrors: string[];
  close(): Promise<void>;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function resign(jwt: string, key: KeyObject, change: (c: Record<string, unknown>) => Record<string, unknown>): string {
  const [header, payload] = jwt.split('.');
  const claims = change(JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>);
  const input = `${header}.${b64(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

/**
 * A real OpenID Connect provider (oidc-provider) on a loopback port, for sign-in tests. Its login and consent
 * screens are answered at once for the account chosen with signInAs, so a test follows plain redirects.
 */
export async function startOidcProvider(opts: { redirectUris: string[]; issuerPath?: string }): Promise<TestOidcProvider> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const http: Server = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  // issuerPath: the provider names an issuer other than the URL it is served at (a misconfigured provider).
  const issuer = `http://127.0.0.1:${port}${opts.issuerPath ?? ''}`;
  const accounts = new Map<string, TestAccount>();
  let current = '';
  let tamper: ((c: Record<string, unknown>) => Record<string, unknown>) | undefined;
  const clientId = 'casebridge';
  const clientSecret = 'test-client-secret-0123456789';

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: opts.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [jwk as never] },
    cookies: { keys: ['test-cookie-signing-key'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'roles', 'groups'] },
    // Release the requested claims in the ID token too (as many agency providers do for roles and groups).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    async findAccount(_ctx, sub) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...account }) };
    },
  });
  const serverErrors: string[] = [];
  provider.on('server_error', (_ctx, err: Error) => serverErrors.push(`${err.name}: ${err.message}`));

  // The login and consent screens: answered for the chosen account.
  provider.use(async (ctx, next) => {
    if (ctx.path.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      let result: Record<string, unknown>;
      if (details.prompt.name === 'login') result = { login: { accountId: current } };
      else {
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
        grant!.addOIDCScope(String(details.params.scope));
        result = { consent: { grantId: await grant!.save() } };
      }
      ctx.respond = false;
      await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      return;
    }
    await next();
    if (tamper && ctx.path === '/token' && ctx.method === 'POST' && ctx.body && typeof ctx.body === 'object') {
      const body = ctx.body as Record<string, unknown>;
      if (typeof body.id_token === 'string') ctx.body = { ...body, id_token: resign(body.id_token, privateKey, tamper) };
    }
  });
  http.on('request', provider.callback());

  return {
    issuer,
    clientId,
    clientSecret,
    accounts,
    serverErrors,
    signInAs: (sub) => {
      current = sub;
    },
    tamperIdToken: (fn) => {
      tamper = fn;
    },
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

/** A tiny cookie jar per origin, enough to follow the provider's redirects the way a browser would. */
export class CookieJar {
  private readonly jars = new Map<string, Map<string, string>>();
  header(url: string): string {
    const jar = this.jars.get(new URL(url).host);
    return jar ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : '';
  }
  store(url: string, setCookie: string[] | string | undefined | null): void {
    const host = new URL(url).host;
    const jar = this.jars.get(host) ?? new Map<string, string>();
    for (const c of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    this.jars.set(host, jar);
  }
  get(url: string, name: string): string | undefined {
    return this.jars.get(new URL(url).host)?.get(name);
  }
}

/** GET with this jar, without following redirects: the status, Location and the response. */
export async function step(jar: CookieJar, url: string): Promise<{ status: number; location: string | null; res: Response }> {
  const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url) } });
  jar.store(url, res.headers.getSetCookie());
  const location = res.headers.get('location');
  return { status: res.status, location: location ? new URL(location, url).href : null, res };
}
