// Ratios of PERFORMANCE.md §6.4, the targets of §7, and the Markdown table.
import { median } from './stats.mjs';

const phasesOf = (results, id, key) =>
  (results.variants[id]?.reps ?? []).map((r) => r.phases.find((p) => p.key === key)).filter(Boolean);
const med = (results, id, key, f) => {
  const xs = phasesOf(results, id, key).map(f);
  return xs.length ? median(xs) : NaN;
};
const maxOf = (results, id) => med(results, id, 'max', (p) => p.msgPerS);
const r2 = (x) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : null);

export function computeRatios(results) {
  const out = [];
  const add = (name, definition, value, gate, cmp = '>=') => {
    const v = r2(value);
    out.push({
      name, definition, value: v, gate: gate ?? null, cmp,
      pass: v === null || gate == null ? null : cmp === '>=' ? v >= gate : v <= gate,
    });
  };
  const B1 = maxOf(results, 'B1');
  const B2 = maxOf(results, 'B2');
  const B3pg = maxOf(results, 'B3pg');
  const B3lite = maxOf(results, 'B3pglite');
  const E1 = maxOf(results, 'E1pg');
  const E1lite = maxOf(results, 'E1pglite');
  const E2 = maxOf(results, 'E2');
  const p = (id, key, q) => med(results, id, key, (x) => x.latencyMs[q]);
  add('framework overhead', 'B2_max / B1_max (informational; alarm < 0.45)', B2 / B1, null);
  add('e2e vs framework (PG)', 'E1pg_max / B2_max (§6.4 gate ≥ 0.35)', E1 / B2, 0.35);
  add('e2e vs framework, issue target (PG)', 'E1pg_max / B2_max (issue #9: ≥ 0.5 with durable writes)', E1 / B2, 0.5);
  add('e2e vs framework (PGlite)', 'E1pglite_max / B2_max (informational)', E1lite / B2, null);
  add('e2e vs binding floor (PG)', 'E1pg_max / min(B2_max, B3pg_max batched) (gate ≥ 0.6)', E1 / Math.min(B2, B3pg), 0.6);
  add('e2e vs binding floor (PGlite)', 'E1pglite_max / min(B2_max, B3pglite_max batched) (gate ≥ 0.6)', E1lite / Math.min(B2, B3lite), 0.6);
  add('latency overhead at R1, p50 (ms)', 'E1pg_p50 − B2_p50 at R1 (gate ≤ 1 ms)', p('E1pg', 'r1', 'p50') - p('B2', 'r1', 'p50'), 1, '<=');
  add('latency overhead at R1, p99 (ms)', 'E1pg_p99 − B2_p99 at R1 (gate ≤ 5 ms)', p('E1pg', 'r1', 'p99') - p('B2', 'r1', 'p99'), 5, '<=');
  add('multi-node', 'E2_max / E1pg_max (gate ≥ 0.35)', E2 / E1, 0.35);
  add('multi-node vs framework, issue target', 'E2_max / B2_max (issue #9: ≥ 0.35)', E2 / B2, 0.35);
  add('multi-node latency at R1 (ms)', 'E2_p99 − E1pg_p99 at R1 (gate ≤ 10 ms)', p('E2', 'r1', 'p99') - p('E1pg', 'r1', 'p99'), 10, '<=');
  const m1 = results.blocks.M1;
  if (m1) add('memory', 'M1 RSS/conn ÷ bare Socket.IO RSS/conn (gate ≤ 1.5)', m1.product.rssKbPerConn / m1.bare.rssKbPerConn, 1.5, '<=');
  return out;
}

export function targets(results) {
  const t = [];
  const add = (what, target, value, pass, note = '') => t.push({ what, target, value, pass, note });
  const ph = (id, key) => phasesOf(results, id, key);
  const medp = (id, key, f) => (ph(id, key).length ? median(ph(id, key).map(f)) : NaN);
  const fmt = (x, u = '') => (Number.isFinite(x) ? `${Math.round(x * 100) / 100}${u}` : '–');
  for (const [id, lim, limMax] of [['E1pg', 10, 10_000], ['E1pglite', 20, 5_000]]) {
    if (!results.variants[id]) continue;
    const max = medp(id, 'max', (p) => p.msgPerS);
    add(`${id} durable msg/s (closed loop)`, `≥ ${limMax.toLocaleString('en')}`, fmt(max), max >= limMax);
    for (const key of ['r1', 'r2']) {
      const p99 = medp(id, key, (p) => p.latencyMs.p99);
      const p999 = medp(id, key, (p) => p.latencyMs.p999);
      const rate = results.meta.config[key];
      add(`${id} p99 at ${rate}/s`, `≤ ${lim} ms (target at 2,000/s)`, fmt(p99, ' ms'), p99 <= lim);
      add(`${id} p99.9 at ${rate}/s`, '≤ 50 ms', fmt(p999, ' ms'), p999 <= 50);
    }
    if (id === 'E1pg') add(`${id} p50 at ${results.meta.config.r1}/s`, '≤ 2 ms', fmt(medp(id, 'r1', (p) => p.latencyMs.p50), ' ms'), medp(id, 'r1', (p) => p.latencyMs.p50) <= 2);
    const loop = medp(id, 'r2', (p) => Math.max(...(p.serverLoopDelay ?? []).map((x) => x.p99)));
    add(`${id} server event-loop delay p99 at ${results.meta.config.r2}/s`, '≤ 20 ms', fmt(loop, ' ms'), loop <= 20);
  }
  if (results.variants.E2) {
    for (const key of ['r1', 'r2']) {
      const rate = results.meta.config[key];
      const p50 = medp('E2', key, (p) => p.latencyMs.p50);
      const p99 = medp('E2', key, (p) => p.latencyMs.p99);
      add(`E2 p50 / p99 at ${rate}/s`, '≤ 3 ms / ≤ 15 ms (at 2,000/s)', `${fmt(p50)} / ${fmt(p99, ' ms')}`, p50 <= 3 && p99 <= 15);
    }
  }
  const lost = Object.values(results.variants).flatMap((v) => v.reps.flatMap((r) => r.phases)).reduce((a, p) => a + p.lost, 0);
  add('lost messages (all variants)', '0', String(lost), lost === 0);
  const m1 = results.blocks.M1;
  if (m1) {
    add('idle widget connections held by one node', '≥ 18,000', `${m1.product.connected.toLocaleString('en')}${m1.cap < 18000 ? ` (fd cap ${m1.cap})` : ''}`, m1.product.connected >= 18000, m1.product.connected < 18000 ? 'quick mode holds 5,000' : '');
    add('RSS per idle widget', '≤ 24 KB', fmt(m1.product.rssKbPerConn, ' KB'), m1.product.rssKbPerConn <= 24);
    add('heap per idle widget', '≤ 16 KB', fmt(m1.product.heapKbPerConn, ' KB'), m1.product.heapKbPerConn <= 16);
    add('idle CPU with the widgets connected', '≤ 5 % of a core', fmt(m1.product.idleCpuPct, ' %'), m1.product.idleCpuPct <= 5);
  }
  const l1 = results.blocks.L1;
  if (l1) {
    add('console first page + counts, server time p95', '≤ 20 ms', fmt(l1.firstScreenP95Ms, ' ms'), l1.firstScreenP95Ms <= 20);
    add('console first page + counts, gzip size', '≤ 30 KB', fmt(l1.firstScreenGzipKb, ' KB'), l1.firstScreenGzipKb <= 30);
    if (l1.browser) {
      add('console interactive, cold (Chromium)', '≤ 1,500 ms', fmt(l1.browser.coldMs, ' ms'), l1.browser.coldMs <= 1500);
      add('console interactive, warm (Chromium)', '≤ 500 ms', fmt(l1.browser.warmMedianMs, ' ms'), l1.browser.warmMedianMs <= 500);
    }
  }
  const f1 = results.blocks.F1;
  if (f1) {
    add('dashboard update lag p99 (20 dashboards, 200 events/s)', '≤ 1,000 ms', fmt(f1.lagMs.p99, ' ms'), f1.lagMs.p99 <= 1000, f1.achievedEventsPerS < 190 ? `events achieved ${f1.achievedEventsPerS}/s` : '');
    add('dashboard updates per second each', '≤ 2', fmt(f1.updatesPerSecondPerDashboard), f1.updatesPerSecondPerDashboard <= 2);
  }
  return t;
}

const n = (x) => (x == null || !Number.isFinite(x) ? '–' : x >= 100 ? Math.round(x).toLocaleString('en') : String(Math.round(x * 100) / 100));
const mark = (pass) => (pass === null ? '' : pass ? '✓' : '✗');

export function renderMarkdown(results) {
  const m = results.meta;
  const L = [];
  L.push(`## CaseBridge benchmark (${m.mode} mode)`, '');
  L.push(
    `${m.date.slice(0, 16).replace('T', ' ')} UTC · commit \`${m.commit}\`${m.dirty?.length ? ` + uncommitted changes in ${m.dirty.length} files` : ''} · \`${m.command}\` · ` +
      `${m.cpu}, ${m.memGiB} GiB, Node ${m.node}${m.postgres ? `, ${m.postgres}` : ''}, no CPU pinning · ${m.seconds} s`,
    '',
  );
  const c0 = results.blocks.C0;
  if (c0) L.push(`C0 calibration: loopback TCP RTT p50 ${c0.tcpRttUs.p50} µs / p99 ${c0.tcpRttUs.p99} µs; 200 k JSON.stringify of a 300 B message ${c0.json200kMs} ms.`, '');
  L.push(
    `Load: 200-byte JSON messages, ${m.config.pairs} sender→receiver pairs (open loop), ${m.config.closedPairs} pairs × ${m.config.depth} in flight (closed loop), ` +
      `${m.config.phase} s phases after ${m.config.warmup} s warm-up, ${m.config.reps} repetition(s) of B2/E1pg/E2 interleaved (medians; closed-loop range in brackets). ` +
      'Latency: send → the agent receives it; a message completes when acknowledged and delivered. CPU: % of one core (all threads) of the server process(es).',
    '',
  );
  L.push('| variant | phase | msg/s | p50 ms | p99 ms | p99.9 ms | lost | rows = acks | server CPU % | DB CPU % | machine CPU % | server loop p99 ms | server RSS MB | gen CPU % | gen loop p99 ms | note |');
  L.push('|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const [id, v] of Object.entries(results.variants)) {
    const keys = ['r1', 'r2', 'max'];
    const rowsCell = v.check ? `${v.check.rows} = ${v.check.acks} ${mark(v.check.rows === v.check.acks)}` : v.reps[0]?.rows !== undefined ? `${v.reps[0].rows} = ${v.reps[0].acked} ${mark(v.reps[0].rows === v.reps[0].acked)}` : '–';
    keys.forEach((key, i) => {
      const ps = v.reps.map((r) => r.phases.find((p) => p.key === key)).filter(Boolean);
      if (!ps.length) return;
      const md = (f) => median(ps.map(f));
      const rate = md((p) => p.msgPerS);
      const range = key === 'max' && ps.length > 1 ? ` (${n(Math.min(...ps.map((p) => p.msgPerS)))}–${n(Math.max(...ps.map((p) => p.msgPerS)))})` : '';
      const sat = ps.map((p) => p.saturated).find(Boolean);
      const errs = Object.entries(Object.assign({}, ...ps.map((p) => p.errors))).map(([k, c]) => `${k}×${c}`).join(' ');
      L.push(
        `| ${i === 0 ? v.label : ''} | ${ps[0].phase} | ${n(rate)}${range} | ${n(md((p) => p.latencyMs.p50))} | ${n(md((p) => p.latencyMs.p99))} | ${n(md((p) => p.latencyMs.p999))} | ` +
          `${ps.reduce((a, p) => a + p.lost, 0)}${ps.some((p) => p.late) ? ` (late ${ps.reduce((a, p) => a + (p.late ?? 0), 0)})` : ''} | ${i === 0 ? rowsCell : ''} | ${ps[0].serverCpuPct.map(n).join(' + ')} | ${n(ps[0].dbCpuPct)} | ${n(md((p) => p.machineCpuPct))} | ` +
          `${(ps[0].serverLoopDelay ?? []).map((d) => n(d.p99)).join(' / ') || '–'} | ${ps[0].serverRssMb.map(n).join(' + ')} | ${n(md((p) => p.generator.cpuPct))} | ${n(md((p) => p.generator.loopDelayP99Ms))} | ` +
          `${[sat ? `saturated: ${sat}` : '', errs].filter(Boolean).join('; ')} |`,
      );
    });
    for (const r of v.reps.slice(0, 1)) {
      if (!r.perRow) continue;
      const p = r.perRow.phases.find((x) => x.key === 'max');
      L.push(
        `| ${v.label.replace('B3', 'B3 per-row')} | ${p.phase} | ${n(p.msgPerS)} | ${n(p.latencyMs.p50)} | ${n(p.latencyMs.p99)} | ${n(p.latencyMs.p999)} | ${p.lost} | ${r.perRow.rows} = ${r.perRow.acked} ${mark(r.perRow.rows === r.perRow.acked)} | ${p.serverCpuPct.map(n).join(' + ')} | – | ${n(p.machineCpuPct)} | ${(p.serverLoopDelay ?? []).map((d) => n(d.p99)).join(' / ') || '–'} | ${p.serverRssMb.map(n).join(' + ')} | ${n(p.generator.cpuPct)} | ${n(p.generator.loopDelayP99Ms)} | one INSERT per message |`,
      );
    }
  }
  L.push(
    '',
    'B3 runs in one process (generator and driver together; its CPU is that process). E2 CPU: node A + node B + redis-server. ' +
      'DB CPU: the PostgreSQL postmaster and backends. Machine CPU: the whole box (2 cores = 200 %), so load from anything else running shows. ' +
      '"late": delivered more than 1 s after sending stopped (overload), not lost.',
    '',
  );
  const errs = Object.entries(results.variants).filter(([, v]) => v.check?.serverErrors?.length);
  for (const [id, v] of errs) L.push(`Server errors logged during ${id}: ${v.check.serverErrors.map((e) => `\`${e}\``).join('; ')}`, '');
  for (const [id, v] of Object.entries(results.variants)) statementTable(L, `${id}'s last run`, v.check?.statements);

  const m1 = results.blocks.M1;
  if (m1) {
    L.push('### M1 idle widgets', '');
    L.push('| server | connections | connect rate /s | RSS KB/conn | heap KB/conn | idle CPU % | RSS total MB |', '|---|---:|---:|---:|---:|---:|---:|');
    for (const [name, x] of [['CaseBridge node (authenticated widgets, PostgreSQL)', m1.product], ['bare Socket.IO (one room each)', m1.bare]]) {
      L.push(`| ${name} | ${n(x.connected)} | ${n(x.connectPerS)} | ${n(x.rssKbPerConn)} | ${n(x.heapKbPerConn)} | ${n(x.idleCpuPct)} | ${n(x.rssAfterMb)} |`);
    }
    const window = m1.idleS ? ` Idle CPU: ${m1.idleS} s measured ${m1.settleS} s after the last connection.` : '';
    L.push('', `ulimit -n = ${m1.nofile}; connections asked for: ${m1.asked}${m1.cap < m1.asked ? ` (capped at ${m1.cap})` : ''}. ${m1.note ?? ''}${window}`, '');
  }
  const f1 = results.blocks.F1;
  if (f1) {
    L.push('### F1 supervisor fan-out', '');
    L.push(
      `${f1.dashboards} supervisor dashboards (the console's rule: an event schedules a snapshot, at most one per 500 ms), ` +
        `${f1.offeredEventsPerS} queue events/s offered (new widget chats), ${f1.achievedEventsPerS} achieved, for ${f1.seconds} s: ` +
        `update lag p50 ${n(f1.lagMs.p50)} ms, p99 ${n(f1.lagMs.p99)} ms, max ${n(f1.lagMs.max)} ms; ${n(f1.updatesPerSecondPerDashboard)} snapshots/s per dashboard; ` +
        `snapshot p50 ${n(f1.snapshotMs.p50)} ms / p99 ${n(f1.snapshotMs.p99)} ms; ` +
        (f1.chatStartMs ? `starting a chat p50 ${n(f1.chatStartMs.p50)} ms / p99 ${n(f1.chatStartMs.p99)} ms; ` : '') +
        `events missed ${f1.missed}; server CPU ${n(f1.serverCpuPct)} %` +
        (f1.machineCpuPct !== undefined ? `, PostgreSQL ${n(f1.dbCpuPct)} %, generator ${n(f1.generatorCpuPct)} %, machine ${n(f1.machineCpuPct)} % of 200 %` : '') +
        `, loop p99 ${n(f1.serverLoopP99Ms)} ms.`,
      '',
    );
    statementTable(L, 'F1', f1.statements);
  }
  const l1 = results.blocks.L1;
  if (l1) {
    L.push(`### L1 console first screen, ${l1.open.toLocaleString('en')} open conversations (PostgreSQL)`, '');
    L.push('| call | p50 ms | p95 ms | bytes | gzip bytes |', '|---|---:|---:|---:|---:|');
    for (const [k, v] of Object.entries(l1.api)) L.push(`| ${k} | ${n(v.p50)} | ${n(v.p95)} | ${n(v.bytes)} | ${n(v.gzipBytes)} |`);
    L.push(
      '',
      `Seeded in ${n(l1.seedMs / 1000)} s. First screen (the queue's first page and the counts, fetched together as the console does) p95 ${n(l1.firstScreenP95Ms)} ms, ${n(l1.firstScreenGzipKb)} KB gzip.` +
        (l1.browser ? ` Chromium, navigation → first inbox rows visible: cold ${n(l1.browser.coldMs)} ms, warm median ${n(l1.browser.warmMedianMs)} ms (${l1.browser.runs.length} runs).` : ' Chromium part: full mode only.'),
      '',
    );
  }
  L.push('### Ratios (PERFORMANCE.md §6.4)', '', '| ratio | definition | value | gate | |', '|---|---|---:|---:|---|');
  for (const r of results.ratios ?? []) L.push(`| ${r.name} | ${r.definition} | ${r.value ?? '–'} | ${r.gate == null ? '–' : `${r.cmp === '>=' ? '≥' : '≤'} ${r.gate}`} | ${mark(r.pass)} |`);
  L.push('', '### Targets (PERFORMANCE.md §7; reported, never a failure)', '', '| metric | target | measured | |', '|---|---|---:|---|');
  for (const t of targets(results)) L.push(`| ${t.what} | ${t.target} | ${t.value} | ${mark(Number.isNaN(t.pass) ? null : t.pass)}${t.note ? ` ${t.note}` : ''} |`);
  L.push('');
  if (results.notes.length) L.push(...results.notes.map((x) => `Note: ${x}`), '');
  L.push(results.failures.length ? `**FAILED** (exit 1): ${results.failures.join('; ')}` : 'No functional failure and no ratio gate missed (exit 0).', '');
  return L.join('\n');
}

/** PostgreSQL's top statements of a run (--profile), by total time. */
function statementTable(L, during, rows) {
  if (!rows?.length) return;
  L.push(`PostgreSQL statements during ${during} (--profile, by total time):`, '', '| calls | total ms | mean ms | rows | statement |', '|---:|---:|---:|---:|---|');
  for (const st of rows) L.push(`| ${st.calls} | ${st.total_ms} | ${st.mean_ms} | ${st.rows} | \`${st.query.replaceAll('|', '¦').replaceAll('`', "'")}\` |`);
  L.push('');
}
