import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { CaseDetail, Message } from '@casebridge/shared';
import { backends, eventually, staffApi, startTestServer, uuid, type Harness, type StaffSession } from '../support/harness.js';

// What the agency's system says to a constituent comes in the language of their conversation: a Spanish chat
// hears Spanish in the widget, and the portal shows the same words (issue #5's portal in English and Spanish).
describe.each(backends())('system lines in the constituent\'s language on %s', (backend) => {
  let h: Harness;
  let agent: StaffSession;
  let supervisor: StaffSession;

  beforeAll(async () => {
    h = await startTestServer(backend);
    agent = await h.login('agent@demo.gov');
    supervisor = await h.login('supervisor@demo.gov');
  });
  afterAll(async () => {
    await h?.close();
  });

  /** A chat taken and answered by Avery; what the constituent's widget hears from the system. */
  async function chat(language: 'en' | 'es') {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: `Lang ${language}`, language, message: 'Hello / Hola' });
    const constituent = await h.constituentSocket(token);
    const heard: string[] = [];
    constituent.on('message:created', (m: Message) => {
      if (m.author.kind === 'system') heard.push(m.body);
    });
    const sock = await h.staffSocket(agent);
    expect(await sock.emitWithAck('conversation:claim', { conversationId: conv.id })).toMatchObject({ ok: true });
    await sock.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'Hi' });
    const caseId = (await staffApi(h, agent).get(`/api/conversations/${conv.id}`).expect(200)).body.caseId as string;
    return { token, conv, caseId, heard, sock };
  }

  async function askFor(caseId: string, request: string): Promise<CaseDetail> {
    const d = (await staffApi(h, agent).get(`/api/cases/${caseId}`).expect(200)).body as CaseDetail;
    return (await staffApi(h, agent).patch(`/api/cases/${caseId}`, { version: d.version, status: 'awaiting_info', request }).expect(200)).body as CaseDetail;
  }

  it('a Spanish chat hears the secure form, the supervisor joining and what is awaited in Spanish; the portal notice too', async () => {
    const { token, conv, caseId, heard, sock } = await chat('es');
    const asked = (await staffApi(h, agent).post(`/api/conversations/${conv.id}/secure-fields`, { label: 'número de cuenta', kind: 'account' }).expect(201)).body as Message;
    await staffApi(h, supervisor).post(`/api/conversations/${conv.id}/join`).expect(200);
    await askFor(caseId, 'una foto del letrero');
    await h.http.post(`/api/secure-fields/${asked.meta!.secureField!.id}`).set('Authorization', `Bearer ${token}`).send({ value: 'ACCT-1' }).expect(201);
    await eventually(() => heard, [
      'Avery Agent le pidió número de cuenta mediante un formulario seguro. No aparecerá en este chat.',
      'Sam Supervisor (supervisión) se unió a la conversación.',
      `Para continuar con su caso ${conv.caseReference} necesitamos: una foto del letrero`,
      'Dato seguro enviado: número de cuenta.',
    ]);

    // With the chat over, what is awaited goes to the portal (and email), still in Spanish.
    expect(await sock.emitWithAck('conversation:end', { conversationId: conv.id })).toMatchObject({ ok: true });
    let d = (await staffApi(h, agent).get(`/api/cases/${caseId}`).expect(200)).body as CaseDetail;
    d = (await staffApi(h, agent).patch(`/api/cases/${caseId}`, { version: d.version, status: 'open' }).expect(200)).body as CaseDetail;
    d = await askFor(caseId, 'su número de permiso');
    const notices = d.events.filter((e) => e.kind === 'constituent.notified').map((e) => e.data.body);
    expect(notices).toEqual([`Para continuar con su caso ${conv.caseReference} necesitamos: su número de permiso`]);
  });

  it('an English chat hears English', async () => {
    const { conv, caseId, heard } = await chat('en');
    await staffApi(h, agent).post(`/api/conversations/${conv.id}/secure-fields`, { label: 'account number', kind: 'account' }).expect(201);
    await askFor(caseId, 'a photo of the sign');
    await eventually(() => heard, [
      'Avery Agent asked for account number through a secure form. It will not appear in this chat.',
      `To continue with case ${conv.caseReference} we need: a photo of the sign`,
    ]);
  });
});
