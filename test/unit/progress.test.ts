import { describe, expect, it } from 'vitest';
import { LineSplitter, ProgressParser, type Progress } from '../../src/media/ffmpeg/progress.js';

describe('ffmpeg output parsing', () => {
  it('lines split across chunks are joined; \\r and \\r\\n end lines; over-long lines are cut', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l), 10);
    s.push('fra');
    s.push('me=1\r\nfps=2');
    s.push('5\rx' + 'y'.repeat(30) + '\n');
    s.push('tail');
    s.flush();
    expect(lines).toEqual(['frame=1', 'fps=25', 'xyyyyyyyyy', 'tail']);
  });

  it('a progress block becomes one Progress when its progress= line arrives', () => {
    const got: Progress[] = [];
    const p = new ProgressParser((x) => got.push(x));
    for (const l of [
      'frame=60',
      'fps=29.97',
      'out_time_us=2000000',
      'total_size=N/A',
      'speed=1.01x',
      'progress=continue',
    ])
      p.line(l);
    for (const l of ['frame=90', 'fps=30', 'out_time_ms=3000000', 'speed=N/A', 'total_size=1024', 'progress=end'])
      p.line(l);
    expect(got).toEqual([
      { frame: 60, fps: 29.97, outTimeUs: 2000000, speed: 1.01, ended: false },
      { frame: 90, fps: 30, outTimeUs: 3000000, speed: 0, totalSize: 1024, ended: true },
    ]);
  });

  it("ffmpeg 5.1's block (per-stream q, padded speed) reads the same", () => {
    const got: Progress[] = [];
    const p = new ProgressParser((x) => got.push(x));
    const block = `frame=36
fps=29.99
stream_0_0_q=-0.0
bitrate=N/A
total_size=N/A
out_time_us=1200000
out_time_ms=1200000
out_time=00:00:01.200000
dup_frames=0
drop_frames=0
speed=   1x
progress=end`;
    for (const l of block.split('\n')) p.line(l);
    expect(got).toEqual([{ frame: 36, fps: 29.99, outTimeUs: 1200000, speed: 1, ended: true }]);
  });
});
