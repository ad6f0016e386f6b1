/**
 * The extra media nodes of `npm run relay`: one Node process serves its channels' viewers on one core, so the
 * all-in-one relay runs RELAY_MEDIA_NODES media nodes (one per core by default). The first is in the relay's own
 * process on RELAY_RTMP_PORT/RELAY_HTTP_PORT; node i (1, 2, …) is a child process (`cmd/media`) on RELAY_RTMP_PORT + i
 * and RELAY_HTTP_PORT + i. Placement spreads channels over them; any node answers any HTTP play URL (README "Scaling
 * out"). A child stops with the relay, and by itself when the relay is gone (its parent changes: wiring/shutdown.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RelayConfig } from '../config/index.js';

/** A media node child of the relay. */
export interface MediaChild {
  rtmpPort: number;
  httpPort: number;
  child: ChildProcess;
}

const READY_MS = 30_000;

/**
 * Starts media nodes 1 … count-1 beside the relay's own and resolves once each said MEDIA READY; a node that cannot
 * start (its port taken) is reported through `warn` and left out.
 */
export async function startMediaChildren(
  config: RelayConfig,
  count: number,
  warn: (line: string) => void,
): Promise<{ nodes: MediaChild[]; close(): Promise<void> }> {
  const here = fileURLToPath(import.meta.url);
  const script = path.resolve(path.dirname(here), '../../cmd', `media${path.extname(here)}`);
  const started = await Promise.all(
    Array.from({ length: count - 1 }, (_, k) =>
      startOne(script, {
        // the relay's Redis (a private one when it started its own), its public host, a name of the node's own
        REDIS_URL: config.redisUrl,
        RELAY_NODE_PUBLIC_HOST: config.publicHost,
        RELAY_RTMP_PORT: String(config.rtmpPort + k + 1),
        RELAY_HTTP_PORT: String(config.httpPort + k + 1),
        ...(process.env.RELAY_NODE_ID ? { RELAY_NODE_ID: `${process.env.RELAY_NODE_ID}-${k + 1}` } : {}),
      }),
    ),
  );
  const nodes: MediaChild[] = [];
  for (const s of started) {
    if ('child' in s) nodes.push(s);
    else warn(`media node on RTMP ${s.rtmpPort} / HTTP ${s.httpPort} did not start: ${s.why}`);
  }
  return {
    nodes,
    close: () => Promise.all(nodes.map((n) => stop(n.child))).then(() => undefined),
  };
}

function startOne(
  script: string,
  env: Record<string, string>,
): Promise<MediaChild | { rtmpPort: number; httpPort: number; why: string }> {
  const rtmpPort = Number(env.RELAY_RTMP_PORT);
  const httpPort = Number(env.RELAY_HTTP_PORT);
  const child = spawn(process.execPath, [...process.execArgv, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ rtmpPort, httpPort, why: `not ready within ${READY_MS / 1000} s` });
    }, READY_MS);
    const onData = (d: Buffer) => {
      tail = (tail + d.toString()).slice(-2000);
      if (/MEDIA READY/.test(tail)) {
        clearTimeout(timer);
        // from now on its log lines (RELAY_LOG_LEVEL, warn by default) go where the relay's go
        for (const [from, to] of [
          [child.stdout!, process.stdout],
          [child.stderr!, process.stderr],
        ] as const) {
          from.off('data', onData);
          from.pipe(to, { end: false });
        }
        resolve({ rtmpPort, httpPort, child });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const last = tail.trim().split('\n').slice(-3).join(' | ');
      resolve({ rtmpPort, httpPort, why: `exited (${code}): ${last}` });
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const hard = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(hard);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
