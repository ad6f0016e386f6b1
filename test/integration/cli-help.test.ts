import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/redis.js';

/** The command-line tools as an operator runs them, through `npm run` from another folder, without credentials. */
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-caller-'));
afterAll(() => fs.rmSync(elsewhere, { recursive: true, force: true }));

/** `npm --prefix ROOT run -s <script> -- ...args` started in `elsewhere`, with no relay credentials in its environment. */
function npmRun(script: string, args: string[], env: Record<string, string> = {}) {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(RELAY_(SDK_APP_ID|SECRET_KEY|ADMIN_TOKEN|API_URL)|INIT_CWD)$/.test(k),
    ),
  );
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn('npm', ['--prefix', ROOT, 'run', '-s', script, '--', ...args], {
      cwd: elsewhere,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

describe('CLI help and exit codes', () => {
  it('cli --help, cli help push and admin apps --help print usage without credentials and exit 0', async () => {
    const [all, push, apps] = await Promise.all([
      npmRun('cli', ['--help']),
      npmRun('cli', ['help', 'push']),
      npmRun('admin', ['apps', '--help']),
    ]);
    expect(all.code, all.err).toBe(0);
    expect(all.out).toContain('watermarks upload <file.png>');
    expect(all.out).toContain('4 local file unreadable');
    expect(push.code).toBe(0);
    expect(push.out).toMatch(/^usage: cli push start/);
    expect(apps.code).toBe(0);
    expect(apps.out).toMatch(/^usage: admin apps list/);
  });

  it('npm run relay -- --help prints usage and settings and exits 0 without starting anything', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const r = await npmRun('relay', ['--help'], { RELAY_API_PORT: String(port), REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^usage: npm run relay/);
    expect(r.out).toContain('RELAY_REDIS_PREFIX');
    expect(r.out).not.toMatch(/^READY /m);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it("a missing local file exits 4 naming it in the caller's folder; a present one is read from there (then: unreachable, 3)", async () => {
    const api = `http://127.0.0.1:${await freePort()}`; // nothing listens
    const env = { RELAY_API_URL: api, RELAY_SDK_APP_ID: '1400000001', RELAY_SECRET_KEY: 'x'.repeat(32) };
    const missing = await npmRun('cli', ['watermarks', 'upload', 'logo.png'], env);
    expect(missing.code).toBe(4);
    expect(missing.err).toContain(`cannot read local file ${path.join(elsewhere, 'logo.png')}: no such file`);
    expect(missing.err).not.toContain('cannot reach');
    fs.writeFileSync(path.join(elsewhere, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    const present = await npmRun('cli', ['watermarks', 'upload', 'logo.png'], env);
    expect(present.code).toBe(3);
    expect(present.err).toContain('cannot reach the relay');
  });

  it('an unknown command is bad usage (2) before any credential is asked for', async () => {
    const r = await npmRun('cli', ['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown command "frobnicate"');
  });
});
