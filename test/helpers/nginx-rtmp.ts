import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { portAccepts, sleep } from './stack.js';

export const NGINX = '/usr/sbin/nginx';
export const RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

/** Why nginx-rtmp tests cannot run here, or null when they can (Debian's nginx and libnginx-mod-rtmp installed). */
export function nginxRtmpMissing(): string | null {
  if (!fs.existsSync(NGINX)) return `${NGINX} missing (apt-get install nginx)`;
  if (!fs.existsSync(RTMP_MODULE)) return `${RTMP_MODULE} missing (apt-get install libnginx-mod-rtmp)`;
  return null;
}

/**
 * Runs nginx in the foreground on `dir/nginx.conf` (a parent-death signal: it never outlives the test), its stderr
 * into `log`; resolves once `port` accepts connections.
 */
export async function startNginx(dir: string, port: number, log: string[]): Promise<ChildProcess> {
  const child = spawn(
    '/usr/bin/setpriv',
    ['--pdeathsig', 'SIGKILL', '--', NGINX, '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', 'stderr'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${log.join('')}`);
    if (await portAccepts(port)) return child;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`nginx did not listen on ${port}: ${log.join('')}`);
}

/**
 * A local nginx-rtmp standing in for a CDN's ingest: its own temp folder and configuration, foreground (`daemon off;
 * master_process off;`), one RTMP port on 127.0.0.1; application `live2` records every stream it receives (FLV) into
 * `recordDir`; application `denied` refuses every publish (as a wrong stream key is); application `play` ends its
 * players when the publisher leaves (`idle_streams off`). stop() and start() again on the same port (a CDN that goes away and comes back).
 */
export class NginxRtmp {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nginx-rtmp-'));
  readonly recordDir = path.join(this.dir, 'rec');
  private child: ChildProcess | null = null;
  readonly log: string[] = [];

  constructor(readonly port: number) {
    fs.mkdirSync(this.recordDir);
    fs.writeFileSync(
      path.join(this.dir, 'nginx.conf'),
      [
        'daemon off;',
        'master_process off;',
        `load_module ${RTMP_MODULE};`,
        `error_log ${path.join(this.dir, 'error.log')} info;`,
        `pid ${path.join(this.dir, 'nginx.pid')};`,
        'events { worker_connections 64; }',
        'rtmp { server {',
        `  listen 127.0.0.1:${port};`,
        `  application live2 { live on; record all; record_path ${this.recordDir}; record_unique on; }`,
        '  application denied { live on; deny publish all; }', // a destination that refuses every publish
        // a server that ends its players when the publisher goes away (nginx-rtmp keeps them waiting by default)
        '  application play { live on; idle_streams off; }',
        '} }',
      ].join('\n'),
    );
  }

  /** Starts nginx and resolves once its port accepts connections. */
  async start(): Promise<void> {
    this.child = await startNginx(this.dir, this.port, this.log);
  }

  /** Kills nginx (SIGKILL: the CDN vanishes) and waits for it to exit. */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    c.kill('SIGCONT');
    await exited;
  }

  /** Freezes nginx (SIGSTOP): its connections stay open and nothing is read any more — a destination that stalls. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a frozen nginx run again (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** FLV files nginx recorded. */
  recordings(): string[] {
    return fs
      .readdirSync(this.recordDir)
      .filter((f) => f.endsWith('.flv'))
      .map((f) => path.join(this.recordDir, f));
  }

  async close(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
