/**
 * CaseBridge widget loader: `<script src="https://HOST/widget.js" data-agency="KEY" async></script>`.
 * Framework-free and tiny: it draws the launcher in a shadow root (no CSS leaks either way) and hosts the
 * chat app in an iframe served from the CaseBridge origin. Messages to the iframe always name its exact
 * origin; messages from it are accepted only from that origin and that window.
 */
import { parseWidgetToHost, type HostToWidget } from '@casebridge/shared/widget-protocol';

type Listener = (detail?: unknown) => void;
type Api = {
  open(): void;
  close(): void;
  identify(who: { name?: string; email?: string; phone?: string }): void;
  on(event: 'ready' | 'message' | 'closed', fn: Listener): void;
};

const script = document.currentScript as HTMLScriptElement | null;
const src = script?.src ?? '';
const agency = script?.dataset.agency ?? '';
const lang = script?.dataset.lang === 'es' ? 'es' : 'en';
const service = script?.dataset.service ?? '';
const widgetOrigin = src ? new URL(src).origin : location.origin;
const label = lang === 'es' ? 'Chatea con nosotros' : 'Chat with us';

const CSS = `
:host { all: initial; }
.launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; display: inline-flex; align-items: center; gap: 8px;
  font: 600 16px/1.2 system-ui, -apple-system, 'Segoe UI', sans-serif; background: #1d4ed8; color: #fff; border: 2px solid #fff;
  border-radius: 999px; padding: 12px 20px; min-height: 48px; cursor: pointer; box-shadow: 0 4px 14px rgb(0 0 0 / .25); }
.launcher:hover { background: #1e40af; }
.launcher:focus-visible { outline: 3px solid #f2a900; outline-offset: 3px; }
.badge { min-width: 22px; height: 22px; border-radius: 11px; background: #b00020; color: #fff; font-size: 13px;
  display: inline-flex; align-items: center; justify-content: center; padding: 0 6px; }
.badge[hidden] { display: none; }
iframe { position: fixed; right: 20px; bottom: 84px; z-index: 2147483000; width: 400px; height: min(640px, calc(100vh - 104px));
  border: 0; border-radius: 14px; box-shadow: 0 10px 30px rgb(0 0 0 / .3); background: #fff; display: none; }
iframe.open { display: block; }
@media (max-width: 480px) { iframe.open { inset: 0; width: 100%; height: 100%; border-radius: 0; }
  iframe.open ~ .launcher { display: none; } }
@media (forced-colors: active) { .launcher { border: 2px solid ButtonText; } }
@media (prefers-reduced-motion: no-preference) { .launcher { transition: background .15s; } }
`;

function start() {
  const host = document.createElement('div');
  host.id = 'casebridge-widget';
  const root = host.attachShadow({ mode: 'open' });
  const style = document.createElement('style');
  style.textContent = CSS;
  const launcher = document.createElement('button');
  launcher.type = 'button';
  launcher.className = 'launcher';
  launcher.setAttribute('aria-expanded', 'false');
  launcher.innerHTML = '<span class="text"></span><span class="badge" hidden></span>';
  launcher.querySelector('.text')!.textContent = label;
  const badge = launcher.querySelector<HTMLElement>('.badge')!;
  const frame = document.createElement('iframe');
  frame.title = 'Chat';
  const params = new URLSearchParams({ agency, lang, host: location.origin });
  if (service) params.set('service', service.slice(0, 200));
  frame.src = `${widgetOrigin}/widget/?${params}`;
  root.append(style, frame, launcher);
  document.body.appendChild(host);

  let ready = false;
  let unread = 0;
  const queued: HostToWidget[] = [];
  const listeners: Record<string, Listener[]> = {};
  const fire = (event: string, detail?: unknown) => (listeners[event] ?? []).forEach((fn) => fn(detail));
  const post = (msg: HostToWidget) => {
    if (!ready) queued.push(msg);
    else frame.contentWindow?.postMessage(msg, widgetOrigin); // never '*'
  };
  const isOpen = () => frame.classList.contains('open');
  // Browsers that block storage in third-party frames leave the chat no way to resume after a reload;
  // the host page (first party) keeps the constituent's resume token for it instead.
  const tokenKey = `casebridge:token:${agency}`;
  const hostStorage = (): Storage | null => {
    try {
      return window.localStorage;
    } catch {
      return null;
    }
  };

  function open() {
    frame.classList.add('open');
    launcher.setAttribute('aria-expanded', 'true');
    unread = 0;
    badge.hidden = true;
    post({ type: 'cb:open' });
    frame.focus();
  }
  function close(returnFocus = true) {
    if (!isOpen()) return;
    frame.classList.remove('open');
    launcher.setAttribute('aria-expanded', 'false');
    post({ type: 'cb:close' });
    if (returnFocus) launcher.focus();
    fire('closed');
  }

  launcher.addEventListener('click', () => (isOpen() ? close() : open()));
  window.addEventListener('message', (event) => {
    if (event.origin !== widgetOrigin || event.source !== frame.contentWindow) return;
    const msg = parseWidgetToHost(event.data);
    if (!msg) return;
    if (msg.type === 'cb:ready') {
      ready = true;
      post({ type: 'cb:token', token: hostStorage()?.getItem(tokenKey) ?? null });
      queued.splice(0).forEach(post);
      fire('ready');
    } else if (msg.type === 'cb:store-token') {
      const store = hostStorage();
      if (msg.token) store?.setItem(tokenKey, msg.token);
      else store?.removeItem(tokenKey);
    } else if (msg.type === 'cb:closed') close();
    else if (msg.type === 'cb:message') {
      if (!isOpen()) {
        unread += 1;
        badge.textContent = String(unread);
        badge.hidden = false;
      }
      fire('message', { preview: msg.preview });
    }
  });

  const api: Api = {
    open,
    close: () => close(false),
    identify: (who) => post({ type: 'cb:identify', ...who }),
    on: (event, fn) => {
      (listeners[event] ??= []).push(fn);
      if (event === 'ready' && ready) fn();
    },
  };
  // Calls made before the script loaded (window.CaseBridge = [['open'], …]) run now, in order.
  const early = (window as unknown as { CaseBridge?: unknown }).CaseBridge;
  (window as unknown as { CaseBridge: Api }).CaseBridge = api;
  if (Array.isArray(early)) {
    for (const [name, ...args] of early as [keyof Api, ...unknown[]][]) {
      (api[name] as (...a: unknown[]) => void)?.(...args);
    }
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
