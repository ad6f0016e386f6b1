import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, RelayError, type ErrorCode } from '../../src/errors/index.js';

const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('the error table', () => {
  it.each(Object.keys(ERRORS))('code %s is documented in the README error table with its HTTP status', (code) => {
    const spec = ERRORS[Number(code) as ErrorCode];
    const row = readme.split('\n').find((l) => l.startsWith(`| ${code} |`));
    expect(row, `README row for ${code}`).toBeTruthy();
    expect(row).toContain(String(spec.status));
  });

  it('a refusal body carries code, message, hint and its details', () => {
    const e = new RelayError(40000415, 'already pushing on ch_1', { details: { channelId: 'ch_1' } });
    expect(e.toBody()).toEqual({ code: 40000415, message: 'already pushing on ch_1', hint: ERRORS[40000415].hint, channelId: 'ch_1' });
    expect(e.status).toBe(409);
    expect(new RelayError(6012).retryable).toBe(true);
  });
});
