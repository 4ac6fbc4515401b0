import { sql } from 'drizzle-orm';
import { rowsOf, uuidList, type Db } from '../../db/client.js';

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * The supervisor's numbers, each one aggregate query over the groups asked for. "Today" starts at `since`
 * (the start of the agency's day, computed by the caller).
 */
export class DashboardRepository {
  constructor(private readonly db: Db) {}

  async groupFigures(groupIds: string[], since: string) {
    if (!groupIds.length) return [];
    const ids = uuidList(groupIds);
    const rows = rowsOf<{
      id: string;
      name: string;
      routing: 'manual' | 'least_busy' | 'round_robin';
      waiting: number;
      oldest: string | null;
      active: number;
      avg_wait: string | null;
      at_risk: number;
      breached: number;
    }>(
      await this.db.execute(sql`
        select g.id, g.name, g.routing,
          (select count(*)::int from conversations c where c.group_id = g.id and c.status = 'queued') as waiting,
          (select min(c.created_at) from conversations c where c.group_id = g.id and c.status = 'queued') as oldest,
          (select count(*)::int from conversations c where c.group_id = g.id and c.status = 'active') as active,
          (select avg(extract(epoch from (c.claimed_at - c.created_at))) from conversations c
             where c.group_id = g.id and c.claimed_at >= ${since}::timestamptz) as avg_wait,
          (select count(distinct s.case_id)::int from case_slas s join cases k on k.id = s.case_id
             where k.group_id = g.id and s.met_at is null and s.warned_at is not null and s.breached_at is null
               and k.status in ('new','open','awaiting_info')) as at_risk,
          (select count(distinct s.case_id)::int from case_slas s join cases k on k.id = s.case_id
             where k.group_id = g.id and s.met_at is null and s.breached_at is not null
               and k.status in ('new','open','awaiting_info')) as breached
        from groups g where g.id in (${ids}) order by g.name`),
    );
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      routing: r.routing,
      waiting: Number(r.waiting),
      oldest: r.oldest,
      active: Number(r.active),
      averageWait: num(r.avg_wait),
      atRisk: Number(r.at_risk),
      breached: Number(r.breached),
    }));
  }

  /** Members of the groups (not admins) with their presence and open load. */
  async agentsOf(groupIds: string[]) {
    if (!groupIds.length) return [];
    const ids = uuidList(groupIds);
    return rowsOf<{ group_id: string; id: string; name: string; presence: 'available' | 'away' | 'offline'; load: number; capacity: number }>(
      await this.db.execute(sql`
        select m.group_id, u.id, u.display_name as name, u.presence, u.capacity,
          (select count(*)::int from conversations c where c.assignee_id = u.id and c.status = 'active') as load
        from group_memberships m join users u on u.id = m.user_id
        where m.group_id in (${ids}) and u.disabled_at is null and u.role <> 'admin'
        order by u.display_name`),
    ).map((r) => ({ ...r, load: Number(r.load), capacity: Number(r.capacity) }));
  }

  async today(groupIds: string[], since: string) {
    const empty = { conversations: 0, byChannel: [], byCaseType: [], firstResponse: null, resolution: null, abandoned: 0, satisfaction: null, ratings: 0 };
    if (!groupIds.length) return empty;
    const ids = uuidList(groupIds);
    const [totals] = rowsOf<{ n: number; abandoned: number; rating: string | null; ratings: number; first_response: string | null }>(
      await this.db.execute(sql`
        select count(*)::int as n,
          count(*) filter (where c.status = 'ended' and c.claimed_at is null and not c.offline)::int as abandoned,
          avg(c.rating_score) as rating, count(c.rating_score)::int as ratings,
          percentile_cont(0.5) within group (order by extract(epoch from (
            (select min(m.created_at) from messages m where m.conversation_id = c.id and m.author_kind = 'agent' and m.visibility = 'public')
            - c.created_at))) as first_response
        from conversations c where c.group_id in (${ids}) and c.created_at >= ${since}::timestamptz`),
    );
    const byChannel = rowsOf<{ key: string; count: number }>(
      await this.db.execute(sql`
        select c.channel as key, count(*)::int as count from conversations c
        where c.group_id in (${ids}) and c.created_at >= ${since}::timestamptz group by c.channel order by count desc`),
    );
    const byCaseType = rowsOf<{ key: string; count: number }>(
      await this.db.execute(sql`
        select coalesce(t.name, 'Not set') as key, count(*)::int as count from conversations c
        join cases k on k.id = c.case_id left join case_types t on t.id = k.case_type_id
        where c.group_id in (${ids}) and c.created_at >= ${since}::timestamptz group by 1 order by count desc`),
    );
    const [resolved] = rowsOf<{ median: string | null }>(
      await this.db.execute(sql`
        select percentile_cont(0.5) within group (order by extract(epoch from (k.resolved_at - k.created_at))) as median
        from cases k where k.group_id in (${ids}) and k.resolved_at >= ${since}::timestamptz`),
    );
    return {
      conversations: Number(totals?.n ?? 0),
      byChannel: byChannel.map((r) => ({ key: r.key, count: Number(r.count) })),
      byCaseType: byCaseType.map((r) => ({ key: r.key, count: Number(r.count) })),
      firstResponse: num(totals?.first_response),
      resolution: num(resolved?.median),
      abandoned: Number(totals?.abandoned ?? 0),
      satisfaction: num(totals?.rating),
      ratings: Number(totals?.ratings ?? 0),
    };
  }
}
