/**
 * An SDK worker's micro service stops by itself when one of its subscriptions ends without a
 * drain (here: the server denies the permission-check subject), and `running.closed` says so with
 * WorkerClosedError: an end nobody asked for, so `runWorker` exits and a supervisor restarts it.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineService, fn } from '../../src/worker/define.js';
import { WorkerClosedError } from '../../src/worker/lifecycle.js';
import { serve } from '../../src/worker/nats.js';
import { NatsServer } from '../support/nats.js';

describe('a worker whose endpoint subscription is refused', () => {
  let nats: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await NatsServer.start({
      config: `authorization { users = [
        { user: worker, password: worker-pass, permissions: {
            subscribe: { allow: ">", deny: "genapi.perm.>" } } }
      ] }`,
    });
    nc = await connect({ servers: nats.url, user: 'worker', pass: 'worker-pass' });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  it('stops: closed rejects with WorkerClosedError naming the subscription, state stopped', async () => {
    const service = defineService({
      name: 'denied',
      functions: { guarded: fn({ authorize: () => true, handler: () => 'ok' }) },
    });
    const running = await serve(service, { nats: nc, pushOnStart: false });
    const error = await running.closed.then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(WorkerClosedError);
    expect((error as Error).message).toMatch(/stopped the service: .*Permissions Violation/i);
    expect(running.state).toBe('stopped');
    // The connection itself is fine: only the service ended.
    expect(nc.isClosed()).toBe(false);
  });
});
