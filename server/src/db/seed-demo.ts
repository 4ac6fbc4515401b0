import { and, eq, inArray } from 'drizzle-orm';
import type { Db } from './client.js';
import { agencies, cannedResponses, groupMemberships, groups, users } from './schema.js';
import { hashPassword } from '../modules/auth/password.js';
import { seedCatalog } from './seed-catalog.js';

export const DEMO_AGENCY_KEY = 'springfield-demo';

export const DEMO_USERS = [
  { email: 'admin@demo.gov', displayName: 'Alex Admin', role: 'admin', groups: [] },
  { email: 'supervisor@demo.gov', displayName: 'Sam Supervisor', role: 'supervisor', groups: ['General', 'Permits', 'Benefits'] },
  { email: 'agent@demo.gov', displayName: 'Avery Agent', role: 'agent', groups: ['General', 'Permits'] },
  { email: 'agent2@demo.gov', displayName: 'Jordan Agent', role: 'agent', groups: ['General', 'Benefits'] },
] as const;

const DEMO_GROUPS = ['General', 'Permits', 'Benefits'] as const;

const DEMO_CANNED = [
  { title: 'Greeting', body: 'Hello {name}, thank you for contacting the City of Springfield. How can I help you today?' },
  { title: 'One moment', body: 'Thank you, {name}. Let me look into that for you; it will take a minute or two.' },
  {
    title: 'Missed collection',
    body: 'I am sorry your collection was missed. I have logged it and a crew will come by within two working days.',
  },
  {
    title: 'Permit documents',
    body: 'For a residential parking permit we need proof of address (a utility bill or lease) and the vehicle registration.',
  },
  {
    title: 'Closing',
    body: 'Is there anything else I can help you with? Your case reference stays valid if you need to contact us again.',
  },
];

/**
 * The demo agency. Idempotent: creates what is missing and sets every demo user's password to
 * `password`, so the password printed at start-up is the one that works.
 */
export async function seedDemo(db: Db, opts: { password: string; allowedOrigins: string[] }): Promise<{ agencyId: string }> {
  const passwordHash = await hashPassword(opts.password);
  return db.transaction(async (tx) => {
    await tx
      .insert(agencies)
      .values({
        slug: 'springfield',
        name: 'City of Springfield',
        widgetKey: DEMO_AGENCY_KEY,
        casePrefix: 'SPR',
        allowedOrigins: opts.allowedOrigins,
        // City holidays: SLA clocks do not run on them.
        holidays: ['2026-12-25', '2027-01-01', '2027-01-18', '2027-05-31', '2027-07-05'],
      })
      .onConflictDoUpdate({ target: agencies.slug, set: { allowedOrigins: opts.allowedOrigins } });
    const [agency] = await tx.select().from(agencies).where(eq(agencies.slug, 'springfield'));
    const agencyId = agency!.id;

    await tx
      .insert(groups)
      .values(DEMO_GROUPS.map((name) => ({ agencyId, name, isDefault: name === 'General' })))
      .onConflictDoNothing();
    const groupRows = await tx
      .select()
      .from(groups)
      .where(and(eq(groups.agencyId, agencyId), inArray(groups.name, [...DEMO_GROUPS])));
    const groupId = new Map(groupRows.map((g) => [g.name, g.id]));

    for (const u of DEMO_USERS) {
      await tx
        .insert(users)
        .values({ agencyId, email: u.email, displayName: u.displayName, role: u.role, passwordHash })
        .onConflictDoUpdate({ target: users.email, set: { passwordHash } });
      const [row] = await tx.select({ id: users.id }).from(users).where(eq(users.email, u.email));
      if (u.groups.length) {
        await tx
          .insert(groupMemberships)
          .values(u.groups.map((g) => ({ groupId: groupId.get(g)!, userId: row!.id })))
          .onConflictDoNothing();
      }
    }
    await seedCatalog(tx, agencyId, groupId);
    await tx
      .insert(cannedResponses)
      .values(DEMO_CANNED.map((c) => ({ agencyId, ...c })))
      .onConflictDoNothing();
    return { agencyId };
  });
}
