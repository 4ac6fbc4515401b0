/**
 * One jest run, three tiers (projects). test/run.mjs picks which tiers can run on this machine
 * and says why it skips one. Browser tests need the built web/widget (npm test builds first).
 */
const base = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^@casebridge/shared$': '<rootDir>/shared/src/index.ts',
    '^@casebridge/shared/(.*)$': '<rootDir>/shared/src/$1.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/test/tsconfig.json' }] },
};

/** @type {import('jest').Config} */
export default {
  projects: [
    { ...base, displayName: 'server', testMatch: ['<rootDir>/test/server/**/*.test.ts'] },
    { ...base, displayName: 'multinode', testMatch: ['<rootDir>/test/multinode/**/*.test.ts'] },
    { ...base, displayName: 'browser', testMatch: ['<rootDir>/test/browser/**/*.test.ts'] },
    // Faults injected into real processes (nodes, Redis, PostgreSQL): `npm run test:reliability`.
    { ...base, displayName: 'reliability', testMatch: ['<rootDir>/test/reliability/**/*.test.ts'] },
  ],
};
