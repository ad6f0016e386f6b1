/**
 * `--help` of the process entry points (`npm run relay|api|worker|media -- --help`, `node cmd/<name>.js --help` in the
 * image): what the process runs and the settings it reads, printed before anything starts.
 */
import { DEFAULTS } from '../config/index.js';
import { CLUSTER_DEFAULTS } from '../config/cluster.js';

/** The entry points of the relay. */
export type EntryName = 'relay' | 'api' | 'worker' | 'media';

const ABOUT: Record<EntryName, string> = {
  relay:
    'The whole relay: one media node per core (RELAY_MEDIA_NODES; node i on RELAY_RTMP_PORT+i, RELAY_HTTP_PORT+i),\n' +
    'the control-plane API and one worker, with the sample room 1001\n' +
    '(alice: camera; bob: camera + screen) publishing fixtures into the built-in ingest. Prints READY {json} with\n' +
    "api, sdkAppId, secretKey and authorization (the development app's), ingest, upstreams and adminAuthorization.\n" +
    'Starts a private Redis when none answers at REDIS_URL and redis-server is on PATH. Ctrl-C or SIGTERM stops it all.',
  api: 'The control-plane API (RELAY_API_PORT). Prints "API READY <url>". Registers the development app 1400000001 only when RELAY_DEV_APP_SECRET is set.',
  worker:
    'A worker: takes push jobs from the queue and runs one ffmpeg per channel, publishing to the media server at RELAY_MEDIA_INTERNAL_HOST. Prints "WORKER READY <id>".',
  media:
    'The media server: RTMP ingest and playback (RELAY_RTMP_PORT), HTTP-FLV, WS-FLV, HLS and the web player /player/ (RELAY_HTTP_PORT). Prints "MEDIA READY ...".',
};

/** Settings beyond DEFAULTS (no plain default value), with what their default is. */
const OTHERS: [string, string][] = [
  ['RELAY_MEDIA_INTERNAL_HOST', '127.0.0.1'],
  ['FFMPEG_PATH', 'a system ffmpeg >= 5 on PATH, else the bundled 4.1'],
  ['RELAY_ADMIN_TOKEN', '- (relay: random, printed); >= 16 characters; admin API off without it'],
  ['RELAY_DEV_APP_SECRET', 'random (relay); api: the dev app only when set'],
  ['RELAY_FILE_UPSTREAM_DIR', './fixtures'],
  ['RELAY_UPSTREAM_ALLOW', '- (internal hosts/networks tenants may reach)'],
  ['RELAY_WORKER_CAPACITY', "the machine's cores"],
  ['RELAY_COST_*', 'core costs of COPY, 550, 900, ORIGINAL_ENCODE, WATERMARK (measured)'],
  ['RELAY_NODE_ID', 'media: host:RELAY_RTMP_PORT (its name in the cluster)'],
  ['RELAY_NODE_HOST', "media: - (host workers reach this node at; else each worker's RELAY_MEDIA_INTERNAL_HOST)"],
  ['RELAY_NODE_PUBLIC_HOST', 'media: RELAY_NODE_HOST, else RELAY_PUBLIC_HOST (host players are sent to)'],
  ['RELAY_NODE_MAX_CHANNELS', `${CLUSTER_DEFAULTS.RELAY_NODE_MAX_CHANNELS} (channels one media node takes)`],
  ['RELAY_MEDIA_NODES', "relay: the machine's cores (media nodes, on consecutive ports)"],
];

/** The help of an entry point: what it runs, how to start it, every setting with its default. */
export function entryHelp(name: EntryName): string {
  const rows: [string, string][] = [
    ...Object.entries(DEFAULTS).map(([k, v]): [string, string] => [
      k,
      name === 'relay' && k === 'RELAY_LOG_LEVEL' ? 'warn (relay)' : String(v),
    ]),
    ...OTHERS,
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return [
    `usage: npm run ${name} [-- --help]      (in the image: node cmd/${name}.js)`,
    '',
    ABOUT[name],
    '',
    'settings (environment; README "Configuration" says what each means):',
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    '',
    `exit codes: 0 stopped cleanly, 1 failed, 2 invalid setting, 3 Redis unreachable${name === 'relay' ? ', 4 another all-in-one relay runs on RELAY_REDIS_PREFIX' : ''}`,
  ].join('\n');
}

/** Whether a process's arguments ask for help. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h') || argv[0] === 'help';
}
