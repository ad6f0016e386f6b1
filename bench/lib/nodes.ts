/** The media nodes of the bench's stack (README "Scaling out"): its own one, more started beside it, their beats. */
import fs from 'node:fs';
import path from 'node:path';
import type { NodeBeat } from '../../src/cluster/nodes.js';
import { eventually, type Proc } from '../../test/helpers/stack.js';
import { mediaRoot, type Bench } from './context.js';

/** A media node process of the stack. */
export interface BenchNode {
  /** Its RTMP port (names it in the beats: node ids end in `:<rtmp port>`). */
  rtmpPort: number;
  httpPort: number;
  pid: number;
  /** An extra node's process (the stack's own node has none here). */
  proc: Proc | null;
}

/** The fresh beats of the stack's media nodes, by RTMP port. */
export async function beatsByPort(b: Bench): Promise<Map<number, NodeBeat>> {
  const all = Object.values(await b.stack.redis.hgetall(`${b.stack.prefix}:media-nodes`)).map(
    (raw) => JSON.parse(raw) as NodeBeat,
  );
  return new Map(all.filter((x) => Date.now() - x.seenAt < 6000 && x.rtmpPort).map((x) => [x.rtmpPort!, x]));
}

/** The node a channel record names, as the RTMP port in its id (`host:port`); null without one. */
export const portOfNode = (node: string | undefined): number | null =>
  node ? Number(/:(\d+)$/.exec(node)?.[1] ?? NaN) || null : null;

/**
 * The stack's media node and `count - 1` more started beside it (same settings but `extraEnv`, ports of their own);
 * resolves once each one beats.
 */
export async function withNodes(b: Bench, count: number, extraEnv: Record<string, string> = {}): Promise<BenchNode[]> {
  const { stack } = b;
  const nodes: BenchNode[] = [
    { rtmpPort: stack.rtmpPort, httpPort: stack.httpPort, pid: mediaRoot(stack), proc: null },
  ];
  for (let i = 1; i < count; i++) {
    const n = await stack.startMediaNode(extraEnv);
    nodes.push({ rtmpPort: n.rtmpPort, httpPort: n.httpPort, pid: n.proc.child.pid!, proc: n.proc });
  }
  await eventually(async () => {
    const beats = await beatsByPort(b);
    return nodes.every((n) => beats.has(n.rtmpPort)) || null;
  }, 15_000);
  return nodes;
}

/** Stops the extra nodes (SIGTERM: their beats go with them). */
export async function stopExtraNodes(nodes: readonly BenchNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.proc?.stop()));
}

/** The argv of each channel's relay ffmpeg (read from /proc once), for the channels of `ids` that have one. */
export function relayArgvs(ids: readonly string[]): Map<string, string[]> {
  const want = new Set(ids);
  const out = new Map<string, string[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue;
    }
    if (!path.basename(argv[0] ?? '').includes('ffmpeg')) continue;
    for (const id of argv.join(' ').match(/ch_[0-9a-f]{20}/g) ?? []) if (want.has(id)) out.set(id, argv);
  }
  return out;
}
