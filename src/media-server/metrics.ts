import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { LIVE_APP, parseStreamName } from '../channels/urls.js';
import type { NmsContext } from './nms.js';

/**
 * Media-side metrics: viewers per channel and protocol, bitrate published per stream, HLS requests; and the media
 * process's own (prom-client's defaults): event-loop lag in seconds (`nodejs_eventloop_lag_seconds`, and
 * `_p50/_p90/_p99/_max…` of the delays since the previous scrape: every viewer waits on this one loop), `process_*` CPU
 * and memory, heap and GC.
 */
export class MediaMetrics {
  readonly registry = new Registry();
  private readonly hls: Counter<'channel' | 'kind'>;
  private readonly last = new Map<string, { bytes: number; at: number }>();

  constructor(context: NmsContext) {
    collectDefaultMetrics({ register: this.registry });
    const viewers = new Gauge({
      name: 'relay_channel_viewers',
      help: 'Connected viewers per channel and protocol (rtmp; flv counts HTTP-FLV and WS-FLV)',
      labelNames: ['channel', 'protocol'],
      registers: [this.registry],
    });
    const last = this.last;
    new Gauge({
      name: 'relay_stream_bitrate_kbps',
      help: 'Bitrate published into the media server per stream (tier), since the previous scrape',
      labelNames: ['channel', 'stream'],
      registers: [this.registry],
      collect() {
        this.reset();
        viewers.reset();
        const now = Date.now();
        for (const [streamPath, b] of context.broadcasts) {
          if (!streamPath.startsWith(`/${LIVE_APP}/`)) continue;
          const stream = streamPath.slice(LIVE_APP.length + 2);
          const id = parseStreamName(stream)?.channelId;
          if (!id) continue;
          const byProtocol = new Map<string, number>([
            ['rtmp', 0],
            ['flv', 0],
          ]);
          for (const s of b.subscribers.values()) byProtocol.set(s.protocol, (byProtocol.get(s.protocol) ?? 0) + 1);
          for (const [protocol, n] of byProtocol) viewers.inc({ channel: id, protocol }, n);
          const p = b.publisher;
          if (!p) continue;
          const prev = last.get(p.id);
          last.set(p.id, { bytes: p.inBytes, at: now });
          if (prev && now > prev.at)
            this.set({ channel: id, stream }, Math.round(((p.inBytes - prev.bytes) * 8) / (now - prev.at)));
        }
        // forget publishers that are gone (each restart of a channel's ffmpeg is a new session)
        for (const [sessionId, v] of last) if (v.at !== now) last.delete(sessionId);
      },
    });
    this.hls = new Counter({
      name: 'relay_hls_requests_total',
      help: 'HLS requests served per channel (playlists and segments)',
      labelNames: ['channel', 'kind'],
      registers: [this.registry],
    });
  }

  /** Counts an HLS request (HLS viewers are not connections; their request rate is what there is to count). */
  hlsRequest(channelId: string, playlist: boolean): void {
    this.hls.inc({ channel: channelId, kind: playlist ? 'playlist' : 'segment' });
  }
}
