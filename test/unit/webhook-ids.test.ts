import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WebhookOutbox, type WebhookEvent } from '../../src/webhooks/index.js';
import { RecordFileAnnouncer } from '../../src/worker/record-files.js';
import { taskDir } from '../../src/records/index.js';

/** A queue stand-in that, like BullMQ, keeps the first job of a job id and ignores later adds of it. */
function fakeQueue() {
  const jobs = new Map<string, WebhookEvent>();
  const adds: WebhookEvent[] = [];
  return {
    jobs,
    adds,
    add: async (_name: string, ev: WebhookEvent, opts?: { jobId?: string }) => {
      adds.push(ev);
      if (!jobs.has(opts!.jobId!)) jobs.set(opts!.jobId!, ev);
      return {} as never;
    },
  };
}

const ch = { channelId: 'ch_0123456789abcdef0123', sdkAppId: '1400000001' };

describe('webhook event ids', () => {
  it("a recording file's record.file_ready has one id however often it is announced; it is the job id", async () => {
    const q = fakeQueue();
    const out = new WebhookOutbox(q);
    const file = { recordTaskId: 7, name: 'a-0001.mp4', format: 'mp4', bytes: 10 };
    await out.emit('record.file_ready', ch, file);
    await out.emit('record.file_ready', ch, { ...file });
    await out.emit('record.file_ready', ch, { ...file, name: 'a-0002.mp4' });
    await out.emit('record.file_ready', ch, { ...file, recordTaskId: 8 });
    await out.emit('record.file_ready', { ...ch, sdkAppId: '1400000002' }, file);
    expect(q.adds[0]!.eventId).toBe(q.adds[1]!.eventId);
    expect(new Set(q.adds.map((e) => e.eventId)).size).toBe(4);
    expect(q.jobs.size).toBe(4);
    expect(q.adds[0]!.eventId).toMatch(/^ev_[0-9a-f]{20}$/);
  });

  it('other events get a new id each time', async () => {
    const q = fakeQueue();
    const out = new WebhookOutbox(q);
    await out.emit('push.started', ch, { state: 'live' });
    await out.emit('push.started', ch, { state: 'live' });
    expect(q.adds[0]!.eventId).not.toBe(q.adds[1]!.eventId);
    expect(q.jobs.size).toBe(2);
  });

  it('a worker restart or handover announcing the same files again queues each file once', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'relay-rec-'));
    try {
      await fs.mkdir(taskDir(dir, ch.sdkAppId, 3), { recursive: true });
      // two MP4s with media (moov + mdat boxes) and one a full disk left with its header only
      const boxed = (type: string, payload: Buffer) => {
        const h = Buffer.alloc(8);
        h.writeUInt32BE(8 + payload.length, 0);
        h.write(type, 4, 'latin1');
        return Buffer.concat([h, payload]);
      };
      const media = Buffer.concat([
        boxed('ftyp', Buffer.alloc(8)),
        boxed('moov', Buffer.alloc(8)),
        boxed('mdat', Buffer.alloc(64, 1)),
      ]);
      for (const n of ['r-1.mp4', 'r-2.mp4']) await fs.writeFile(path.join(taskDir(dir, ch.sdkAppId, 3), n), media);
      await fs.writeFile(path.join(taskDir(dir, ch.sdkAppId, 3), 'r-3.mp4'), boxed('ftyp', Buffer.alloc(8)));
      const q = fakeQueue();
      const out = new WebhookOutbox(q);
      const lifecycle = {
        recordFileReady: (c: typeof ch, f: Record<string, unknown>) => out.emit('record.file_ready', c, f),
      };
      await new RecordFileAnnouncer(lifecycle, dir).announce({ ...ch, recordTaskId: 3 }, true);
      await new RecordFileAnnouncer(lifecycle, dir).announce({ ...ch, recordTaskId: 3 }, true);
      expect(q.adds).toHaveLength(4);
      expect([...q.jobs.values()].map((e) => e.data.name)).toEqual(['r-1.mp4', 'r-2.mp4']);
      // the file without media was deleted, never announced
      expect((await fs.readdir(taskDir(dir, ch.sdkAppId, 3))).sort()).toEqual(['r-1.mp4', 'r-2.mp4']);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
