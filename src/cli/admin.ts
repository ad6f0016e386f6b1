/**
 * Operators' CLI over the admin API: `npm run admin -- <command>`.
 *
 *   accounts list                                   accounts, their channels and recording storage (MiB) in use
 *   accounts create <accountId> [--limit N] [--quota MIB|none] [--state active|not-enabled|arrears] [--name NAME]
 *   accounts set <accountId> [--limit N] [--quota MIB|none] [--state S] [--name NAME]
 *   apps list
 *   apps create --account <accountId> [--name NAME] [--sdk-app-id ID]   prints the secret key once
 *   apps delete <sdkAppId>
 *
 * RELAY_API_URL (default http://127.0.0.1:8090) and RELAY_ADMIN_TOKEN say where and as whom. `--json` prints the raw
 * answer. `--help` (or `help [command]`) needs no token. Exit codes: see EXIT in usage.ts.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, helpText, printHelp, type ToolHelp } from './usage.js';

/** The admin CLI's help: its commands and settings. */
export const ADMIN_HELP: ToolHelp = {
  program: 'admin',
  about: "Operators' CLI over the admin API (accounts and apps): npm run admin -- <command>",
  commands: {
    accounts: {
      usage: [
        'accounts list',
        'accounts create <accountId> [--limit N] [--quota MIB|none] [--state active|not-enabled|arrears] [--name NAME]',
        'accounts set <accountId> [--limit N] [--quota MIB|none] [--state S] [--name NAME]',
      ],
      about:
        'accounts, their channels and storage in use; create one (channel limit default 50, quota in MiB, none: unlimited); change one',
    },
    apps: {
      usage: [
        'apps list',
        'apps create --account <accountId> [--name NAME] [--sdk-app-id ID]',
        'apps delete <sdkAppId>',
      ],
      about:
        'apps and their accounts; create one (its secret key is printed once); delete one (refused while it has channels)',
    },
  },
  settings: [
    'RELAY_API_URL      the relay API (default http://127.0.0.1:8090)',
    "RELAY_ADMIN_TOKEN  the relay's admin token (npm run relay prints it as adminAuthorization)",
  ],
};
const USAGE = `bad usage\n\n${helpText(ADMIN_HELP, '')}`;

interface Parsed {
  words: string[];
  flags: Record<string, string | true>;
}

/** Splits arguments into words and --flags (a flag takes the next word as its value unless it is boolean). */
export function parseArgs(argv: readonly string[], booleans: readonly string[] = ['json']): Parsed {
  const words: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      words.push(a);
      continue;
    }
    const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (v !== undefined) flags[k] = v;
    else if (booleans.includes(k) || i + 1 >= argv.length) flags[k] = true;
    else flags[k] = argv[++i]!;
  }
  return { words, flags };
}

/** The HTTP call a command makes, or an error message for bad usage. */
export function commandRequest(p: Parsed): { method: string; path: string; body?: Record<string, unknown> } | string {
  const [noun, verb, id] = p.words;
  const str = (k: string) => (typeof p.flags[k] === 'string' ? (p.flags[k] as string) : undefined);
  const limit = str('limit');
  if (limit !== undefined && !/^\d+$/.test(limit)) return '--limit must be a whole number';
  const quota = str('quota');
  if (quota !== undefined && !/^(\d+|none)$/.test(quota)) return '--quota must be a whole number of MiB or none';
  const fields = {
    ...(limit !== undefined ? { channelLimit: Number(limit) } : {}),
    ...(quota !== undefined ? { storageQuotaMB: quota === 'none' ? null : Number(quota) } : {}),
    ...(str('state') ? { state: str('state') } : {}),
    ...(str('name') ? { name: str('name') } : {}),
  };
  if (noun === 'accounts' && verb === 'list') return { method: 'GET', path: '/admin/v1/accounts' };
  if (noun === 'accounts' && verb === 'create' && id)
    return { method: 'POST', path: '/admin/v1/accounts', body: { accountId: id, ...fields } };
  if (noun === 'accounts' && verb === 'set' && id && Object.keys(fields).length)
    return { method: 'PATCH', path: `/admin/v1/accounts/${encodeURIComponent(id)}`, body: fields };
  if (noun === 'apps' && verb === 'list') return { method: 'GET', path: '/admin/v1/apps' };
  if (noun === 'apps' && verb === 'create' && str('account'))
    return {
      method: 'POST',
      path: '/admin/v1/apps',
      body: {
        accountId: str('account'),
        ...(str('name') ? { name: str('name') } : {}),
        ...(str('sdk-app-id') ? { sdkAppId: str('sdk-app-id') } : {}),
      },
    };
  if (noun === 'apps' && verb === 'delete' && id)
    return { method: 'DELETE', path: `/admin/v1/apps/${encodeURIComponent(id)}` };
  return noun && ADMIN_HELP.commands[noun] ? `bad usage\n\n${helpText(ADMIN_HELP, noun)}` : USAGE;
}

/** A plain-text table of rows under their column names. */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}

function human(body: Record<string, any>): string {
  if (Array.isArray(body.accounts))
    return table(
      body.accounts.map((a: Record<string, unknown>) => ({
        ...a,
        apps: (a.apps as { sdkAppId: string }[]).map((x) => x.sdkAppId).join(','),
        storageQuotaMB: a.storageQuotaMB ?? 'none',
        storageUsedMB: typeof a.storageUsedBytes === 'number' ? (a.storageUsedBytes / 1048576).toFixed(1) : '-',
      })),
      ['accountId', 'name', 'state', 'channelLimit', 'channelsInUse', 'apps', 'storageQuotaMB', 'storageUsedMB'],
    );
  if (Array.isArray(body.apps)) return table(body.apps, ['sdkAppId', 'name', 'accountId']);
  if (body.app)
    return `app ${body.app.sdkAppId} (account ${body.app.accountId})\nsecretKey: ${body.app.secretKey}\nAuthorization: ${body.authorization}\n(the secret key is shown only now)`;
  if (body.account) return table([body.account], ['accountId', 'name', 'state', 'channelLimit']);
  return body.message ?? 'ok';
}

/** Runs one admin command line; resolves with the exit code. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const help = printHelp(ADMIN_HELP, argv);
  if (help !== null) return help;
  const p = parseArgs(argv);
  const req = commandRequest(p);
  if (typeof req === 'string') {
    console.error(req);
    return EXIT.usage;
  }
  const base = process.env.RELAY_API_URL ?? 'http://127.0.0.1:8090';
  const token = process.env.RELAY_ADMIN_TOKEN;
  if (!token) {
    console.error("set RELAY_ADMIN_TOKEN (the relay's admin token; `npm run relay` prints it as adminAuthorization)");
    return EXIT.usage;
  }
  let res: Response;
  try {
    res = await fetch(base + req.path, {
      method: req.method,
      headers: { authorization: `Bearer ${token}`, ...(req.body ? { 'content-type': 'application/json' } : {}) },
      ...(req.body ? { body: JSON.stringify(req.body) } : {}),
    });
  } catch (e) {
    console.error(`cannot reach the relay at ${base}: ${(e as Error).message}`);
    return EXIT.unreachable;
  }
  const body = (await res.json().catch(() => ({ code: res.status, message: res.statusText }))) as Record<string, any>;
  if (p.flags.json) console.log(JSON.stringify(body, null, 2));
  else if (body.code === 0) console.log(human(body));
  else console.error(`refused: ${body.code} ${body.message}${body.hint ? ` (${body.hint})` : ''}`);
  return body.code === 0 ? EXIT.ok : EXIT.refused;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      console.error(e.message);
      process.exit(1);
    },
  );
}
