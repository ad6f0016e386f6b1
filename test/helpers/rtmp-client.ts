/**
 * A bare RTMP publisher for tests that need to send what no well-behaved encoder sends: any timestamp, any payload.
 * Simple handshake, AMF0 commands, one chunk stream per message type, chunk size raised to 64 KiB.
 */
import net from 'node:net';

type Amf = string | number | boolean | null | { [k: string]: Amf };

function amf(v: Amf): Buffer {
  if (v === null) return Buffer.from([5]);
  if (typeof v === 'number') {
    const b = Buffer.alloc(9);
    b[0] = 0;
    b.writeDoubleBE(v, 1);
    return b;
  }
  if (typeof v === 'boolean') return Buffer.from([1, v ? 1 : 0]);
  if (typeof v === 'string') {
    const s = Buffer.from(v, 'utf8');
    const h = Buffer.alloc(3);
    h[0] = 2;
    h.writeUInt16BE(s.length, 1);
    return Buffer.concat([h, s]);
  }
  const parts: Buffer[] = [Buffer.from([3])];
  for (const [k, x] of Object.entries(v)) {
    const key = Buffer.from(k, 'utf8');
    const kl = Buffer.alloc(2);
    kl.writeUInt16BE(key.length);
    parts.push(kl, key, amf(x));
  }
  parts.push(Buffer.from([0, 0, 9]));
  return Buffer.concat(parts);
}

/** One RTMP message in a single type-0 chunk (payloads up to the 64 KiB chunk size set at connect). */
function message(csid: number, type: number, streamId: number, timestamp: number, payload: Buffer): Buffer {
  const extended = timestamp >= 0xffffff;
  const h = Buffer.alloc(12 + (extended ? 4 : 0));
  h[0] = csid;
  h.writeUIntBE(extended ? 0xffffff : timestamp, 1, 3);
  h.writeUIntBE(payload.length, 4, 3);
  h[7] = type;
  h.writeUInt32LE(streamId, 8);
  if (extended) h.writeUInt32BE(timestamp >>> 0, 12);
  return Buffer.concat([h, payload]);
}

/** An RTMP connection that publishes `/app/name?query`, then sends raw audio/video/data messages. */
export class RawRtmpPublisher {
  private constructor(private readonly socket: net.Socket) {}

  /** Connects, handshakes and publishes; resolves once the commands are written. */
  static async publish(port: number, app: string, nameWithQuery: string, tcUrl?: string): Promise<RawRtmpPublisher> {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    // C0 + C1 (zeros: the simple handshake), wait for S0 S1 S2, then C2
    socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536)]));
    await new Promise<void>((resolve, reject) => {
      let got = 0;
      const onData = (d: Buffer) => {
        got += d.length;
        if (got >= 1 + 1536 * 2) {
          socket.off('data', onData);
          resolve();
        }
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error('closed during handshake')));
    });
    socket.write(Buffer.alloc(1536));
    const chunkSize = Buffer.alloc(4);
    chunkSize.writeUInt32BE(65536);
    socket.write(message(2, 1, 0, 0, chunkSize));
    const url = tcUrl ?? `rtmp://127.0.0.1:${port}/${app}`;
    socket.write(message(3, 20, 0, 0, Buffer.concat([amf('connect'), amf(1), amf({ app, tcUrl: url })])));
    socket.write(message(3, 20, 0, 0, Buffer.concat([amf('createStream'), amf(2), amf(null)])));
    socket.write(
      message(3, 20, 1, 0, Buffer.concat([amf('publish'), amf(3), amf(null), amf(nameWithQuery), amf('live')])),
    );
    return new RawRtmpPublisher(socket);
  }

  /** Sends one message of `type` (8 audio, 9 video, 18 data) at `timestamp` (ms, up to 2^32 - 1). */
  send(type: number, timestamp: number, payload: Buffer): void {
    this.socket.write(message(type === 18 ? 5 : type === 8 ? 4 : 6, type, 1, timestamp, payload));
  }

  /** Whether the server has closed the connection. */
  get closed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }

  /** Ends the connection (as an encoder does when it exits) and waits until it is closed. */
  async end(): Promise<void> {
    if (this.socket.destroyed) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    await closed;
  }
}

/** An H.264 sequence header (AVCDecoderConfigurationRecord of a 320x240 High stream from x264) as an FLV video body. */
export const AVC_SEQUENCE_HEADER = Buffer.from(
  '17000000000164000dffe100196764000dacd94141fb0110000003001000000303c0f142996001000668ebe3cb22c0',
  'hex',
);
