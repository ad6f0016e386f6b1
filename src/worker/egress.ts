import type { RelayConfig } from '../config/index.js';
import { EgressProxy } from '../egress/proxy.js';
import type { RelayPlan } from '../media/ffmpeg/args.js';
import { hlsDemuxerOptions, hlsRules } from '../media/ffmpeg/input.js';
import { HTTP_PROTOCOLS } from '../rooms/model.js';
import type { Logger } from '../log.js';

/** The egress of one run of a channel: its plan as ffmpeg runs it, ffmpeg's environment, and its proxy's refusals. */
export interface RunEgress {
  /** The plan with each http(s) source sent through the egress proxy, its protocols and HLS rules set. */
  plan: RelayPlan;
  /** The same for another plan of the run (each ffmpeg attempt has its own, with fresh run tokens). */
  apply(plan: RelayPlan): RelayPlan;
  /** Environment of the run's ffmpeg: `http_proxy` (HTTPS only goes through a proxy by it), `no_proxy` emptied. */
  env: Readonly<Record<string, string>>;
  /** The failure message of the latest request the egress policy refused since the last take, or null. */
  takeRefusal(): string | null;
  /** Stops the proxy (idempotent). */
  close(): Promise<void>;
}

const HTTP_URL = /^https?:\/\//i;

/**
 * Prepares a run's egress: an ffmpeg that reads an http(s) source makes every HTTP request (the URL, each playlist,
 * segment and key, every redirect) through an EgressProxy of its own, which applies the egress policy per request and connects
 * to the address it checked; its protocols are the HTTP set (no file, concat, subfile, data), and a source whose path
 * ends in .m3u8/.m3u is read as HLS with the segment extension rules this ffmpeg has. Other sources pass unchanged.
 */
export async function runEgress(
  plan: RelayPlan,
  config: Pick<RelayConfig, 'egress' | 'ffmpegPath'>,
  logger: Logger,
): Promise<RunEgress> {
  if (!plan.sources.some((s) => HTTP_URL.test(s.url)))
    return { plan, apply: (p) => p, env: {}, takeRefusal: () => null, close: async () => undefined };
  const proxy = await EgressProxy.start({ policy: config.egress, logger });
  const rules = hlsRules(await hlsDemuxerOptions(config.ffmpegPath));
  const apply = (p: RelayPlan): RelayPlan => ({
    ...p,
    sources: p.sources.map((s) => {
      if (!HTTP_URL.test(s.url)) return s;
      const hls = /\.m3u8?$/i.test(new URL(s.url).pathname);
      return { ...s, protocolWhitelist: HTTP_PROTOCOLS, httpProxy: proxy.url, ...(hls ? { hls: rules } : {}) };
    }),
  });
  let closed: Promise<void> | null = null;
  return {
    plan: apply(plan),
    apply,
    env: { http_proxy: proxy.url, no_proxy: '', NO_PROXY: '' },
    takeRefusal: () => {
      const reason = proxy.takeRefusal();
      return reason && `upstream refused by the egress policy: ${reason}`;
    },
    close: () => (closed ??= proxy.close()),
  };
}
