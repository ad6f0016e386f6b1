/**
 * Hosts on one machine: network namespaces joined by veth pairs to a bridge in the first one (the hub), each host one
 * address of a private /24, `lo` up everywhere, no link to the machine's own namespace (traffic stays between these
 * hosts and their loopbacks). Processes run in a host with `ip netns exec` (which also bind-mounts
 * `/etc/netns/<namespace>/hosts` over `/etc/hosts`: a host's own name table) and a parent-death signal. close() kills
 * every process of every host, deletes the namespaces (their veths go with them) and the /etc/netns folders made here.
 * Needs root and a kernel that makes network namespaces: netnsRefused() says why not.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { sleep } from './stack.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SETPRIV = '/usr/bin/setpriv';
const ETC_NETNS = '/etc/netns';
/** Namespaces made here are named `rly<label>-<pid of the test process>-<random>` (pid: see sweepOrphans). */
const NAME = /^rly[A-Z]-(\d+)-[0-9a-f]+$/;

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

function errText(e: unknown): string {
  const x = e as { stderr?: string | Buffer; message: string };
  return (x.stderr?.toString().trim() || x.message).split('\n')[0]!;
}

/** Where `cmd` is on PATH (and the sbin folders root has), or null. */
export function which(cmd: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.map((d) => path.join(d, cmd)).find((p) => p.startsWith('/') && fs.existsSync(p)) ?? null;
}

/**
 * Why hosts cannot be made here (no `ip`, `unshare` or setpriv, or the kernel refuses a network namespace, a veth
 * pair or a bridge), or null. Makes and deletes one probe namespace.
 */
export function netnsRefused(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  for (const cmd of ['ip', 'unshare']) if (!which(cmd)) return `${cmd} missing (apt-get install iproute2 util-linux)`;
  if (!fs.existsSync(SETPRIV)) return `${SETPRIV} missing (apt-get install util-linux)`;
  try {
    run('unshare', ['-n', 'true']);
  } catch (e) {
    return `network namespaces are refused here (unshare -n true: ${errText(e)}): they need root and a kernel that allows them`;
  }
  const probe = `rlyP-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  try {
    run('ip', ['netns', 'add', probe]);
  } catch (e) {
    return `ip netns add refused: ${errText(e)}`;
  }
  try {
    run('ip', ['-n', probe, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
    run('ip', ['-n', probe, 'link', 'add', 'br0', 'type', 'bridge']);
    return null;
  } catch (e) {
    return `the kernel refuses a veth pair or a bridge in a network namespace: ${errText(e)}`;
  } finally {
    try {
      run('ip', ['netns', 'del', probe]);
    } catch {
      /* gone */
    }
  }
}

/** Process ids in namespace `ns` (`ip netns pids`). */
export function pidsIn(ns: string): number[] {
  try {
    return run('ip', ['netns', 'pids', ns])
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((p) => p !== process.pid);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Deletes namespaces of this helper left by a test process that died without its teardown (killed with SIGKILL):
 * those named after a process that no longer exists and holding no process. Another run's namespaces are left alone.
 */
function sweepOrphans(): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync('/run/netns');
  } catch {
    return;
  }
  for (const ns of names) {
    const m = NAME.exec(ns);
    if (!m || alive(Number(m[1])) || pidsIn(ns).length > 0) continue;
    try {
      run('ip', ['netns', 'del', ns]);
    } catch {
      /* raced with another sweep */
    }
    fs.rmSync(path.join(ETC_NETNS, ns), { recursive: true, force: true });
  }
}

/** One host: its namespace and its address on the hosts' /24. */
export interface Host {
  label: string;
  ns: string;
  addr: string;
}

/** A process running in a host; `output` keeps its last 400 lines (stdout and stderr). */
export interface HostProc {
  name: string;
  host: Host;
  child: ChildProcess;
  output: string[];
  /** Sends `signal` (default SIGTERM) to its process group and waits for it to exit (SIGKILL after 15 s). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** What a command run to its end in a host printed, and how it ended. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Hosts joined by one bridge in the first host (the hub): `hosts[label]`, each at `<subnet>.<1 + index>`. */
export class Hosts {
  readonly hosts: Record<string, Host> = {};
  private readonly procs: HostProc[] = [];
  private readonly etcDirs: string[] = [];
  private madeEtcNetns = false;

  private constructor(readonly subnet: string) {}

  /** Makes one host per label (the first is the hub) on a random 10.2xx.y.0/24. */
  static create(labels: readonly string[]): Hosts {
    sweepOrphans();
    const b = crypto.randomBytes(2);
    const h = new Hosts(`10.${200 + (b[0]! % 50)}.${b[1]}`);
    const tag = `${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    try {
      labels.forEach((label, i) => {
        const host: Host = { label, ns: `rly${label}-${tag}`, addr: `${h.subnet}.${i + 1}` };
        run('ip', ['netns', 'add', host.ns]);
        h.hosts[label] = host;
        run('ip', ['-n', host.ns, 'link', 'set', 'lo', 'up']);
      });
      const hub = h.hosts[labels[0]!]!;
      const ipHub = (...args: string[]) => run('ip', ['-n', hub.ns, ...args]);
      ipHub('link', 'add', 'br0', 'type', 'bridge');
      ipHub('addr', 'add', `${hub.addr}/24`, 'dev', 'br0');
      ipHub('link', 'set', 'br0', 'up');
      for (const label of labels.slice(1)) {
        const host = h.hosts[label]!;
        // made in the hub's namespace, its peer in the host's: neither end ever lives in the machine's namespace
        ipHub('link', 'add', `v${label}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.ns);
        ipHub('link', 'set', `v${label}`, 'master', 'br0');
        ipHub('link', 'set', `v${label}`, 'up');
        run('ip', ['-n', host.ns, 'addr', 'add', `${host.addr}/24`, 'dev', 'eth0']);
        run('ip', ['-n', host.ns, 'link', 'set', 'eth0', 'up']);
      }
    } catch (e) {
      h.deleteNamespaces();
      throw e;
    }
    return h;
  }

  /** `host`'s own /etc/hosts (as `ip netns exec` shows it to its processes): localhost, then `entries` [addr, name]. */
  writeEtcHosts(label: string, entries: readonly (readonly [string, string])[]): void {
    const host = this.hosts[label]!;
    if (!fs.existsSync(ETC_NETNS)) {
      fs.mkdirSync(ETC_NETNS);
      this.madeEtcNetns = true;
    }
    const dir = path.join(ETC_NETNS, host.ns);
    fs.mkdirSync(dir, { recursive: true });
    this.etcDirs.push(dir);
    const lines = ['127.0.0.1 localhost', '::1 localhost', ...entries.map(([addr, name]) => `${addr} ${name}`)];
    fs.writeFileSync(path.join(dir, 'hosts'), `${lines.join('\n')}\n`);
  }

  /** argv running `cmd` in `label`'s host, tied to this process's life (parent-death SIGKILL). */
  private argv(label: string, cmd: string, args: readonly string[]): string[] {
    return ['netns', 'exec', this.hosts[label]!.ns, SETPRIV, '--pdeathsig', 'SIGKILL', '--', cmd, ...args];
  }

  /**
   * Starts `cmd args` in `label`'s host (cwd: the project; this process's environment and `env`), in its own process
   * group; resolves once a line of its output matches `ready` (null: at once), rejects when it exits first or after
   * `timeoutMs`.
   */
  spawn(
    label: string,
    name: string,
    cmd: string,
    args: readonly string[],
    opts: {
      env?: Record<string, string>;
      ready: RegExp | null;
      timeoutMs?: number;
      /** Its stdin a pipe (else none). */
      stdin?: boolean;
      /** Called with every line it writes to stdout. */
      onLine?: (line: string) => void;
    },
  ): Promise<HostProc> {
    const child = spawn('ip', this.argv(label, cmd, args), {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const output: string[] = [];
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        /* gone */
      }
    };
    const proc: HostProc = {
      name,
      host: this.hosts[label]!,
      child,
      output,
      async stop(signal: NodeJS.Signals = 'SIGTERM') {
        if (child.exitCode !== null || child.signalCode !== null) return;
        kill(signal);
        const t = setTimeout(() => kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(t);
      },
    };
    this.procs.push(proc);
    return new Promise((resolve, reject) => {
      const ms = opts.timeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        kill('SIGKILL');
        reject(new Error(`${name} not ready in ${ms} ms:\n${output.slice(-20).join('\n')}`));
      }, ms);
      const ready = () => {
        clearTimeout(timer);
        resolve(proc);
      };
      const onLine = (line: string) => {
        if (!line) return;
        output.push(line);
        if (output.length > 400) output.shift();
        if (opts.ready?.test(line)) ready();
      };
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        onLine(line);
        opts.onLine?.(line);
      });
      readline.createInterface({ input: child.stderr! }).on('line', onLine);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code ?? signal}) before ready:\n${output.slice(-20).join('\n')}`));
      });
      child.once('error', reject);
      if (!opts.ready) ready();
    });
  }

  /** A Node entry point of the project (`cmd/<x>.ts`) in `label`'s host; resolves on its `ready` line. */
  node(label: string, name: string, script: string, env: Record<string, string>, ready: RegExp): Promise<HostProc> {
    return this.spawn(label, name, process.execPath, ['--import', 'tsx', script], { env, ready });
  }

  /** Runs `cmd args` in `label`'s host to its end (killed after `timeoutMs`, default 10 s). */
  exec(label: string, cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<Ran> {
    return new Promise((resolve) => {
      const child = execFile(
        'ip',
        this.argv(label, cmd, args),
        { cwd: ROOT, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, encoding: 'utf8' },
        (err, stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
      );
      child.stdin?.end();
    });
  }

  /**
   * SIGKILLs every process of `label`'s host (all of them: its namespace's pids) and waits until none is left; resolves
   * with what was killed (pid and command name).
   */
  async killHost(label: string): Promise<{ pid: number; comm: string }[]> {
    const ns = this.hosts[label]!.ns;
    const killed = new Map<number, string>();
    for (let i = 0; i < 100; i++) {
      const pids = pidsIn(ns);
      if (pids.length === 0) return [...killed].map(([pid, comm]) => ({ pid, comm }));
      for (const pid of pids) {
        let comm = '?';
        try {
          comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {
          /* exited meanwhile */
        }
        try {
          process.kill(pid, 'SIGKILL');
          if (!killed.has(pid)) killed.set(pid, comm);
        } catch {
          /* gone */
        }
      }
      await sleep(50);
    }
    throw new Error(`processes of host ${label} still alive: ${pidsIn(ns).join(', ')}`);
  }

  private deleteNamespaces(): void {
    for (const host of Object.values(this.hosts)) {
      try {
        run('ip', ['netns', 'del', host.ns]);
      } catch {
        /* never made, or gone */
      }
    }
    for (const dir of this.etcDirs) fs.rmSync(dir, { recursive: true, force: true });
    if (this.madeEtcNetns) {
      try {
        fs.rmdirSync(ETC_NETNS);
      } catch {
        /* someone else's folder is in it now */
      }
    }
  }

  /** SIGKILLs every process of every host (the processes started here and theirs), then deletes the hosts. */
  async close(): Promise<void> {
    for (const label of Object.keys(this.hosts)) await this.killHost(label).catch(() => undefined);
    await Promise.all(this.procs.map((p) => p.stop('SIGKILL')));
    this.deleteNamespaces();
  }

  /** Whether anything of these hosts is left: their namespaces, /etc/netns folders, processes. */
  leftovers(): string[] {
    const left: string[] = [];
    const names = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : [];
    for (const host of Object.values(this.hosts)) {
      if (names.includes(host.ns)) left.push(`namespace ${host.ns}`);
      if (fs.existsSync(path.join(ETC_NETNS, host.ns))) left.push(`${ETC_NETNS}/${host.ns}`);
    }
    for (const p of this.procs) if (p.child.exitCode === null && p.child.signalCode === null) left.push(p.name);
    return left;
  }
}

/** What a request made in a host answered; `error`: it failed (no connection, timeout) and `status` is 0. */
export interface HostAnswer {
  status: number;
  /** The URL of the answer (after redirects, when followed). */
  url: string;
  location: string | null;
  text: string;
  error?: string;
}

/** A request for HostFetch; `headOnly`: the status and headers only, the body is not read (a live FLV). */
export interface HostRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Redirects are not followed: a 302 is answered as such. */
  manual?: boolean;
  headOnly?: boolean;
}

// one Node process in the host: a JSON request a line on stdin, its answer a JSON line on stdout
const FETCH_AGENT = `import readline from 'node:readline';
readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const r = JSON.parse(line);
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), r.timeoutMs);
  let answer;
  try {
    const init = { method: r.method, headers: r.headers, body: r.body, redirect: r.manual ? 'manual' : 'follow' };
    const res = await fetch(r.url, { ...init, signal: ctl.signal });
    const text = r.headOnly ? '' : await res.text();
    if (r.headOnly) ctl.abort();
    answer = { status: res.status, url: res.url, location: res.headers.get('location'), text };
  } catch (e) {
    answer = { status: 0, url: r.url, location: null, text: '', error: String(e.cause ?? e) };
  }
  clearTimeout(t);
  process.stdout.write(JSON.stringify({ id: r.id, ...answer }) + '\\n');
}).on('close', () => process.exit(0));
console.log('FETCH READY');`;

/**
 * An HTTP client in a host (the machine's own namespace has no route to the hosts): one Node process there, started
 * once, makes every request (no process started per request).
 */
export class HostFetch {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (a: HostAnswer) => void; reject: (e: Error) => void }>();
  private proc!: HostProc;

  private constructor() {}

  static async start(hosts: Hosts, label: string): Promise<HostFetch> {
    const f = new HostFetch();
    f.proc = await hosts.spawn(label, `fetch${label}`, process.execPath, ['--input-type=module', '-e', FETCH_AGENT], {
      ready: /^FETCH READY$/,
      stdin: true,
      onLine: (line) => {
        if (!line.startsWith('{')) return;
        const { id, ...answer } = JSON.parse(line) as HostAnswer & { id: number };
        f.waiting.get(id)?.resolve(answer);
        f.waiting.delete(id);
      },
    });
    f.proc.child.once('exit', () => {
      for (const w of f.waiting.values()) w.reject(new Error(`the HTTP client in host ${label} exited`));
      f.waiting.clear();
    });
    return f;
  }

  /** Requests `url` from the host; resolves with its answer (`error` set when it failed or `timeoutMs` passed). */
  request(url: string, req: HostRequest = {}, timeoutMs = 10_000): Promise<HostAnswer> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      if (this.proc.child.exitCode !== null || this.proc.child.signalCode !== null)
        return reject(new Error(`the HTTP client in host ${this.proc.host.label} is gone`));
      this.waiting.set(id, { resolve, reject });
      this.proc.child.stdin!.write(`${JSON.stringify({ ...req, id, url, timeoutMs })}\n`);
    });
  }
}
