/**
 * The player's processes: its decoders, killed if the host process exits first (one exit handler for all), and the
 * short ffmpeg that writes `--snapshot`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { snapshotArgs } from './args.js';

/** The decoders running in this process: killed if it exits first (one handler for all of them). */
const decoders = new Set<ChildProcess>();
export function tracked(child: ChildProcess): ChildProcess {
  if (decoders.size === 0) process.on('exit', killDecoders);
  decoders.add(child);
  child.once('close', () => {
    decoders.delete(child);
    if (decoders.size === 0) process.off('exit', killDecoders);
  });
  return child;
}
function killDecoders(): void {
  for (const c of decoders) c.kill('SIGKILL');
}

/** `p`, or undefined after `ms` (the timer does not hold the event loop). */
export function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Bytes of the start of a stream kept for --snapshot (a GOP of 2 s at 16 Mbit/s). */
export const SNAPSHOT_BYTES = 4 * 1024 * 1024;

/** Decodes `data` (the start of the stream) into the --snapshot PNG; gives up after 15 s. */
export function writeSnapshot(ffmpeg: string, format: 'flv' | 'mpegts', data: Buffer, file: string): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn(ffmpeg, snapshotArgs(format, file), { stdio: ['pipe', 'ignore', 'ignore'] });
    const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('error', () => undefined);
    p.on('close', () => (clearTimeout(timer), resolve()));
    p.stdin!.on('error', () => undefined);
    p.stdin!.end(data);
  });
}
