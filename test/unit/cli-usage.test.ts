import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandRequest, parseArgs, ADMIN_HELP } from '../../src/cli/admin.js';
import { CLI_HELP } from '../../src/cli/relay.js';
import { entryHelp, wantsHelp } from '../../src/cli/entries.js';
import { callerPath, EXIT, helpText, helpTopic, LocalFileError, readLocalFile } from '../../src/cli/usage.js';

describe('CLI usage', () => {
  it('recognises a help request anywhere on the line, with or without a command', () => {
    expect(helpTopic([])).toBe('');
    expect(helpTopic(['--help'])).toBe('');
    expect(helpTopic(['-h'])).toBe('');
    expect(helpTopic(['help'])).toBe('');
    expect(helpTopic(['help', 'push'])).toBe('push');
    expect(helpTopic(['push', 'start', '--help'])).toBe('push');
    expect(helpTopic(['--json', 'watermarks', '-h'])).toBe('watermarks');
    expect(helpTopic(['push', 'stop', 'ch_1'])).toBeNull();
  });

  it("the whole help lists every command's usage, the settings and the exit codes", () => {
    const text = helpText(CLI_HELP, '')!;
    for (const c of Object.values(CLI_HELP.commands)) for (const u of c.usage) expect(text).toContain(u);
    for (const v of ['RELAY_API_URL', 'RELAY_SDK_APP_ID', 'RELAY_SECRET_KEY', '4 local file'])
      expect(text).toContain(v);
    expect(helpText(ADMIN_HELP, '')).toContain('RELAY_ADMIN_TOKEN');
  });

  it('one command’s help shows only that command, and an unknown one has none', () => {
    const text = helpText(CLI_HELP, 'watermarks')!;
    expect(text).toMatch(/^usage: cli watermarks \[list\]/);
    expect(text).not.toContain('push start');
    expect(helpText(ADMIN_HELP, 'apps')).toMatch(/^usage: admin apps list/);
    expect(helpText(CLI_HELP, 'frobnicate')).toBeNull();
  });

  it('has distinct exit codes for refused, bad usage, unreachable and local file', () => {
    expect(new Set(Object.values(EXIT)).size).toBe(Object.keys(EXIT).length);
    expect(EXIT).toMatchObject({ ok: 0, refused: 1, usage: 2, unreachable: 3, localFile: 4 });
  });

  it("resolves a local path against INIT_CWD (the caller's folder under npm run), else the working directory", () => {
    expect(callerPath('logo.png', { INIT_CWD: '/home/me/art' })).toBe('/home/me/art/logo.png');
    expect(callerPath('/abs/logo.png', { INIT_CWD: '/home/me' })).toBe('/abs/logo.png');
    expect(callerPath('logo.png', {})).toBe(path.resolve('logo.png'));
  });

  it('a missing or unreadable local file is a LocalFileError naming its absolute path', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    fs.writeFileSync(path.join(dir, 'a.png'), 'x');
    expect(readLocalFile('a.png', { INIT_CWD: dir }).toString()).toBe('x');
    const missing = (() => {
      try {
        readLocalFile('nope.png', { INIT_CWD: dir });
      } catch (e) {
        return e;
      }
    })();
    expect(missing).toBeInstanceOf(LocalFileError);
    expect((missing as Error).message).toBe(`cannot read local file ${path.join(dir, 'nope.png')}: no such file`);
    expect(() => readLocalFile('.', { INIT_CWD: dir })).toThrow(/is a folder/);
    fs.rmSync(dir, { recursive: true });
  });

  it('a bad admin command answers with that command’s help', () => {
    expect(commandRequest(parseArgs(['accounts', 'set', 'acme']))).toMatch(/bad usage\n\nusage: admin accounts list/);
    expect(commandRequest(parseArgs(['apps', 'list']))).toEqual({ method: 'GET', path: '/admin/v1/apps' });
  });

  it('entry points: --help anywhere asks for help; it lists every setting with its default', () => {
    expect(wantsHelp(['--help'])).toBe(true);
    expect(wantsHelp(['-h'])).toBe(true);
    expect(wantsHelp([])).toBe(false);
    const text = entryHelp('relay');
    for (const v of ['usage: npm run relay', 'REDIS_URL', 'redis://127.0.0.1:6379', 'RELAY_REDIS_PREFIX', 'secretKey'])
      expect(text).toContain(v);
    expect(entryHelp('worker')).toContain('node cmd/worker.js');
  });
});
