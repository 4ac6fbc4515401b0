import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_PASSWORD } from './harness.js';
import { freePort, spawnServer, waitForHealth, type ServerProcess } from './process.js';

/**
 * Real parts for fault tests, all on loopback: a private Redis and a private PostgreSQL that a test may stop
 * and start (the machine's shared services stay untouched, so other suites running alongside are unaffected),
 * CaseBridge nodes as real processes that a test may SIGKILL, and a TCP balancer in front of them that sends
 * each new connection to a live node, as a load balancer with health checks would.
 */

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function until(what: string, fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(100);
  }
}

/** A Redis server of our own on a free port; stop() and start() keep the port. Nothing is kept on disk. */
export class PrivateRedis {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort());
    await r.start();
    return r;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    await until('redis to listen', () => portOpen(this.port));
  }

  /** Stops it hard (no goodbye to clients), as a crash or a network cut would. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }
}

function pgBin(name: string): string {
  const versions = readdirSync('/usr/lib/postgresql').sort();
  return join('/usr/lib/postgresql', versions.at(-1)!, 'bin', name);
}

/**
 * A PostgreSQL cluster of our own (initdb in a temp folder, trust auth, one port), so a test can restart the
 * database without touching the machine's shared one. PostgreSQL refuses to run as root, so as root it runs as
 * the `postgres` system user.
 */
export class PrivatePostgres {
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private static run(args: string[]): void {
    const asRoot = process.getuid?.() === 0;
    const cmd = asRoot ? 'runuser' : args[0]!;
    const argv = asRoot ? ['-u', 'postgres', '--', ...args] : args.slice(1);
    const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  }

  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'cb-pg-'));
    if (process.getuid?.() === 0) {
      const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
      const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
      chownSync(dir, Number(pw.stdout.trim()), Number(gid.stdout.trim()));
    }
    PrivatePostgres.run([pgBin('initdb'), '-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
    const pg = new PrivatePostgres(await freePort(), dir);
    await pg.start();
    return pg;
  }

  async start(): Promise<void> {
    PrivatePostgres.run([
      pgBin('pg_ctl'),
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`,
      'start',
    ]);
    await until('postgres to listen', () => portOpen(this.port));
  }

  /** Fast shutdown: open connections are cut, as in a restart or failover. */
  async stop(): Promise<void> {
    PrivatePostgres.run([pgBin('pg_ctl'), '-D', join(this.dir, 'data'), '-m', 'fast', '-w', 'stop']);
  }

  async destroy(): Promise<void> {
    try {
      await this.stop();
    } catch {
      /* already stopped */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A CaseBridge node as its own process (the built entry point `npm start` runs). */
export class Node {
  private constructor(
    readonly port: number,
    readonly proc: ServerProcess,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get pid(): number {
    return this.proc.child.pid!;
  }
  get alive(): boolean {
    return this.proc.child.exitCode === null && this.proc.child.signalCode === null;
  }

  static async start(env: { DATABASE_URL: string; REDIS_URL?: string } & Record<string, string>): Promise<Node> {
    const port = await freePort();
    const proc = spawnServer({
      NODE_ENV: 'test',
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      DEMO_MODE: 'true',
      CASEBRIDGE_DEMO_PASSWORD: DEMO_PASSWORD,
      SESSION_SECRET: 'fault-test-secret-fault-test-secret-42',
      LOG_LEVEL: 'warn',
      ...env,
    });
    const node = new Node(port, proc);
    await waitForHealth(node.url, proc);
    return node;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return;
    this.proc.child.kill(signal);
    await this.proc.exited;
  }
}

/**
 * Sends each new TCP connection to the next live node (round robin, skipping any that refuse), and can cut every
 * open connection at once. With websocket-only clients no stickiness is needed: a connection lives on one node.
 */
export class Balancer {
  private server!: Server;
  private readonly open = new Set<Socket>();
  private readonly clients = new Set<Socket>();
  private next = 0;
  port = 0;

  constructor(private readonly targets: () => number[]) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(targets: () => number[]): Promise<Balancer> {
    const b = new Balancer(targets);
    b.server = createServer((client) => void b.pipe(client));
    await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', () => r()));
    b.port = (b.server.address() as { port: number }).port;
    return b;
  }

  private blockedUntil = 0;

  /** Cuts every open connection and refuses new ones for `ms`: the clients' network is down. */
  block(ms: number): number {
    this.blockedUntil = Date.now() + ms;
    return this.dropAll();
  }

  private async pipe(client: Socket): Promise<void> {
    if (Date.now() < this.blockedUntil) {
      client.destroy();
      return;
    }
    client.pause();
    this.open.add(client);
    this.clients.add(client);
    client.once('close', () => {
      this.open.delete(client);
      this.clients.delete(client);
    });
    client.on('error', () => client.destroy());
    const ports = this.targets();
    for (let i = 0; i < ports.length; i++) {
      const port = ports[(this.next + i) % ports.length]!;
      const upstream = await new Promise<Socket | null>((resolve) => {
        const s = createConnection({ port, host: '127.0.0.1' });
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(null));
      });
      if (!upstream) continue;
      this.next = (this.next + i + 1) % ports.length;
      this.open.add(upstream);
      upstream.once('close', () => {
        this.open.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => upstream.destroy());
      client.once('close', () => upstream.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      return;
    }
    client.destroy();
  }

  /** Cuts every open connection at once (a load balancer restart, a network blip); returns how many clients. */
  dropAll(): number {
    const n = this.clients.size;
    for (const s of this.open) s.destroy();
    return n;
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
