import { z } from 'zod';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const Env = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    HOST: z.string().min(1).default('127.0.0.1'),
    PUBLIC_BASE_URL: z.url().optional(),
    DATA_DIR: z.string().min(1).default('./data'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional(),
    DEMO_MODE: bool.optional(),
    CASEBRIDGE_DEMO_PASSWORD: z.string().min(8, 'must be at least 8 characters').optional(),
    SESSION_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    SESSION_IDLE_MINUTES: z.coerce.number().int().min(1).max(24 * 60).default(30),
    SESSION_MAX_HOURS: z.coerce.number().int().min(1).max(24 * 7).default(12),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    TRUST_PROXY: bool.default(false),
    SMTP_URL: z
      .string()
      .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
      .optional(),
    MAIL_FROM: z.string().min(3).default('CaseBridge <no-reply@casebridge.invalid>'),
    TWILIO_API_BASE_URL: z
      .string()
      .regex(/^https?:\/\//, 'must be an http:// or https:// URL')
      .optional(),
    // Benchmarking only (bench/perf.mjs), never in production: multiply every rate limit, expose metrics.
    RATE_LIMIT_SCALE: z.coerce.number().int().min(1).max(1_000_000).default(1),
    BENCH_METRICS: bool.default(false),
  })
  .transform((e) => ({ ...e, DATABASE_URL: e.DATABASE_URL || undefined, REDIS_URL: e.REDIS_URL || undefined }));

export interface Config {
  env: 'development' | 'test' | 'production';
  port: number;
  host: string;
  publicBaseUrl: string;
  dataDir: string;
  databaseUrl?: string;
  redisUrl?: string;
  demoMode: boolean;
  demoPassword?: string;
  /** Undefined only in demo mode, where the composition root generates and keeps one in DATA_DIR. */
  sessionSecret?: string;
  sessionIdleMs: number;
  sessionMaxMs: number;
  logLevel: string;
  trustProxy: boolean;
  /** Outgoing mail (transcripts); without it, nothing offers to send email. */
  smtpUrl?: string;
  mailFrom: string;
  /** Where Twilio's REST API and media are fetched from; unset means Twilio itself (tests point it at a fake). */
  twilioApiBaseUrl?: string;
  /** Benchmarks only: every rate limit's budget is multiplied by this (1 = the real limits). */
  rateLimitScale: number;
  /** Benchmarks only: GET /api/health/metrics reports event-loop delay, CPU and memory. */
  benchMetrics: boolean;
}

/** Parses the environment; throws one error that lists every problem. The only reader of process.env. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "not set" (a blank line in an .env file should not fail validation).
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== ''));
  const parsed = Env.safeParse(cleaned);
  if (!parsed.success) throw new Error(`Invalid configuration:\n${z.prettifyError(parsed.error)}`);
  const e = parsed.data;
  const problems: string[] = [];

  const demoMode = e.DEMO_MODE ?? !e.DATABASE_URL;
  if (e.REDIS_URL && !e.DATABASE_URL) {
    problems.push(
      'REDIS_URL is set (several nodes) but DATABASE_URL is not: PGlite serves one process only. ' +
        'Set DATABASE_URL to a PostgreSQL server to run several nodes.',
    );
  }
  if (!demoMode && !e.SESSION_SECRET) {
    problems.push('SESSION_SECRET is required outside demo mode (at least 32 random characters).');
  }
  if (e.NODE_ENV === 'production' && demoMode && e.DATABASE_URL) {
    problems.push('DEMO_MODE=true with NODE_ENV=production would seed demo users into a production database.');
  }
  if (e.NODE_ENV === 'production' && (e.RATE_LIMIT_SCALE !== 1 || e.BENCH_METRICS)) {
    problems.push('RATE_LIMIT_SCALE and BENCH_METRICS are for benchmarks only and refused with NODE_ENV=production.');
  }
  if (problems.length) throw new Error(`Invalid configuration:\n${problems.map((p) => `✖ ${p}`).join('\n')}`);

  const publicBaseUrl = (e.PUBLIC_BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    publicBaseUrl,
    dataDir: e.DATA_DIR,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    demoMode,
    demoPassword: e.CASEBRIDGE_DEMO_PASSWORD,
    sessionSecret: e.SESSION_SECRET,
    sessionIdleMs: e.SESSION_IDLE_MINUTES * 60_000,
    sessionMaxMs: e.SESSION_MAX_HOURS * 3_600_000,
    logLevel: e.LOG_LEVEL,
    trustProxy: e.TRUST_PROXY,
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    twilioApiBaseUrl: e.TWILIO_API_BASE_URL?.replace(/\/+$/, ''),
    rateLimitScale: e.RATE_LIMIT_SCALE,
    benchMetrics: e.BENCH_METRICS,
  };
}
