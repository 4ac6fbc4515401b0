import { loadConfig } from './config.js';
import { createLogger } from './lib/logger.js';
import { DEMO_USERS } from './db/seed-demo.js';
import { startServer } from './server.js';

// The composition root: the only place that reads the environment and owns the process.
let config;
try {
  config = loadConfig();
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
const logger = createLogger(config.logLevel);

try {
  const server = await startServer({ config, logger });
  const base = config.publicBaseUrl;
  const lines = [
    '',
    `CaseBridge is running (${server.database.kind}${config.redisUrl ? ' + redis' : ''}) on ${server.url}`,
    `  Agent console     ${base}/console`,
    `  Portal            ${base}/portal`,
    `  Demo agency page  ${base}/demo`,
    `  Widget loader     ${base}/widget.js`,
    `  Health            ${base}/api/health`,
    `  Twilio webhooks   ${base}/webhooks/twilio/`,
  ];
  if (config.demoMode) {
    lines.push('', 'Demo agency "City of Springfield" — sign in with:');
    for (const u of DEMO_USERS) lines.push(`  ${u.email.padEnd(22)} ${u.role}`);
    lines.push(
      config.demoPassword
        ? '  password: the value of CASEBRIDGE_DEMO_PASSWORD'
        : `  password: ${server.demoPassword}   (random for this start; set CASEBRIDGE_DEMO_PASSWORD to choose one)`,
    );
  }
  // Written to the terminal for the person who started it, not into the JSON log.
  process.stdout.write(`${lines.join('\n')}\n\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server
      .close()
      .then(() => process.exit(0))
      .catch((err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (err) {
  logger.fatal({ err: (err as Error).message }, 'CaseBridge could not start');
  process.stderr.write(`CaseBridge could not start: ${(err as Error).message}\n`);
  process.exit(1);
}
