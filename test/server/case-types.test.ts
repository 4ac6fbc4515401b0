import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { CaseType, PublicService } from '@casebridge/shared';
import { backends, collect, eventually, startTestServer, uuid, type Harness, type StaffSession, staffApi } from '../support/harness.js';

// Case types with custom fields, and the service catalog that turns a widget chat into a typed case.
describe.each(backends())('case types and the service catalog on %s', (backend) => {
  let h: Harness;
  let admin: StaffSession;
  let agent: StaffSession;

  beforeAll(async () => {
    h = await startTestServer(backend);
    [admin, agent] = await Promise.all([h.login('admin@demo.gov'), h.login('agent@demo.gov')]);
  }, 60_000);
  afterAll(async () => h?.close());

  const as = (s: StaffSession) => staffApi(h, s);
  const field = (res: { body: { error: { issues: { path: unknown[] }[] } } }) => res.body.error.issues[0]!.path;

  it('ships the demo catalog: four case types and eight services in English and Spanish', async () => {
    const types = (await as(agent).get('/api/case-types')).body.caseTypes as CaseType[];
    expect(types.map((t) => t.prefix).sort()).toEqual(['BEN', 'PRM', 'REC', 'STR']);
    const { token } = await h.widgetSession();
    const es = (await h.http.get('/api/widget/services?lang=es').set('Authorization', `Bearer ${token}`)).body.services as PublicService[];
    expect(es).toHaveLength(8);
    expect(es.map((s) => s.title)).toContain('Solicitar un permiso de estacionamiento residencial');
    const en = (await h.http.get('/api/widget/services').set('Authorization', `Bearer ${token}`)).body.services as PublicService[];
    expect(en.map((s) => s.title)).toContain('Apply for a residential parking permit');
    expect((await h.http.get('/api/widget/services')).status).toBe(401);
  });

  it('lets only admins define case types, and refuses bad definitions naming the field', async () => {
    const good = {
      name: 'Tree trimming',
      prefix: 'tre',
      fields: [{ key: 'species', label: { en: 'Species' }, type: 'text', required: true }],
    };
    expect((await as(agent).post('/api/admin/case-types', good)).status).toBe(403);
    const bad: [object, unknown[]][] = [
      [{ ...good, prefix: 'T1' }, ['prefix']],
      [{ ...good, name: '' }, ['name']],
      [{ ...good, fields: [{ key: 'zone', label: { en: 'Zone' }, type: 'select' }] }, ['fields', 0, 'options']],
      [{ ...good, fields: [{ key: 'Bad Key', label: { en: 'x' }, type: 'text' }] }, ['fields', 0, 'key']],
      [{ ...good, fields: [good.fields[0], good.fields[0]] }, ['fields', 1, 'key']],
      [{ ...good, surprise: true }, []],
      [{ ...good, prefix: 'PRM' }, ['prefix']],
    ];
    for (const [body, path] of bad) {
      const res = await as(admin).post('/api/admin/case-types', body);
      expect(res.status).toBe(400);
      if (path.length) expect(field(res)).toEqual(path);
    }
    const created = await as(admin).post('/api/admin/case-types', good);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ prefix: 'TRE', version: 1 });
  });

  it('edits a catalog service: only admins, questions must fill fields of its type once, unknown ids are not found', async () => {
    const services = (await as(admin).get('/api/services')).body.services as { id: string; title: { en: string }; caseTypeId: string; questions: unknown[] }[];
    const graffiti = services.find((s) => s.title.en === 'Report graffiti')!;
    const body = {
      title: { en: 'Report graffiti', es: 'Reportar grafiti' },
      description: { en: 'Graffiti on public property.' },
      category: 'Streets',
      caseTypeId: graffiti.caseTypeId,
      questions: [{ fieldKey: 'location', prompt: { en: 'Where is it?' } }],
    };
    expect((await as(agent).put(`/api/admin/services/${graffiti.id}`, body)).status).toBe(403);
    expect((await as(admin).put(`/api/admin/services/${uuid()}`, body)).status).toBe(404);
    for (const [questions, at] of [
      [[{ fieldKey: 'plate', prompt: { en: 'Plate?' } }], ['questions', 0, 'fieldKey']],
      [[{ fieldKey: 'location', prompt: { en: 'A' } }, { fieldKey: 'location', prompt: { en: 'B' } }], ['questions', 1, 'fieldKey']],
      [[{ fieldKey: 'location', prompt: { en: '' } }], ['questions', 0, 'prompt', 'en']],
    ] as const) {
      const res = await as(admin).put(`/api/admin/services/${graffiti.id}`, { ...body, questions });
      expect(res.status).toBe(400);
      expect(field(res)).toEqual(at);
    }
    const ok = await as(admin).put(`/api/admin/services/${graffiti.id}`, { ...body, published: false });
    expect(ok.status).toBe(200);
    // Unpublished: gone from the widget's list.
    const { token } = await h.widgetSession();
    const listed = (await h.http.get('/api/widget/services').set('Authorization', `Bearer ${token}`)).body.services as PublicService[];
    expect(listed.map((s) => s.title)).not.toContain('Report graffiti');
    await as(admin).put(`/api/admin/services/${graffiti.id}`, body);
  });

  it('changes a case type only additively, so existing cases stay valid', async () => {
    const base = {
      name: 'Noise complaint',
      prefix: 'NOI',
      fields: [{ key: 'source', label: { en: 'Source' }, type: 'select', options: ['Party', 'Construction'] }],
    };
    const ct = (await as(admin).post('/api/admin/case-types', base)).body as CaseType;
    const put = (body: object, version = ct.version) => as(admin).put(`/api/admin/case-types/${ct.id}`, { ...base, version, ...body });
    expect(field(await put({ fields: [] }))).toEqual(['fields']);
    expect(field(await put({ fields: [{ ...base.fields[0], type: 'text' }] }))).toEqual(['fields', 0, 'type']);
    expect(field(await put({ fields: [{ ...base.fields[0], options: ['Party'] }] }))).toEqual(['fields', 0, 'options']);
    expect(field(await put({ fields: [{ ...base.fields[0], required: true }] }))).toEqual(['fields', 0, 'required']);
    expect(field(await put({ prefix: 'NOS' }))).toEqual(['prefix']);
    const grown = await put({
      fields: [
        { ...base.fields[0], options: ['Party', 'Construction', 'Traffic'] },
        { key: 'night', label: { en: 'At night?' }, type: 'yes_no' },
      ],
    });
    expect(grown.status).toBe(200);
    expect(grown.body.version).toBe(2);
    expect((await put({}, 1)).status).toBe(409);
  });

  it('a chat started for a catalog service becomes a typed case with its prefix, group and fields', async () => {
    const { token } = await h.widgetSession();
    const services = (await h.http.get('/api/widget/services').set('Authorization', `Bearer ${token}`)).body.services as PublicService[];
    const permit = services.find((s) => s.title === 'Apply for a residential parking permit')!;
    const bad = await h.http
      .post('/api/widget/conversations')
      .set('Authorization', `Bearer ${token}`)
      .send({ name: 'Pat', serviceId: uuid() });
    expect(bad.status).toBe(400);
    expect(field(bad)).toEqual(['serviceId']);

    // The service's up-front questions come with it; answers are checked like any field write.
    expect((services.find((s) => s.id === permit.id) as PublicService).questions.map((q) => q.fieldKey)).toEqual(['plate', 'address', 'zone']);
    for (const [body, at] of [
      [{ name: 'Pat', serviceId: permit.id, answers: { zone: 'Z' } }, ['answers', 'zone']],
      [{ name: 'Pat', serviceId: permit.id, answers: { colour: 'red' } }, ['answers', 'colour']],
      [{ name: 'Pat', answers: { zone: 'A' } }, ['answers']],
    ] as const) {
      const res = await h.http.post('/api/widget/conversations').set('Authorization', `Bearer ${token}`).send(body);
      expect(res.status).toBe(400);
      expect(field(res)).toEqual(at);
    }
    const conv = await h.startConversation(token, { name: 'Pat Permit', serviceId: permit.id, answers: { plate: 'PAT 9' } });
    expect(conv.caseReference).toMatch(/^PRM-\d{4}-\d{6}$/);
    // Permits is Avery's group: the case is there, typed.
    const summary = (await as(agent).get(`/api/conversations/${conv.id}`)).body;
    expect(summary.groupName).toBe('Permits');
    // The inbox filters by case type.
    const permitType = (await as(agent).get('/api/case-types')).body.caseTypes.find((t: CaseType) => t.prefix === 'PRM');
    expect(summary.caseTypeId).toBe(permitType.id);
    const filtered = (await as(agent).get(`/api/inbox?view=open&caseTypeId=${permitType.id}`)).body.conversations;
    expect(filtered.map((c: { id: string }) => c.id)).toEqual([conv.id]);
    const sock = await h.staffSocket(agent);
    await sock.emitWithAck('conversation:claim', { conversationId: conv.id });
    const path = `/api/cases/${summary.caseId}`;
    let detail = (await as(agent).get(path)).body;
    expect(detail.caseType.name).toBe('Residential parking permit');
    expect(detail.title).toBe('Web chat: Apply for a residential parking permit');

    // Field values are checked against the type on every write; nothing changes on a bad one.
    for (const [fields, at] of [
      [{ zone: 'Z' }, ['fields', 'zone']],
      [{ plate: 42 }, ['fields', 'plate']],
      [{ start_date: '2026-02-30x' }, ['fields', 'start_date']],
      [{ colour: 'red' }, ['fields', 'colour']],
    ] as const) {
      const res = await as(agent).patch(path, { version: detail.version, fields });
      expect(res.status).toBe(400);
      expect(field(res)).toEqual(at);
    }
    expect(detail.fields).toEqual({ plate: 'PAT 9' });
    const partial = await as(agent).patch(path, { version: detail.version, fields: { plate: 'SPR 123', zone: 'B' } });
    expect(partial.status).toBe(200);
    expect(partial.body.fields).toEqual({ plate: 'SPR 123', zone: 'B' });
    detail = partial.body;

    // Resolving needs every required field.
    const early = await as(agent).patch(path, { version: detail.version, status: 'resolved' });
    expect(early.status).toBe(400);
    expect(early.body.error.issues.map((i: { path: string[] }) => i.path)).toEqual([['fields', 'address']]);
    // With the fields filled in, the playbook's required tasks still stand between the case and a decision.
    const filled = await as(agent).patch(path, { version: detail.version, fields: { address: '12 Elm St' }, status: 'resolved' });
    expect(filled.status).toBe(400);
    expect(filled.body.error.message).toMatch(/^Finish the required tasks first: Check the application is complete, Verify residency/);
    const after = (await as(agent).get(path)).body;
    expect(after).toMatchObject({ status: 'open', version: detail.version });
    expect(after.fields).not.toHaveProperty('address');
  });

  it('opens a case by hand for a walk-in, finding the constituent they already are', async () => {
    const { token } = await h.widgetSession();
    const chat = await h.startConversation(token, { name: 'Walk In', email: 'walk.in@example.org' });
    const types = (await as(agent).get('/api/case-types')).body.caseTypes as CaseType[];
    const permit = types.find((t) => t.prefix === 'PRM')!;
    for (const [body, path] of [
      [{ title: '' }, ['title']],
      [{ title: 'x', fields: { plate: 'A' } }, ['fields']],
      [{ title: 'x', caseTypeId: uuid() }, ['caseTypeId']],
      [{ title: 'x', caseTypeId: permit.id, fields: { zone: 'Q' } }, ['fields', 'zone']],
      [{ title: 'x', constituent: { name: 'A', email: 'nope' } }, ['constituent', 'email']],
    ] as const) {
      const res = await as(agent).post('/api/cases', body);
      expect(res.status).toBe(400);
      expect(field(res)).toEqual(path);
    }
    expect((await as(admin).post('/api/cases', { title: 'x' })).status).toBe(403);

    const res = await as(agent).post('/api/cases', {
      title: 'Permit renewal at the front desk',
      caseTypeId: permit.id,
      constituent: { name: 'Walk In', email: 'Walk.In@example.org' },
      fields: { plate: 'WALK 1', zone: 'C' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      reference: expect.stringMatching(/^PRM-\d{4}-\d{6}$/),
      status: 'open',
      assigneeName: 'Avery Agent',
      groupName: 'Permits',
      fields: { plate: 'WALK 1', zone: 'C' },
    });
    expect(res.body.constituent.otherCases.map((c: { reference: string }) => c.reference)).toEqual([chat.caseReference]);
    // Their profile lists every conversation they had with the agency, on any case.
    expect(res.body.constituent.conversations.map((c: { caseReference: string; channel: string }) => [c.caseReference, c.channel])).toEqual([
      [chat.caseReference, 'web'],
    ]);
    expect(res.body.events.map((e: { kind: string }) => e.kind)).toEqual(['case.created']);
  });

  it('asks the constituent for information, tells them at once, and reopens the case when they answer', async () => {
    const { token } = await h.widgetSession();
    const conv = await h.startConversation(token, { name: 'Info Person' });
    const constituent = await h.constituentSocket(token);
    const heard = collect(constituent, 'message:created');
    const sock = await h.staffSocket(agent);
    await sock.emitWithAck('conversation:claim', { conversationId: conv.id });
    const caseId = (await as(agent).get(`/api/conversations/${conv.id}`)).body.caseId as string;
    const path = `/api/cases/${caseId}`;
    let detail = (await as(agent).get(path)).body;

    const missing = await as(agent).patch(path, { version: detail.version, status: 'awaiting_info' });
    expect(missing.status).toBe(400);
    expect(field(missing)).toEqual(['request']);
    const stray = await as(agent).patch(path, { version: detail.version, priority: 'high', request: 'x' });
    expect(field(stray)).toEqual(['request']);

    const asked = await as(agent).patch(path, { version: detail.version, status: 'awaiting_info', request: 'a photo of the damage' });
    expect(asked.status).toBe(200);
    expect(asked.body.status).toBe('awaiting_info');
    await eventually(
      () => heard.map((m) => m.body),
      [`To continue with case ${conv.caseReference} we need: a photo of the damage`],
    );
    expect(heard[0]).toMatchObject({ visibility: 'public', author: { kind: 'system' } });

    await constituent.emitWithAck('message:send', { conversationId: conv.id, clientMessageId: uuid(), body: 'Sent it by mail' });
    await eventually(async () => (await as(agent).get(path)).body.status, 'open');
    detail = (await as(agent).get(path)).body;
    const last = detail.events.at(-1);
    expect(last).toMatchObject({ kind: 'case.status_changed', actorKind: 'constituent', data: { from: 'awaiting_info', to: 'open' } });
  });
});
