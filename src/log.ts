import { pino, type Logger } from 'pino';

export type { Logger };

/** Query parameters and header fields whose values are secrets. */
const SECRET_PARAMS = /([?&](?:sig|sign|token|key|secret|password|pwd|ph|auth|txSecret)=)[^&\s"']*/gi;
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s"']+@/gi;

/** Removes stream keys, signatures and passwords from a URL or a line of text (e.g. an ffmpeg command line). */
export function redact(text: string): string {
  return text.replace(URL_USERINFO, '$1***@').replace(SECRET_PARAMS, '$1***');
}

/** The process logger: JSON lines, secrets redacted by field name. */
export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        'authorization',
        '*.authorization',
        'req.headers.authorization',
        'headers.authorization',
        'secret',
        '*.secret',
        'secretKey',
        '*.secretKey',
        'password',
        '*.password',
        'channelPassword',
        '*.channelPassword',
        'option.channelPassword',
        '*.option.channelPassword',
        'token',
        '*.token',
      ],
      censor: '***',
    },
  });
}
