/**
 * `npm run cli -- play <url>` (`relay play` once installed): plays any play URL the relay hands out (RTMP, HTTP-FLV,
 * WS-FLV, HLS media or master playlists) or the same kinds from another server, with ffmpeg, and prints what a viewer
 * gets: one line per second (state, size, fps, video and audio kbit/s, A/V drift, latency, stalls, decode errors; HLS:
 * variant, segment, fetch time) and a summary. `--json` prints each second and the summary as JSON lines. The exit
 * code says how it went: PLAY_EXIT (0 played the whole time, 1 refused, 2 bad usage, 5 never started, 6 stalled,
 * 7 ended by the server). No credentials: play URLs are public (a channel password goes in `--pwd`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { locateFfmpeg, onPath } from '../media/ffmpeg/locate.js';
import { probePlayback } from '../player/probe.js';
import { tracked } from '../player/processes.js';
import { redactParams } from '../log.js';
import { protocolOf, withPassword } from '../player/sources.js';
import { PLAY_EXIT, statsLine, summaryText } from '../player/stats.js';
import { parseArgs } from './admin.js';
import { callerPath, EXIT, type CommandHelp } from './usage.js';

export const PLAY_HELP: CommandHelp = {
  usage: [
    'play <url> [--pwd P] [--for 30s] [--json] [--snapshot out.png] [--display] [--variant best|lowest|N|720p|r10] [--start-timeout 15s] [--relay-http URL]',
  ],
  about:
    'watch a play URL (rtmp://, http(s)://….flv, ws(s)://….flv, ….m3u8) as a viewer would, decoding it with ffmpeg: a line each second ' +
    '(size, fps, kbit/s, A/V drift, latency behind live, stalls, decode errors, HLS variant and segment fetch) and a summary; ' +
    '--relay-http gives the relay media server HTTP origin for the latency of RTMP URLs; no credentials needed',
  settings: ['FFMPEG_PATH  the ffmpeg to decode with (default: a system ffmpeg >= 5 on PATH, else the bundled one)'],
  exitCodes:
    'exit codes: 0 played the whole time, 1 refused (401/403/404 with the reason), 2 bad usage, 5 never started, 6 stalled, 7 ended by the server',
};

/** A duration as the command line gives it: `30s`, `500ms`, `2m`, `1h`, or a number of seconds; null when malformed. */
export function parseDuration(v: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) return null;
  const n = Number(m[1]);
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']);
}

const STRINGS = ['pwd', 'for', 'snapshot', 'variant', 'start-timeout', 'relay-http'];

/** Opens a window playing the URL with ffplay; a line on stderr says why not when it cannot. */
function openDisplay(url: string, ffmpegPath: string): ChildProcess | null {
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    console.error('--display: no display here (DISPLAY and WAYLAND_DISPLAY are unset): measuring without a window');
    return null;
  }
  const beside = path.join(path.dirname(ffmpegPath), 'ffplay');
  const ffplay = fs.existsSync(beside) ? beside : onPath('ffplay', process.env.PATH);
  if (!ffplay) {
    console.error(
      '--display: ffplay not found beside ffmpeg or on PATH (Debian: apt-get install ffmpeg): measuring without a window',
    );
    return null;
  }
  // killed with this process however it ends; its own complaints (audio devices, a display it cannot open) are kept
  // and only its last line said, when it gives up early
  const p = tracked(
    spawn(ffplay, ['-hide_banner', '-loglevel', 'error', '-window_title', `relay play ${redactParams(url)}`, url], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let last = '';
  p.stderr!.on('data', (d: Buffer) => (last = d.toString().trim().split('\n').at(-1) ?? last));
  const started = Date.now();
  p.on('error', (e) => console.error(`--display: ffplay failed: ${e.message}`));
  p.on('exit', (code) => {
    if (code && Date.now() - started < 5000)
      console.error(
        `--display: ffplay could not show the stream (exit ${code}${last ? `: ${last}` : ''}): measuring on`,
      );
  });
  return p;
}

/** Runs `play`; resolves with the exit code. */
export async function play(argv: readonly string[]): Promise<number> {
  const { words, flags } = parseArgs(argv, ['json', 'display']);
  const url = words[1];
  const bad = (why: string) => {
    console.error(`${why}\n\nusage: cli ${PLAY_HELP.usage[0]}`);
    return EXIT.usage;
  };
  const swallowed = Object.entries(flags).find(([, v]) => typeof v === 'string' && v.includes('://'));
  if (!url && swallowed)
    return bad(`--${swallowed[0]} took the URL as its value: give it a value, or put the URL first`);
  if (!url || words.length > 2) return bad('play needs one URL');
  if (!protocolOf(url)) return bad(`not a play URL: ${url} (rtmp://, http(s)://….flv, ws(s)://….flv or ….m3u8)`);
  for (const k of STRINGS) if (flags[k] === true) return bad(`--${k} needs a value`);
  const unknown = Object.keys(flags).filter((k) => !STRINGS.includes(k) && k !== 'json' && k !== 'display');
  if (unknown.length) return bad(`unknown option --${unknown[0]}`);
  const str = (k: string) => (typeof flags[k] === 'string' ? (flags[k] as string) : undefined);
  const durationMs = str('for') !== undefined ? parseDuration(str('for')!) : undefined;
  if (durationMs === null || durationMs === 0) return bad('--for takes a duration above 0: 30s, 500ms, 2m');
  const startTimeoutMs = str('start-timeout') !== undefined ? parseDuration(str('start-timeout')!) : undefined;
  if (startTimeoutMs === null || startTimeoutMs === 0) return bad('--start-timeout takes a duration above 0: 15s');
  if (str('variant') !== undefined && protocolOf(url) !== 'hls')
    return bad('--variant chooses a variant of an HLS master playlist (an .m3u8 URL)');
  const snapshotDir = str('snapshot') !== undefined ? path.dirname(callerPath(str('snapshot')!)) : null;
  if (snapshotDir !== null && !fs.existsSync(snapshotDir)) return bad(`--snapshot: no folder ${snapshotDir}`);
  const stop = new AbortController();
  const json = !!flags.json;
  // a reader that goes away (| head) ends the playback quietly, as other command-line tools do
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') stop.abort();
  });
  const ffmpegPath = locateFfmpeg().path;
  // the first Ctrl-C ends the playback with its summary; a second one (a snapshot being written) ends the process
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const window = flags.display ? openDisplay(withPassword(url, str('pwd')), ffmpegPath) : null;
  const snapshot = str('snapshot') !== undefined ? callerPath(str('snapshot')!) : undefined;
  const probe = probePlayback(url, {
    ...(str('pwd') !== undefined ? { pwd: str('pwd') } : {}),
    ...(durationMs !== undefined ? { durationMs } : {}),
    ...(startTimeoutMs !== undefined ? { startTimeoutMs } : {}),
    ...(str('variant') !== undefined ? { variant: str('variant') } : {}),
    ...(snapshot !== undefined ? { snapshot } : {}),
    ...(str('relay-http') !== undefined ? { relayHttp: str('relay-http') } : {}),
    ffmpegPath,
    signal: stop.signal,
  });
  const print = (line: string) => process.stdout.write(`${line}\n`);
  for await (const s of probe) print(json ? JSON.stringify(s) : statsLine(s));
  const summary = await probe.summary;
  window?.kill('SIGTERM');
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // a variant the master playlist does not have is a usage error, found once the playlist is read
  const code = summary.outcome === 'refused' && summary.status === 0 ? EXIT.usage : summary.exitCode;
  if (json) print(JSON.stringify({ ...summary, exitCode: code }));
  else if (summary.exitCode === PLAY_EXIT.played) print(summaryText(summary));
  else console.error(summaryText({ ...summary, exitCode: code }));
  return code;
}
