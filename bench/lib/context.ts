/** What every scenario gets: the stack under test, the run's settings, and the control-plane calls it makes. */
import { sleep, type Stack } from '../../test/helpers/stack.js';

export interface Bench {
  stack: Stack;
  /** CI form: a few seconds per scenario. */
  short: boolean;
  /** Length of a CPU window, s. */
  seconds: number;
  /** How many times a noisy scenario is repeated (medians are reported). */
  runs: number;
  log(line: string): void;
}

export { sleep };

/** pids of the stack's live processes (media server, API, workers; their ffmpegs are descendants). */
export const stackRoots = (stack: Stack): number[] =>
  stack.procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null).map((p) => p.child.pid!);
export const mediaRoot = (stack: Stack): number => stack.procs.find((p) => p.name === 'media')!.child.pid!;

export interface Started {
  channelId: string;
  urls: { type: number; playUrl: string; rateType?: number }[];
}

/** POST /v1/push/start, waiting out the per-member start rate limit. */
export async function startPush(stack: Stack, body: Record<string, unknown>): Promise<Started> {
  for (let attempt = 0; ; attempt++) {
    const res = await stack.request('POST', '/v1/push/start', body);
    if (res.body?.code === 0) return res.body as Started;
    if (res.body?.code === 40000500 && attempt < 5) {
      await sleep(Number(res.body.retryAfterMs ?? 1000) + 100);
      continue;
    }
    throw new Error(`push start refused: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  }
}

/** POST /v1/push/stop in batches of 50 (the API's limit per call). */
export async function stopPush(stack: Stack, ids: readonly string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 50) {
    const res = await stack.request('POST', '/v1/push/stop', { channelIds: ids.slice(i, i + 50) });
    if (res.body?.code !== 0) throw new Error(`push stop failed: ${JSON.stringify(res.body)}`);
  }
}

/** Resolves when every channel is in `state` (read from Redis: no API load while many channels start). */
export async function allInState(
  stack: Stack,
  ids: readonly string[],
  state: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const raw = ids.length ? await stack.redis.mget(...ids.map((id) => `${stack.prefix}:channel:${id}`)) : [];
    const states = raw.map((r) => (r ? (JSON.parse(r) as { state: string }).state : 'missing'));
    const off = states.filter((s) => s !== state);
    if (!off.length) return;
    if (Date.now() > deadline)
      throw new Error(
        `${off.length} of ${ids.length} channels not ${state} after ${timeoutMs} ms: ${[...new Set(off)].join(', ')}`,
      );
    await sleep(200);
  }
}
