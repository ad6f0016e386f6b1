import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The shape of the code base (README "Architecture"), checked on the sources: folders depend one way, the media plane
 * never reaches the queue, one module moves channel states, and no file grows past what one reader can hold.
 */
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const SRC = path.join(ROOT, 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? sources(full) : e.name.endsWith('.ts') ? [full] : [];
  });
}

const folderOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!;
const files = sources(SRC);
/** folder → folders it imports (relative imports of code and types alike) */
const edges = new Map<string, Set<string>>();
for (const file of files) {
  const from = folderOf(file);
  for (const m of fs.readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = path.resolve(path.dirname(file), m[1]!);
    if (!target.startsWith(SRC + path.sep)) continue;
    const to = folderOf(target);
    if (to !== from && !to.endsWith('.js')) (edges.get(from) ?? edges.set(from, new Set()).get(from)!).add(to);
  }
}

describe('architecture', () => {
  it('no two folders of src import each other', () => {
    const mutual = [...edges].flatMap(([a, tos]) =>
      [...tos].filter((b) => a < b && edges.get(b)?.has(a)).map((b) => `${a} <-> ${b}`),
    );
    expect(mutual).toEqual([]);
  });

  it('the media plane imports nothing from the queue, the worker or the request side', () => {
    expect(
      [...(edges.get('media-server') ?? [])].filter((f) => ['queue', 'worker', 'api', 'webhooks'].includes(f)),
    ).toEqual([]);
  });

  it('one module moves channel states', () => {
    const callers = files
      .filter((f) => /\.transition\(/.test(fs.readFileSync(f, 'utf8')))
      .map((f) => path.relative(ROOT, f));
    expect(callers).toEqual(['src/channels/lifecycle.ts']);
  });

  it('no source file is longer than 300 lines', () => {
    const long = files
      .map((f) => [path.relative(ROOT, f), fs.readFileSync(f, 'utf8').split('\n').length] as const)
      .filter(([, n]) => n > 300);
    expect(long).toEqual([]);
  });
});
