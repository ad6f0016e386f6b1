import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Query parameters and header fields whose values are secrets (S3/presigned, OAuth, API keys, SRT passphrases). */
const SECRET_PARAMS =
  /([?&](?:sig|sign|signature|token|access_token|key|apikey|api_key|secret|password|pwd|passphrase|ph|streamid|auth|txSecret|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&\s"']*/gi;
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s"']+@/gi;
/**
 * An rtmp(s) or srt URL: its origin, its application, and the rest (path after the application, query, fragment),
 * where the stream key is on most CDNs (however many segments, a `:` inside, or a query parameter of any name).
 */
const KEYED_URL = /(\b(?:rtmps?|srt):\/\/[^\s"'/?#]+)(\/[^\s"'/?#]*)?([^\s"']*)/gi;
/** The relay's own stream names, which are not secrets: `/live/ch_…[_rN]` and `/ingest/<sdkAppId>_<room>_<user>_<type>`. */
const OWN_STREAM =
  /^\/(?:live\/ch_[0-9a-f]{20}(?:_r\d{1,3})?|ingest\/\d{1,20}_\d{1,10}_[A-Za-z0-9_-]{1,32}_(?:camera|screen))$/;

// Keeps origin and application; the rest of the path becomes `/***` and the query is dropped — except for the relay's
// own stream names (their tokens are redacted as query secrets). Trailing punctuation of a sentence stays.
function redactKeyedUrl(match: string, origin: string, app = '', rest = ''): string {
  const tail = /[:,;.)\]]+$/.exec(rest)?.[0] ?? '';
  const path = /^[^?#]*/.exec(rest.slice(0, rest.length - tail.length))![0];
  if (OWN_STREAM.test(`${app}${path}`)) return match;
  return `${origin}${app}${path ? '/***' : ''}${tail}`;
}

/** Removes stream keys, signatures and passwords from a URL or a line of text (e.g. an ffmpeg command line). */
export function redact(text: string): string {
  return redactParams(text.replace(URL_USERINFO, '$1***@')).replace(KEYED_URL, redactKeyedUrl);
}

/**
 * Only the values of secret query parameters (`pwd`, `token`, `sig`…) as ***, the rest of each URL kept: for what is
 * shown to the user who gave the URL (a play URL's channel id is no secret to its viewer).
 */
export function redactParams(text: string): string {
  return text.replace(SECRET_PARAMS, '$1***');
}

/** A push target URL as shown outside its owning app's own answers (webhooks, admin views): scheme and host only. */
export function redactTargetUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#@]*@)?([^/?#]*)/i.exec(url);
  return m ? `${m[1]}${m[3]}/***` : '***';
}

/** Every rtmp(s):// or srt:// URL in a text (an ffmpeg error) cut to scheme and host: the rest may be a secret. */
const TARGET_URL_IN_TEXT = /\b(?:rtmps?|srt):\/\/[^\s"'<>]*/gi;

/** A text with each push-target-like URL in it shown as scheme and host (and port) only; trailing punctuation kept. */
export function redactTargetUrls(text: string): string {
  return text.replace(TARGET_URL_IN_TEXT, (url) => {
    const tail = /[:,;.)\]]+$/.exec(url)?.[0] ?? '';
    return redactTargetUrl(url.slice(0, url.length - tail.length)) + tail;
  });
}

/** Fields whose whole value is a secret. */
const SECRET_FIELDS = [
  'secret',
  'secretKey',
  'password',
  'channelPassword',
  'token',
  'accessToken',
  'access_token',
  'apiKey',
  'apikey',
  'api_key',
  'passphrase',
  'streamKey',
];
/** Fields that hold a URL or a command line: logged with their secrets redacted. */
const URL_FIELDS = ['url', 'upstreamUrl', 'cmd'];

function censor(value: unknown, path: string[]): unknown {
  const field = path[path.length - 1] ?? '';
  if (URL_FIELDS.includes(field)) return typeof value === 'string' ? redact(value) : value;
  return '***';
}

/** The process logger: JSON lines, secrets redacted by field name and inside URLs. */
export function createLogger(level: string, name: string, destination?: DestinationStream): Logger {
  const fields = [...SECRET_FIELDS, ...URL_FIELDS];
  const paths = [
    'authorization',
    '*.authorization',
    'req.headers.authorization',
    'headers.authorization',
    'option.channelPassword',
    '*.option.channelPassword',
    ...fields.flatMap((f) => [f, `*.${f}`]),
  ];
  return pino({ name, level, redact: { paths, censor } }, destination);
}

/**
 * At most one log line per key a window (1 s by default): a storm of one event (refused publishes of a misconfigured
 * encoder retrying, a flood) costs a line a window, which carries how many events of that key it stands for.
 */
export class LogThrottle {
  private readonly seen = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly windowMs = 1000) {}

  /** Null when this one is not to be logged; else how many of the same were left unlogged since the last line. */
  take(key: string, now: number): number | null {
    const cur = this.seen.get(key);
    if (cur && now - cur.at < this.windowMs) {
      cur.suppressed++;
      return null;
    }
    if (this.seen.size > 1000) this.seen.clear(); // reasons are few; a flood of distinct ones must not grow this
    this.seen.set(key, { at: now, suppressed: 0 });
    return cur?.suppressed ?? 0;
  }
}
