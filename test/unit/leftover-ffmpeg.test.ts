import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import { afterAll, expect, it } from 'vitest';
import { FFMPEG, eventually, ffmpegsOfRun, TEST_RUN_ENV } from '../helpers/stack.js';

const children: ChildProcess[] = [];
const idle = (env: NodeJS.ProcessEnv) => {
  const c = spawn(
    FFMPEG,
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-progress',
      'pipe:1',
      '-re',
      '-f',
      'lavfi',
      '-i',
      'anullsrc',
      '-t',
      '30',
      '-f',
      'null',
      '-',
    ],
    { env, stdio: 'ignore' },
  );
  children.push(c);
  return c.pid!;
};

afterAll(async () => {
  await Promise.all(
    children
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => {
        c.kill('SIGKILL');
        return once(c, 'exit');
      }),
  );
});

it('the leftover check of global setup counts the ffmpegs of this test run only, not those of another run or checkout', async () => {
  const runId = process.env[TEST_RUN_ENV];
  expect(runId, 'global setup marks the run').toMatch(/^[0-9a-f]{16}$/);
  const ours = idle(process.env);
  const other = crypto.randomBytes(8).toString('hex');
  const otherRun = idle({ ...process.env, [TEST_RUN_ENV]: other });
  const unmarked = idle(Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== TEST_RUN_ENV)));
  const found = await eventually(
    async () => {
      const f = ffmpegsOfRun(runId!);
      return f.includes(ours) ? f : null;
    },
    5000,
    50,
  );
  expect(found).not.toContain(otherRun);
  expect(found).not.toContain(unmarked);
  expect(ffmpegsOfRun(other)).toEqual([otherRun]);
});
