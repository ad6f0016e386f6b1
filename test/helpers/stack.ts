import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePorts } from '../../src/dev/redis.js';
import { DEV_SDK_APP_ID } from '../../src/tenants/apps.js';
import { authorizationFor } from '../../src/auth/index.js';
import { ingestPublishUrl, type IngestKey } from '../../src/rooms/ingest.js';
import { loadConfig } from '../../src/config/index.js';
import { FfmpegProcess } from '../../src/media/ffmpeg/process.js';
import { loopPublishArgs } from '../../src/media/ffmpeg/args.js';
import { createLogger } from '../../src/log.js';
import { FIXTURE_DIR } from '../../fixtures/make.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const FFMPEG = loadConfig().ffmpegPath;
export const fixture = (name: string): string => path.join(FIXTURE_DIR, name);

/** A relay process of a test stack. */
export interface Proc {
  name: string;
  child: ChildProcess;
  output: string[];
  /** Sends a signal to the process (default SIGTERM) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** A test's own relay: media server, API and workers as real processes, on free ports and a private key prefix. */
export interface Stack {
  api: string;
  auth: string;
  /** `Authorization` value of the admin API. */
  adminAuth: string;
  sdkAppId: string;
  secretKey: string;
  httpPort: number;
  rtmpPort: number;
  prefix: string;
  dataDir: string;
  env: Record<string, string>;
  redis: Redis;
  procs: Proc[];
  startWorker(extraEnv?: Record<string, string>): Promise<Proc>;
  /** Starts the media server again (after its process was stopped). */
  restartMedia(): Promise<Proc>;
  /** Starts one more media node on ports of its own (a cluster of media nodes, README "Scaling out"). */
  startMediaNode(extraEnv?: Record<string, string>): Promise<{ proc: Proc; httpPort: number; rtmpPort: number }>;
  /** A member publishing a fixture into the ingest, looped; resolves once the registry lists it. */
  publish(key: Omit<IngestKey, 'sdkAppId'>, file: string): Promise<FfmpegProcess>;
  request(
    method: string,
    route: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

function spawnProc(name: string, script: string, env: Record<string, string>, readyLine: RegExp): Promise<Proc> {
  const child = spawn(
    '/usr/bin/setpriv',
    ['--pdeathsig', 'SIGKILL', '--', process.execPath, '--import', 'tsx', script],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: Proc = {
    name,
    child,
    output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, signal);
      } catch {
        /* gone */
      }
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 15000);
      await exited;
      clearTimeout(t);
    },
  };
  return new Promise((resolve, reject) => {
    const onLine = (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (!line) continue;
        output.push(line);
        if (output.length > 400) output.shift();
        if (readyLine.test(line)) resolve(proc);
      }
    };
    child.stdout!.on('data', onLine);
    child.stderr!.on('data', onLine);
    child.once('exit', (code) =>
      reject(new Error(`${name} exited (${code}) before ready:\n${output.slice(-20).join('\n')}`)),
    );
    setTimeout(() => reject(new Error(`${name} not ready in 30 s:\n${output.slice(-20).join('\n')}`)), 30000).unref();
  });
}

/** Starts a private relay stack; `workers` worker processes (default 1). */
export async function startStack(
  opts: { workers?: number; env?: Record<string, string>; redisUrl?: string } = {},
): Promise<Stack> {
  const prefix = `t${crypto.randomBytes(5).toString('hex')}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-test-'));
  const [apiPort, httpPort, rtmpPort] = (await freePorts(3)) as [number, number, number];
  const secretKey = crypto.randomBytes(16).toString('hex');
  const adminToken = crypto.randomBytes(16).toString('hex');
  const env: Record<string, string> = {
    REDIS_URL,
    RELAY_REDIS_PREFIX: prefix,
    RELAY_DATA_DIR: dataDir,
    RELAY_API_PORT: String(apiPort),
    RELAY_HTTP_PORT: String(httpPort),
    RELAY_RTMP_PORT: String(rtmpPort),
    RELAY_PUBLIC_HOST: '127.0.0.1',
    RELAY_BIND: '127.0.0.1',
    RELAY_DEV_APP_SECRET: secretKey,
    RELAY_ADMIN_TOKEN: adminToken,
    RELAY_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info',
    RELAY_FILE_UPSTREAM_DIR: FIXTURE_DIR,
    // upstream and webhook stand-ins of the tests listen on loopback, which the egress policy refuses by default
    RELAY_UPSTREAM_ALLOW: '127.0.0.1',
    // a CI machine may have less free disk than the 1 GiB default admits recordings at; the disk test sets its own
    RELAY_MIN_FREE_MB: '16',
    ...opts.env,
  };
  const redis = new Redis(opts.redisUrl ?? REDIS_URL, { maxRetriesPerRequest: 3 });
  redis.on('error', () => undefined);
  const procs: Proc[] = [];
  const feeders: FfmpegProcess[] = [];
  const auth = authorizationFor({ sdkAppId: DEV_SDK_APP_ID, secretKey });
  const api = `http://127.0.0.1:${apiPort}`;

  const stack: Stack = {
    api,
    auth,
    adminAuth: `Bearer ${adminToken}`,
    sdkAppId: DEV_SDK_APP_ID,
    secretKey,
    httpPort,
    rtmpPort,
    prefix,
    dataDir,
    env,
    redis,
    procs,
    async startWorker(extraEnv = {}) {
      const p = await spawnProc(`worker${procs.length}`, 'cmd/worker.ts', { ...env, ...extraEnv }, /WORKER READY/);
      procs.push(p);
      return p;
    },
    async restartMedia() {
      const i = procs.findIndex((p) => p.name === 'media');
      const p = await spawnProc('media', 'cmd/media.ts', env, /MEDIA READY/);
      if (i >= 0) procs[i] = p;
      else procs.push(p);
      return p;
    },
    async startMediaNode(extraEnv = {}) {
      const [nodeHttp, nodeRtmp] = (await freePorts(2)) as [number, number];
      const ports = { RELAY_HTTP_PORT: String(nodeHttp), RELAY_RTMP_PORT: String(nodeRtmp) };
      const proc = await spawnProc(
        `media${procs.length}`,
        'cmd/media.ts',
        { ...env, ...ports, ...extraEnv },
        /MEDIA READY/,
      );
      procs.push(proc);
      return { proc, httpPort: nodeHttp, rtmpPort: nodeRtmp };
    },
    async publish(key, file) {
      const url = ingestPublishUrl('127.0.0.1', rtmpPort, secretKey, { sdkAppId: DEV_SDK_APP_ID, ...key });
      const ff = new FfmpegProcess({
        ffmpegPath: FFMPEG,
        args: loopPublishArgs(file, url),
        logger: createLogger('silent', 'feeder'),
        startTimeoutMs: 10000,
      });
      feeders.push(ff);
      await ff.start();
      const field = `${key.userId}:${key.srcType}`;
      for (let i = 0; i < 100 && !(await redis.hexists(`${prefix}:room:${DEV_SDK_APP_ID}:${key.roomId}`, field)); i++)
        await sleep(50);
      return ff;
    },
    async request(method, route, body, headers = {}) {
      const res = await fetch(api + route, {
        method,
        headers: {
          authorization: auth,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined
          ? {
              body:
                typeof body === 'string' ? body : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
            }
          : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, body: parsed };
    },
    async close() {
      await Promise.all(feeders.map((f) => f.close()));
      await Promise.all(procs.map((p) => p.stop()));
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    procs.push(await spawnProc('media', 'cmd/media.ts', env, /MEDIA READY/));
    procs.push(await spawnProc('api', 'cmd/api.ts', env, /API READY/));
    for (let i = 0; i < (opts.workers ?? 1); i++) await stack.startWorker();
  } catch (e) {
    await stack.close();
    throw e;
  }
  return stack;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `fn` returns a truthy value or the time is up. */
export async function eventually<T>(
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs = 15000,
  stepMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(stepMs);
  }
}

/** Environment variable that global setup sets to a random id for the run; every process the run spawns inherits it. */
export const TEST_RUN_ENV = 'RELAY_TEST_RUN';

/** Live (not zombie) ffmpeg processes of this machine that this user may read, with their command line and environment. */
function ffmpegs(): { pid: number; cmd: string; environ: string[] }[] {
  const found: { pid: number; cmd: string; environ: string[] }[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!path.basename(cmd.split('\0')[0] ?? '').includes('ffmpeg')) continue;
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue;
      found.push({ pid: Number(pid), cmd, environ: fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0') });
    } catch {
      /* exited meanwhile, or another user's */
    }
  }
  return found;
}

/** ffmpeg processes whose command line mentions the text (e.g. a test's data dir or port). */
export function ffmpegsMentioning(text: string): number[] {
  return ffmpegs()
    .filter((f) => f.cmd.includes(text))
    .map((f) => f.pid);
}

/** ffmpeg processes started by the test run `runId`: those whose environment has `RELAY_TEST_RUN=<runId>`. */
export function ffmpegsOfRun(runId: string): number[] {
  const mark = `${TEST_RUN_ENV}=${runId}`;
  return ffmpegs()
    .filter((f) => f.environ.includes(mark))
    .map((f) => f.pid);
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A webhook event as a receiver gets it. */
export interface ReceivedHook {
  type: string;
  channelId: string;
  data: Record<string, unknown>;
}

/** A local webhook receiver: every event POSTed to `url` lands in `hooks` (answered 204); close() ends it. */
export async function webhookReceiver(
  hooks: ReceivedHook[] = [],
): Promise<{ url: string; hooks: ReceivedHook[]; close(): void }> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      hooks.push(JSON.parse(body) as ReceivedHook);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/hook`,
    hooks,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
