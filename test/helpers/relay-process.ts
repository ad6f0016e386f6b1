/**
 * A relay entry point run as a child process the way an operator runs it, with its output kept and its `READY {json}`
 * line parsed (shared by relay.test and operations.test).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** A running entry point: `ready` resolves with the READY json, or null if it exits first. */
export interface RelayProcess {
  child: ChildProcess;
  ready: Promise<Record<string, any> | null>;
  exited: Promise<number | null>;
  output: () => string;
}

/**
 * Starts `cmd args` in the project root with `env` over this process's; `detached`: in its own process group (as a
 * terminal or a process manager starts it).
 */
export function launchRelay(
  cmd: string,
  args: readonly string[],
  env: Record<string, string>,
  opts: { detached?: boolean } = {},
): RelayProcess {
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  let out = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => void (out += d.toString()));
  const ready = new Promise<Record<string, any> | null>((resolve) => {
    const t = setInterval(() => {
      const m = /^READY (.*)$/m.exec(out);
      if (m) {
        clearInterval(t);
        resolve(JSON.parse(m[1]!));
      }
    }, 50);
    void exited.then(() => {
      clearInterval(t);
      resolve(null);
    });
  });
  return { child, ready, exited, output: () => out };
}
