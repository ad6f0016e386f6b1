import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { endPlaylist } from '../../src/media/hls.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('ending a playlist', () => {
  it('appends EXT-X-ENDLIST once, and reports a missing playlist', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hls-'));
    dirs.push(root);
    const file = path.join(root, 'ch_x', 'index.m3u8');
    expect(await endPlaylist(file)).toBe(false);
    fs.mkdirSync(path.join(root, 'ch_x'));
    fs.writeFileSync(file, '#EXTM3U\n#EXTINF:2.0,\nseg_000001.ts\n');
    expect(await endPlaylist(file)).toBe(true);
    expect(await endPlaylist(file)).toBe(true);
    const text = fs.readFileSync(path.join(root, 'ch_x', 'index.m3u8'), 'utf8');
    expect(text).toBe('#EXTM3U\n#EXTINF:2.0,\nseg_000001.ts\n#EXT-X-ENDLIST\n');
    expect(fs.readdirSync(path.join(root, 'ch_x'))).toEqual(['index.m3u8']);
  });
});
