import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { parseEgressAllow } from '../../src/egress/index.js';
import { RtspRelay } from '../../src/egress/rtsp-relay.js';
import { createLogger } from '../../src/log.js';

/** The RTSP relay on loopback: 127.0.0.1 allowed, 127.0.0.2 not. */
const allow127 = parseEgressAllow('127.0.0.1');
const silent = createLogger('silent', 'test');
const port = (s: net.Server) => (s.address() as AddressInfo).port;
const servers: net.Server[] = [];
let relay: RtspRelay | null = null;

async function serve(s: net.Server, host: string): Promise<net.Server> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  return s;
}
afterEach(async () => {
  await relay?.close();
  for (const s of servers.splice(0)) s.close();
});

/** Sends `request` through the relay; resolves with what came back before the connection closed. */
function through(request: string): Promise<string> {
  const u = new URL(relay!.url);
  return new Promise((resolve) => {
    let got = '';
    const s = net.connect(Number(u.port), u.hostname, () => s.write(request));
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
  });
}

describe('RTSP relay', () => {
  it('relays to an allowed server and names the relay in the URL ffmpeg reads', async () => {
    const server = await serve(
      net.createServer((c) => c.once('data', () => c.end('RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n'))),
      '127.0.0.1',
    );
    relay = await RtspRelay.start({
      origin: `rtsp://u:p@127.0.0.1:${port(server)}/cam?x=1`,
      policy: allow127,
      logger: silent,
    });
    expect(relay.url).toMatch(/^rtsp:\/\/u:p@127\.0\.0\.1:\d+\/cam\?x=1$/);
    expect(relay.url).not.toContain(`:${port(server)}/`);
    expect(await through('OPTIONS rtsp://x/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n')).toBe(
      'RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n',
    );
    expect(relay.takeRefusal()).toBeNull();
  });

  it('never connects to a server the policy refuses, and says why (host and port, the policy hint)', async () => {
    let reached = 0;
    const inside = await serve(
      net.createServer((c) => {
        reached++;
        c.destroy();
      }),
      '127.0.0.2',
    );
    relay = await RtspRelay.start({ origin: `rtsp://127.0.0.2:${port(inside)}/cam`, policy: allow127, logger: silent });
    expect(await through('OPTIONS rtsp://x/cam RTSP/1.0\r\n\r\n')).toBe('');
    expect(reached).toBe(0);
    expect(relay.takeRefusal()).toEqual({
      reason: expect.stringMatching(new RegExp(`127\\.0\\.0\\.2:${port(inside)} points at an internal address`)),
      hint: expect.stringContaining('RELAY_UPSTREAM_ALLOW'),
    });
  });

  it('closes on a redirect before the client sees any of it', async () => {
    const server = await serve(
      net.createServer((c) =>
        c.once('data', () => c.write('RTSP/1.0 302 Found\r\nLocation: rtsp://10.0.0.1/x\r\n\r\n')),
      ),
      '127.0.0.1',
    );
    relay = await RtspRelay.start({ origin: `rtsp://127.0.0.1:${port(server)}/cam`, policy: allow127, logger: silent });
    expect(await through('DESCRIBE rtsp://x/cam RTSP/1.0\r\n\r\n')).toBe('');
    expect(relay.takeRefusal()?.reason).toMatch(/^redirect to rtsp:\/\/10\.0\.0\.1 refused/);
  });

  it('speaks rtsps itself and verifies the certificate (a self-signed server is never relayed to)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rtsps-'));
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'],
        ...['-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`],
      ],
      { stdio: 'ignore' },
    );
    let requests = 0;
    const server = tls.createServer(
      { key: fs.readFileSync(`${dir}/k.pem`), cert: fs.readFileSync(`${dir}/c.pem`) },
      (c) =>
        c.once('data', () => {
          requests++;
          c.end('RTSP/1.0 200 OK\r\n\r\n');
        }),
    );
    await serve(server, '127.0.0.1');
    fs.rmSync(dir, { recursive: true, force: true });
    relay = await RtspRelay.start({
      origin: `rtsps://127.0.0.1:${port(server)}/cam`,
      policy: allow127,
      logger: silent,
    });
    expect(await through('OPTIONS rtsp://x/cam RTSP/1.0\r\n\r\n')).toBe('');
    expect(requests).toBe(0);
  });
});
