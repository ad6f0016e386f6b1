import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NGINX, startNginx } from './nginx-rtmp.js';

/** The edge configuration shipped in edge/ (an http-context template, rendered as the nginx image does). */
export const EDGE_TEMPLATE = path.resolve(import.meta.dirname, '../../edge/relay-edge.conf.template');

/** Why the edge test cannot run here, or null (Debian's nginx installed). */
export function nginxMissing(): string | null {
  return fs.existsSync(NGINX) ? null : `${NGINX} missing (apt-get install nginx)`;
}

/** The template with its ${NAME} settings filled in, as envsubst does in the nginx image. */
export function renderEdge(vars: Record<string, string>): string {
  return fs.readFileSync(EDGE_TEMPLATE, 'utf8').replace(/\$\{([A-Z_]+)\}/g, (m, k: string) => vars[k] ?? m);
}

/**
 * Writes `dir/nginx.conf`: a foreground nginx (one process) whose http context includes the shipped edge configuration
 * rendered for `origin` (host:port; a name resolving to several addresses makes an upstream of several servers),
 * listening on `listen`, caching in `dir/cache`. Start it with `nginx -p dir -c dir/nginx.conf`.
 */
export function writeEdgeConf(dir: string, opts: { origin: string; listen: string }): void {
  const edge = path.join(dir, 'relay-edge.conf');
  fs.writeFileSync(
    edge,
    renderEdge({
      RELAY_ORIGIN: opts.origin,
      EDGE_PORT: opts.listen,
      EDGE_CACHE_DIR: path.join(dir, 'cache'),
      EDGE_CACHE_MAX_SIZE: '256m',
    }),
  );
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'master_process off;',
      'worker_rlimit_nofile 16384;',
      `error_log ${path.join(dir, 'error.log')} warn;`,
      `pid ${path.join(dir, 'nginx.pid')};`,
      'events { worker_connections 8192; }',
      'http {',
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${path.join(dir, t)};`),
      `  include ${edge};`,
      '}',
    ].join('\n'),
  );
}

/** A local nginx running the shipped edge configuration in front of `origin` (host:port), in its own temp folder. */
export class EdgeNginx {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-edge-'));
  private child: ChildProcess | null = null;
  readonly log: string[] = [];

  constructor(
    readonly port: number,
    origin: string,
  ) {
    writeEdgeConf(this.dir, { origin, listen: `127.0.0.1:${port}` });
  }

  /** nginx's process id (one process: master_process off), for CPU figures. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  async start(): Promise<void> {
    this.child = await startNginx(this.dir, this.port, this.log);
  }

  async close(): Promise<void> {
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
