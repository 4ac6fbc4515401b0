import { and, asc, eq, inArray } from 'drizzle-orm';
import type { z } from 'zod';
import {
  type Priority,
  type RoutingConditions,
  type RoutingDecision,
  RoutingFacts,
  type RoutingRule,
  RoutingRulesInput,
} from '@casebridge/shared';
import type { Db } from '../../db/client.js';
import { caseTypes, groups, routingRules, serviceDefinitions } from '../../db/schema.js';
import { AppError } from '../../errors.js';
import type { AuditRepository } from '../audit/audit.repository.js';
import type { StaffPrincipal } from '../principal.js';

type Facts = z.output<typeof RoutingFacts>;
const PRIORITY_ORDER: Priority[] = ['low', 'normal', 'high', 'urgent'];

/** Does every condition the rule sets hold for this work? Conditions it leaves out match anything. */
export function matches(c: RoutingConditions, f: Facts): boolean {
  const holds = <T>(list: T[] | undefined, value: T | null) => !list?.length || (value !== null && list.includes(value));
  return (
    holds(c.serviceIds, f.serviceId) &&
    holds(c.caseTypeIds, f.caseTypeId) &&
    holds(c.channels, f.channel) &&
    holds(c.languages, f.language) &&
    holds(c.priorities, f.priority) &&
    (c.returning === undefined || c.returning === f.returning)
  );
}

const invalid = (path: (string | number)[], message: string) => new AppError('INVALID_PAYLOAD', message, { issues: [{ path, message }] });

/**
 * Routing rules: an ordered list per agency; the first enabled rule whose conditions all hold picks the group
 * (and may raise the priority). Without a match, the case type's default group, then the agency's default.
 */
export class RoutingRulesService {
  constructor(private readonly d: { db: Db; audit: AuditRepository }) {}

  private assertAdmin(p: StaffPrincipal): void {
    if (p.role !== 'admin') throw new AppError('FORBIDDEN', 'Only admins change routing rules');
  }

  async list(p: StaffPrincipal): Promise<RoutingRule[]> {
    if (p.role === 'agent') throw new AppError('FORBIDDEN', 'Routing rules are for supervisors and admins');
    return (await this.rows(p.agencyId)).map(toRule);
  }

  private rows(agencyId: string) {
    return this.d.db.select().from(routingRules).where(eq(routingRules.agencyId, agencyId)).orderBy(asc(routingRules.position));
  }

  /** Replaces the whole ordered list after checking every id belongs to the agency. */
  async replace(p: StaffPrincipal, input: z.output<typeof RoutingRulesInput>): Promise<RoutingRule[]> {
    this.assertAdmin(p);
    const ids = (key: 'groupId' | 'serviceIds' | 'caseTypeIds') =>
      [...new Set(input.rules.flatMap((r) => (key === 'groupId' ? [r.groupId] : (r.conditions[key] ?? []))))];
    const known = async (table: typeof groups | typeof serviceDefinitions | typeof caseTypes, wanted: string[]) =>
      wanted.length
        ? new Set(
            (await this.d.db.select({ id: table.id }).from(table).where(and(eq(table.agencyId, p.agencyId), inArray(table.id, wanted)))).map(
              (r) => r.id,
            ),
          )
        : new Set<string>();
    const [groupIds, serviceIds, typeIds] = await Promise.all([
      known(groups, ids('groupId')),
      known(serviceDefinitions, ids('serviceIds')),
      known(caseTypes, ids('caseTypeIds')),
    ]);
    input.rules.forEach((r, i) => {
      if (!groupIds.has(r.groupId)) throw invalid(['rules', i, 'groupId'], 'No such group');
      (r.conditions.serviceIds ?? []).forEach((id, j) => {
        if (!serviceIds.has(id)) throw invalid(['rules', i, 'conditions', 'serviceIds', j], 'No such service');
      });
      (r.conditions.caseTypeIds ?? []).forEach((id, j) => {
        if (!typeIds.has(id)) throw invalid(['rules', i, 'conditions', 'caseTypeIds', j], 'No such case type');
      });
    });
    await this.d.db.transaction(async (tx) => {
      await tx.delete(routingRules).where(eq(routingRules.agencyId, p.agencyId));
      if (input.rules.length) {
        await tx.insert(routingRules).values(input.rules.map((r, position) => ({ agencyId: p.agencyId, position, ...r })));
      }
      await this.d.audit.record(
        { agencyId: p.agencyId, actorKind: 'staff', actorId: p.userId, action: 'routing_rules.replace', objectType: 'agency', objectId: p.agencyId, outcome: 'success', detail: { rules: input.rules.length } },
        tx,
      );
    });
    return (await this.rows(p.agencyId)).map(toRule);
  }

  /**
   * Where work with these facts goes, and why in words. `fallbackGroupId` is the case type's default group or,
   * failing that, the agency's default group. `returning` may be a lookup: it is asked only when an enabled rule
   * depends on it.
   */
  async decide(
    agencyId: string,
    input: Omit<Facts, 'returning'> & { returning: boolean | (() => Promise<boolean>) },
    fallbackGroupId: string | null,
  ): Promise<RoutingDecision> {
    const rules = (await this.rows(agencyId)).filter((r) => r.enabled);
    const names = new Map(
      (await this.d.db.select({ id: groups.id, name: groups.name }).from(groups).where(eq(groups.agencyId, agencyId))).map((g) => [g.id, g.name]),
    );
    const needed = rules.some((r) => r.conditions.returning !== undefined);
    const returning = typeof input.returning === 'function' ? needed && (await input.returning()) : input.returning;
    const facts: Facts = { ...input, returning };
    const rule = rules.find((r) => matches(r.conditions, facts));
    if (!rule) {
      const name = fallbackGroupId ? (names.get(fallbackGroupId) ?? null) : null;
      return {
        rule: null,
        groupId: fallbackGroupId,
        groupName: name,
        priority: facts.priority,
        explanation: `No rule matched: the default group${name ? ` (${name})` : ''}`,
      };
    }
    // A rule may raise the priority, never lower what the case already has.
    const priority =
      rule.priority && PRIORITY_ORDER.indexOf(rule.priority) > PRIORITY_ORDER.indexOf(facts.priority) ? rule.priority : facts.priority;
    return {
      rule: { id: rule.id, name: rule.name },
      groupId: rule.groupId,
      groupName: names.get(rule.groupId) ?? null,
      priority,
      explanation: `Rule “${rule.name}” sent it to ${names.get(rule.groupId) ?? 'a group'}`,
    };
  }

  async preview(p: StaffPrincipal, facts: Facts, fallbackGroupId: string | null): Promise<RoutingDecision> {
    if (p.role === 'agent') throw new AppError('FORBIDDEN', 'Routing rules are for supervisors and admins');
    return this.decide(p.agencyId, facts, fallbackGroupId);
  }
}

function toRule(r: typeof routingRules.$inferSelect): RoutingRule {
  return { id: r.id, name: r.name, conditions: r.conditions, groupId: r.groupId, priority: r.priority, enabled: r.enabled };
}
