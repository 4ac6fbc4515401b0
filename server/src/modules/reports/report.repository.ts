import { sql, type SQL } from 'drizzle-orm';
import { rowsOf, uuidList, type Db } from '../../db/client.js';


type Raw = {
  key: string;
  name: string;
  conversations: number;
  abandoned: number;
  fr_median: string | null;
  fr_p90: string | null;
  resolved: number;
  res_median: string | null;
  res_p90: string | null;
  sla_done: number;
  sla_ok: number;
  rating: string | null;
  ratings: number;
};

/**
 * Report figures per group or per agent over [from, to). Conversations count where they ended up (group or
 * assignee); resolutions by the case's group or assignee; SLA compliance over clocks that finished in the range.
 */
export class ReportRepository {
  constructor(private readonly db: Db) {}

  async figures(by: 'group' | 'agent', groupIds: string[], from: string, to: string) {
    if (!groupIds.length) return [];
    const ids = uuidList(groupIds);
    const convKey: SQL = by === 'group' ? sql`c.group_id` : sql`c.assignee_id`;
    const caseKey: SQL = by === 'group' ? sql`k.group_id` : sql`k.assignee_id`;
    const who: SQL =
      by === 'group'
        ? sql`select g.id as key, g.name from groups g where g.id in (${ids})`
        : sql`select distinct u.id as key, u.display_name as name from users u join group_memberships m on m.user_id = u.id
               where m.group_id in (${ids}) and u.role <> 'admin'`;
    const rows = rowsOf<Raw>(
      await this.db.execute(sql`
        with who as (${who}),
        conv as (
          select ${convKey} as key, c.id, c.status, c.claimed_at, c.created_at, c.rating_score, c.offline,
            (select min(m.created_at) from messages m where m.conversation_id = c.id and m.author_kind = 'agent' and m.visibility = 'public') as first_reply
          from conversations c
          where c.group_id in (${ids}) and c.created_at >= ${from}::timestamptz and c.created_at < ${to}::timestamptz
        ),
        res as (
          select ${caseKey} as key, extract(epoch from (k.resolved_at - k.created_at)) as secs from cases k
          where k.group_id in (${ids}) and k.resolved_at >= ${from}::timestamptz and k.resolved_at < ${to}::timestamptz
        ),
        sla as (
          select ${caseKey} as key, (s.breached_at is null) as ok from case_slas s join cases k on k.id = s.case_id
          where k.group_id in (${ids})
            and coalesce(s.met_at, s.breached_at) >= ${from}::timestamptz and coalesce(s.met_at, s.breached_at) < ${to}::timestamptz
        )
        select w.key, w.name,
          (select count(*)::int from conv where conv.key = w.key) as conversations,
          (select count(*)::int from conv where conv.key = w.key and conv.status = 'ended' and conv.claimed_at is null and not conv.offline) as abandoned,
          (select percentile_cont(0.5) within group (order by extract(epoch from (first_reply - created_at))) from conv where conv.key = w.key and first_reply is not null) as fr_median,
          (select percentile_cont(0.9) within group (order by extract(epoch from (first_reply - created_at))) from conv where conv.key = w.key and first_reply is not null) as fr_p90,
          (select count(*)::int from res where res.key = w.key) as resolved,
          (select percentile_cont(0.5) within group (order by secs) from res where res.key = w.key) as res_median,
          (select percentile_cont(0.9) within group (order by secs) from res where res.key = w.key) as res_p90,
          (select count(*)::int from sla where sla.key = w.key) as sla_done,
          (select count(*)::int from sla where sla.key = w.key and ok) as sla_ok,
          (select avg(rating_score) from conv where conv.key = w.key) as rating,
          (select count(rating_score)::int from conv where conv.key = w.key) as ratings
        from who w order by w.name`),
    );
    const n = (v: string | null) => (v === null ? null : Math.round(Number(v)));
    return rows.map((r) => ({
      kind: by,
      name: r.name,
      conversations: Number(r.conversations),
      abandoned: Number(r.abandoned),
      firstResponseMedian: n(r.fr_median),
      firstResponseP90: n(r.fr_p90),
      resolved: Number(r.resolved),
      resolutionMedian: n(r.res_median),
      resolutionP90: n(r.res_p90),
      slaCompliance: Number(r.sla_done) ? Math.round((Number(r.sla_ok) / Number(r.sla_done)) * 1000) / 10 : null,
      satisfaction: r.rating === null ? null : Math.round(Number(r.rating) * 10) / 10,
      ratings: Number(r.ratings),
    }));
  }
}
