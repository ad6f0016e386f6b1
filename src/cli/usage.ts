/**
 * What the command-line tools share: their exit codes, their help (whole, or one command's), how a help request is
 * recognised before anything needs credentials, and local files named relative to the caller's working directory.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Exit codes of `npm run cli` and `npm run admin` (README "TypeScript client and CLI"). */
export const EXIT = {
  ok: 0,
  /** The relay answered with a refusal; its code is printed. */
  refused: 1,
  /** Bad usage, or a missing setting (credentials). */
  usage: 2,
  /** The relay could not be reached. */
  unreachable: 3,
  /** A local file given on the command line cannot be read. */
  localFile: 4,
} as const;

export const EXIT_CODES_TEXT =
  'exit codes: 0 done, 1 refused by the relay (its code is printed), 2 bad usage or missing setting, 3 relay unreachable, 4 local file unreadable';

/** One command of a tool: its usage lines and what it does. */
export interface CommandHelp {
  usage: readonly string[];
  about: string;
  /** The command's own settings and exit codes, when they are not the tool's (`play` needs no credentials). */
  settings?: readonly string[];
  exitCodes?: string;
}

/** A tool's help: its name, what it is, its commands and the settings it reads. */
export interface ToolHelp {
  program: string;
  about: string;
  commands: Record<string, CommandHelp>;
  settings: readonly string[];
}

/**
 * What a command line asks of the help: null (not help), or the topic (a command name, or '' for the whole tool).
 * `--help`/`-h` anywhere, `help [command]`, and no arguments at all are help.
 */
export function helpTopic(argv: readonly string[]): string | null {
  if (argv.length === 0) return '';
  if (argv[0] === 'help') return argv[1] ?? '';
  if (argv.includes('--help') || argv.includes('-h')) return argv.find((a) => !a.startsWith('-')) ?? '';
  return null;
}

/** The help text of a tool, or of one of its commands; null when the topic names no command. */
export function helpText(tool: ToolHelp, topic: string): string | null {
  const settings = ['settings (environment):', ...tool.settings.map((s) => `  ${s}`)];
  if (topic === '') {
    const lines = Object.values(tool.commands).flatMap((c) => [...c.usage.map((u) => `  ${u}`), `      ${c.about}`]);
    return [
      `${tool.about}`,
      '',
      `usage: ${tool.program} <command> [options] [--json]`,
      '',
      'commands:',
      ...lines,
      '',
      `${tool.program} help <command> (or <command> --help) shows one command.`,
      '--json prints the raw answer (for scripts).',
      '',
      ...settings,
      '',
      EXIT_CODES_TEXT,
    ].join('\n');
  }
  const cmd = tool.commands[topic];
  if (!cmd) return null;
  const own = cmd.settings ? ['settings (environment):', ...cmd.settings.map((s) => `  ${s}`)] : settings;
  return [
    ...cmd.usage.map((u, i) => `${i === 0 ? 'usage: ' : '       '}${tool.program} ${u}`),
    '',
    cmd.about,
    '',
    ...own,
    '',
    cmd.exitCodes ?? EXIT_CODES_TEXT,
  ].join('\n');
}

/**
 * Prints the help a command line asks for, or the usage when it names no known command; returns the exit code, or null
 * when the line is a command to run.
 */
export function printHelp(tool: ToolHelp, argv: readonly string[]): number | null {
  const first = argv.find((a) => !a.startsWith('-'));
  // an unknown command is bad usage whatever else the line says, and is told before any credential is asked for
  const topic = first !== undefined && !tool.commands[first] && argv[0] !== 'help' ? first : helpTopic(argv);
  if (topic === null) return null;
  const text = helpText(tool, topic);
  if (text === null) {
    console.error(`unknown command "${topic}"\n\n${helpText(tool, '')}`);
    return EXIT.usage;
  }
  // no arguments at all: the usage, on stderr, as a usage error; asked for: on stdout, exit 0
  if (argv.length === 0) {
    console.error(text);
    return EXIT.usage;
  }
  console.log(text);
  return EXIT.ok;
}

/** A local file named on the command line that cannot be read. */
export class LocalFileError extends Error {
  constructor(
    readonly file: string,
    cause: NodeJS.ErrnoException,
  ) {
    const why = cause.code === 'ENOENT' ? 'no such file' : cause.code === 'EISDIR' ? 'is a folder' : cause.message;
    super(`cannot read local file ${file}: ${why}`);
    this.name = 'LocalFileError';
  }
}

/**
 * A path given on the command line, made absolute against the caller's working directory: `npm run` starts scripts in
 * the package root and passes the caller's folder as INIT_CWD.
 */
export function callerPath(p: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.INIT_CWD || process.cwd(), p);
}

/** Reads a local file named on the command line, or throws a LocalFileError naming its absolute path. */
export function readLocalFile(p: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  const file = callerPath(p, env);
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new LocalFileError(file, e as NodeJS.ErrnoException);
  }
}
