/**
 * The container's health check (Dockerfile HEALTHCHECK, compose `healthcheck`): exits 0 when the process answers its
 * liveness URL with a 2xx within 3 s, else 1. `node cmd/healthcheck.js [api|media|worker|URL]`: `api` (default) checks
 * `/livez` on RELAY_API_PORT, `media` on RELAY_HTTP_PORT, `worker` on RELAY_WORKER_HEALTH_PORT; a URL as given. Plain node, no dependency, so it
 * costs one short process per check.
 */
const target = process.argv[2] ?? 'api';
const port = (name: string, fallback: number) => Number(process.env[name] || fallback);
const url =
  target === 'api'
    ? `http://127.0.0.1:${port('RELAY_API_PORT', 8090)}/livez`
    : target === 'media'
      ? `http://127.0.0.1:${port('RELAY_HTTP_PORT', 8000)}/livez`
      : target === 'worker'
        ? `http://127.0.0.1:${port('RELAY_WORKER_HEALTH_PORT', 8091)}/livez`
        : target;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  if (!res.ok) console.error(`${url} answered ${res.status}`);
  process.exit(res.ok ? 0 : 1);
} catch (e) {
  console.error(`${url}: ${(e as Error).message}`);
  process.exit(1);
}
