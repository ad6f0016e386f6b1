/**
 * Typed client of the relay's control-plane API, mirroring the seed's SDK calls: `startPushStream` and
 * `stopPushStream`, plus channel status, rooms, watermarks and recordings. Every refusal rejects with RelayApiError
 * carrying the SPEC code, message and hint.
 */
import type { ChannelState, Encode, PlayUrl, RateType, RecordFileType } from '../channels/types.js';
import type { StartResult, StopResult } from '../channels/service.js';
import type { ChannelView } from '../channels/view.js';
import type { PushTargetView } from '../targets/control.js';
import type { MixCanvas, MixLayoutKind, MixMember } from '../mix/layout.js';

export type { ChannelState, ChannelView, Encode, PlayUrl, PushTargetView, RateType, RecordFileType };
export type { MixLayoutKind, MixMember };

/** An external destination of a push (issue 14): rtmp://, rtmps:// or srt:// with its stream key; `rateType` a tier. */
export interface PushDestination {
  url: string;
  rateType?: RateType;
}

/** A mix's canvas: size, frame rate, background colour `#rrggbb` or a registered image (a watermark id). */
export type MixCanvasOption = Omit<MixCanvas, 'backgroundImageFile'>;

/** A mix: the room, its members and how they are laid out on the canvas. */
export interface MixTarget {
  roomId: number;
  members: MixMember[];
  layout: MixLayoutKind;
  canvas: MixCanvasOption;
  /** float: the small tiles in a column at the right (default) or a row at the bottom. */
  floatPosition?: 'right' | 'bottom';
}

/** Where the relay is and which app calls it. */
export interface RelayClientOptions {
  /** Base URL of the API, e.g. http://127.0.0.1:8090. */
  baseUrl: string;
  sdkAppId: string;
  secretKey: string;
  /** Per-request timeout in ms (default 15000: a start answers within about 10 s). */
  timeoutMs?: number;
}

/** The member's upstream a push relays. */
export interface PushTarget {
  roomId: number;
  userId: string;
  /** 0 camera, 1 screen. */
  srcType: 0 | 1;
}

/** Options of a push, as the SDK has them; `encode` defaults to RTMP (5) as in the SDK. */
export interface PushOption {
  encode?: Encode;
  rateType?: RateType;
  rateTypes?: RateType[];
  record?: boolean;
  recordFileType?: RecordFileType;
  waterMark?: boolean;
  waterMarkId?: number;
  channelPassword?: string;
  channelName?: string;
  channelDesc?: string;
  sdkType?: 1 | 2 | 3;
  autoResume?: boolean;
  /** 1–5 external destinations the channel is relayed to as soon as it is live. */
  pushTargets?: PushDestination[];
}

/** What a started push answers (the seed's StreamRes): channelId, urls, recordTaskId. */
export type StreamRes = StartResult;

export type { StopResult };

/** A channel as the API shows it (the API's own type). */
export type ChannelInfo = ChannelView;

/** A refusal of the relay: the SPEC's numeric code, its message and handling hint, and the HTTP status. */
export class RelayApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly hint: string,
    readonly status: number,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'RelayApiError';
  }
}

/** The control-plane API as typed calls. */
export class RelayClient {
  private readonly auth: string;

  constructor(private readonly opts: RelayClientOptions) {
    this.auth = 'Basic ' + Buffer.from(`${opts.sdkAppId}:${opts.secretKey}`).toString('base64');
  }

  /** Starts relaying a member's upstream; resolves once media flows. */
  async startPushStream(target: PushTarget, option: PushOption = {}): Promise<StreamRes> {
    const body = await this.call('POST', '/v1/push/start', { ...target, option: { encode: 5, ...option } });
    return {
      channelId: body.channelId,
      urls: body.urls,
      ...(body.recordTaskId !== undefined ? { recordTaskId: body.recordTaskId } : {}),
    };
  }

  /** Starts a mix of a room's members (README "Mixing"); the output is a channel: stop it with stopPushStream. */
  async startMix(target: MixTarget, option: PushOption = {}): Promise<StreamRes> {
    const body = await this.call('POST', '/v1/mix/start', { ...target, option: { encode: 5, ...option } });
    return {
      channelId: body.channelId,
      urls: body.urls,
      ...(body.recordTaskId !== undefined ? { recordTaskId: body.recordTaskId } : {}),
    };
  }

  /** Changes a running mix's members and layout (viewers stay connected); resolves with the layout's version. */
  async updateMixLayout(
    channelId: string,
    layout: Pick<MixTarget, 'members' | 'layout' | 'floatPosition'>,
  ): Promise<{ version: number }> {
    const body = await this.call('POST', `/v1/mix/${encodeURIComponent(channelId)}/layout`, layout);
    return { version: body.version };
  }

  /** Stops channels; resolves with each one's result (0 stopped, 40000412 already stopped, 50002 unknown). */
  async stopPushStream(channelIds: string[]): Promise<StopResult[]> {
    return (await this.call('POST', '/v1/push/stop', { channelIds })).results;
  }

  /** A channel's state, options, URLs, times, live figures and history. */
  async getChannel(channelId: string): Promise<ChannelInfo> {
    return (await this.call('GET', `/v1/push/${encodeURIComponent(channelId)}`)).channel;
  }

  /** Adds an external destination to a running channel; resolves with it (its state starts `connecting`). */
  async addPushTarget(channelId: string, target: PushDestination): Promise<PushTargetView> {
    return (await this.call('POST', `/v1/push/${encodeURIComponent(channelId)}/targets`, target)).target;
  }

  /** Removes a destination: its ffmpeg stops and the destination sees the stream end. */
  async removePushTarget(channelId: string, targetId: string): Promise<void> {
    const route = `/v1/push/${encodeURIComponent(channelId)}/targets/${encodeURIComponent(targetId)}`;
    await this.call('DELETE', route);
  }

  /** A channel's destinations with their URLs (yours only), state, bytes sent, attempts and last error. */
  async listPushTargets(channelId: string): Promise<PushTargetView[]> {
    return (await this.call('GET', `/v1/push/${encodeURIComponent(channelId)}/targets`)).targets;
  }

  /** Room ids of this app that have upstreams. */
  async listRooms(): Promise<number[]> {
    return (await this.call('GET', '/v1/rooms')).rooms;
  }

  /** A room's upstreams. */
  async getRoom(roomId: number): Promise<{ roomId: number; upstreams: Record<string, unknown>[] }> {
    const b = await this.call('GET', `/v1/rooms/${roomId}`);
    return { roomId: b.roomId, upstreams: b.upstreams };
  }

  /** Registers a URL ffmpeg can read as a member's upstream. */
  async registerUpstream(roomId: number, upstream: { userId: string; srcType: 0 | 1; url: string }): Promise<void> {
    await this.call('PUT', `/v1/rooms/${roomId}/upstreams`, upstream);
  }

  /** Removes a registered upstream. */
  async removeUpstream(roomId: number, userId: string, srcType: 0 | 1): Promise<void> {
    await this.call('DELETE', `/v1/rooms/${roomId}/upstreams/${encodeURIComponent(userId)}/${srcType}`);
  }

  /** The signed RTMP URL a member publishes to. */
  async ingestUrl(roomId: number, userId: string, srcType: 0 | 1 = 0): Promise<string> {
    return (
      await this.call('GET', `/v1/rooms/${roomId}/ingest?userId=${encodeURIComponent(userId)}&srcType=${srcType}`)
    ).publishUrl;
  }

  /** Where a member publishes over WHIP (browsers, OBS 30+): the endpoint and its bearer token. */
  async whipEndpoint(roomId: number, userId: string, srcType: 0 | 1 = 0): Promise<{ url: string; token: string }> {
    const r = await this.call(
      'GET',
      `/v1/rooms/${roomId}/ingest?userId=${encodeURIComponent(userId)}&srcType=${srcType}`,
    );
    return { url: r.whipUrl, token: r.whipToken };
  }

  /** Uploads a PNG watermark; resolves with its waterMarkId and size. */
  async uploadWatermark(
    png: Uint8Array,
    placement: { corner?: string; relativeWidth?: number; margin?: number } = {},
  ): Promise<{ waterMarkId: number; width: number; height: number }> {
    const q = new URLSearchParams(Object.entries(placement).map(([k, v]) => [k, String(v)])).toString();
    return this.call('POST', `/v1/watermarks${q ? `?${q}` : ''}`, png, 'image/png');
  }

  /** The app's watermarks. */
  async listWatermarks(): Promise<{ waterMarkId: number; width: number; height: number }[]> {
    return (await this.call('GET', '/v1/watermarks')).watermarks;
  }

  /** Deletes a watermark (refused while a running channel uses it). */
  async deleteWatermark(waterMarkId: number): Promise<void> {
    await this.call('DELETE', `/v1/watermarks/${waterMarkId}`);
  }

  /** The files of a recording task. */
  async getRecords(
    recordTaskId: number,
  ): Promise<{ name: string; format: string; bytes: number; durationMs: number; downloadUrl: string }[]> {
    return (await this.call('GET', `/v1/records/${recordTaskId}`)).files;
  }

  private async call(method: string, route: string, body?: unknown, type = 'application/json'): Promise<any> {
    const res = await fetch(this.opts.baseUrl.replace(/\/$/, '') + route, {
      method,
      headers: { authorization: this.auth, ...(body !== undefined ? { 'content-type': type } : {}) },
      ...(body !== undefined
        ? { body: body instanceof Uint8Array ? new Blob([new Uint8Array(body)]) : JSON.stringify(body) }
        : {}),
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 15000),
    });
    const json = (await res.json().catch(() => null)) as Record<string, any> | null;
    if (!json || json.code !== 0) {
      const { code = res.status, message = res.statusText, hint = '', ...details } = json ?? {};
      throw new RelayApiError(Number(code), String(message), String(hint), res.status, details);
    }
    return json;
  }
}
