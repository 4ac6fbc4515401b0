import type { Call, Device } from '@twilio/voice-sdk';
import type { VoiceToken } from '@casebridge/shared';
import { api, ApiFailure } from '$lib/api';

export type PhoneState = 'off' | 'connecting' | 'ready' | 'error';

/** How long registering may take before we say Twilio could not be reached. */
const REGISTER_TIMEOUT_MS = 15_000;

/**
 * The agent's browser phone (Twilio Voice JS SDK). Nothing of the SDK is loaded, and no connection to Twilio
 * is opened, until the agent turns it on: then it fetches an access token scoped to this agent
 * (GET /api/voice/token), loads the SDK (a separate chunk), registers for incoming calls and renews the token
 * before it expires. One per tab; the console header shows it and the case's Calls panel dials through it.
 */
export class BrowserPhone {
  state = $state<PhoneState>('off');
  /** Why it is in 'error', in plain words. */
  message = $state('');
  /** A call ringing this browser: who is calling. */
  incoming = $state<{ from: string } | null>(null);
  /** The call in progress. */
  active = $state<{ with: string; outgoing: boolean; muted: boolean; status: 'connecting' | 'open' } | null>(null);
  private device: Device | null = null;
  private ringing: Call | null = null;
  private call: Call | null = null;

  get busy(): boolean {
    return this.incoming !== null || this.active !== null;
  }

  async turnOn(): Promise<void> {
    if (this.state === 'connecting' || this.state === 'ready') return;
    this.state = 'connecting';
    this.message = '';
    try {
      const { token } = await this.token();
      const { Device: DeviceClass } = await import('@twilio/voice-sdk');
      const device = new DeviceClass(token, { closeProtection: 'A call is in progress. Leaving this page hangs it up.', logLevel: 'silent' });
      this.device = device;
      device.on('registered', () => {
        if (this.device === device) this.state = 'ready';
      });
      device.on('unregistered', () => {
        if (this.device === device && this.state === 'ready') this.fail('The browser phone lost its connection to Twilio. Turn it on again.');
      });
      device.on('error', (err: { code?: number; message?: string }) => {
        if (this.device !== device) return;
        // Errors of one call are that call's; the phone stays on.
        if (this.state === 'ready' && this.busy) return;
        this.fail(describe(err));
      });
      device.on('incoming', (call: Call) => this.ring(call));
      device.on('tokenWillExpire', () => {
        void this.token()
          .then(({ token: fresh }) => device.updateToken(fresh))
          .catch((err: unknown) => this.fail(`The phone's access could not be renewed: ${(err as Error).message}`));
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        device.register(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), REGISTER_TIMEOUT_MS);
        }),
      ]).finally(() => clearTimeout(timer));
      if (this.device === device) this.state = 'ready';
    } catch (err) {
      if ((this.state as PhoneState) === 'off') return; // turned off meanwhile
      this.fail(err instanceof ApiFailure ? err.message : describe(err as { code?: number; message?: string }));
    }
  }

  turnOff(): void {
    this.teardown();
    this.state = 'off';
    this.message = '';
  }

  answer(): void {
    const call = this.ringing;
    if (!call) return;
    this.ringing = null;
    this.incoming = null;
    this.follow(call, callerOf(call), false);
    call.accept();
  }

  decline(): void {
    const call = this.ringing;
    this.ringing = null;
    this.incoming = null;
    call?.reject();
  }

  hangUp(): void {
    this.call?.disconnect();
  }

  toggleMute(): void {
    if (!this.call || !this.active) return;
    const muted = !this.active.muted;
    this.call.mute(muted);
    this.active = { ...this.active, muted };
  }

  /** Calls a constituent back (the server allows only their numbers); the case's timeline records it. */
  async dial(to: string, caseId?: string): Promise<void> {
    if (!this.device || this.state !== 'ready') throw new Error('Turn on the browser phone first (at the top of the console).');
    if (this.busy) throw new Error('Finish the call in progress first.');
    const call = await this.device.connect({ params: { To: to, ...(caseId ? { CaseId: caseId } : {}) } });
    this.follow(call, to, true);
  }

  private ring(call: Call): void {
    if (this.busy) {
      call.reject();
      return;
    }
    this.ringing = call;
    this.incoming = { from: callerOf(call) };
    const gone = () => {
      if (this.ringing === call) {
        this.ringing = null;
        this.incoming = null;
      }
    };
    call.on('cancel', gone);
    call.on('disconnect', gone);
    call.on('reject', gone);
    call.on('error', gone);
  }

  private follow(call: Call, other: string, outgoing: boolean): void {
    this.call = call;
    this.active = { with: other, outgoing, muted: false, status: 'connecting' };
    call.on('accept', () => {
      if (this.call === call && this.active) this.active = { ...this.active, status: 'open' };
    });
    const over = () => {
      if (this.call !== call) return;
      this.call = null;
      this.active = null;
    };
    call.on('disconnect', over);
    call.on('cancel', over);
    call.on('reject', over);
    call.on('error', over);
  }

  private async token(): Promise<VoiceToken> {
    return api<VoiceToken>('/api/voice/token');
  }

  private fail(message: string): void {
    this.teardown();
    this.state = 'error';
    this.message = message;
  }

  private teardown(): void {
    const device = this.device;
    this.device = null;
    this.ringing = null;
    this.call = null;
    this.incoming = null;
    this.active = null;
    try {
      device?.destroy();
    } catch {
      // already gone
    }
  }
}

function callerOf(call: Call): string {
  return call.parameters?.From || 'an unknown number';
}

function describe(err: { code?: number; message?: string }): string {
  if (err?.message === 'timeout' || err?.code === 31005 || err?.code === 31000 || err?.code === 31009 || err?.code === 53000) {
    return 'Could not reach Twilio. Check the network connection (and that the firewall lets the console reach *.twilio.com), then try again.';
  }
  if (err?.code === 20101 || err?.code === 20104 || err?.code === 31204 || err?.code === 31205) {
    return 'Twilio did not accept the access token. An admin should check the API key and TwiML App on the Phone page.';
  }
  if (err?.code === 31208 || err?.code === 31401 || err?.code === 31402) {
    return 'The browser may not use the microphone. Allow it for this site, then try again.';
  }
  return `The browser phone stopped: ${err?.message ?? 'unknown error'}${err?.code ? ` (${err.code})` : ''}.`;
}

/** The tab's phone (the SDK itself is loaded only by turnOn). */
export const phone = new BrowserPhone();
