/** Development helpers: a free port and a private Redis for `npm run relay` and the tests. Not used in production. */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { redisAnswers } from '../redis/index.js';

/** The kernel's ephemeral port range (outgoing connections take ports from it), or Linux's default. */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    /* not Linux */
  }
  return [32768, 60999];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A free TCP port on the loopback interface for a server started a moment later. It is picked at random below the
 * ephemeral range: a port the kernel hands out (listen on port 0) can be taken meanwhile by any outgoing connection
 * of the machine, which made a relay under test fail with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  const [ephemeralLow] = ephemeralRange();
  const low = 10_000;
  const high = Math.max(low + 1000, ephemeralLow - 1);
  for (let i = 0; i < 200; i++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port found between ${low} and ${high}`);
}

/** Whether redis-server is on PATH. */
export function findRedisServer(): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = `${dir}/redis-server`;
    if (dir && existsSync(p)) return p;
  }
  return null;
}

/** Starts a private, non-persistent Redis on a free loopback port, tied to this process's life. */
export async function startPrivateRedis(bin: string): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ];
  const child = existsSync('/usr/bin/setpriv')
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'SIGTERM', '--', bin, ...args], { stdio: 'ignore' })
    : spawn(bin, args, { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers(url, 200)) {
      return {
        url,
        async stop() {
          if (child.exitCode === null) child.kill('SIGTERM');
          await exited;
        },
      };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`could not start a private redis-server on port ${port}`);
}

/** `n` distinct free ports (freePort). */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}
