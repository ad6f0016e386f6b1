import type { FastifyPluginAsync } from 'fastify';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { guardAdmin, type CredentialThrottle } from '../auth/throttle.js';
import { RelayError } from '../errors/index.js';

/** The path of the job dashboard. */
export const DASHBOARD_PATH = '/admin/queues';

/**
 * Bull Board for the relay's queues at /admin/queues, behind the admin credential (browsers are asked for it); failed
 * credentials are throttled per client address (`throttle`: 1001 with HTTP 429).
 */
export function dashboard(
  queues: Queue[],
  adminToken: string | null,
  throttle: CredentialThrottle,
): FastifyPluginAsync {
  return async (app) => {
    app.addHook('onRequest', async (req, reply) => {
      const header = req.headers.authorization;
      const wrong = new RelayError(
        1001,
        adminToken ? 'admin credential missing or wrong' : 'the admin API is disabled',
        {
          hint: 'user: admin, password: RELAY_ADMIN_TOKEN',
        },
      );
      const refused = await guardAdmin(throttle, req.ip, header, adminToken, wrong).then(
        () => null,
        (e: RelayError) => e,
      );
      if (!refused) return;
      if (refused.status === 429) throw refused; // the API's error handler adds Retry-After
      await reply
        .status(401)
        .header('WWW-Authenticate', 'Basic realm="relay admin", charset="UTF-8"')
        .send(refused.toBody());
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
