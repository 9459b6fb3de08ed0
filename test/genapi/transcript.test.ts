/**
 * The PhoenixGenApi reference transcript (../shared/spec/phoenix-gen-api-transcript.md §A) for
 * the demo service, frame by frame over raw WebSocket frames, with the service embedded and on
 * a NATS worker. Two rows differ on purpose (protocol/gen_api.md §Decisions): whoami reports the
 * socket's device_id (A6), and a wrong argument type is named instead of Erlang's text (A12).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoService } from '../../src/demo/service.js';
import { useGenApi } from '../support/genapi-app.js';
import { RawClient } from '../support/ws-client.js';

const T = 'gen_api:lobby';
const E = 'phoenix_gen_api';
const resp = (id: unknown, fields: Partial<Record<string, unknown>>) => ({
  request_id: id,
  result: null,
  success: true,
  error: null,
  async: false,
  has_more: false,
  can_retry: false,
  ...fields,
});
const push = (payload: unknown) => ['1', null, T, E, payload];
const reply = (ref: string, status: string, response: unknown) => [
  '1',
  ref,
  T,
  'phx_reply',
  { status, response },
];
const request = (ref: string, payload: object) => ['1', ref, T, E, payload];

describe.each(['embedded', 'nats'] as const)('transcript A (%s)', (mode) => {
  const env = useGenApi(mode, () => [demoService]);
  let client: RawClient;

  beforeAll(async () => {
    client = await RawClient.connect(env.app.wsUrl('user_id=u1&device_id=d1'));
  });
  afterAll(() => client?.close());

  it('A0: join', async () => {
    expect(
      await client.request(['1', '1', T, 'phx_join', { user_id: 'u1', device_id: 'd1' }]),
    ).toEqual(['1', '1', T, 'phx_reply', { status: 'ok', response: {} }]);
  });

  it('A1: echo (sync): push, then reply with the request type', async () => {
    client.send(
      request('2', {
        request_id: 'r-echo',
        service: 'demo',
        request_type: 'echo',
        args: { message: 'hello' },
      }),
    );
    expect(await client.take(2)).toEqual([
      push(resp('r-echo', { result: { message: 'hello' } })),
      reply('2', 'ok', 'echo'),
    ]);
  });

  it('A2: echo_async: ack push, reply, result push', async () => {
    client.send(
      request('3', {
        request_id: 'r-echo-async',
        service: 'demo',
        request_type: 'echo_async',
        args: { message: 'hello async' },
      }),
    );
    expect(await client.take(3)).toEqual([
      push(resp('r-echo-async', { async: true })),
      reply('3', 'ok', 'echo_async'),
      push(resp('r-echo-async', { result: { message: 'hello async' } })),
    ]);
  });

  it('A3: count (stream): init, reply, the nested start Response, chunks 1..3, end', async () => {
    client.send(
      request('4', {
        request_id: 'r-count',
        service: 'demo',
        request_type: 'count',
        args: { to: 3 },
      }),
    );
    expect(await client.take(7)).toEqual([
      push(resp('r-count', { result: 'init', async: true, has_more: true })),
      reply('4', 'ok', 'count'),
      push(
        resp('r-count', {
          result: resp('r-count', { result: 'started' }),
          async: true,
          has_more: true,
        }),
      ),
      push(resp('r-count', { result: 1, async: true, has_more: true })),
      push(resp('r-count', { result: 2, async: true, has_more: true })),
      push(resp('r-count', { result: 3, async: true, has_more: true })),
      push(resp('r-count', { async: true })),
    ]);
  });

  it('A4: notify (none): reply only', async () => {
    client.send(
      request('5', {
        request_id: 'r-notify',
        service: 'demo',
        request_type: 'notify',
        args: { message: 'fire and forget' },
      }),
    );
    expect(await client.next()).toEqual(reply('5', 'ok', 'notify'));
    await client.nothing(200);
  });

  it('A5: fail: Internal Server Error, reply ok', async () => {
    client.send(
      request('6', { request_id: 'r-fail', service: 'demo', request_type: 'fail', args: {} }),
    );
    expect(await client.take(2)).toEqual([
      push(resp('r-fail', { success: false, error: 'Internal Server Error' })),
      reply('6', 'ok', 'fail'),
    ]);
  });

  it('A6 (decision): whoami reports the socket identity, device_id included', async () => {
    client.send(
      request('7', { request_id: 'r-whoami', service: 'demo', request_type: 'whoami', args: {} }),
    );
    expect(await client.take(2)).toEqual([
      push(resp('r-whoami', { result: { user_id: 'u1', device_id: 'd1', roles: [] } })),
      reply('7', 'ok', 'whoami'),
    ]);
  });

  it('A7 (decision): the socket device_id wins over the payload', async () => {
    client.send(
      request('8', {
        request_id: 'r-whoami-dev',
        service: 'demo',
        request_type: 'whoami',
        args: {},
        device_id: 'payload-dev',
      }),
    );
    expect(await client.take(2)).toEqual([
      push(resp('r-whoami-dev', { result: { user_id: 'u1', device_id: 'd1', roles: [] } })),
      reply('8', 'ok', 'whoami'),
    ]);
  });

  it('A8: slow under the timeout', async () => {
    client.send(
      request('9', {
        request_id: 'r-slow',
        service: 'demo',
        request_type: 'slow',
        args: { ms: 50 },
      }),
    );
    expect(await client.take(2)).toEqual([
      push(resp('r-slow', { result: { slept: 50 } })),
      reply('9', 'ok', 'slow'),
    ]);
  });

  it('A9: slow over the 1000 ms timeout: Internal Server Error after about a second', async () => {
    const started = performance.now();
    client.send(
      request('10', {
        request_id: 'r-slow-timeout',
        service: 'demo',
        request_type: 'slow',
        args: { ms: 1500 },
      }),
    );
    expect(await client.take(2, 10_000)).toEqual([
      push(resp('r-slow-timeout', { success: false, error: 'Internal Server Error' })),
      reply('10', 'ok', 'slow'),
    ]);
    // The error (not the handler's late result) shows the 1000 ms timeout fired; and not before it.
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
  });

  it('A10: a missing required field', async () => {
    client.send(
      request('11', { request_id: 'r-no-type', service: 'demo', args: { message: 'x' } }),
    );
    expect(await client.take(2)).toEqual([
      push(
        resp('r-no-type', {
          success: false,
          error: 'Invalid request: Missing required fields: request_type',
        }),
      ),
      reply('11', 'error', 'Missing required fields: request_type'),
    ]);
  });

  it('A11: an extra argument', async () => {
    client.send(
      request('12', {
        request_id: 'r-extra',
        service: 'demo',
        request_type: 'echo',
        args: { message: 'hi', extra: 1 },
      }),
    );
    expect(await client.take(2)).toEqual([
      push(resp('r-extra', { success: false, error: 'Request processing failed' })),
      reply('12', 'error', 'extra arguments for "echo", extra: ["extra"]'),
    ]);
  });

  it('A12 (decision): a wrong argument type is named', async () => {
    client.send(
      request('13', {
        request_id: 'r-wrongtype',
        service: 'demo',
        request_type: 'echo',
        args: { message: 123 },
      }),
    );
    expect(await client.take(2)).toEqual([
      push(resp('r-wrongtype', { success: false, error: 'Request processing failed' })),
      reply('13', 'error', 'invalid argument type for "message", expected :string, got 123'),
    ]);
  });

  it('A13: a missing argument', async () => {
    client.send(
      request('14', {
        request_id: 'r-missing-arg',
        service: 'demo',
        request_type: 'echo',
        args: {},
      }),
    );
    expect(await client.take(2)).toEqual([
      push(resp('r-missing-arg', { success: false, error: 'Request processing failed' })),
      reply('14', 'error', 'missing or nil argument "message" in "echo"'),
    ]);
  });

  it('A14: an unknown request type', async () => {
    client.send(
      request('15', {
        request_id: 'r-unknown',
        service: 'demo',
        request_type: 'no_such_fn',
        args: { message: 'x' },
      }),
    );
    expect(await client.take(2)).toEqual([
      push(
        resp('r-unknown', {
          success: false,
          error: 'unsupported function: no_such_fn version latest',
        }),
      ),
      reply('15', 'ok', 'no_such_fn'),
    ]);
  });

  it('A15: an unknown version', async () => {
    client.send(
      request('16', {
        request_id: 'r-version',
        service: 'demo',
        request_type: 'echo',
        args: { message: 'x' },
        version: '9.9.9',
      }),
    );
    expect(await client.take(2)).toEqual([
      push(
        resp('r-version', { success: false, error: 'unsupported function: echo version 9.9.9' }),
      ),
      reply('16', 'ok', 'echo'),
    ]);
  });

  it('A16: a socket without user_id: Authentication required', async () => {
    const anon = await RawClient.connect(env.app.wsUrl('device_id=d2'));
    await anon.join(T, '1');
    anon.send(
      request('2', {
        request_id: 'r-anon',
        service: 'demo',
        request_type: 'echo',
        args: { message: 'hi' },
      }),
    );
    expect(await anon.take(2)).toEqual([
      push(resp('r-anon', { success: false, error: 'Authentication required' })),
      reply('2', 'error', 'Authentication required'),
    ]);
    anon.close();
  });

  it('A17: a payload user_id cannot spoof the socket identity', async () => {
    client.send(
      request('17', {
        request_id: 'r-spoof',
        service: 'demo',
        request_type: 'whoami',
        args: {},
        user_id: 'evil',
      }),
    );
    expect(await client.take(2)).toEqual([
      push(resp('r-spoof', { result: { user_id: 'u1', device_id: 'd1', roles: [] } })),
      reply('17', 'ok', 'whoami'),
    ]);
  });
});
