import { LIVE_APP, parseStreamName } from '../channels/urls.js';
import type { NodeLoad } from '../cluster/nodes.js';
import type { NmsContext } from './nms.js';

/**
 * What this media node carries (cluster/nodes.ts NodeLoad), measured between two reads: channels publishing into the
 * live application, connected viewers, bytes sent to viewers (kbit/s) and this process's CPU (cores).
 */
/** Rates are measured over at least this long. */
const MIN_WINDOW_MS = 1000;

export class NodeLoadMeter {
  private last = { at: Date.now(), cpuUs: cpuUs(), sent: new Map<string, number>() };
  /** The rates of the last window long enough to tell (a start-up's first moments are all CPU). */
  private rates = { egressKbps: 0, cpu: 0 };

  constructor(private readonly context: NmsContext) {}

  /** The load since the previous read. */
  read(): NodeLoad {
    const now = Date.now();
    const cpu = cpuUs();
    const prev = this.last;
    const elapsedMs = Math.max(1, now - prev.at);
    const channels = new Set<string>();
    let viewers = 0;
    let sentBytes = 0;
    const sent = new Map<string, number>();
    for (const [path, b] of this.context.broadcasts) {
      if (!path.startsWith(`/${LIVE_APP}/`)) continue;
      const id = parseStreamName(path.slice(LIVE_APP.length + 2))?.channelId;
      if (id && b.publisher) channels.add(id);
    }
    for (const s of this.context.sessions.values()) {
      // viewers of channels; a worker's own reads (ingest members, push targets: a run token's nonce) are not
      if (s.isPublisher || s.streamApp !== LIVE_APP || (s.streamQuery && 'nonce' in s.streamQuery)) continue;
      viewers++;
      sent.set(s.id, s.outBytes);
      sentBytes += s.outBytes - (prev.sent.get(s.id) ?? 0);
    }
    if (elapsedMs >= MIN_WINDOW_MS) {
      this.last = { at: now, cpuUs: cpu, sent };
      this.rates = {
        egressKbps: Math.round((Math.max(0, sentBytes) * 8) / elapsedMs),
        cpu: Math.round((cpu - prev.cpuUs) / elapsedMs) / 1000,
      };
    }
    return { channels: channels.size, viewers, ...this.rates };
  }
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}
