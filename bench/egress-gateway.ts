/**
 * What the egress gateway costs (README "Security"): the CPU of its process while one live stream of 4 Mbit/s
 * (500 kB/s in 64 KiB chunks, like MPEG-TS over HTTP) streams through it from a plain-HTTP and from an HTTPS origin,
 * measured from /proc over a window after a warm-up; and the time to rewrite a 1,000-segment playlist.
 *
 *   npx tsx bench/egress-gateway.ts [--seconds 20]
 *
 * The gateway runs in a child process of its own (so only its CPU is counted; it trusts the bench's self-signed
 * origin through NODE_EXTRA_CA_CERTS); the origins and the reading client run here.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EgressGateway } from '../src/egress/gateway.js';
import { parseEgressAllow } from '../src/egress/index.js';
import { rewritePlaylist } from '../src/egress/playlist.js';
import { createLogger } from '../src/log.js';

if (process.argv.includes('--gateway')) {
  const g = await EgressGateway.start({ policy: parseEgressAllow('127.0.0.1'), logger: createLogger('warn', 'gw') });
  console.log(g.url);
} else await main();

async function main(): Promise<void> {
  const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 20;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-bench-'));
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`],
    ],
    { stdio: 'ignore' },
  );
  const chunk = Buffer.alloc(64 * 1024, 0x47);
  const stream: http.RequestListener = (_req, res) => {
    res.writeHead(200, { 'content-type': 'video/mp2t' });
    const t = setInterval(() => res.write(chunk), (chunk.length / 500_000) * 1000);
    res.on('close', () => clearInterval(t));
  };
  const plain = http.createServer(stream);
  const tls = https.createServer(
    { key: fs.readFileSync(`${dir}/k.pem`), cert: fs.readFileSync(`${dir}/c.pem`) },
    stream,
  );
  for (const s of [plain, tls]) await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const child = spawn(process.execPath, ['--import', 'tsx', process.argv[1]!, '--gateway'], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: `${dir}/c.pem` },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const gateway = await new Promise<string>((r) => child.stdout!.once('data', (d: Buffer) => r(d.toString().trim())));
  const ticks = () => {
    const f = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100 per second)
  };
  const cpu = async (ms: number) => {
    const t0 = ticks();
    await new Promise((r) => setTimeout(r, ms));
    return ((ticks() - t0) / 100 / (ms / 1000)) * 100;
  };
  console.log(`gateway process idle: ${(await cpu(3000)).toFixed(2)} % of a core`);
  for (const [name, s] of [
    ['http', plain],
    ['https', tls],
  ] as const) {
    const origin = `${name}://127.0.0.1:${(s.address() as AddressInfo).port}/live.ts`;
    let bytes = 0;
    const req = http.get(`${gateway}/${origin.replace('://', '/')}`, (res) =>
      res.on('data', (d: Buffer) => (bytes += d.length)),
    );
    await new Promise((r) => setTimeout(r, 3000));
    const b0 = bytes;
    const used = await cpu(seconds * 1000);
    const mbit = ((bytes - b0) * 8) / seconds / 1e6;
    console.log(`4 Mbit/s from an ${name} origin: ${used.toFixed(2)} % of a core (${mbit.toFixed(2)} Mbit/s passed)`);
    req.destroy();
  }
  const list = [
    '#EXTM3U',
    '#EXT-X-TARGETDURATION:2',
    ...Array.from({ length: 1000 }, (_, i) => `#EXTINF:2,\nseg${i}.ts`),
  ];
  const body = Buffer.from(list.join('\n'));
  const base = new URL('https://cdn.example/live/index.m3u8');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 100; i++) rewritePlaylist(body, base, 'http://127.0.0.1:9');
  console.log(
    `rewriting a 1,000-segment playlist: ${(Number(process.hrtime.bigint() - t0) / 1e6 / 100).toFixed(2)} ms`,
  );
  child.kill();
  plain.closeAllConnections();
  tls.closeAllConnections();
  plain.close();
  tls.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
