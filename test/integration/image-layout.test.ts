import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts } from '../../src/dev/redis.js';
import { envOf, execForm, instructions, stages, type Instruction } from '../helpers/dockerfile.js';
import { eventually, ffmpegsMentioning, portAccepts, REDIS_URL } from '../helpers/stack.js';

/**
 * The image without a Docker engine: a temp folder is laid out as the Dockerfile's final stage lays out /app (the
 * build stage's compiled output, package.json, web/, production modules, fixtures made by the RUN line), then the
 * image's ENTRYPOINT + CMD run there exactly as written, with the image's ENV, private ports, a private Redis prefix
 * and a private data folder in place of /data.
 */
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const TINI = '/usr/bin/tini';
const cleanups: (() => void | Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const dockerfile = instructions(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const built = stages(dockerfile);
const final = built.at(-1)!;

/** Compiles as the build stage does (`npm run build` = `tsc -p tsconfig.build.json`) into `outDir`. */
function compile(outDir: string): void {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { build: string } };
  expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', outDir], { cwd: ROOT });
}

/** Carries out the final stage's instructions in `app` (its WORKDIR); returns its ENV, ENTRYPOINT and CMD. */
function layOut(app: string): { env: Record<string, string>; command: string[]; healthcheck: string[] } {
  const env: Record<string, string> = {};
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  let healthcheck: string[] = [];
  const dest = (d: string) => path.join(app, d);
  const copy = (ins: Instruction) => {
    const words = ins.args.split(/\s+/);
    const from = /^--from=(\S+)$/.exec(words[0]!)?.[1];
    const [src, to] = words.filter((w) => !w.startsWith('--')) as [string, string];
    if (!from) {
      // Docker: a file copied to a destination ending in / lands in that folder under its own name
      const file = fs.statSync(path.join(ROOT, src)).isFile() && to.endsWith('/');
      return fs.cpSync(path.join(ROOT, src), dest(file ? path.join(to, path.basename(src)) : to), { recursive: true });
    }
    const stage = built.find((s) => s.name === from);
    if (src.endsWith('/node_modules')) {
      expect(stage!.body.some((i) => /npm ci --omit=dev/.test(i.args))).toBe(true);
      return fs.symlinkSync(path.join(ROOT, 'node_modules'), dest(to)); // this checkout's modules stand in
    }
    if (src.endsWith('/dist')) {
      expect(stage!.body.some((i) => i.op === 'RUN' && i.args === 'npm run build')).toBe(true);
      return compile(dest(to));
    }
    throw new Error(`the layout test does not know how to copy ${ins.args} (Dockerfile line ${ins.line})`);
  };
  for (const ins of final.body) {
    if (ins.op === 'WORKDIR') expect(ins.args).toBe('/app');
    else if (ins.op === 'ENV') Object.assign(env, envOf(ins.args));
    else if (ins.op === 'COPY') copy(ins);
    else if (ins.op === 'ENTRYPOINT') entrypoint = execForm(ins.args)!;
    else if (ins.op === 'CMD') cmd = execForm(ins.args)!;
    else if (ins.op === 'HEALTHCHECK') healthcheck = execForm(ins.args.replace(/^(--\S+\s+)*CMD\s+/, ''))!;
    else if (ins.op === 'RUN')
      for (const step of ins.args.split('&&').map((s) => s.trim()))
        // node steps run here (the fixtures); apt, mkdir /data and chown are the machine's and the container's part
        if (step.startsWith('node '))
          execFileSync('node', step.split(/\s+/).slice(1), { cwd: app, env: { ...process.env, ...env } });
  }
  return { env, command: [...entrypoint, ...cmd], healthcheck };
}

describe("the image's layout", () => {
  it("the image's command, run from a copy laid out as the Dockerfile lays out /app, prints READY, serves the player and ends on SIGTERM", async () => {
    const app = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-image-'));
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-image-data-'));
    cleanups.push(() => fs.rmSync(app, { recursive: true, force: true }));
    cleanups.push(() => fs.rmSync(data, { recursive: true, force: true }));
    const { env: imageEnv, command, healthcheck } = layOut(app);
    expect(fs.existsSync(path.join(app, 'web/player/index.html'))).toBe(true);
    expect(fs.existsSync(path.join(app, 'fixtures/media/alice-camera.mp4'))).toBe(true);
    expect(
      fs.existsSync(path.join(app, 'src')) && !fs.readdirSync(path.join(app, 'cmd')).some((f) => f.endsWith('.ts')),
    ).toBe(true);

    const [api, http, rtmp] = (await freePorts(3)) as [number, number, number];
    const prefix = `img${crypto.randomBytes(4).toString('hex')}`;
    const env = {
      ...process.env,
      ...imageEnv,
      RELAY_DATA_DIR: data, // the image's /data volume
      RELAY_API_PORT: String(api),
      RELAY_HTTP_PORT: String(http),
      RELAY_RTMP_PORT: String(rtmp),
      RELAY_REDIS_PREFIX: prefix,
      REDIS_URL,
    };
    cleanups.push(async () => {
      const r = new Redis(REDIS_URL);
      const keys = await r.keys(`${prefix}:*`);
      if (keys.length) await r.del(...keys);
      r.disconnect();
    });
    // tini is the image's PID 1; without it here the CMD runs alone (and the test says so)
    const argv = fs.existsSync(command[0]!) ? command : command.slice(command.indexOf('--') + 1);
    if (argv !== command) console.warn(`${TINI} is missing: running the CMD without the ENTRYPOINT`);
    const child = spawn('/usr/bin/setpriv', ['--pdeathsig', 'SIGKILL', '--', ...argv], {
      cwd: app,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    cleanups.push(() => void child.kill('SIGKILL'));

    const ready = await Promise.race([
      eventually(async () => {
        const m = /^READY (.*)$/m.exec(out);
        return m ? (JSON.parse(m[1]!) as Record<string, string>) : null;
      }, 40_000),
      exited.then((code) => Promise.reject(new Error(`the command exited (${code}) before READY: ${out}`))),
    ]);
    expect(ready.api).toBe(`http://127.0.0.1:${api}`);
    expect(ready.sdkAppId).toBe('1400000001');
    expect(ready.secretKey).toMatch(/^\S{16,}$/);

    const player = await fetch(`http://127.0.0.1:${http}/player/`);
    expect(player.status).toBe(200);
    expect(await player.text()).toMatch(/<html/i);
    expect((await fetch(`http://127.0.0.1:${http}/player/lib/hls.min.js`)).status).toBe(200); // from node_modules

    // the HEALTHCHECK as written: GET /livez on the API port answers 200, the check exits 0
    expect((await fetch(`http://127.0.0.1:${api}/livez`)).status).toBe(200);
    const hc = spawn(healthcheck[0]!, healthcheck.slice(1), { cwd: app, env, stdio: 'ignore' });
    expect(await new Promise<number | null>((r) => hc.once('exit', r))).toBe(0);

    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 20_000))]);
    expect(code, out).toBe(0);
    for (const p of [api, http, rtmp]) expect(await portAccepts(p)).toBe(false);
    expect(ffmpegsMentioning(data)).toEqual([]);
  }, 90_000);
});
