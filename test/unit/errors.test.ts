import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, RelayError, type ErrorCode } from '../../src/errors/index.js';

const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/**
 * Every code of SPEC.md's "Error codes" table with the HTTP statuses it answers with: the first is its status in
 * ERRORS, the others are the statuses it is also given (README's HTTP column lists them all, separated by "/").
 */
const SPEC_STATUS: Record<number, readonly number[]> = {
  1001: [401, 429],
  1002: [401],
  6012: [504],
  20101: [409],
  20102: [409],
  20318: [403],
  20406: [402],
  50002: [400, 404, 409, 413, 415],
  50004: [400],
  50005: [503],
  50006: [503],
  50007: [507],
  50008: [501],
  50009: [422],
  40000001: [400],
  40000002: [400],
  40000003: [400],
  40000004: [400],
  40000006: [400],
  40000007: [400],
  40000410: [404],
  40000411: [404],
  40000412: [409],
  40000413: [409],
  40000415: [409],
  40000500: [429],
};

/** The cells of README's error-table row of a code: code, HTTP, meaning, hint. */
function readmeRow(code: string): string[] | undefined {
  const row = readme.split('\n').find((l) => l.startsWith(`| ${code} |`));
  return row
    ?.split('|')
    .slice(1, -1)
    .map((c) => c.trim());
}

describe('the error table', () => {
  it('ERRORS holds exactly the codes of the SPEC table', () => {
    expect(
      Object.keys(ERRORS)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual(
      Object.keys(SPEC_STATUS)
        .map(Number)
        .sort((a, b) => a - b),
    );
  });

  it.each(Object.entries(SPEC_STATUS).map(([code, statuses]) => [code, statuses.join('/')] as const))(
    'code %s answers HTTP %s, in ERRORS and in the README error table',
    (code, statuses) => {
      expect(ERRORS[Number(code) as ErrorCode]?.status, `status of ${code} in ERRORS`).toBe(
        Number(statuses.split('/')[0]),
      );
      const cells = readmeRow(code);
      expect(cells, `README row for ${code}`).toBeTruthy();
      expect(cells![1], `HTTP column of README's row for ${code}`).toBe(statuses);
    },
  );

  it('a refusal body carries code, message, hint and its details', () => {
    const e = new RelayError(40000415, 'already pushing on ch_1', { details: { channelId: 'ch_1' } });
    expect(e.toBody()).toEqual({
      code: 40000415,
      message: 'already pushing on ch_1',
      hint: ERRORS[40000415].hint,
      channelId: 'ch_1',
    });
    expect(e.status).toBe(409);
    expect(new RelayError(6012).retryable).toBe(true);
  });
});
