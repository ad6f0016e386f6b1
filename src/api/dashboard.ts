import type { FastifyPluginAsync } from 'fastify';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { isAdmin } from '../auth/index.js';

/** The path of the job dashboard. */
export const DASHBOARD_PATH = '/admin/queues';

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
