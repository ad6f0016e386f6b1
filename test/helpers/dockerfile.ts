/** A small Dockerfile reader for the tests that check the image without a Docker engine. */

/** One instruction: its keyword (upper case), its argument text and the line it starts on. */
export interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** One build stage: its base image, its `AS` name and the instructions under its FROM. */
export interface Stage {
  from: string;
  name: string | null;
  body: Instruction[];
}

/** Instructions of a Dockerfile: continuation lines joined, comments and blank lines dropped. */
export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith('#') || (!pending && line === '')) return;
    if (!pending) start = i + 1;
    pending += (pending ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) return;
    const [op, ...rest] = pending.split(/\s+/);
    out.push({ op: op!.toUpperCase(), args: rest.join(' '), line: start });
    pending = '';
  });
  return out;
}

/** The build stages of a Dockerfile's instructions. */
export function stages(list: readonly Instruction[]): Stage[] {
  const out: Stage[] = [];
  for (const ins of list) {
    if (ins.op === 'FROM') {
      const [image, as, name] = ins.args.split(/\s+/);
      out.push({ from: image!, name: as?.toUpperCase() === 'AS' ? name! : null, body: [] });
    } else out.at(-1)?.body.push(ins);
  }
  return out;
}

/** The words of an exec-form argument (`["node", "x.js"]`), or null for the shell form. */
export function execForm(args: string): string[] | null {
  try {
    const v = JSON.parse(args) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : null;
  } catch {
    return null;
  }
}

/** The variables an ENV instruction sets (`ENV A=1 B=2`; values without spaces or quoted with "). */
export function envOf(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) out[m[1]!] = m[3] ?? m[2]!;
  return out;
}
