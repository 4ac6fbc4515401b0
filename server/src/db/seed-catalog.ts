import { and, eq } from 'drizzle-orm';
import type { FieldDef, LocalText } from '@casebridge/shared';
import type { Tx } from './client.js';
import { caseTypes, serviceDefinitions } from './schema.js';

type SeedType = { name: string; prefix: string; group: string; priority?: 'normal' | 'high'; fields: FieldDef[] };

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
  },
];

const SERVICES: { type: string; category: string; title: LocalText; description: LocalText; keywords: string[] }[] = [
  { type: 'Street issue', category: 'Streets', title: t('Report a pothole', 'Reportar un bache'), description: t('Tell us where the road needs repair.', 'Díganos dónde hay que reparar la calle.'), keywords: ['pothole', 'road'] },
  { type: 'Street issue', category: 'Streets', title: t('Streetlight out', 'Farola apagada'), description: t('A streetlight is out or flickering.', 'Una farola está apagada o parpadea.'), keywords: ['light', 'lamp'] },
  { type: 'Street issue', category: 'Trash & recycling', title: t('Missed trash or recycling pickup', 'Recolección de basura no realizada'), description: t('Your bin was not emptied on collection day.', 'No vaciaron su contenedor el día de recolección.'), keywords: ['trash', 'bin', 'recycling'] },
  { type: 'Street issue', category: 'Streets', title: t('Report graffiti', 'Reportar grafiti'), description: t('Graffiti on public property.', 'Grafiti en propiedad pública.'), keywords: ['graffiti', 'vandalism'] },
  { type: 'Residential parking permit', category: 'Permits', title: t('Apply for a residential parking permit', 'Solicitar un permiso de estacionamiento residencial'), description: t('New permit or renewal for your street.', 'Permiso nuevo o renovación para su calle.'), keywords: ['parking', 'permit'] },
  { type: 'Benefits inquiry', category: 'Benefits', title: t('Food assistance', 'Asistencia alimentaria'), description: t('Questions about food assistance and how to apply.', 'Preguntas sobre la asistencia alimentaria y cómo solicitarla.'), keywords: ['food', 'snap'] },
  { type: 'Benefits inquiry', category: 'Benefits', title: t('Housing and utility assistance', 'Asistencia de vivienda y servicios'), description: t('Help with rent or utility bills.', 'Ayuda con la renta o las facturas de servicios.'), keywords: ['rent', 'housing', 'utilities'] },
  { type: 'Public records request', category: 'Records', title: t('Request public records', 'Solicitar documentos públicos'), description: t('Ask for copies of city records.', 'Pida copias de documentos de la ciudad.'), keywords: ['records', 'foia'] },
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
      })
      .onConflictDoNothing();
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
    });
  }
}
