import { and, eq, isNotNull, isNull, sql } from 'drizzle-orm';
import type { Db, Tx } from '../../db/client.js';
import { cases, channelIdentities, constituents, widgetSessions } from '../../db/schema.js';

export type WidgetSessionRow = typeof widgetSessions.$inferSelect;

export class ConstituentRepository {
  constructor(private readonly db: Db) {}

  /** A new anonymous constituent and the widget session that identifies them. */
  async createWithWidgetSession(agencyId: string): Promise<WidgetSessionRow> {
    return this.db.transaction(async (tx) => {
      const [c] = await tx.insert(constituents).values({ agencyId }).returning({ id: constituents.id });
      const [s] = await tx.insert(widgetSessions).values({ agencyId, constituentId: c!.id }).returning();
      return s!;
    });
  }

  async createWidgetSessionFor(agencyId: string, constituentId: string, expiresAt: string): Promise<WidgetSessionRow> {
    const [s] = await this.db.insert(widgetSessions).values({ agencyId, constituentId, expiresAt }).returning();
    return s!;
  }

  /** The agency's constituent with this phone number, if any. */
  async findByPhone(agencyId: string, phone: string): Promise<string | undefined> {
    const [row] = await this.db
      .select({ id: constituents.id })
      .from(constituents)
      .where(and(eq(constituents.agencyId, agencyId), eq(constituents.phone, phone)))
      .limit(1);
    return row?.id;
  }

  /** Does someone with this email already have a case with the agency (for routing returning constituents)? */
  async hasCasesByEmail(agencyId: string, email: string): Promise<boolean> {
    const [row] = await this.db
      .select({ id: cases.id })
      .from(cases)
      .innerJoin(constituents, eq(constituents.id, cases.constituentId))
      .where(and(eq(cases.agencyId, agencyId), sql`lower(${constituents.email}) = ${email.toLowerCase()}`))
      .limit(1);
    return Boolean(row);
  }

  async findWidgetSession(id: string): Promise<WidgetSessionRow | undefined> {
    const [row] = await this.db.select().from(widgetSessions).where(eq(widgetSessions.id, id));
    return row;
  }

  async revokeWidgetSession(id: string): Promise<void> {
    await this.db.update(widgetSessions).set({ revokedAt: sql`now()` }).where(eq(widgetSessions.id, id));
  }

  async updateDetails(
    tx: Tx,
    id: string,
    details: { displayName: string; email?: string; phone?: string; language: string },
  ): Promise<void> {
    await tx
      .update(constituents)
      .set({
        displayName: details.displayName,
        language: details.language,
        ...(details.email !== undefined ? { email: details.email } : {}),
        ...(details.phone !== undefined ? { phone: details.phone } : {}),
      })
      .where(eq(constituents.id, id));
  }

  /**
   * The agency's constituent with this email (else phone), or a new one: a walk-in who chatted before lands
   * on the same person, so their cases stay together.
   */
  async findOrCreate(
    tx: Tx,
    agencyId: string,
    who: { name: string; email?: string; phone?: string; language: string },
  ): Promise<string> {
    for (const [column, value] of [
      [constituents.email, who.email?.toLowerCase()],
      [constituents.phone, who.phone],
    ] as const) {
      if (!value) continue;
      const [found] = await tx
        .select({ id: constituents.id })
        .from(constituents)
        .where(and(eq(constituents.agencyId, agencyId), eq(column, value)))
        .limit(1);
      if (found) return found.id;
    }
    const [row] = await tx
      .insert(constituents)
      .values({ agencyId, displayName: who.name, email: who.email?.toLowerCase(), phone: who.phone, language: who.language })
      .returning({ id: constituents.id });
    return row!.id;
  }

  /** The constituent's identity on a channel, created on first use; the unique index settles races. */
  async ensureIdentity(
    tx: Tx,
    input: { agencyId: string; constituentId: string; channel: 'web' | 'sms' | 'voice' | 'email' | 'portal'; address: string },
  ): Promise<string> {
    return (await this.identityFor(tx, input)).id;
  }

  /** The identity for an address, and whether this call created it (then nothing can have happened on it yet). */
  async identityFor(
    tx: Tx,
    input: { agencyId: string; constituentId: string; channel: 'web' | 'sms' | 'voice' | 'email' | 'portal'; address: string },
  ): Promise<{ id: string; isNew: boolean }> {
    const [made] = await tx.insert(channelIdentities).values(input).onConflictDoNothing().returning({ id: channelIdentities.id });
    if (made) return { id: made.id, isNew: true };
    const [row] = await tx
      .select({ id: channelIdentities.id })
      .from(channelIdentities)
      .where(
        and(
          eq(channelIdentities.agencyId, input.agencyId),
          eq(channelIdentities.channel, input.channel),
          eq(channelIdentities.address, input.address),
        ),
      );
    return { id: row!.id, isNew: false };
  }
  /** A phone number's SMS identity, if it has texted or been texted. */
  async smsIdentity(agencyId: string, phone: string): Promise<{ id: string; constituentId: string; optedOut: boolean } | undefined> {
    const [row] = await this.db
      .select({ id: channelIdentities.id, constituentId: channelIdentities.constituentId, optedOutAt: channelIdentities.optedOutAt })
      .from(channelIdentities)
      .where(and(eq(channelIdentities.agencyId, agencyId), eq(channelIdentities.channel, 'sms'), eq(channelIdentities.address, phone)));
    return row ? { id: row.id, constituentId: row.constituentId, optedOut: Boolean(row.optedOutAt) } : undefined;
  }

  async identityById(id: string): Promise<{ address: string; channel: string; optedOut: boolean } | undefined> {
    const [row] = await this.db
      .select({ address: channelIdentities.address, channel: channelIdentities.channel, optedOutAt: channelIdentities.optedOutAt })
      .from(channelIdentities)
      .where(eq(channelIdentities.id, id));
    return row ? { address: row.address, channel: row.channel, optedOut: Boolean(row.optedOutAt) } : undefined;
  }

  /** STOP and START: returns true only when the state changed (a retried webhook changes nothing twice). */
  async setOptedOut(identityId: string, optedOut: boolean): Promise<boolean> {
    const rows = await this.db
      .update(channelIdentities)
      .set({ optedOutAt: optedOut ? sql`now()` : null })
      .where(and(eq(channelIdentities.id, identityId), optedOut ? isNull(channelIdentities.optedOutAt) : isNotNull(channelIdentities.optedOutAt)))
      .returning({ id: channelIdentities.id });
    return rows.length > 0;
  }
}
