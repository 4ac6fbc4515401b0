import { sql } from 'drizzle-orm';
import { rowsOf, type Db } from '../../db/client.js';

/**
 * The canonical form of an audit row and its hash, recomputed here with our own copy of the expression in
 * migration 0013's audit_log_hash() — never by calling that function, which someone who tampers with rows
 * could replace too. Keep the two identical (the tests would fail on the first row otherwise).
 */
const RECOMPUTED = sql.raw(`encode(sha256(convert_to(jsonb_build_array(
    a.chain, a.seq, a.prev_hash, a.id, a.agency_id, a.actor_kind, a.actor_id, a.actor_role, a.action,
    a.object_type, a.object_id, a.outcome, a.source_ip, a.user_agent_hash, a.detail,
    to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
  )::text, 'UTF8')), 'hex')`);

const GENESIS = '0'.repeat(64);
const PAGE = 5000;

export interface ChainProblem {
  chain: string;
  seq: number | null;
  id: string | null;
  problem: 'hash_mismatch' | 'broken_link' | 'missing_rows' | 'unchained_row' | 'head_mismatch';
  message: string;
}

export interface ChainReport {
  ok: boolean;
  chains: number;
  rows: number;
  /** The first problem of each chain that has one, in chain order. */
  problems: ChainProblem[];
  /** Each chain's last link: write these down elsewhere to detect a rewrite of the whole tail later. */
  heads: { chain: string; seq: number; hash: string }[];
}

interface Row {
  id: string;
  chain: string;
  seq: string | number;
  prev_hash: string | null;
  hash: string | null;
  recomputed: string;
}

/** Walks every chain in order and reports the first tampered, missing or forged row of each. */
export async function verifyAuditChain(db: Db): Promise<ChainReport> {
  const problems: ChainProblem[] = [];
  const broken = new Set<string>();
  const report = (p: ChainProblem) => {
    if (broken.has(p.chain)) return;
    broken.add(p.chain);
    problems.push(p);
  };

  // Rows that never joined a chain: inserted while the chain trigger was switched off.
  const loose = rowsOf<{ id: string; chain: string | null }>(
    await db.execute(sql`select id, coalesce(chain, coalesce(agency_id::text, 'global')) as chain from audit_log where seq is null or hash is null order by created_at limit 100`),
  );
  for (const r of loose) {
    report({ chain: r.chain ?? 'global', seq: null, id: r.id, problem: 'unchained_row', message: `row ${r.id} is not in the chain (written with the chain trigger disabled?)` });
  }

  const heads = rowsOf<{ chain: string; seq: string | number; hash: string }>(
    await db.execute(sql`select chain, seq, hash from audit_chain_heads order by chain`),
  ).map((h) => ({ chain: h.chain, seq: Number(h.seq), hash: h.hash }));
  const headOf = new Map(heads.map((h) => [h.chain, h]));
  const chains = new Set(heads.map((h) => h.chain));

  let rows = 0;
  const seen = new Set<string>();
  let after: { chain: string; seq: number } | undefined;
  let last: { chain: string; seq: number; hash: string } | undefined;
  const finish = (chain: string, seq: number, hash: string) => {
    const head = headOf.get(chain);
    if (!head) report({ chain, seq, id: null, problem: 'head_mismatch', message: `chain ${chain} has rows but no head` });
    else if (head.seq !== seq || head.hash !== hash) {
      report({ chain, seq: head.seq, id: null, problem: 'missing_rows', message: `chain ${chain} ends at seq ${seq} but its head says ${head.seq}: rows were removed from the end` });
    }
  };
  for (;;) {
    const page = rowsOf<Row>(
      await db.execute(sql`select a.id, a.chain, a.seq, a.prev_hash, a.hash, ${RECOMPUTED} as recomputed
        from audit_log a
        where a.seq is not null and a.chain is not null
          ${after ? sql`and (a.chain, a.seq) > (${after.chain}, ${after.seq})` : sql``}
        order by a.chain, a.seq
        limit ${PAGE}`),
    );
    for (const r of page) {
      rows++;
      const seq = Number(r.seq);
      chains.add(r.chain);
      seen.add(r.chain);
      if (last && last.chain !== r.chain) finish(last.chain, last.seq, last.hash);
      const expectedSeq = last && last.chain === r.chain ? last.seq + 1 : 1;
      const expectedPrev = last && last.chain === r.chain ? last.hash : GENESIS;
      if (seq !== expectedSeq) {
        report({ chain: r.chain, seq: expectedSeq, id: null, problem: 'missing_rows', message: `chain ${r.chain}: seq ${expectedSeq}${seq - 1 > expectedSeq ? `–${seq - 1}` : ''} missing before row ${r.id}` });
      } else if (r.prev_hash !== expectedPrev) {
        report({ chain: r.chain, seq, id: r.id, problem: 'broken_link', message: `chain ${r.chain} seq ${seq} (row ${r.id}) does not link to the row before it` });
      } else if (r.hash !== r.recomputed) {
        report({ chain: r.chain, seq, id: r.id, problem: 'hash_mismatch', message: `chain ${r.chain} seq ${seq} (row ${r.id}) was changed after it was written` });
      }
      last = { chain: r.chain, seq, hash: r.hash ?? '' };
    }
    if (page.length < PAGE) break;
    after = { chain: last!.chain, seq: last!.seq };
  }
  if (last) finish(last.chain, last.seq, last.hash);
  // A head whose chain has no rows left at all.
  for (const h of heads) {
    if (h.seq > 0 && !seen.has(h.chain)) {
      report({ chain: h.chain, seq: 1, id: null, problem: 'missing_rows', message: `chain ${h.chain} has no rows but its head says ${h.seq}` });
    }
  }
  return { ok: problems.length === 0, chains: chains.size, rows, problems, heads };
}
