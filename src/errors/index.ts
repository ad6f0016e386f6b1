/** One entry of the stable error table: the SPEC's numeric code, HTTP status, default message and handling hint. */
export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
  readonly hint: string;
  /** Whether the same request may succeed when retried later. */
  readonly retryable: boolean;
}

/** Every code the relay answers with (SPEC "Error codes"); README's table is checked against this by a test. */
export const ERRORS = {
  1001: {
    status: 401,
    message: 'permission error: missing or bad app credentials',
    hint: 'check sdkAppId and secret key in the Authorization header',
    retryable: false,
  },
  1002: {
    status: 401,
    message: 'account does not exist',
    hint: "check the user data: the app's account or the account asked for is not registered on this relay",
    retryable: false,
  },
  6012: {
    status: 504,
    message: 'push timed out: no media from the upstream in time',
    hint: 'check the uplink of the upstream; retry after 30 s',
    retryable: true,
  },
  20101: {
    status: 409,
    message: 'channel count over the limit',
    hint: 'stop unused channels or raise the limit',
    retryable: false,
  },
  20102: {
    status: 409,
    message: 'storage over the account quota (recordings and watermark images)',
    hint: "delete old recordings or unused watermarks of the account's apps, or raise its storageQuotaMB (admin API); or start without record",
    retryable: false,
  },
  20318: {
    status: 403,
    message: 'live service not enabled for the account',
    hint: 'enable the live service for this account (admin API: PATCH /admin/v1/accounts/{id} {"state":"active"})',
    retryable: false,
  },
  20406: { status: 402, message: 'account in arrears', hint: 'settle the account, then retry', retryable: false },
  50002: {
    status: 400,
    message: 'input parameter validation failed',
    hint: 'check the ids and fields of the request',
    retryable: false,
  },
  50004: {
    status: 400,
    message: 'wrong push (encode) type',
    hint: 'check the encode field: HLS=1, FLV=2, HLS_AND_FLV=3, RAW=4, RTMP=5, HLS_AND_RTMP=6',
    retryable: false,
  },
  50005: {
    status: 503,
    message: 'back end timed out',
    hint: 'no worker took the job in time: check that a worker runs, then retry',
    retryable: true,
  },
  50006: { status: 503, message: 'back end timed out', hint: 'the state store did not answer: retry', retryable: true },
  50007: {
    status: 507,
    message: "insufficient storage: the relay's disk is full or below its free-space threshold",
    hint: 'retry later or without record; operators: free disk space (RELAY_MIN_FREE_MB sets the threshold)',
    retryable: true,
  },
  50008: {
    status: 501,
    message: "the relay's ffmpeg lacks what this upstream needs (a protocol, demuxer or decoder)",
    hint:
      'use an upstream protocol and codecs the relay supports; operators: install a current ffmpeg ' +
      '(apt-get install -y ffmpeg) or set FFMPEG_PATH (the message names what is missing)',
    retryable: false,
  },
  50009: {
    status: 422,
    message: 'the upstream cannot be read as media',
    hint: "check the upstream URL or file: ffmpeg's reason is in the message; the same upstream will fail again",
    retryable: false,
  },
  40000001: {
    status: 400,
    message: 'no request body',
    hint: 'send a JSON body and Content-Type: application/json',
    retryable: false,
  },
  40000002: { status: 400, message: 'no operation field', hint: 'complete the request', retryable: false },
  40000003: {
    status: 400,
    message: 'no output encode (HLS/RTMP…) in option.encode',
    hint: 'set option.encode: HLS=1, FLV=2, HLS_AND_FLV=3, RAW=4, RTMP=5, HLS_AND_RTMP=6',
    retryable: false,
  },
  40000004: {
    status: 400,
    message: 'wrong video source type',
    hint: 'srcType is 0 (camera) or 1 (screen), and that upstream must carry video',
    retryable: false,
  },
  40000006: {
    status: 400,
    message: 'wrong user id',
    hint: 'userId is 1-32 characters of letters, digits, _ or -',
    retryable: false,
  },
  40000007: {
    status: 400,
    message: 'room id is 0',
    hint: 'roomId is an integer from 1 to 4294967294',
    retryable: false,
  },
  40000410: {
    status: 404,
    message: 'room does not exist',
    hint: 'check the room was opened: a member must publish or an upstream be registered',
    retryable: false,
  },
  40000411: {
    status: 404,
    message: 'user not in the room',
    hint: 'check userId and srcType, or whether the member left',
    retryable: false,
  },
  40000412: { status: 409, message: 'already stopped', hint: 'nothing to do', retryable: false },
  40000413: { status: 409, message: 'already stopped', hint: 'nothing to do', retryable: false },
  40000415: {
    status: 409,
    message: 'already pushing',
    hint: 'nothing to do: the channelId of the running push is in the answer',
    retryable: false,
  },
  40000500: {
    status: 429,
    message: 'start rate limited: same user within 3 s',
    hint: 'retry 3 s after the last start',
    retryable: true,
  },
} as const satisfies Record<number, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a stable SPEC code; the API turns it into `{code, message, hint}`. */
export class RelayError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly status: number;
  readonly retryable: boolean;
  /** Extra fields put in the error body (e.g. the running channelId for 40000415). */
  readonly details: Record<string, unknown>;
  /** Facts for the operator's log only, never sent to the client (e.g. the exact free disk space behind a 50007). */
  readonly log: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    opts: { hint?: string; status?: number; details?: Record<string, unknown>; log?: Record<string, unknown> } = {},
  ) {
    const spec: ErrorSpec = ERRORS[code];
    super(message ?? spec.message);
    this.name = 'RelayError';
    this.code = code;
    this.hint = opts.hint ?? spec.hint;
    this.status = opts.status ?? spec.status;
    this.retryable = spec.retryable;
    this.details = opts.details ?? {};
    this.log = opts.log;
  }

  /** The JSON body of the refusal. */
  toBody(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, ...this.details };
  }
}

/** Whether a value is one of the table's codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'number' && Object.prototype.hasOwnProperty.call(ERRORS, code);
}
