/**
 * Where the widget keeps the constituent's resume token. Our own localStorage when the browser allows it.
 * On an agency's site the widget is a third-party frame, and browsers that block third-party storage throw
 * on any access to it; then the host page keeps the token for us (see the loader's `cb:store-token`).
 */
export interface TokenStore {
  get(): Promise<string>;
  set(token: string | null): void;
}

function ownStorage(): Storage | null {
  try {
    const s = window.localStorage;
    s.getItem('casebridge:probe');
    return s;
  } catch {
    return null;
  }
}

export function createTokenStore(agencyKey: string, toHost: (token: string | null) => void) {
  const key = `casebridge:token:${agencyKey}`;
  const own = ownStorage();
  let fromHost: (token: string | null) => void = () => {};
  const framed = window.parent !== window;
  // The host answers our `cb:ready` at once; the timeout covers a host page that never loaded the loader.
  const hostToken = new Promise<string>((resolve) => {
    fromHost = (t) => resolve(t ?? '');
    setTimeout(() => resolve(''), framed ? 3000 : 0);
  });
  const store: TokenStore = own
    ? {
        get: async () => own.getItem(key) ?? '',
        set: (t) => (t ? own.setItem(key, t) : own.removeItem(key)),
      }
    : { get: () => hostToken, set: toHost };
  return { store, receivedFromHost: (t: string | null) => fromHost(t) };
}
