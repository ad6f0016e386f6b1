/** Development helpers: a free port and a private Redis for `npm run relay` and the tests. Not used in production. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { redisAnswers } from '../redis/index.js';

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
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
