import { and, eq, isNull, sql } from 'drizzle-orm';
import type { FieldDef, LocalText, PlaybookTask, SlaPolicy } from '@casebridge/shared';
import type { Tx } from './client.js';
import { caseTypes, serviceDefinitions } from './schema.js';

type SeedType = {
  name: string;
  prefix: string;
  group: string;
  priority?: 'normal' | 'high';
  fields: FieldDef[];
  playbook: PlaybookTask[];
  sla: SlaPolicy;
};

const step = (
  stage: PlaybookTask['stage'],
  key: string,
  title: string,
  instructions: string,
  required = true,
  action?: PlaybookTask['action'],
): PlaybookTask => ({ key, stage, title, instructions, required, ...(action ? { action } : {}) });

/** Business minutes: an 8-hour working day. */
const DAY = 8 * 60;

const t = (en: string, es: string): LocalText => ({ en, es });

const TYPES: SeedType[] = [
  {
    name: 'Street issue',
    prefix: 'STR',
    group: 'General',
    fields: [
      { key: 'issue', label: t('Issue', 'Problema'), type: 'select', required: true, options: ['Pothole', 'Streetlight out', 'Missed collection', 'Graffiti', 'Other'] },
      { key: 'location', label: t('Location', 'Ubicación'), type: 'address', required: true },
      { key: 'hazard', label: t('Is it a hazard to traffic?', '¿Es un peligro para el tráfico?'), type: 'yes_no', required: false },
    ],
    playbook: [
      step('intake', 'confirm_location', 'Confirm the exact location', 'Ask for the nearest address or cross streets and fill in Location. A photo helps the crew.'),
      step('review', 'check_duplicates', 'Check for earlier reports', 'Search open Street issue cases for the same location and link any duplicate.', false),
      step('process', 'work_order', 'Create the work order', 'Open a work order for the street crew and put its number in an internal note.'),
      step('process', 'tell_scheduled', 'Tell the resident it is scheduled', 'Sends the standard message.', false, {
        kind: 'send_message',
        body: 'Hello {name}, a crew has been scheduled. We will let you know when the work is done.',
      }),
      step('decision', 'confirm_repair', 'Confirm the repair is done', 'Check the crew closed the work order, then resolve the case.'),
    ],
    sla: { normal: { firstResponseMinutes: 60, resolutionMinutes: 5 * DAY }, high: { firstResponseMinutes: 30, resolutionMinutes: 2 * DAY }, urgent: { firstResponseMinutes: 15, resolutionMinutes: DAY } },
  },
  {
    name: 'Residential parking permit',
    prefix: 'PRM',
    group: 'Permits',
    fields: [
      { key: 'plate', label: t('License plate', 'Placa'), type: 'text', required: true, maxLength: 10 },
      { key: 'address', label: t('Home address', 'Domicilio'), type: 'address', required: true },
      { key: 'zone', label: t('Permit zone', 'Zona del permiso'), type: 'select', required: true, options: ['A', 'B', 'C', 'D'] },
      { key: 'start_date', label: t('Start date', 'Fecha de inicio'), type: 'date', required: false },
      { key: 'proof', label: t('Proof of address', 'Comprobante de domicilio'), type: 'file', required: false },
    ],
    playbook: [
      step('intake', 'check_complete', 'Check the application is complete', 'Plate, home address and zone must be filled in.'),
      step('intake', 'request_proof', 'Ask for proof of address', 'Only if none was attached: asks the applicant for a document and waits for it.', false, {
        kind: 'request_document',
        request: 'a proof of address (a utility bill or lease from the last 90 days)',
      }),
      step('review', 'verify_residency', 'Verify residency', 'Compare the proof of address with the home address on the application.'),
      step('review', 'check_zone', 'Check zone eligibility', 'The address must be inside the permit zone chosen; correct the zone if needed.'),
      step('process', 'issue_permit', 'Issue the permit', 'Create the permit in the parking system and note its number.'),
      step('decision', 'notify_decision', 'Tell the applicant the decision', 'Sends the decision message; then resolve the case.', true, {
        kind: 'send_message',
        body: 'Hello {name}, your residential parking permit application has been decided. Your permit will arrive by mail within 5 business days.',
      }),
    ],
    sla: { normal: { firstResponseMinutes: 120, resolutionMinutes: 10 * DAY }, high: { firstResponseMinutes: 60, resolutionMinutes: 5 * DAY } },
  },
  {
    name: 'Benefits inquiry',
    prefix: 'BEN',
    group: 'Benefits',
    fields: [
      { key: 'program', label: t('Program', 'Programa'), type: 'select', required: true, options: ['Food assistance', 'Housing assistance', 'Utility assistance', 'Senior services'] },
      { key: 'household_size', label: t('Household size', 'Personas en el hogar'), type: 'number', required: false, min: 1, max: 20 },
      { key: 'details', label: t('Details', 'Detalles'), type: 'long_text', required: false },
    ],
    playbook: [
      step('intake', 'identify_program', 'Identify the program', 'Ask what help they need and fill in Program.'),
      step('review', 'screen', 'Screen eligibility', 'Use the program screener with household size and income.'),
      step('process', 'refer', 'Refer or enroll', 'Start the application or refer to the partner organization.', false),
      step('decision', 'confirm_outcome', 'Confirm the outcome with the constituent', 'Tell them what happens next and when.'),
    ],
    sla: { normal: { firstResponseMinutes: 60, resolutionMinutes: 3 * DAY }, high: { firstResponseMinutes: 30, resolutionMinutes: DAY } },
  },
  {
    name: 'Public records request',
    prefix: 'REC',
    group: 'General',
    fields: [
      { key: 'records', label: t('Records requested', 'Documentos solicitados'), type: 'long_text', required: true },
      { key: 'date_from', label: t('From date', 'Desde'), type: 'date', required: false },
      { key: 'date_to', label: t('To date', 'Hasta'), type: 'date', required: false },
      { key: 'format', label: t('Format', 'Formato'), type: 'multi_select', required: false, options: ['Electronic', 'Paper'] },
    ],
    playbook: [
      step('intake', 'clarify', 'Clarify the request', 'Make sure Records requested names documents, dates and departments.'),
      step('review', 'locate', 'Locate the records', 'Ask the departments that hold them; note who answered.'),
      step('process', 'redact', 'Redact exempt information', 'Remove personal and exempt information; a second person checks.'),
      step('process', 'follow_up', 'Remind the department in a week', 'Adds a follow-up task due in 7 days.', false, {
        kind: 'follow_up',
        title: 'Check the department has sent the records',
        dueInDays: 7,
      }),
      step('decision', 'deliver', 'Deliver the records', 'Send the records in the format asked for, then resolve the case.'),
    ],
    sla: { normal: { firstResponseMinutes: 240, resolutionMinutes: 10 * DAY } },
  },
];

type Q = [fieldKey: string, en: string, es: string];
const where: Q = ['location', 'Where is it? (address or nearest cross streets)', '¿Dónde está? (dirección o cruce más cercano)'];
const household: Q = ['household_size', 'How many people live in your home?', '¿Cuántas personas viven en su hogar?'];

/** Offered in the phone menu (a key each, in this order) as well as on the web and in the portal. */
const BY_PHONE = new Set(['Report a pothole', 'Streetlight out', 'Missed trash or recycling pickup', 'Apply for a residential parking permit', 'Food assistance', 'Housing and utility assistance']);

const SERVICES: { type: string; category: string; title: LocalText; description: LocalText; keywords: string[]; questions?: Q[] }[] = [
  { type: 'Street issue', category: 'Streets', title: t('Report a pothole', 'Reportar un bache'), description: t('Tell us where the road needs repair.', 'Díganos dónde hay que reparar la calle.'), keywords: ['pothole', 'road'], questions: [where] },
  { type: 'Street issue', category: 'Streets', title: t('Streetlight out', 'Farola apagada'), description: t('A streetlight is out or flickering.', 'Una farola está apagada o parpadea.'), keywords: ['light', 'lamp'], questions: [where] },
  { type: 'Street issue', category: 'Trash & recycling', title: t('Missed trash or recycling pickup', 'Recolección de basura no realizada'), description: t('Your bin was not emptied on collection day.', 'No vaciaron su contenedor el día de recolección.'), keywords: ['trash', 'bin', 'recycling'], questions: [where] },
  { type: 'Street issue', category: 'Streets', title: t('Report graffiti', 'Reportar grafiti'), description: t('Graffiti on public property.', 'Grafiti en propiedad pública.'), keywords: ['graffiti', 'vandalism'], questions: [where] },
  { type: 'Residential parking permit', category: 'Permits', title: t('Apply for a residential parking permit', 'Solicitar un permiso de estacionamiento residencial'), description: t('New permit or renewal for your street.', 'Permiso nuevo o renovación para su calle.'), keywords: ['parking', 'permit'], questions: [['plate', 'License plate', 'Placa'], ['address', 'Home address', 'Domicilio'], ['zone', 'Permit zone', 'Zona del permiso']] },
  { type: 'Benefits inquiry', category: 'Benefits', title: t('Food assistance', 'Asistencia alimentaria'), description: t('Questions about food assistance and how to apply.', 'Preguntas sobre la asistencia alimentaria y cómo solicitarla.'), keywords: ['food', 'snap'], questions: [household] },
  { type: 'Benefits inquiry', category: 'Benefits', title: t('Housing and utility assistance', 'Asistencia de vivienda y servicios'), description: t('Help with rent or utility bills.', 'Ayuda con la renta o las facturas de servicios.'), keywords: ['rent', 'housing', 'utilities'], questions: [household] },
  { type: 'Public records request', category: 'Records', title: t('Request public records', 'Solicitar documentos públicos'), description: t('Ask for copies of city records.', 'Pida copias de documentos de la ciudad.'), keywords: ['records', 'foia'], questions: [['records', 'Which records do you need?', '¿Qué documentos necesita?']] },
];

/** The demo agency's case types and service catalog. Idempotent: only what is missing is added. */
export async function seedCatalog(tx: Tx, agencyId: string, groupId: Map<string, string>): Promise<void> {
  for (const ct of TYPES) {
    await tx
      .insert(caseTypes)
      .values({
        agencyId,
        name: ct.name,
        prefix: ct.prefix,
        fields: ct.fields.map((f) => ({ ...f, required: f.required ?? false })),
        defaultGroupId: groupId.get(ct.group) ?? null,
        defaultPriority: ct.priority ?? 'normal',
        playbook: ct.playbook,
        sla: ct.sla,
      })
      .onConflictDoNothing();
    // Demo agencies seeded before playbooks existed get them; a type an admin already shaped is left alone.
    await tx
      .update(caseTypes)
      .set({ playbook: ct.playbook, sla: ct.sla })
      .where(and(eq(caseTypes.agencyId, agencyId), eq(caseTypes.name, ct.name), sql`${caseTypes.playbook} = '[]'::jsonb`, isNull(caseTypes.sla)));
  }
  const existing = await tx.select({ id: serviceDefinitions.id }).from(serviceDefinitions).where(eq(serviceDefinitions.agencyId, agencyId));
  if (existing.length) return;
  for (const s of SERVICES) {
    const [type] = await tx
      .select({ id: caseTypes.id })
      .from(caseTypes)
      .where(and(eq(caseTypes.agencyId, agencyId), eq(caseTypes.name, s.type)));
    await tx.insert(serviceDefinitions).values({
      agencyId,
      caseTypeId: type!.id,
      title: s.title,
      description: s.description,
      category: s.category,
      keywords: s.keywords,
      channels: BY_PHONE.has(s.title.en) ? ['web', 'portal', 'voice'] : ['web', 'portal'],
      questions: (s.questions ?? []).map(([fieldKey, en, es]) => ({ fieldKey, prompt: t(en, es) })),
    });
  }
}
