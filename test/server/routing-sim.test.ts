import { describe, expect, it } from '@jest/globals';
import { rank } from '../../server/src/modules/routing/router.js';
import type { Candidate } from '../../server/src/modules/routing/routing.repository.js';

// A deterministic simulation of the routing choice: agents with capacities come and go, conversations arrive
// and end in a seeded random order; after every event the invariants must hold.
function lcg(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

function simulate(mode: 'least_busy' | 'round_robin', agents: number, events: number, seed: number) {
  const rnd = lcg(seed);
  const team: (Candidate & { available: boolean })[] = Array.from({ length: agents }, (_, i) => ({
    id: `agent-${String(i).padStart(2, '0')}`,
    name: `Agent ${i}`,
    load: 0,
    capacity: 1 + Math.floor(rnd() * 4),
    lastAssignedAt: null,
    available: true,
  }));
  let waiting = 0;
  let clock = 0;
  const violations: string[] = [];
  const route = () => {
    // Like the router: while someone waits and a capable available agent exists, assign.
    while (waiting > 0) {
      const open = team.filter((a) => a.available && a.load < a.capacity);
      const chosen = rank(mode, team.filter((a) => a.available))[0];
      if (!chosen) break;
      // Least busy: nobody with room had fewer conversations than the one chosen.
      if (mode === 'least_busy' && chosen.load > Math.min(...open.map((a) => a.load))) {
        violations.push(`${chosen.id} chosen with ${chosen.load} while someone had ${Math.min(...open.map((a) => a.load))}`);
      }
      const agent = team.find((a) => a.id === chosen.id)!;
      agent.load++;
      agent.lastAssignedAt = new Date(++clock * 1000).toISOString();
      waiting--;
    }
  };
  for (let e = 0; e < events; e++) {
    const r = rnd();
    if (r < 0.5) waiting++;
    else if (r < 0.85) {
      const busy = team.filter((a) => a.load > 0);
      if (busy.length) busy[Math.floor(rnd() * busy.length)]!.load--;
    } else {
      const a = team[Math.floor(rnd() * team.length)]!;
      a.available = !a.available;
    }
    route();
    for (const a of team) if (a.load > a.capacity) violations.push(`event ${e}: ${a.id} over capacity`);
    const free = team.filter((a) => a.available && a.load < a.capacity);
    if (waiting > 0 && free.length) violations.push(`event ${e}: ${waiting} waiting while ${free[0]!.id} has room`);
  }
  return { violations, team, waiting };
}

describe('the routing choice, simulated', () => {
  it.each([
    [5, 2000, 1],
    [12, 5000, 7],
    [30, 5000, 42],
  ])('least busy, %i agents, %i events (seed %i): never over capacity, nobody waits while someone has room', (agents, events, seed) => {
    const { violations } = simulate('least_busy', agents, events, seed);
    expect(violations).toEqual([]);
  });

  it('least busy spreads equal work evenly among equal agents', () => {
    const team: Candidate[] = Array.from({ length: 4 }, (_, i) => ({ id: `a${i}`, name: `A${i}`, load: 0, capacity: 5, lastAssignedAt: null }));
    for (let i = 0; i < 10; i++) {
      const c = rank('least_busy', team)[0]!;
      c.load++;
      c.lastAssignedAt = new Date(i * 1000).toISOString();
    }
    expect(team.map((a) => a.load).sort()).toEqual([2, 2, 3, 3]);
  });

  it('in turn, each available agent is chosen before anyone is chosen twice', () => {
    const team: Candidate[] = Array.from({ length: 3 }, (_, i) => ({ id: `a${i}`, name: `A${i}`, load: 0, capacity: 9, lastAssignedAt: null }));
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const c = rank('round_robin', team)[0]!;
      c.load++;
      c.lastAssignedAt = new Date(i * 1000).toISOString();
      order.push(c.id);
    }
    expect(order).toEqual(['a0', 'a1', 'a2', 'a0', 'a1', 'a2']);
    const { violations } = simulate('round_robin', 10, 3000, 3);
    expect(violations).toEqual([]);
  });
});
