/**
 * Protocol spec §8 J (cases 86–102) and §6: the LongPoll transport, driven by raw `fetch`
 * against `/socket/longpoll` (window 1 s). Also the gateway's documented LongPoll choices:
 * `{`-lines are JSON, undecodable lines are HTTP 400, oversize bodies 413, custom refusals keep
 * their HTTP status, a throwing connect hook is an empty 500, server binary is dropped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  binaryPushLine,
  collect,
  collectUntil,
  lp,
  openSession,
  poll,
  post,
  postBody,
  type PollResponse,
} from '../support/longpoll-client.js';
import { manualClock, type ManualClock } from '../support/clock.js';
import { parkedPolls, releaseJoin, startTestApp, type TestApp } from '../support/test-app.js';
import { until } from '../support/wait.js';
import { RawClient } from '../support/ws-client.js';

const WINDOW_MS = 1_000;
const OK = { status: 'ok', response: {} };
const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'access-control-allow-origin': '*',
} as const;

let app: TestApp;
let base: string;
beforeAll(async () => {
  app = await startTestApp();
  base = app.httpUrl('/socket/longpoll');
});
afterAll(() => app.close());

/** Asserts the HTTP status and the JSON response headers of §6.2. */
function expectJson(res: PollResponse, http = 200): void {
  expect(res.http).toBe(http);
  for (const [name, value] of Object.entries(JSON_HEADERS))
    expect(res.headers.get(name), name).toBe(value);
}

/** The `messages` of a 200 poll, each checked to be a string and parsed. */
function messagesOf(res: PollResponse): unknown[] {
  expect(res.body?.status).toBe(200);
  const messages = res.body?.messages ?? [];
  for (const message of messages) expect(typeof message).toBe('string');
  return messages.map((message) => JSON.parse(message) as unknown);
}

/** Opens a session and joins `topic` with join_ref = ref = `joinRef`, draining the join reply. */
async function joined(
  topic: string,
  joinRef: string,
  payload: unknown = {},
  query = 'vsn=2.0.0',
): Promise<string> {
  const token = await openSession(base, query);
  const res = await post(
    base,
    token,
    [JSON.stringify([joinRef, joinRef, topic, 'phx_join', payload])],
    query,
  );
  expect(res.body).toEqual({ status: 200 });
  // Only for topics that push nothing after joining: the first poll must hold just the reply.
  expect(await collect(base, token, 1)).toEqual([
    [joinRef, joinRef, topic, 'phx_reply', expect.objectContaining({ status: 'ok' })],
  ]);
  return token;
}

describe('§J LongPoll', () => {
  it('86: a GET without a token creates a session: 200 {"status":410,"token":T,"messages":[]} with the JSON headers', async () => {
    const res = await lp(`${base}?vsn=2.0.0`);
    expectJson(res);
    expect(res.body).toEqual({ status: 410, token: expect.any(String) as unknown, messages: [] });
    expect(res.body?.token).not.toBe('');
  });

  it('88: an ndjson POST is answered {"status":200}; the next GET carries every frame, as strings, in order', async () => {
    const token = await openSession(base);
    const res = await post(base, token, [
      '["1","1","room:afterjoin","phx_join",{}]',
      '[null,"2","phoenix","heartbeat",{}]',
      '["1","3","room:afterjoin","push_then_reply",{"a":1}]',
    ]);
    expectJson(res);
    expect(res.body).toEqual({ status: 200 });
    const got = await poll(base, token);
    expectJson(got);
    expect(got.body?.token).toBe(token);
    expect(messagesOf(got)).toEqual([
      ['1', '1', 'room:afterjoin', 'phx_reply', OK],
      ['1', null, 'room:afterjoin', 'welcome', { assigns_token: null, params: { vsn: '2.0.0' } }],
      [null, '2', 'phoenix', 'phx_reply', OK],
      ['1', null, 'room:afterjoin', 'pushed', { a: 1 }],
      ['1', '3', 'room:afterjoin', 'phx_reply', { status: 'ok', response: { after: 'push' } }],
    ]);
  });

  it('88b: the POST is {"status":200} even when the channel reply is an error; replies only come with GETs', async () => {
    const token = await openSession(base);
    const res = await post(base, token, [
      '["9","9","room:deny","phx_join",{}]',
      '["3","4","room:never","echo",{}]',
    ]);
    expect(res.body).toEqual({ status: 200 });
    expect(await collect(base, token, 2)).toEqual([
      [
        '9',
        '9',
        'room:deny',
        'phx_reply',
        { status: 'error', response: { reason: 'unauthorized' } },
      ],
      [
        null,
        '4',
        'room:never',
        'phx_reply',
        { status: 'error', response: { reason: 'unmatched topic' } },
      ],
    ]);
  });

  it('89: a parked GET returns at once (200) when a message is produced during its wait', async () => {
    const token = await joined('room:lp89', '1');
    const parked = poll(base, token);
    await until(() => parkedPolls(app.gateway) === 1, 'the GET parked');
    app.gateway.broadcast('room:lp89', 'news', { n: 1 });
    const res = await parked;
    expectJson(res);
    // A window's answer would be a 204 without messages: this one is the broadcast.
    expect(messagesOf(res)).toEqual([[null, null, 'room:lp89', 'news', { n: 1 }]]);
    expect(res.body?.token).toBe(token);
  });

  it('90: the token works as ?token= for GET and POST; a header wins over a bogus param', async () => {
    const token = await openSession(base);
    const inQuery = `vsn=2.0.0&token=${encodeURIComponent(token)}`;
    const posted = await lp(`${base}?${inQuery}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: '[null,"q1","phoenix","heartbeat",{}]',
    });
    expect(posted.body).toEqual({ status: 200 });
    const polled = await lp(`${base}?${inQuery}`);
    expect(polled.body?.token).toBe(token);
    expect(messagesOf(polled)).toEqual([[null, 'q1', 'phoenix', 'phx_reply', OK]]);

    const bogus = 'vsn=2.0.0&token=bogus';
    const postedBoth = await lp(`${base}?${bogus}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', 'x-phoenix-longpoll-token': token },
      body: '[null,"q2","phoenix","heartbeat",{}]',
    });
    expect(postedBoth.body).toEqual({ status: 200 });
    const polledBoth = await lp(`${base}?${bogus}`, {
      headers: { 'x-phoenix-longpoll-token': token },
    });
    expect(polledBoth.body?.token).toBe(token);
    expect(messagesOf(polledBoth)).toEqual([[null, 'q2', 'phoenix', 'phx_reply', OK]]);
  });

  it('90b: the 1.8 client\'s first GET ends in a stray "&" (token=null serializes to nothing); params are unaffected', async () => {
    const query = 'a=b&vsn=2.0.0&';
    const token = await openSession(base, query);
    await post(
      base,
      token,
      ['["1","1","room:afterjoin","phx_join",{}]'],
      `${query}token=${encodeURIComponent(token)}`,
    );
    const [, welcome] = await collect(base, token, 2);
    expect(welcome).toEqual([
      '1',
      null,
      'room:afterjoin',
      'welcome',
      { assigns_token: null, params: { a: 'b', vsn: '2.0.0' } },
    ]);
  });

  it('88c: ndjson lines may end in \\r\\n', async () => {
    const token = await openSession(base);
    const res = await postBody(
      base,
      token,
      '[null,"r1","phoenix","heartbeat",{}]\r\n[null,"r2","phoenix","heartbeat",{}]',
    );
    expect(res.body).toEqual({ status: 200 });
    expect(await collect(base, token, 2)).toEqual([
      [null, 'r1', 'phoenix', 'phx_reply', OK],
      [null, 'r2', 'phoenix', 'phx_reply', OK],
    ]);
  });

  it('91: a POST with a bogus or missing token is {"status":410}', async () => {
    const bogus = await postBody(base, 'bogus', '[null,"1","phoenix","heartbeat",{}]');
    expectJson(bogus);
    expect(bogus.body).toEqual({ status: 410 });
    const missing = await postBody(base, null, '[null,"1","phoenix","heartbeat",{}]');
    expectJson(missing);
    expect(missing.body).toEqual({ status: 410 });
  });

  it('92: a GET with a bogus token creates a new session with a new token', async () => {
    const res = await lp(`${base}?vsn=2.0.0`, { headers: { 'x-phoenix-longpoll-token': 'bogus' } });
    expectJson(res);
    expect(res.body).toEqual({ status: 410, token: expect.any(String) as unknown, messages: [] });
    const token = res.body!.token!;
    expect(token).not.toBe('bogus');
    expect((await post(base, token, ['[null,"n1","phoenix","heartbeat",{}]'])).body).toEqual({
      status: 200,
    });
    expect(await collect(base, token, 1)).toEqual([[null, 'n1', 'phoenix', 'phx_reply', OK]]);
  });

  it('93: a refused connect, an unsupported vsn or a disallowed Origin is HTTP 200 {"status":403}', async () => {
    for (const res of [
      await lp(`${base}?reject=true&vsn=2.0.0`),
      await lp(`${base}?vsn=9.0.0`),
      await lp(`${base}?vsn=2.0.0`, { headers: { origin: 'http://evil.example' } }),
    ]) {
      expectJson(res);
      expect(res.body).toEqual({ status: 403 });
    }
    const allowed = await lp(`${base}?vsn=2.0.0`, {
      headers: { origin: 'http://allowed.example' },
    });
    expect(allowed.body).toMatchObject({ status: 410 });
  });

  it('93b (gateway choice): a custom refusal (status=429) answers HTTP 429 with body {"status":403} and its headers', async () => {
    const res = await lp(`${base}?status=429&vsn=2.0.0`);
    expectJson(res, 429);
    expect(res.body).toEqual({ status: 403 });
    expect(res.headers.get('retry-after')).toBe('3');
  });

  it('93c (gateway choice): a connect hook that throws answers HTTP 500 with an empty body', async () => {
    const res = await lp(`${base}?crash=true&vsn=2.0.0`);
    expect(res.http).toBe(500);
    expect(res.text).toBe('');
  });

  it('94: X-Phoenix-AuthToken on the session-creating GET becomes the auth token', async () => {
    const token = await openSession(base, 'vsn=2.0.0', { 'x-phoenix-authtoken': 'raw-token' });
    await post(base, token, ['["1","1","room:afterjoin","phx_join",{}]']);
    const [reply, welcome] = await collect(base, token, 2);
    expect(reply).toEqual(['1', '1', 'room:afterjoin', 'phx_reply', OK]);
    expect(welcome).toEqual([
      '1',
      null,
      'room:afterjoin',
      'welcome',
      { assigns_token: 'raw-token', params: { vsn: '2.0.0' } },
    ]);
  });

  it('94b: on a mount with authToken: false, X-Phoenix-AuthToken is ignored', async () => {
    const noauth = app.httpUrl('/noauth/longpoll');
    const token = await openSession(noauth, 'vsn=2.0.0', { 'x-phoenix-authtoken': 'raw-token' });
    await post(noauth, token, ['["1","1","room:afterjoin","phx_join",{}]']);
    const [, welcome] = await collect(noauth, token, 2);
    expect(welcome).toEqual([
      '1',
      null,
      'room:afterjoin',
      'welcome',
      { assigns_token: null, params: { vsn: '2.0.0' } },
    ]);
  });

  it('95: OPTIONS answers the CORS preflight', async () => {
    const res = await lp(`${base}?vsn=2.0.0`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://allowed.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'x-phoenix-longpoll-token, content-type',
      },
    });
    expect(res.http).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers.get('access-control-allow-headers')).toBe(
      'x-phoenix-longpoll-token, content-type',
    );
    expect(res.headers.get('access-control-allow-methods')).toBe('get, post, options');
    expect(res.headers.get('access-control-max-age')).toBe('3600');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('96: any other method (PUT, DELETE, PATCH) is HTTP 400', async () => {
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const res = await lp(`${base}?vsn=2.0.0`, {
        method,
        body: method === 'DELETE' ? undefined : 'x',
      });
      expect(res.http, method).toBe(400);
      expect(res.text, method).toBe('');
    }
  });

  it('97: an ndjson line of standard base64 is a binary push (kind 0) and is dispatched', async () => {
    const token = await joined('room:reply', '10');
    const line = binaryPushLine(
      '10',
      'b1',
      'room:reply',
      'status_only',
      Uint8Array.of(0xff, 0xfe, 0xfd, 0xfc),
    );
    expect(line).toMatch(/[+/]/); // the standard alphabet, not url-safe
    expect(line).toMatch(/=$/); // padded, as btoa pads
    const res = await post(base, token, [line]);
    expectJson(res);
    expect(res.body).toEqual({ status: 200 });
    expect(await collect(base, token, 1)).toEqual([['10', 'b1', 'room:reply', 'phx_reply', OK]]);
  });

  it('97b (gateway choice): an undecodable line closes the session and the POST answers HTTP 400 {"status":400}', async () => {
    for (const badLine of ['%%% not base64 %%%', '{"topic":"room:x"}', '[1,2]']) {
      const token = await openSession(base);
      const res = await post(base, token, ['[null,"ok1","phoenix","heartbeat",{}]', badLine]);
      expectJson(res, 400);
      expect(res.body).toMatchObject({ status: 400 });
      // The session is gone: POST is 410, GET starts a new session.
      expect((await post(base, token, ['[null,"2","phoenix","heartbeat",{}]'])).body).toEqual({
        status: 410,
      });
      const again = await poll(base, token);
      expect(again.body).toEqual({
        status: 410,
        token: expect.any(String) as unknown,
        messages: [],
      });
      expect(again.body?.token).not.toBe(token);
    }
  });

  it('98: only the first 100 lines of an ndjson batch are dispatched', async () => {
    const token = await openSession(base);
    const lines = Array.from({ length: 101 }, (_, i) =>
      JSON.stringify([null, String(i + 1), 'phoenix', 'heartbeat', {}]),
    );
    const res = await post(base, token, lines);
    expect(res.body).toEqual({ status: 200 });
    const got = await poll(base, token);
    const refs = messagesOf(got).map((frame) => (frame as unknown[])[1]);
    expect(refs).toEqual(Array.from({ length: 100 }, (_, i) => String(i + 1)));
    // Line 101 was not held back for later either.
    await post(base, token, ['[null,"last","phoenix","heartbeat",{}]']);
    expect(await collect(base, token, 1)).toEqual([[null, 'last', 'phoenix', 'phx_reply', OK]]);
  });

  it('99: a POST without the ndjson content type is one frame', async () => {
    const token = await openSession(base);
    await post(base, token, ['["1","1","room:afterjoin","phx_join",{}]']);
    expect(await collect(base, token, 2)).toEqual([
      ['1', '1', 'room:afterjoin', 'phx_reply', OK],
      ['1', null, 'room:afterjoin', 'welcome', expect.anything()],
    ]);
    const res = await postBody(
      base,
      token,
      '["1","5","room:afterjoin","echo",{"q":1}]',
      'application/json',
    );
    expectJson(res);
    expect(res.body).toEqual({ status: 200 });
    expect(await collect(base, token, 1)).toEqual([
      ['1', '5', 'room:afterjoin', 'phx_reply', { status: 'ok', response: { q: 1 } }],
    ]);
    // Two lines without the ndjson type are one (invalid) frame, not two.
    const two = await postBody(
      base,
      token,
      '["1","6","room:afterjoin","echo",{}]\n["1","7","room:afterjoin","echo",{}]',
      'text/plain',
    );
    expect(two.http).toBe(400);
    expect(two.body).toMatchObject({ status: 400 });
  });

  it('101: a dispatch not acknowledged within the window answers {"status":408}; the remaining lines are skipped', async () => {
    const token = await openSession(base);
    const started = performance.now();
    const res = await post(base, token, [
      '["s1","s1","room:slowjoin","phx_join",{"hold":"j-101"}]',
      '[null,"h-after","phoenix","heartbeat",{}]',
    ]);
    expectJson(res);
    // 408, not 200: the window (a real 1 s timer) answered; the join is held until released
    // below. A lower bound only: the POST waited at least the window.
    expect(res.body).toEqual({ status: 408 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(WINDOW_MS - 100);
    releaseJoin('j-101');
    const got = await collectUntil(base, token, (messages) => messages.length >= 1);
    expect(got).toEqual([
      ['s1', 's1', 'room:slowjoin', 'phx_reply', { status: 'ok', response: { held: 'j-101' } }],
    ]);
    // The heartbeat behind the join was never dispatched.
    await post(base, token, ['[null,"h-check","phoenix","heartbeat",{}]']);
    expect(await collect(base, token, 1)).toEqual([[null, 'h-check', 'phoenix', 'phx_reply', OK]]);
  });

  it('101b: a line queued behind a join that settles within the window is dispatched after it (200)', async () => {
    const token = await openSession(base);
    const res = await post(base, token, [
      '["s2","s2","room:slowjoin","phx_join",{"ms":300}]',
      '["s2","e1","room:slowjoin","echo",{"after":"join"}]',
    ]);
    expect(res.body).toEqual({ status: 200 });
    expect(await collect(base, token, 2)).toEqual([
      ['s2', 's2', 'room:slowjoin', 'phx_reply', { status: 'ok', response: { slept: 300 } }],
      ['s2', 'e1', 'room:slowjoin', 'phx_reply', { status: 'ok', response: { after: 'join' } }],
    ]);
  });

  it('102: server binary frames are never sent on LongPoll (dropped); the JSON frames around them still arrive', async () => {
    // A topic of its own: bin_bcast goes to every subscriber, and sessions of earlier tests may
    // still be subscribed to shared topics (their drops would count too).
    const token = await joined('room:lp102', '10');
    const droppedBefore = app.gateway.stats.droppedFrames;
    const res = await post(base, token, [
      binaryPushLine('10', 'b2', 'room:lp102', 'bin', Uint8Array.of(1, 2, 3)),
      '["10","t1","room:lp102","bin",{"j":1}]',
      '[null,"h1","phoenix","heartbeat",{}]',
    ]);
    expect(res.body).toEqual({ status: 200 });
    const got = await poll(base, token);
    expectJson(got);
    // The binary line reached the binary branch of the handler: bin_push, bin_bcast and the
    // binary reply were produced and dropped (three frames), and none of them was sent.
    expect(messagesOf(got)).toEqual([
      ['10', 't1', 'room:lp102', 'phx_reply', { status: 'ok', response: { j: 1 } }],
      [null, 'h1', 'phoenix', 'phx_reply', OK],
    ]);
    expect(app.gateway.stats.droppedFrames - droppedBefore).toBe(3);
    // The session is still healthy.
    await post(base, token, ['["10","e2","room:lp102","echo",{"still":"ok"}]']);
    expect(await collect(base, token, 1)).toEqual([
      ['10', 'e2', 'room:lp102', 'phx_reply', { status: 'ok', response: { still: 'ok' } }],
    ]);
  });

  it('heartbeats over LongPoll are answered with join_ref null', async () => {
    const token = await openSession(base);
    await post(base, token, [
      '["5","hb1","phoenix","heartbeat",{}]',
      '[null,"hb2","phoenix","heartbeat",{}]',
    ]);
    expect(await collect(base, token, 2)).toEqual([
      [null, 'hb1', 'phoenix', 'phx_reply', OK],
      [null, 'hb2', 'phoenix', 'phx_reply', OK],
    ]);
  });

  it('gateway.disconnect(id) ends a LongPoll session: the parked GET gets {"status":410}, the next POST 410', async () => {
    const query = 'user_id=lpdc&vsn=2.0.0';
    const token = await openSession(base, query);
    const parked = poll(base, token, query);
    await until(() => parkedPolls(app.gateway) === 1, 'the GET parked');
    expect(app.gateway.disconnect('user:lpdc')).toBe(1);
    const res = await parked;
    expectJson(res);
    expect(res.body).toEqual({ status: 410 });
    const posted = await post(base, token, ['[null,"1","phoenix","heartbeat",{}]'], query);
    expectJson(posted);
    expect(posted.body).toEqual({ status: 410 });
    expect(app.gateway.disconnect('user:lpdc')).toBe(0);
  });

  it('V1 over LongPoll (vsn=1.0.0): application/json POSTs carry one V1 object; replies come back as V1 objects', async () => {
    const query = 'vsn=1.0.0';
    const token = await openSession(base, query);
    const send = (frame: object) =>
      postBody(base, token, JSON.stringify(frame), 'application/json', query);
    expect(
      (await send({ topic: 'room:v1', event: 'phx_join', payload: { a: 1 }, ref: '1' })).body,
    ).toEqual({ status: 200 });
    expect(
      (await send({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '2' })).body,
    ).toEqual({ status: 200 });
    expect(
      (await send({ topic: 'room:v1', event: 'push_then_reply', payload: { p: 1 }, ref: '3' }))
        .body,
    ).toEqual({ status: 200 });
    const got = await collect(base, token, 4, 5_000);
    expect(got).toEqual([
      { topic: 'room:v1', event: 'phx_reply', payload: OK, ref: '1' },
      { topic: 'phoenix', event: 'phx_reply', payload: OK, ref: '2' },
      { topic: 'room:v1', event: 'pushed', payload: { p: 1 }, ref: null },
      {
        topic: 'room:v1',
        event: 'phx_reply',
        payload: { status: 'ok', response: { after: 'push' } },
        ref: '3',
      },
    ]);
    // Gateway choice: an ndjson line starting with "{" is a JSON text frame too.
    const ndjson = await post(
      base,
      token,
      [
        JSON.stringify({ topic: 'room:v1', event: 'echo', payload: { n: 1 }, ref: '4' }),
        JSON.stringify({ topic: 'room:v1', event: 'echo', payload: { n: 2 }, ref: '5' }),
      ],
      query,
    );
    expect(ndjson.body).toEqual({ status: 200 });
    expect(await collect(base, token, 2)).toEqual([
      {
        topic: 'room:v1',
        event: 'phx_reply',
        payload: { status: 'ok', response: { n: 1 } },
        ref: '4',
      },
      {
        topic: 'room:v1',
        event: 'phx_reply',
        payload: { status: 'ok', response: { n: 2 } },
        ref: '5',
      },
    ]);
  });
});

describe('§J LongPoll body limit (gateway choice)', () => {
  let small: TestApp;
  let smallBase: string;
  beforeAll(async () => {
    small = await startTestApp({
      socket: { longpoll: { windowMs: WINDOW_MS, maxBodyBytes: 512 } },
    });
    smallBase = small.httpUrl('/socket/longpoll');
  });
  afterAll(() => small.close());

  it('a POST body larger than maxBodyBytes is HTTP 413; a smaller one is accepted', async () => {
    const token = await openSession(smallBase);
    const big = await post(smallBase, token, [
      JSON.stringify([null, '1', 'phoenix', 'heartbeat', { pad: 'x'.repeat(600) }]),
    ]);
    expectJson(big, 413);
    expect(big.body).toEqual({ status: 413 });
    const fresh = await openSession(smallBase);
    const fits = await post(smallBase, fresh, ['[null,"2","phoenix","heartbeat",{}]']);
    expect(fits.body).toEqual({ status: 200 });
    expect(await collect(smallBase, fresh, 1)).toEqual([[null, '2', 'phoenix', 'phx_reply', OK]]);
  });
});

describe('§J LongPoll slow consumer: maxBufferedBytesHard counts UTF-8 bytes', () => {
  const LIMIT = 4_096;
  let slow: TestApp;
  let slowBase: string;
  beforeAll(async () => {
    // The hard limit drops at once (the soft maxBufferedBytes waits slowConsumerGraceMs first:
    // test/fuzz/client-bounds.test.ts), so the byte counting is visible on the write itself.
    slow = await startTestApp({
      socket: {
        maxBufferedBytes: LIMIT,
        maxBufferedBytesHard: LIMIT,
        longpoll: { windowMs: WINDOW_MS },
      },
    });
    slowBase = slow.httpUrl('/socket/longpoll');
  });
  afterAll(() => slow.close());

  /** Joins `topic` on a new session (draining the join reply) and returns its token. */
  async function joinedOn(topic: string): Promise<string> {
    const token = await openSession(slowBase);
    expect(
      (await post(slowBase, token, [JSON.stringify(['1', '1', topic, 'phx_join', {}])])).body,
    ).toEqual({ status: 200 });
    expect(await collect(slowBase, token, 1)).toEqual([['1', '1', topic, 'phx_reply', OK]]);
    return token;
  }

  /** A broadcast payload whose V2 frame on `topic` is exactly `bytes` UTF-8 bytes, mostly "é" (2 bytes, 1 UTF-16 unit). */
  function payloadOfFrameBytes(topic: string, bytes: number): { text: string } {
    const frame = (text: string) => JSON.stringify([null, null, topic, 'big', { text }]);
    const overhead = Buffer.byteLength(frame(''));
    const room = bytes - overhead;
    const text = 'é'.repeat(Math.floor(room / 2)) + 'x'.repeat(room % 2);
    expect(Buffer.byteLength(frame(text))).toBe(bytes);
    // Counted in characters it would be far below the limit: only counting bytes can drop it.
    expect(frame(text).length).toBeLessThan(LIMIT * 0.6);
    return { text };
  }

  it('a frame of exactly maxBufferedBytes stays queued; one byte more drops the session (its channels end, POST 410)', async () => {
    const fits = await joinedOn('room:lpbuf-fits');
    const over = await joinedOn('room:lpbuf-over');
    const before = slow.gateway.stats.slowConsumers;
    const exact = payloadOfFrameBytes('room:lpbuf-fits', LIMIT);
    slow.gateway.broadcast('room:lpbuf-fits', 'big', exact);
    slow.gateway.broadcast(
      'room:lpbuf-over',
      'big',
      payloadOfFrameBytes('room:lpbuf-over', LIMIT + 1),
    );

    expect(slow.gateway.stats.slowConsumers - before).toBe(1);
    expect(slow.gateway.pubsub.subscriberCount('room:lpbuf-over')).toBe(0);
    expect((await post(slowBase, over, ['[null,"h","phoenix","heartbeat",{}]'])).body).toEqual({
      status: 410,
    });
    const reopened = await poll(slowBase, over);
    expect(reopened.body).toEqual({
      status: 410,
      token: expect.any(String) as unknown,
      messages: [],
    });

    expect(slow.gateway.pubsub.subscriberCount('room:lpbuf-fits')).toBe(1);
    expect(await collect(slowBase, fits, 1)).toEqual([
      [null, null, 'room:lpbuf-fits', 'big', exact],
    ]);
    expect((await post(slowBase, fits, ['[null,"h","phoenix","heartbeat",{}]'])).body).toEqual({
      status: 200,
    });
  });

  it('queued bytes add up until a poll takes them: a session that polls survives what drops one that does not', async () => {
    const topic = 'room:lpbuf-sum';
    const polling = await joinedOn(topic);
    const idle = await joinedOn(topic);
    const before = slow.gateway.stats.slowConsumers;
    const payload = payloadOfFrameBytes(topic, Math.floor(LIMIT * 0.6));
    slow.gateway.broadcast(topic, 'big', payload);
    expect(await collect(slowBase, polling, 1)).toEqual([[null, null, topic, 'big', payload]]);
    expect(slow.gateway.stats.slowConsumers).toBe(before);

    // The idle session now holds 1.2 × the limit; the polling one 0.6 ×.
    slow.gateway.broadcast(topic, 'big', payload);
    expect(slow.gateway.stats.slowConsumers - before).toBe(1);
    expect(slow.gateway.pubsub.subscriberCount(topic)).toBe(1);
    expect((await post(slowBase, idle, ['[null,"h","phoenix","heartbeat",{}]'])).body).toEqual({
      status: 410,
    });
    expect(await collect(slowBase, polling, 1)).toEqual([[null, null, topic, 'big', payload]]);
  });
});

describe('§J LongPoll windows and expiry, on a clock the test drives', () => {
  let timed: TestApp;
  let timedBase: string;
  let clock: ManualClock;
  beforeAll(async () => {
    clock = manualClock(1_000_000);
    // Tick 1 ms: a deadline fires at the exact millisecond the test moves the clock to.
    timed = await startTestApp({ gateway: { clock: clock.now, timerTickMs: 1 } });
    timedBase = timed.httpUrl('/socket/longpoll');
  });
  afterAll(() => timed.close());

  /** Moves the clock by `ms` and fires the timer wheel's deadlines up to it. */
  function advance(ms: number): void {
    clock.advance(ms);
    timed.gateway.wheel.advance();
  }

  /** A GET with `token`, handed back (boxed, so it is not awaited) once the gateway parked it. */
  async function parkedPoll(token: string): Promise<{ answer: Promise<PollResponse> }> {
    const before = parkedPolls(timed.gateway);
    const answer = poll(timedBase, token);
    await until(() => parkedPolls(timed.gateway) === before + 1, 'the GET parked');
    return { answer };
  }

  it('87: a GET with the token and nothing pending answers 204 after one window, not before', async () => {
    const token = await openSession(timedBase);
    const { answer } = await parkedPoll(token);
    advance(WINDOW_MS - 1);
    expect(parkedPolls(timed.gateway)).toBe(1); // still waiting 1 ms before the window
    advance(1);
    const answered = await answer;
    expectJson(answered);
    expect(answered.body).toEqual({ status: 204, token, messages: [] });
  });

  it('100: a session not polled for more than 1.5 windows is gone (its channels end; POST 410; GET 410 + new token)', async () => {
    const watcher = await RawClient.connect(timed.wsUrl());
    try {
      expect(await watcher.join('presence:lp100', '1', { key: 'watcher' })).toEqual([
        '1',
        '1',
        'presence:lp100',
        'phx_reply',
        OK,
      ]);
      await watcher.take(2); // presence_state, own join diff
      const token = await openSession(timedBase);
      expect(
        (await post(timedBase, token, ['["7","7","presence:lp100","phx_join",{"key":"lp"}]'])).body,
      ).toEqual({ status: 200 });
      expect(await watcher.next()).toEqual([
        null,
        null,
        'presence:lp100',
        'presence_diff',
        { joins: { lp: expect.anything() as unknown }, leaves: {} },
      ]);
      // No polling from now on. At exactly 1.5 windows after the opening GET it is still there…
      const tracked = () => Object.keys(timed.gateway.presence.list('presence:lp100')).sort();
      advance(1.5 * WINDOW_MS);
      expect(tracked()).toEqual(['lp', 'watcher']);
      // …and 1 ms later it expires, which untracks its presence.
      advance(1);
      expect(tracked()).toEqual(['watcher']);
      expect(await watcher.next()).toEqual([
        null,
        null,
        'presence:lp100',
        'presence_diff',
        { joins: {}, leaves: { lp: expect.anything() as unknown } },
      ]);
      const posted = await post(timedBase, token, ['[null,"1","phoenix","heartbeat",{}]']);
      expectJson(posted);
      expect(posted.body).toEqual({ status: 410 });
      const polled = await poll(timedBase, token);
      expectJson(polled);
      expect(polled.body).toEqual({
        status: 410,
        token: expect.any(String) as unknown,
        messages: [],
      });
      expect(polled.body?.token).not.toBe(token);
    } finally {
      watcher.close();
    }
  });

  it('100b: a session that keeps polling outlives 1.5 windows', async () => {
    const token = await openSession(timedBase);
    for (let window = 0; window < 3; window++) {
      const { answer } = await parkedPoll(token);
      advance(WINDOW_MS);
      expect((await answer).body).toEqual({ status: 204, token, messages: [] });
    }
    // Three windows (> 1.5) have passed, each answered: the session is alive.
    expect(
      (await post(timedBase, token, ['[null,"alive","phoenix","heartbeat",{}]'])).body,
    ).toEqual({ status: 200 });
    expect(await collect(timedBase, token, 1)).toEqual([
      [null, 'alive', 'phoenix', 'phx_reply', OK],
    ]);
  });
});
