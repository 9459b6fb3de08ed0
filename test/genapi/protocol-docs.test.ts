/**
 * protocol/schemas and protocol/vectors stay true: the schemas compile, the vectors conform, the
 * SDK's configs validate against the FunConfig schema and the gateway accepts them, and the
 * documented push produces the documented ack from a real ConfigReceiver.
 */
import { describe, expect, it } from 'vitest';
import { demoService } from '../../src/demo/service.js';
import { FailedConfigs } from '../../src/genapi/config/failed.js';
import { ConfigReceiver } from '../../src/genapi/config/push.js';
import { ConfigRegistry } from '../../src/genapi/config/registry.js';
import { validateFunConfig } from '../../src/genapi/config/validate.js';
import {
  asyncResponse,
  errorResponse,
  streamEndResponse,
  streamResponse,
  syncResponse,
} from '../../src/genapi/response.js';
import { DEFAULT_PREFIX, Subjects } from '../../src/nats/subjects.js';
import { topicFromToken, topicToken } from '../../src/nats/topic-token.js';
import { v2Serializer } from '../../src/wire/v2-json.js';
import { PushEncoder } from '../../src/worker/pushes.js';
import { PeerAuth } from '../../src/nats/peer-auth.js';
import { conforms, hasSchema, loadProtocol, SCHEMA_FILES } from '../support/protocol.js';
import type { NatsConnection } from '@nats-io/nats-core';
import { createWorkerAuthStrategy, createWorkerJoinCheck } from '../../src/auth/worker.js';
import { readConnectReply } from '../../src/nats/auth-messages.js';

/** A check against one schema of protocol/schemas: 'valid', or its errors. */
const validator = (file: string) => (value: unknown) => conforms(file, value);

interface Vectors {
  call: { request: { subject: string; body: unknown }; client_push: unknown };
  versioned_call: { request: { subject: string } };
  error_reply: { client_push: unknown; client_push_with_detail_error: unknown };
  stream: {
    request: { headers: Record<string, string> };
    start_reply: { headers: Record<string, string> };
  };
  push: { subject: string; body: { fun_configs: unknown[] }; ack: Record<string, unknown> };
  ping_response: { metadata: Record<string, string> };
  broadcast: {
    topic: string;
    subject: string;
    body: { event: string; payload: unknown };
    client_frame_v2: unknown;
  };
  broadcast_encoded_topic: {
    topic: string;
    subject: string;
    body: { event: string; payload: unknown };
  };
  broadcast_binary: {
    topic: string;
    subject: string;
    headers: Record<string, string>;
    body_base64: string;
  };
  disconnect: { subject: string; body: { id: string } };
}
const vectors = loadProtocol('vectors/nats.json') as Vectors;

interface AuthVectors {
  token: string;
  push: { subject: string; time_ms: number; body: string; header: string };
  config_answer: { request_subject: string; nonce: string; body: string; header: string };
  instance: {
    service: string;
    version: string;
    config_version: string;
    metadata_genapi_auth: string;
  };
}
const authVectors = (loadProtocol('vectors/nats.json') as { auth: AuthVectors }).auth;

interface AuthWorkerVectors {
  auth_worker_connect: {
    request: { subject: string; headers: Record<string, string>; body: Record<string, unknown> };
    reply: unknown;
    identity: unknown;
  };
  auth_worker_connect_refused: { reply: unknown; failure: { reason: string; message: string } };
  auth_worker_join: {
    request: { subject: string; headers: Record<string, string>; body: Record<string, unknown> };
    allow: unknown;
    deny: unknown;
  };
}
const authWorker = loadProtocol('vectors/nats.json') as AuthWorkerVectors;

/**
 * A NATS connection that answers every request with `reply` and records what was asked: enough
 * for the gateway's worker strategy, which only asks.
 */
function answering(reply: unknown) {
  const asked: { subject: string; body: unknown; headers: Record<string, string> }[] = [];
  const nc = {
    isClosed: () => false,
    request: (
      subject: string,
      data: Uint8Array,
      opts: { headers?: { get(name: string): string } },
    ) => {
      asked.push({
        subject,
        body: JSON.parse(new TextDecoder().decode(data)),
        headers: { 'Genapi-Timeout': opts.headers?.get('Genapi-Timeout') ?? '' },
      });
      return Promise.resolve({ data: new TextEncoder().encode(JSON.stringify(reply)) });
    },
  } as unknown as NatsConnection;
  return { asked, link: () => ({ nc, subjects: new Subjects(DEFAULT_PREFIX) }) };
}

describe('protocol documents', () => {
  it('every schema compiles', () => {
    expect(SCHEMA_FILES.length).toBeGreaterThanOrEqual(6);
    for (const file of SCHEMA_FILES) expect(hasSchema(file), file).toBe(true);
  });

  it('the SDK emits FunConfigs the schema accepts and the gateway validates', () => {
    const check = validator('fun-config.schema.json');
    for (const fn of demoService.functions.values()) {
      expect(check(fn.config), fn.requestType).toBe('valid');
      expect(validateFunConfig(fn.config, { nodesDefault: 'nats' }).ok, fn.requestType).toBe(true);
    }
  });

  it('the schema refuses what the gateway refuses (spot checks)', () => {
    const check = validator('fun-config.schema.json');
    for (const bad of [
      { service: 'a.b', request_type: 'x' },
      { service: 's', request_type: 'x', timeout: 50 },
      { service: 's', request_type: 'x', response_type: 'later' },
      { service: 's', request_type: 'x', arg_types: { a: 'strng' } },
    ]) {
      expect(check(bad)).not.toBe('valid');
      expect(validateFunConfig(bad, { nodesDefault: 'nats' }).ok).toBe(false);
    }
  });

  it('client pushes in the vectors are Responses built by the gateway constructors', () => {
    const check = validator('response.schema.json');
    expect(vectors.call.client_push).toEqual(syncResponse('r-echo', { message: 'hello' }));
    expect(vectors.error_reply.client_push).toEqual(
      errorResponse('r-fail', 'Internal Server Error'),
    );
    expect(vectors.error_reply.client_push_with_detail_error).toEqual(
      errorResponse('r-fail', 'Internal Server Error: boom'),
    );
    for (const response of [
      vectors.call.client_push,
      asyncResponse('x'),
      streamResponse('x', 'init'),
      streamEndResponse('x'),
      errorResponse('x', 'Service temporarily unavailable', true),
    ]) {
      expect(check(response)).toBe('valid');
    }
  });

  it('signature vectors (nats.md §10) are what the gateway and SDK compute, and verify', () => {
    const auth = new PeerAuth(authVectors.token);
    const bytes = (text: string) => new TextEncoder().encode(text);
    const { push, config_answer: answer, instance } = authVectors;
    expect(auth.signPush(push.subject, bytes(push.body), push.time_ms)).toBe(push.header);
    expect(auth.verifyPush(push.subject, bytes(push.body), push.header, push.time_ms)).toBeNull();
    expect(
      auth.verifyPush('genapi.config.push.other', bytes(push.body), push.header, push.time_ms),
    ).toBe('bad_signature');
    expect(auth.signConfig(answer.request_subject, answer.nonce, bytes(answer.body))).toBe(
      answer.header,
    );
    expect(auth.instanceProof(instance.service, instance.version, instance.config_version)).toBe(
      instance.metadata_genapi_auth,
    );
  });

  it('subjects in the vectors are the ones the gateway and SDK build', () => {
    const subjects = new Subjects(DEFAULT_PREFIX);
    expect(vectors.call.request.subject).toBe(
      subjects.instanceFn('demo', 'AWRL6PYPW08IF2LJMNOWAY', 'echo', null),
    );
    expect(vectors.versioned_call.request.subject).toBe(subjects.fn('demo', 'echo', '2.0.0'));
    expect(vectors.push.subject).toBe(subjects.configPush('raw'));
    const streamId = vectors.stream.request.headers['Genapi-Stream-Id']!;
    expect(vectors.stream.start_reply.headers['Genapi-Stream-Control']).toBe(
      subjects.streamControl('demo', 'AWRL6PYPW08IF2LJMNOWAY', streamId),
    );
    expect(vectors.stream.request.headers['Genapi-Stream-Subject']).toBe(
      subjects.streamData('a83220a2-7c1e-4b4f-9a33-0f6d2d7f9a10', streamId),
    );
    expect(Object.keys(vectors.ping_response.metadata).sort()).toEqual([
      'genapi_config_version',
      'genapi_prefix',
      'genapi_protocol',
    ]);
  });

  it('the documented push gives the documented ack (partial acceptance)', () => {
    expect(validator('push-config.schema.json')(vectors.push.body)).not.toBe('valid'); // the "broken" function breaks the schema too
    const receiver = new ConfigReceiver(new ConfigRegistry(), new FailedConfigs(), {
      nodesDefault: 'nats',
    });
    const result = receiver.receive(structuredClone(vectors.push.body));
    const ack = { gateway: vectors.push.ack.gateway, ...result };
    expect(ack).toEqual(vectors.push.ack);
    expect(validator('push-ack.schema.json')(ack)).toBe('valid');
  });

  it('broadcast and disconnect vectors: schemas, subjects, the SDK encoding and the client frame', () => {
    const broadcast = validator('broadcast.schema.json');
    const disconnect = validator('disconnect.schema.json');
    const encode = new PushEncoder(DEFAULT_PREFIX);
    const subjects = new Subjects(DEFAULT_PREFIX);
    for (const v of [vectors.broadcast, vectors.broadcast_encoded_topic]) {
      expect(broadcast(v.body)).toBe('valid');
      expect(v.subject).toBe(subjects.topic(topicToken(v.topic)));
      expect(topicFromToken(v.subject.slice('genapi.topic.'.length))).toBe(v.topic);
      const message = encode.broadcastMessage(v.topic, v.body.event, v.body.payload);
      expect(message.subject).toBe(v.subject);
      expect(message.binaryEvent).toBeNull();
      expect(JSON.parse(new TextDecoder().decode(message.body))).toEqual(v.body);
    }
    expect(vectors.broadcast_encoded_topic.subject.startsWith('genapi.topic.~')).toBe(true);
    expect(
      JSON.parse(
        v2Serializer.encodeBroadcast(
          vectors.broadcast.topic,
          vectors.broadcast.body.event,
          vectors.broadcast.body.payload,
        ) as string,
      ),
    ).toEqual(vectors.broadcast.client_frame_v2);

    const binary = vectors.broadcast_binary;
    const bytes = new Uint8Array(Buffer.from(binary.body_base64, 'base64'));
    const message = encode.broadcastMessage(binary.topic, binary.headers['Genapi-Event']!, bytes);
    expect(message.subject).toBe(binary.subject);
    expect(message.binaryEvent).toBe(binary.headers['Genapi-Event']);
    expect([...message.body]).toEqual([...bytes]);

    expect(disconnect(vectors.disconnect.body)).toBe('valid');
    const kick = encode.disconnectMessage(vectors.disconnect.body.id);
    expect(kick.subject).toBe(vectors.disconnect.subject);
    expect(JSON.parse(new TextDecoder().decode(kick.body))).toEqual(vectors.disconnect.body);
  });

  it('the broadcast schemas refuse what gateways drop (spot checks)', () => {
    const broadcast = validator('broadcast.schema.json');
    const disconnect = validator('disconnect.schema.json');
    for (const bad of [{}, { event: '' }, { event: 5 }, [], 'x', null])
      expect(broadcast(bad), JSON.stringify(bad)).not.toBe('valid');
    for (const bad of [{}, { id: '' }, { id: 5 }, null])
      expect(disconnect(bad), JSON.stringify(bad)).not.toBe('valid');
  });

  it('auth worker vectors (nats.md §11): schemas, subjects, what the gateway sends and reads', async () => {
    const connect = authWorker.auth_worker_connect;
    const join = authWorker.auth_worker_join;
    const refused = authWorker.auth_worker_connect_refused;
    expect(validator('auth-connect-request.schema.json')(connect.request.body)).toBe('valid');
    expect(validator('auth-connect-reply.schema.json')(connect.reply)).toBe('valid');
    expect(validator('auth-connect-reply.schema.json')(refused.reply)).toBe('valid');
    expect(validator('auth-join-request.schema.json')(join.request.body)).toBe('valid');
    expect(validator('auth-join-reply.schema.json')(join.allow)).toBe('valid');
    expect(validator('auth-join-reply.schema.json')(join.deny)).toBe('valid');
    const subjects = new Subjects(DEFAULT_PREFIX);
    expect(connect.request.subject).toBe(subjects.authConnect('auth'));
    expect(join.request.subject).toBe(subjects.authJoin('auth'));

    // The gateway sends the documented body (cookie and authorization withheld) and reads the
    // documented reply into the documented identity.
    const accept = answering(connect.reply);
    const body = connect.request.body as {
      token: string;
      params: Record<string, unknown>;
      headers: Record<string, string>;
      peer: { address: string; port: number };
      transport: string;
    };
    const identity = await createWorkerAuthStrategy({ service: 'auth' }, accept.link).authenticate({
      ...body,
      headers: { ...body.headers, cookie: 'session=1', authorization: 'Basic eDp5' },
    });
    expect(identity).toEqual(connect.identity);
    expect(accept.asked).toEqual([
      {
        subject: connect.request.subject,
        body: connect.request.body,
        headers: connect.request.headers,
      },
    ]);
    const refusal = await createWorkerAuthStrategy(
      { service: 'auth' },
      answering(refused.reply).link,
    ).authenticate(body);
    expect(refusal).toEqual({ failed: true, ...refused.failure });

    const allow = answering(join.allow);
    const j = join.request.body as {
      topic: string;
      payload: unknown;
      user_id: string;
      device_id: string;
      roles: string[];
      assigns: Record<string, unknown>;
    };
    const joinRequest = {
      topic: j.topic,
      payload: j.payload,
      userId: j.user_id,
      deviceId: j.device_id,
      roles: j.roles,
      assigns: j.assigns,
    };
    expect(await createWorkerJoinCheck({ service: 'auth' }, allow.link)(joinRequest)).toEqual({
      ok: true,
    });
    expect(allow.asked).toEqual([
      { subject: join.request.subject, body: join.request.body, headers: join.request.headers },
    ]);
    expect(
      await createWorkerJoinCheck({ service: 'auth' }, answering(join.deny).link)(joinRequest),
    ).toMatchObject({ ok: false, unavailable: false });
  });

  it('the auth worker schemas refuse what the gateway refuses (spot checks)', () => {
    const reply = validator('auth-connect-reply.schema.json');
    for (const bad of [
      {},
      [],
      { ok: 'yes', user_id: 'u' },
      { ok: true },
      { ok: true, user_id: '' },
      { ok: true, user_id: 1.5 },
      { ok: true, user_id: 'u', roles: [1] },
      { ok: true, user_id: 'u', assigns: [] },
      { ok: true, user_id: 'u', expires_at: 'soon' },
    ]) {
      expect(reply(bad), JSON.stringify(bad)).not.toBe('valid');
      expect(readConnectReply(bad).ok, JSON.stringify(bad)).toBeNull();
    }
    expect(validator('auth-join-reply.schema.json')({ ok: 1 })).not.toBe('valid');
  });
});
