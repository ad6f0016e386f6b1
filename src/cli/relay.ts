/**
 * The control plane's CLI over RelayClient: `npm run cli -- <command>`.
 *
 *   push start --room R --user U [--src 0|1] [--encode 1-6] [--rate 0,10,20] [--record] [--password P] [--name N] [--auto-resume]
 *   push stop <channelId...>
 *   push status <channelId> [--follow]        --follow prints a live line (state, fps, speed, bitrate, viewers) each second
 *   rooms [roomId]
 *   ingest --room R --user U [--src 0|1]      where a member publishes: RTMP URL, WHIP URL and bearer token (OBS)
 *   records <recordTaskId>
 *   play <url> [--pwd P] [--for 30s] [--json] [--snapshot f.png] [--display]   watch a play URL, with its figures
 *   watermarks [list] | watermarks upload <file.png> [--corner C] [--width 0.15] [--margin 0.02] | watermarks delete <id>
 *   accounts ...                              the admin CLI (npm run admin)
 *
 * RELAY_API_URL (default http://127.0.0.1:8090), RELAY_SDK_APP_ID and RELAY_SECRET_KEY say where and as which app.
 * Tables by default, `--json` for scripts; `--help` (or `help [command]`) needs no credentials; local paths are relative
 * to the caller's folder. Exit codes: EXIT in usage.ts (0 done, 1 refused, 2 bad usage, 3 unreachable, 4 local file).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RelayApiError, RelayClient, type ChannelInfo, type PushOption } from '../client/index.js';
import { main as admin, parseArgs, table } from './admin.js';
import { RATE_TYPES } from '../channels/types.js';
import { play, PLAY_HELP } from './play.js';
import { EXIT, helpText, LocalFileError, printHelp, readLocalFile, type ToolHelp } from './usage.js';

const BOOLEANS = ['json', 'follow', 'record', 'auto-resume'];

/** The control-plane CLI's help: its commands and settings. */
export const CLI_HELP: ToolHelp = {
  program: 'cli',
  about: "The relay's control-plane CLI (as one app): npm run cli -- <command>",
  commands: {
    push: {
      usage: [
        'push start --room R --user U [--src 0|1] [--encode 1-6] [--rate 0,10,20] [--record] [--password P] [--name N] [--auto-resume]',
        'push stop <channelId...>',
        'push status <channelId> [--follow]',
      ],
      about:
        'start a bypass channel of a room member (src 0 camera, 1 screen; encode 1 HLS 2 FLV 3 HLS+FLV 4 RAW 5 RTMP 6 HLS+RTMP; rate 0 original, 10 550 kbit/s, 20 900 kbit/s), stop channels, show one (--follow: a live line each second)',
    },
    targets: {
      usage: [
        'targets <channelId>',
        'targets add <channelId> <url> [--rate 0|10|20]',
        'targets remove <channelId> <id>',
      ],
      about: "a channel's push targets (rtmp://, rtmps://, srt:// destinations with their state); add or remove one",
    },
    play: PLAY_HELP,
    rooms: { usage: ['rooms [roomId]'], about: "the app's rooms, or one room's upstreams" },
    ingest: {
      usage: ['ingest --room R --user U [--src 0|1]'],
      about:
        'where a member publishes: the signed RTMP URL, and the WHIP URL with its bearer token (OBS 30+: Service WHIP, Server = URL, Bearer Token = token)',
    },
    records: { usage: ['records <recordTaskId>'], about: 'the files of a recording, with download URLs' },
    watermarks: {
      usage: [
        'watermarks [list]',
        'watermarks upload <file.png> [--corner top-left|top-right|bottom-left|bottom-right] [--width 0.15] [--margin 0.02]',
        'watermarks delete <waterMarkId>',
      ],
      about: "the app's watermark images; upload a PNG (its path is relative to your current folder); delete one",
    },
    accounts: {
      usage: ['accounts ...', 'apps ...'],
      about: 'the admin CLI (npm run admin -- help; RELAY_ADMIN_TOKEN)',
    },
  },
  settings: [
    'RELAY_API_URL     the relay API (default http://127.0.0.1:8090)',
    "RELAY_SDK_APP_ID  the app's id (npm run relay prints the development app's as sdkAppId)",
    "RELAY_SECRET_KEY  the app's secret key (npm run relay prints it as secretKey)",
  ],
};

class Usage extends Error {}

function num(v: string | true | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+(\.\d+)?$/.test(v)) throw new Usage(`--${name} needs a number`);
  return Number(v);
}

/** The start option a `push start` line asks for. */
export function pushOptionOf(flags: Record<string, string | true>): PushOption {
  const rate = typeof flags.rate === 'string' ? flags.rate.split(',').map((x) => Number(x)) : undefined;
  if (rate && rate.some((r) => !(RATE_TYPES as readonly number[]).includes(r)))
    throw new Usage(`--rate takes ${RATE_TYPES.join(', ')}, comma separated`);
  return {
    ...(flags.encode !== undefined ? { encode: num(flags.encode, 'encode') as PushOption['encode'] } : {}),
    ...(rate ? (rate.length === 1 ? { rateType: rate[0] as 0 } : { rateTypes: rate as PushOption['rateTypes'] }) : {}),
    ...(flags.record ? { record: true } : {}),
    ...(typeof flags.password === 'string' ? { channelPassword: flags.password } : {}),
    ...(typeof flags.name === 'string' ? { channelName: flags.name } : {}),
    ...(flags['auto-resume'] ? { autoResume: true } : {}),
  };
}

/** The one-line live view of a channel for `push status --follow`. */
export function progressLine(
  ch: Pick<ChannelInfo, 'state' | 'stats' | 'restarts'>,
  media: { viewers?: number; bitrateKbps?: number } | null,
): string {
  const s = ch.stats;
  return (
    `${new Date().toISOString().slice(11, 19)}  ${ch.state.padEnd(11)} fps ${(s?.fps ?? 0).toFixed(1).padStart(5)}  speed ${(s?.speed ?? 0).toFixed(2)}x  ` +
    `bitrate ${String(media?.bitrateKbps ?? '-').padStart(5)} kbit/s  viewers ${media?.viewers ?? '-'}  restarts ${ch.restarts}`
  );
}

async function mediaStatus(ch: ChannelInfo): Promise<{ viewers?: number; bitrateKbps?: number } | null> {
  const http = ch.urls.find((u) => u.playUrl.startsWith('http'));
  if (!http) return null;
  try {
    return (await (await fetch(`${new URL(http.playUrl).origin}/status/${ch.channelId}`)).json()) as {
      viewers?: number;
      bitrateKbps?: number;
    };
  } catch {
    return null;
  }
}

async function run(client: RelayClient, words: string[], flags: Record<string, string | true>): Promise<unknown> {
  const [noun, verb, ...rest] = words;
  const json = !!flags.json;
  const out = (value: unknown, human: () => string) => console.log(json ? JSON.stringify(value, null, 2) : human());
  if (noun === 'push' && verb === 'start') {
    const roomId = num(flags.room, 'room');
    if (!roomId || typeof flags.user !== 'string') throw new Usage('push start needs --room and --user');
    const res = await client.startPushStream(
      { roomId, userId: flags.user, srcType: (num(flags.src, 'src') ?? 0) as 0 | 1 },
      pushOptionOf(flags),
    );
    return out(
      res,
      () =>
        `channel ${res.channelId}${res.recordTaskId !== undefined ? ` (recordTaskId ${res.recordTaskId})` : ''}\n` +
        table(
          res.urls.map((u) => ({
            type: { 1: 'HLS', 2: 'FLV', 5: 'RTMP' }[u.type as 1 | 2 | 5] ?? u.type,
            tier: u.rateType ?? 'master',
            url: u.playUrl,
          })),
          ['type', 'tier', 'url'],
        ),
    );
  }
  if (noun === 'push' && verb === 'stop' && rest.length) {
    const results = await client.stopPushStream(rest);
    out(results, () => table(results as unknown as Record<string, unknown>[], ['channelId', 'code', 'message']));
    if (results.some((r) => r.code !== 0))
      throw new RelayApiError(results.find((r) => r.code !== 0)!.code, 'not every channel was stopped', '', 200);
    return;
  }
  if (noun === 'push' && verb === 'status' && rest[0]) {
    const ch = await client.getChannel(rest[0]);
    if (!flags.follow)
      return out(ch, () =>
        table(
          [{ ...ch, fps: ch.stats?.fps ?? '', urls: ch.urls.length }],
          ['channelId', 'state', 'roomId', 'userId', 'fps', 'restarts', 'urls'],
        ),
      );
    for (;;) {
      const now = await client.getChannel(rest[0]);
      const media = await mediaStatus(now);
      console.log(
        json
          ? JSON.stringify({ state: now.state, stats: now.stats, restarts: now.restarts, ...media })
          : progressLine(now, media),
      );
      if (['stopped', 'failed', 'recycled'].includes(now.state)) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  if (noun === 'targets' && verb) {
    const cols = ['targetId', 'state', 'bytesSent', 'rateType', 'url', 'lastError'];
    if (verb === 'add' && rest[1]) {
      const rate = num(flags.rate, 'rate') as 0 | 10 | 20 | undefined;
      const t = await client.addPushTarget(rest[0]!, {
        url: rest[1],
        ...(rate !== undefined ? { rateType: rate } : {}),
      });
      return out(t, () => table([{ ...t }], cols));
    }
    if (verb === 'remove' && rest[1]) {
      await client.removePushTarget(rest[0]!, rest[1]);
      return out({ removed: rest[1] }, () => `removed ${rest[1]}`);
    }
    const list = await client.listPushTargets(verb);
    return out(list, () => table(list as unknown as Record<string, unknown>[], cols));
  }
  if (noun === 'rooms') {
    if (verb) {
      const room = await client.getRoom(Number(verb));
      return out(room, () => table(room.upstreams, ['userId', 'srcTypeName', 'source', 'url']));
    }
    const rooms = await client.listRooms();
    return out(rooms, () => rooms.join('\n'));
  }
  if (noun === 'ingest') {
    const room = num(flags.room, 'room');
    const src = num(flags.src, 'src') ?? 0;
    if (room === undefined || typeof flags.user !== 'string' || (src !== 0 && src !== 1))
      throw new Usage(`bad usage\n\n${helpText(CLI_HELP, 'ingest')}`);
    const rtmp = await client.ingestUrl(room, flags.user, src);
    const whip = await client.whipEndpoint(room, flags.user, src);
    const all = { publishUrl: rtmp, whipUrl: whip.url, whipToken: whip.token };
    return out(all, () => `RTMP        ${rtmp}\nWHIP URL    ${whip.url}\nWHIP token  ${whip.token}`);
  }
  if (noun === 'records' && verb) {
    const files = await client.getRecords(Number(verb));
    return out(files, () =>
      table(
        files.map((f) => ({ ...f, seconds: (f.durationMs / 1000).toFixed(1) })),
        ['name', 'format', 'bytes', 'seconds', 'downloadUrl'],
      ),
    );
  }
  if (noun === 'watermarks') {
    if (verb === 'upload' && rest[0]) {
      const wm = await client.uploadWatermark(readLocalFile(rest[0]), {
        ...(typeof flags.corner === 'string' ? { corner: flags.corner } : {}),
        ...(flags.width !== undefined ? { relativeWidth: num(flags.width, 'width')! } : {}),
        ...(flags.margin !== undefined ? { margin: num(flags.margin, 'margin')! } : {}),
      });
      return out(wm, () => `waterMarkId ${wm.waterMarkId} (${wm.width}x${wm.height})`);
    }
    if (verb === 'delete' && rest[0]) {
      await client.deleteWatermark(Number(rest[0]));
      return out({ code: 0 }, () => 'deleted');
    }
    if (!verb || verb === 'list') {
      const list = await client.listWatermarks();
      return out(list, () =>
        table(list as unknown as Record<string, unknown>[], ['waterMarkId', 'width', 'height', 'bytes']),
      );
    }
  }
  throw new Usage(`bad usage\n\n${helpText(CLI_HELP, noun && CLI_HELP.commands[noun] ? noun : '')}`);
}

/** Runs one CLI command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'accounts' || argv[0] === 'apps') {
    return admin(argv);
  }
  const help = printHelp(CLI_HELP, argv);
  if (help !== null) return help;
  if (argv[0] === 'play') return play(argv);
  const { words, flags } = parseArgs(argv, BOOLEANS);
  const sdkAppId = process.env.RELAY_SDK_APP_ID;
  const secretKey = process.env.RELAY_SECRET_KEY;
  if (!sdkAppId || !secretKey) {
    console.error(
      "set RELAY_SDK_APP_ID and RELAY_SECRET_KEY (npm run relay prints the development app's as sdkAppId and secretKey)",
    );
    return EXIT.usage;
  }
  const client = new RelayClient({
    baseUrl: process.env.RELAY_API_URL ?? 'http://127.0.0.1:8090',
    sdkAppId,
    secretKey,
  });
  try {
    await run(client, words, flags);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof Usage) {
      console.error(e.message);
      return EXIT.usage;
    }
    if (e instanceof LocalFileError) {
      console.error(e.message);
      return EXIT.localFile;
    }
    if (e instanceof RelayApiError) {
      console.error(`refused: ${e.code} ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
      return EXIT.refused;
    }
    console.error(`cannot reach the relay: ${(e as Error).message}`);
    return EXIT.unreachable;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      console.error(e.message);
      process.exit(1);
    },
  );
}
