import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { CaseDetail, CaseTask, CaseType, PublicService, SlaAlert } from '@casebridge/shared';
import { backends, collect, eventually, startTestServer, uuid, type Harness, type StaffSession, staffApi } from '../support/harness.js';

// Playbooks gate the workflow; SLA clocks run on business time, pause while waiting, and alert once.
describe.each(backends())('playbooks, stages and SLAs on %s', (backend) => {
  let h: Harness;
  let admin: StaffSession;
  let agent: StaffSession;
  let supervisor: StaffSession;
  // The clock the server's SLAs read: a Wednesday afternoon in Chicago before Christmas.
  let now = new Date('2026-12-23T22:00:00Z');

  beforeAll(async () => {
    h = await startTestServer(backend, { now: () => now });
    [admin, agent, supervisor] = await Promise.all([h.login('admin@demo.gov'), h.login('agent@demo.gov'), h.login('supervisor@demo.gov')]);
  }, 60_000);
  afterAll(async () => h?.close());

  const as = (s: StaffSession) => staffApi(h, s);
  const paths = (res: { body: { error: { issues: { path: unknown[] }[] } } }) => res.body.error.issues.map((i) => i.path);
  const task = (d: CaseDetail, key: string) => d.tasks.find((t) => t.key === key)!;
  const tick = () => (h.server.app.services.timers as { tick(): Promise<{ alerts: number; closed: number }> }).tick();

  async function chatFor(serviceTitle: string, name: string) {
    const { token } = await h.widgetSession();
    const services = (await h.http.get('/api/widget/services').set('Authorization', `Bearer ${token}`)).body.services as PublicService[];
    const conv = await h.startConversation(token, { name, serviceId: services.find((s) => s.title === serviceTitle)!.id });
    const caseId = (await as(supervisor).get(`/api/conversations/${conv.id}`)).body.caseId as string;
    return { token, conv, caseId, path: `/api/cases/${caseId}` };
  }

  it('lets an admin set the business calendar, refusing bad hours and dates', async () => {
    const week: [string, string][] = [['09:00', '17:00']];
    const calendar = {
      businessHours: { timezone: 'America/Chicago', days: { mon: week, tue: week, wed: week, thu: week, fri: week } },
      holidays: ['2026-12-25', '2027-01-01'],
    };
    expect((await as(agent).put('/api/admin/calendar', calendar)).status).toBe(403);
    const badZone = await as(admin).put('/api/admin/calendar', { ...calendar, businessHours: { ...calendar.businessHours, timezone: 'Mars/Olympus' } });
    expect(badZone.status).toBe(400);
    expect(paths(badZone)[0]).toEqual(['businessHours', 'timezone']);
    const badDay = await as(admin).put('/api/admin/calendar', { ...calendar, holidays: ['Christmas'] });
    expect(paths(badDay)[0]).toEqual(['holidays', 0]);
    const ok = await as(admin).put('/api/admin/calendar', calendar);
    expect(ok.status).toBe(200);
    expect((await as(agent).get('/api/calendar')).body).toEqual(calendar);
  });

  it('drives a permit application through its playbook: required tasks gate stages and the decision', async () => {
    const { token, conv, path } = await chatFor('Apply for a residential parking permit', 'Pat Permit');
    const constituent = await h.constituentSocket(token);
    const heard = collect(constituent, 'message:created');
    const sock = await h.staffSocket(agent);
    await sock.emitWithAck('conversation:claim', { conversationId: conv.id });
    let d = (await as(agent).get(path)).body as CaseDetail;
    expect(d.stage).toBe('intake');
    expect(d.tasks.map((t) => [t.stage, t.key, t.required])).toEqual([
      ['intake', 'check_complete', true],
      ['intake', 'request_proof', false],
      ['review', 'verify_residency', true],
      ['review', 'check_zone', true],
      ['process', 'issue_permit', true],
      ['decision', 'notify_decision', true],
    ]);

    // Leaving Intake needs its required task; the refusal names it and changes nothing.
    const early = await as(agent).patch(path, { version: d.version, stage: 'review' });
    expect(early.status).toBe(400);
    expect(early.body.error.message).toBe('Finish the required tasks first: Check the application is complete');
    expect(paths(early)).toEqual([['stage'], ['tasks', task(d, 'check_complete').id]]);
    expect((await as(agent).get(path)).body.stage).toBe('intake');

    // Bad task requests: unknown task, a task of another case, a non-boolean, an admin.
    const other = await chatFor('Apply for a residential parking permit', 'Other Person');
    const otherTask = ((await as(agent).get(other.path)).body as CaseDetail).tasks[0]!;
    expect((await as(agent).patch(`${path}/tasks/${uuid()}`, { done: true })).status).toBe(404);
    expect((await as(agent).patch(`${path}/tasks/${otherTask.id}`, { done: true })).status).toBe(404);
    const notBool = await as(agent).patch(`${path}/tasks/${task(d, 'check_complete').id}`, { done: 'yes' });
    expect(notBool.status).toBe(400);
    expect(paths(notBool)[0]).toEqual(['done']);
    expect((await as(admin).patch(`${path}/tasks/${task(d, 'check_complete').id}`, { done: true })).status).toBe(403);
    // Jordan is not in Permits: the case and its tasks do not exist for him.
    const jordan = await h.login('agent2@demo.gov');
    expect((await as(jordan).patch(`${path}/tasks/${task(d, 'check_complete').id}`, { done: true })).status).toBe(404);
    expect((await as(jordan).post(`${path}/tasks`, { title: 'Sneaky' })).status).toBe(404);
    expect((await as(jordan).patch(path, { version: d.version, stage: 'review' })).status).toBe(404);

    d = (await as(agent).patch(`${path}/tasks/${task(d, 'check_complete').id}`, { done: true })).body;
    expect(task(d, 'check_complete')).toMatchObject({ doneByName: 'Avery Agent', doneAt: expect.any(String) });
    // Twice is harmless: one timeline entry.
    d = (await as(agent).patch(`${path}/tasks/${task(d, 'check_complete').id}`, { done: true })).body;
    expect(d.events.filter((e) => e.kind === 'task.done')).toHaveLength(1);

    // The "ask for proof" step asks the constituent and waits; their answer reopens the case.
    d = (await as(agent).patch(`${path}/tasks/${task(d, 'request_proof').id}`, { done: true })).body;
    expect(d.status).toBe('awaiting_info');
    expect(d.awaiting).toBe('a proof of address (a utility bill or lease from the last 90 days)');
    await eventually(() => heard.some((m) => m.body.includes('proof of address')), true);
    await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'Here is my lease' });
    await eventually(async () => (await as(agent).get(path)).body.status, 'open');

    d = (await as(agent).get(path)).body;
    d = (await as(agent).patch(path, { version: d.version, stage: 'review' })).body;
    expect(d.stage).toBe('review');
    // Skipping ahead still needs everything left behind.
    const skip = await as(agent).patch(path, { version: d.version, stage: 'decision' });
    expect(skip.body.error.message).toBe('Finish the required tasks first: Verify residency, Check zone eligibility, Issue the permit');
    for (const key of ['verify_residency', 'check_zone', 'issue_permit']) {
      d = (await as(agent).patch(`${path}/tasks/${task(d, key).id}`, { done: true })).body;
    }
    d = (await as(agent).patch(path, { version: d.version, stage: 'decision', fields: { plate: 'SPR 1', address: '1 Main St', zone: 'A' } })).body;
    expect(d.stage).toBe('decision');
    const undecided = await as(agent).patch(path, { version: d.version, status: 'resolved' });
    expect(undecided.body.error.message).toBe('Finish the required tasks first: Tell the applicant the decision');

    // The decision step sends its message to the constituent.
    d = (await as(agent).patch(`${path}/tasks/${task(d, 'notify_decision').id}`, { done: true })).body;
    await eventually(() => heard.some((m) => m.body.startsWith('Hello Pat Permit, your residential parking permit')), true);
    const done = await as(agent).patch(path, { version: d.version, status: 'resolved' });
    expect(done.status).toBe(200);
    expect(done.body.status).toBe('resolved');
    const kinds = (done.body as CaseDetail).events.map((e) => e.kind);
    expect(kinds.filter((k) => k === 'case.stage_changed')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'task.done')).toHaveLength(6);
  });

  it('adds tasks by hand for a colleague with a due date, and checks who and when', async () => {
    const { path } = await chatFor('Report a pothole', 'Tess Task');
    const staff = (await as(agent).get('/api/staff')).body.staff as { id: string; displayName: string }[];
    const jordan = staff.find((s) => s.displayName === 'Jordan Agent')!;
    for (const [body, at] of [
      [{ title: '' }, ['title']],
      [{ title: 'Call back', assigneeId: uuid() }, ['assigneeId']],
      [{ title: 'Call back', groupId: uuid() }, ['groupId']],
      [{ title: 'Call back', dueAt: 'tomorrow' }, ['dueAt']],
      [{ title: 'Call back', colour: 'red' }, []],
    ] as const) {
      const res = await as(agent).post(`${path}/tasks`, body);
      expect(res.status).toBe(400);
      expect(paths(res)[0]).toEqual(at);
    }
    const res = await as(agent).post(`${path}/tasks`, { title: 'Call the resident back', assigneeId: jordan.id, dueAt: '2026-12-28T15:00:00Z' });
    expect(res.status).toBe(201);
    const added = (res.body as CaseDetail).tasks.find((t: CaseTask) => t.key === null)!;
    expect(added).toMatchObject({ title: 'Call the resident back', assigneeName: 'Jordan Agent', dueAt: '2026-12-28T15:00:00.000Z', required: false });
    expect((res.body as CaseDetail).events.at(-1)).toMatchObject({ kind: 'task.added', actorName: 'Avery Agent' });
    // Jordan finds it in his work list; Avery's list has it not (it is Jordan's), but has her own open cases.
    const jordanWork = (await as(await h.login('agent2@demo.gov')).get('/api/my-work')).body;
    expect(jordanWork.tasks).toEqual(
      expect.arrayContaining([expect.objectContaining({ title: 'Call the resident back', dueAt: '2026-12-28T15:00:00.000Z', forGroup: false })]),
    );
    const averyWork = (await as(agent).get('/api/my-work')).body;
    expect(averyWork.tasks.map((t: { title: string }) => t.title)).not.toContain('Call the resident back');
    expect((await h.http.get('/api/my-work')).status).toBe(401);
  });

  it('merges a duplicate into the case it repeats: conversations and timeline move, the duplicate points to the survivor', async () => {
    const a = await chatFor('Report a pothole', 'Dee Duplicate');
    const b = await chatFor('Report a pothole', 'Dee Duplicate');
    const sock = await h.staffSocket(agent);
    await sock.emitWithAck('conversation:claim', { conversationId: a.conv.id });
    await sock.emitWithAck('conversation:claim', { conversationId: b.conv.id });
    let dupe = (await as(agent).get(b.path)).body as CaseDetail;
    dupe = (await as(agent).patch(b.path, { version: dupe.version, tags: ['oak-st'] })).body;
    const benefits = await chatFor('Food assistance', 'Other Group');

    for (const [reference, status] of [
      [b.conv.caseReference, 400],
      ['STR-2026-999999', 400],
      [benefits.conv.caseReference, 400], // Avery cannot see Benefits cases
    ] as const) {
      const res = await as(agent).post(`${b.path}/merge`, { reference });
      expect(res.status).toBe(status);
      expect(paths(res)[0]).toEqual(['reference']);
    }
    expect((await as(admin).post(`${b.path}/merge`, { reference: a.conv.caseReference })).status).toBe(403);

    const merged = await as(agent).post(`${b.path}/merge`, { reference: a.conv.caseReference.toLowerCase() });
    expect(merged.status).toBe(200);
    const survivor = merged.body as CaseDetail;
    expect(survivor.reference).toBe(a.conv.caseReference);
    expect(survivor.tags).toEqual(['oak-st']);
    expect(survivor.links.map((l) => l.reference)).toEqual([b.conv.caseReference]);
    // Both conversations' starts are on the survivor's timeline now, then the merge.
    expect(survivor.events.filter((e) => e.kind === 'conversation.started')).toHaveLength(2);
    expect(survivor.events.some((e) => e.kind === 'case.merged_from' && e.data.reference === b.conv.caseReference)).toBe(true);
    expect((await as(agent).get(`/api/conversations/${b.conv.id}`)).body.caseReference).toBe(a.conv.caseReference);

    const gone = (await as(agent).get(b.path)).body as CaseDetail;
    expect(gone).toMatchObject({ status: 'closed', mergedInto: { reference: a.conv.caseReference } });
    expect(gone.events.map((e) => e.kind)).toContain('case.merged_into');
    expect((await as(agent).post(`${b.path}/merge`, { reference: a.conv.caseReference })).status).toBe(409);
  });

  it('runs SLA clocks on business hours: warns at 75 %, breaches at 100 %, pauses while awaiting info', async () => {
    now = new Date('2026-12-23T22:00:00Z'); // Wednesday 16:00 in Chicago
    const sup = await h.staffSocket(supervisor);
    const alerts = collect(sup, 'sla:alert');
    const { conv, caseId, path } = await chatFor('Report a pothole', 'Sla Person');
    let d = (await as(agent).get(path)).body as CaseDetail;
    const clock = (m: string) => d.sla.find((c) => c.metric === m)!;
    // Street issue, normal priority: first response in 60 business minutes, resolution in 5 days of 8 hours.
    expect(clock('first_response')).toMatchObject({ dueAt: '2026-12-23T23:00:00.000Z', warnAt: '2026-12-23T22:45:00.000Z' });
    expect(clock('resolution')).toMatchObject({ dueAt: '2026-12-31T22:00:00.000Z', warnAt: '2026-12-30T20:00:00.000Z' });

    // Other cases run clocks too: this one's alerts are read from its own timeline and the sockets.
    const slaSeen = async () =>
      ((await as(supervisor).get(path)).body as CaseDetail).events.filter((e) => e.kind.startsWith('sla.')).map((e) => `${e.kind}:${e.data.metric}`);
    now = new Date('2026-12-23T22:44:00Z');
    await tick();
    expect(await slaSeen()).toEqual([]);
    now = new Date('2026-12-23T22:46:00Z');
    await tick();
    expect(await slaSeen()).toEqual(['sla.warning:first_response']);
    await eventually(() => alerts.filter((a) => a.caseId === caseId).map((a) => `${a.metric}:${a.level}`), ['first_response:warning']);
    // Nothing is sent twice.
    await tick();
    expect(await slaSeen()).toEqual(['sla.warning:first_response']);
    now = new Date('2026-12-23T23:01:00Z');
    await tick();
    await eventually(() => alerts.filter((a) => a.caseId === caseId).length, 2);
    const breach = alerts.find((a: SlaAlert) => a.caseId === caseId && a.level === 'breach')!;
    expect(breach).toMatchObject({ metric: 'first_response', reference: conv.caseReference });

    // The agent answers: first response met (late); the resolution clock keeps running.
    const sock = await h.staffSocket(agent);
    const mine = collect(sock, 'sla:alert');
    await sock.emitWithAck('conversation:claim', { conversationId: conv.id });
    now = new Date('2026-12-24T15:30:00Z');
    await sock.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'Hello, looking at it now' });
    d = (await as(agent).get(path)).body;
    expect(clock('first_response')).toMatchObject({ metAt: expect.any(String), breachedAt: '2026-12-23T23:01:00.000Z' });

    // Waiting for the constituent from Thursday 10:00 to Monday 10:00 pauses the clock: 480 business minutes.
    now = new Date('2026-12-24T16:00:00Z');
    d = (await as(agent).patch(path, { version: d.version, status: 'awaiting_info', request: 'a photo' })).body;
    expect(clock('resolution').pausedAt).toBe('2026-12-24T16:00:00.000Z');
    now = new Date('2026-12-31T21:00:00Z'); // past the old warning time, but paused: no alert
    await tick();
    expect(await slaSeen()).toEqual(['sla.warning:first_response', 'sla.breached:first_response']);
    now = new Date('2026-12-28T16:00:00Z');
    d = (await as(agent).patch(path, { version: d.version, status: 'open' })).body;
    expect(clock('resolution')).toMatchObject({ pausedAt: null, warnAt: '2026-12-31T20:00:00.000Z', dueAt: '2027-01-04T22:00:00.000Z' });

    now = new Date('2026-12-31T20:01:00Z');
    await tick();
    await eventually(() => mine.filter((a) => a.caseId === caseId).map((a) => `${a.metric}:${a.level}`), ['resolution:warning']);
    d = (await as(agent).get(path)).body;
    expect(d.events.filter((e) => e.kind.startsWith('sla.')).map((e) => [e.kind, e.data.metric])).toEqual([
      ['sla.warning', 'first_response'],
      ['sla.breached', 'first_response'],
      ['sla.warning', 'resolution'],
    ]);
    // Resolving stops the clock: the breach time passes silently.
    for (const t of d.tasks.filter((x) => x.required)) d = (await as(agent).patch(`${path}/tasks/${t.id}`, { done: true })).body;
    d = (await as(agent).patch(path, { version: d.version, status: 'resolved', fields: { issue: 'Pothole', location: '5 Oak St' } })).body;
    expect(d.status).toBe('resolved');
    now = new Date('2027-01-05T00:00:00Z');
    await tick();
    expect((await slaSeen()).length).toBe(3);
  });

  it('reopens a resolved case when the constituent writes within the window, and closes it after', async () => {
    now = new Date('2027-02-01T15:00:00Z');
    const { token, conv, path } = await chatFor('Food assistance', 'Reo Pen');
    const constituent = await h.constituentSocket(token);
    const sock = await h.staffSocket(agent);
    // Benefits cases belong to Jordan's group; the supervisor reads, Jordan works it.
    const jordan = await h.login('agent2@demo.gov');
    const js = await h.staffSocket(jordan);
    await js.emitWithAck('conversation:claim', { conversationId: conv.id });
    let d = (await as(jordan).get(path)).body as CaseDetail;
    expect(d.groupName).toBe('Benefits');
    for (const t of d.tasks.filter((x) => x.required)) d = (await as(jordan).patch(`${path}/tasks/${t.id}`, { done: true })).body;
    d = (await as(jordan).patch(path, { version: d.version, fields: { program: 'Food assistance' }, status: 'resolved' })).body;
    expect(d.status).toBe('resolved');
    now = new Date('2027-02-03T15:00:00Z');
    await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'One more question' });
    await eventually(async () => (await as(jordan).get(path)).body.status, 'open');
    d = (await as(jordan).get(path)).body;
    d = (await as(jordan).patch(path, { version: d.version, status: 'resolved' })).body;
    // Fourteen days later nobody wrote: the case closes by itself.
    now = new Date('2027-02-17T16:00:00Z');
    expect((await tick()).closed).toBeGreaterThanOrEqual(1);
    d = (await as(jordan).get(path)).body;
    expect(d.status).toBe('closed');
    expect(d.events.at(-1)).toMatchObject({ kind: 'case.status_changed', actorKind: 'system', data: { to: 'closed', reason: 'reopen_window_passed' } });
    sock.disconnect();
  });
});
