import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm run bench', () => {
  it('runs every scenario in its short form and prints the relay beside its floor', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/suite.ts', '--short'], { timeout: 240_000, maxBuffer: 1 << 20 });
    expect(stdout).toMatch(/start call → first FLV video tag at a viewer\s+\d+ \/ \d+ ms\s+\d+ \/ \d+ ms/);
    // one channel's cost is often below the noise: then the ratio reads n/a rather than a meaningless number
    expect(stdout).toMatch(/^\s+1 \|\s+[\d.]+% \|\s+[\d.]+% \|\s+([\d.]+|n\/a) \|/m);
    expect(stdout).toMatch(/^\s+4 \|\s+[\d.]+% \|\s+[\d.]+% \|\s+([\d.]+|n\/a) \|/m);
    expect(stdout).toMatch(/^\s+20 \|\s+[\d.]+% \|\s+[\d.]+ \| [01]\.\d\d$/m);
    expect(stdout).toMatch(/control plane with 1000 channel records: start p50\/p99 \d+\/\d+ ms/);
    const file = /results: (\S+)/.exec(stdout)![1]!;
    const json = JSON.parse(fs.readFileSync(path.resolve(file), 'utf8')) as { short: boolean; cost: unknown[] };
    expect(json.short).toBe(true);
    expect(json.cost).toHaveLength(2);
  }, 300_000);
});
