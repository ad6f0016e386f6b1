import type { RelayConfig } from '../config/index.js';
import { EgressGateway } from '../egress/gateway.js';
import type { Refusal } from '../egress/refusals.js';
import { RtspRelay } from '../egress/rtsp-relay.js';
import type { RelayPlan } from '../media/ffmpeg/args.js';
import type { SourceSpec } from '../media/ffmpeg/input.js';
import { demuxerOptions, hlsDemuxerOptions, hlsRules, rtspTimeoutOption } from '../media/ffmpeg/input.js';
import { HTTP_PROTOCOLS, RTSP_PROTOCOLS } from '../rooms/model.js';
import type { Logger } from '../log.js';

/** A run's failure for a refusal of its egress: 50002, the reason and the policy's hint. */
export interface EgressFailure {
  message: string;
  hint: string;
}

/** The egress of one run of a channel: its plan as ffmpeg runs it, ffmpeg's environment, and the refusals. */
export interface RunEgress {
  /** The plan with each http(s) source read through the run's gateway and each rtsp(s) source through its relay. */
  plan: RelayPlan;
  /** The same for another plan of the run (each ffmpeg attempt has its own, with fresh run tokens). */
  apply(plan: RelayPlan): RelayPlan;
  /** Environment of the run's ffmpeg: `http_proxy` (every plain-HTTP request to the gateway), `no_proxy` emptied. */
  env: Readonly<Record<string, string>>;
  /** The failure of the latest request the egress refused since the last take, or null. */
  takeRefusal(): EgressFailure | null;
  /** Stops the gateway and relays (idempotent). */
  close(): Promise<void>;
}

const HTTP_URL = /^https?:\/\//i;
const RTSP_URL = /^rtsps?:\/\//i;

/**
 * Prepares a run's egress (README "Security"). An http(s) source is read through the run's EgressGateway: ffmpeg gets
 * its URL in gateway form, speaks plain HTTP to 127.0.0.1 only (protocols `http,tcp,crypto`), and sends any other
 * HTTP request there too (`-http_proxy`, `http_proxy`); a source whose path ends in .m3u8/.m3u is read as HLS with
 * the segment extension rules this ffmpeg has. An rtsp(s) source is read through an RtspRelay of its own over TCP
 * (protocols `rtsp,tcp`). Each applies the egress policy per request or connection and connects to the address it
 * checked. Other sources (the relay's own ingest, rtmp, srt, files) pass unchanged.
 */
export async function runEgress(
  plan: RelayPlan,
  config: Pick<RelayConfig, 'egress' | 'ffmpegPath'>,
  logger: Logger,
): Promise<RunEgress> {
  const gateway = plan.sources.some((s) => HTTP_URL.test(s.url))
    ? await EgressGateway.start({ policy: config.egress, logger })
    : null;
  const relays = new Map<string, RtspRelay>();
  const closeAll = async () => {
    await gateway?.close();
    await Promise.all([...relays.values()].map((r) => r.close()));
  };
  try {
    for (const s of plan.sources)
      if (RTSP_URL.test(s.url) && !relays.has(s.url))
        relays.set(s.url, await RtspRelay.start({ origin: s.url, policy: config.egress, logger }));
  } catch (e) {
    await closeAll();
    throw e;
  }
  const rules = gateway ? hlsRules(await hlsDemuxerOptions(config.ffmpegPath)) : {};
  const timeoutOption = relays.size ? rtspTimeoutOption(await demuxerOptions(config.ffmpegPath, 'rtsp')) : undefined;
  const source = (s: SourceSpec): SourceSpec => {
    const relay = relays.get(s.url);
    if (relay)
      return { ...s, url: relay.url, protocolWhitelist: RTSP_PROTOCOLS, rtsp: timeoutOption ? { timeoutOption } : {} };
    if (!gateway || !HTTP_URL.test(s.url)) return s;
    const hls = /\.m3u8?$/i.test(new URL(s.url).pathname);
    return {
      ...s,
      url: gateway.gatewayUrl(s.url),
      protocolWhitelist: HTTP_PROTOCOLS,
      httpProxy: gateway.url,
      ...(hls ? { hls: rules } : {}),
    };
  };
  const apply = (p: RelayPlan): RelayPlan => ({ ...p, sources: p.sources.map(source) });
  const egresses = [...(gateway ? [gateway] : []), ...relays.values()];
  let closed: Promise<void> | null = null;
  return {
    plan: apply(plan),
    apply,
    env: gateway ? { http_proxy: gateway.url, no_proxy: '', NO_PROXY: '' } : {},
    takeRefusal: () => {
      let latest: Refusal | null = null;
      for (const e of egresses) latest = e.takeRefusal() ?? latest;
      return latest && { message: `upstream refused by the egress policy: ${latest.reason}`, hint: latest.hint };
    },
    close: () => (closed ??= closeAll()),
  };
}
