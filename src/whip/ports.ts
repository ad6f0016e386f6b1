import dgram from 'node:dgram';

const ATTEMPTS = 50;

function bind(port: number): Promise<dgram.Socket | null> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(null);
    });
    s.bind(port, '127.0.0.1', () => resolve(s));
  });
}

/**
 * Finds a free pair of local UDP ports (an even RTP port and the RTCP port after it) for ffmpeg's RTP demuxer to
 * bind; both are released before the answer, so ffmpeg can take them. Rejects after a few dozen tries.
 */
export async function freeRtpPortPair(): Promise<number> {
  for (let i = 0; i < ATTEMPTS; i++) {
    const a = await bind(0);
    if (!a) continue;
    const port = a.address().port;
    const b = port % 2 === 0 && port < 65535 ? await bind(port + 1) : null;
    a.close();
    b?.close();
    if (b) return port;
  }
  throw new Error('no free local UDP port pair for the WHIP bridge');
}
