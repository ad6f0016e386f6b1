import type { FastifyPluginAsync } from 'fastify';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { safeEqual } from '../auth/index.js';

/** The path of the job dashboard. */
export const DASHBOARD_PATH = '/admin/queues';

/**
 * Whether an Authorization header carries the admin token: `Bearer <token>`, or Basic with the token as password
 * (browsers).
 */
export function isAdmin(header: string | undefined, token: string): boolean {
  const bearer = /^Bearer\s+(\S+)$/.exec(header ?? '');
  if (bearer) return safeEqual(bearer[1]!, token);
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/.exec(header ?? '');
  if (!basic) return false;
  const decoded = Buffer.from(basic[1]!, 'base64').toString();
  return safeEqual(decoded.slice(decoded.indexOf(':') + 1), token);
}

/** Bull Board for the relay's queues at /admin/queues, behind the admin credential (browsers are asked for it). */
export function dashboard(queues: Queue[], adminToken: string | null): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRequest', async (req, reply) => {
      if (adminToken && isAdmin(req.headers.authorization, adminToken)) return;
      await reply
        .status(401)
        .header('WWW-Authenticate', 'Basic realm="relay admin", charset="UTF-8"')
        .send({
          code: 1001,
          message: adminToken ? 'admin credential missing or wrong' : 'the admin API is disabled',
          hint: 'user: admin, password: RELAY_ADMIN_TOKEN',
        });
    });
    const adapter = new FastifyAdapter();
    createBullBoard({
      queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: false })),
      serverAdapter: adapter,
    });
    adapter.setBasePath(DASHBOARD_PATH);
    await app.register(adapter.registerPlugin(), { prefix: DASHBOARD_PATH });
  };
}
