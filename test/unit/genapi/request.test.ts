/**
 * Request decoding (src/genapi/request.ts), rule by rule: PhoenixGenApi's Request.decode!
 * (phoenix-gen-api.md §1.3, §10 request_test / request_extra_test) and the identity rules of
 * protocol/gen_api.md §1–§2 and §7 decisions 1–2. Every message is compared in full.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeRequest,
  DecodeError,
  requestIdOf,
  type DecodeOptions,
  type Identity,
} from '../../../src/genapi/request.js';
import { GEN_API_DEFAULTS } from '../../../src/genapi/channel.js';

const OPTIONS: DecodeOptions = {
  maxPayloadBytes: 1_000_000,
  overrideUserId: true,
  overrideDeviceId: true,
  trustClientRoles: false,
  trustClientUserId: false,
  trustClientDeviceId: false,
};
const NOBODY: Identity = { userId: null, deviceId: null, roles: null };
const SOCKET: Identity = { userId: 'sock-user', deviceId: 'sock-dev', roles: ['member'] };
const BASE = { request_id: 'r1', request_type: 'echo', service: 'demo' };

function decode(
  payload: unknown,
  options: Partial<DecodeOptions> = {},
  identity: Identity = NOBODY,
  bytes = 100,
) {
  return decodeRequest(payload, bytes, identity, { ...OPTIONS, ...options });
}

/** The DecodeError `payload` raises (fails the test when it decodes). */
function failure(payload: unknown, options: Partial<DecodeOptions> = {}, bytes = 100): DecodeError {
  try {
    decode(payload, options, NOBODY, bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return err as DecodeError;
  }
  throw new Error(`decoded: ${JSON.stringify(payload)}`);
}

describe('size limit (checked first)', () => {
  it('the default limit is 1 000 000 bytes', () => {
    expect(GEN_API_DEFAULTS.maxPayloadBytes).toBe(1_000_000);
  });

  it('a frame over the limit: invalid_payload, "Request payload exceeds maximum size of N bytes (got M bytes)"', () => {
    const err = failure(BASE, { maxPayloadBytes: 1_000_000 }, 1_000_001);
    expect(err.reason).toBe('invalid_payload');
    expect(err.message).toBe(
      'Request payload exceeds maximum size of 1000000 bytes (got 1000001 bytes)',
    );
    expect(failure(BASE, { maxPayloadBytes: 50 }, 51).message).toBe(
      'Request payload exceeds maximum size of 50 bytes (got 51 bytes)',
    );
  });

  it('a frame of exactly the limit passes', () => {
    expect(decode(BASE, { maxPayloadBytes: 50 }, NOBODY, 50).request.request_type).toBe('echo');
  });

  it('size comes before every other check (an oversize non-object or incomplete payload reports the size)', () => {
    expect(failure(null, { maxPayloadBytes: 10 }, 11).message).toBe(
      'Request payload exceeds maximum size of 10 bytes (got 11 bytes)',
    );
    expect(failure({}, { maxPayloadBytes: 10 }, 11).message).toBe(
      'Request payload exceeds maximum size of 10 bytes (got 11 bytes)',
    );
  });
});

describe('malformed payloads', () => {
  it.each([
    ['null', null],
    ['an array', [BASE]],
    ['a string', 'echo'],
    ['a number', 42],
    ['a boolean', true],
  ])('%s: invalid_payload, "Malformed request payload: expected an object"', (_name, payload) => {
    const err = failure(payload);
    expect(err.reason).toBe('invalid_payload');
    expect(err.message).toBe('Malformed request payload: expected an object');
  });

  it.each([
    [
      'request_type',
      { ...BASE, request_type: 7 },
      'Malformed request payload: request_type must be a string',
    ],
    [
      'request_type',
      { ...BASE, request_type: ['echo'] },
      'Malformed request payload: request_type must be a string',
    ],
    [
      'service',
      { ...BASE, service: { name: 'demo' } },
      'Malformed request payload: service must be a string',
    ],
    [
      'request_id',
      { ...BASE, request_id: true },
      'Malformed request payload: request_id must be a string or a number',
    ],
    [
      'request_id',
      { ...BASE, request_id: 'r1\r\nGenapi-User-Id: admin' },
      'Malformed request payload: request_id must not contain line breaks',
    ],
    [
      'user_id',
      { ...BASE, user_id: 'u\nx' },
      'Malformed request payload: user_id must not contain line breaks',
    ],
    [
      'request_id',
      { ...BASE, request_id: { id: 1 } },
      'Malformed request payload: request_id must be a string or a number',
    ],
    ['args', { ...BASE, args: [1, 2] }, 'Malformed request payload: args must be an object'],
    ['args', { ...BASE, args: 'x=1' }, 'Malformed request payload: args must be an object'],
    ['args', { ...BASE, args: 3 }, 'Malformed request payload: args must be an object'],
    ['version', { ...BASE, version: 2 }, 'Malformed request payload: version must be a string'],
  ])('a wrong type of %s: %j → %s', (_field, payload, message) => {
    // Trusted, so a payload user_id is read (and checked) at all.
    const err = failure(payload, { trustClientUserId: true });
    expect(err.reason).toBe('invalid_payload');
    expect(err.message).toBe(message);
  });

  it('type errors are reported in the order request_type, service, request_id, args, version', () => {
    expect(
      failure({ request_type: 1, service: 2, request_id: true, args: [], version: 3 }).message,
    ).toBe('Malformed request payload: request_type must be a string');
    expect(
      failure({ request_type: 'a', service: 2, request_id: true, args: [], version: 3 }).message,
    ).toBe('Malformed request payload: service must be a string');
    expect(
      failure({ request_type: 'a', service: 'b', request_id: true, args: [], version: 3 }).message,
    ).toBe('Malformed request payload: request_id must be a string or a number');
    expect(
      failure({ request_type: 'a', service: 'b', request_id: 'c', args: [], version: 3 }).message,
    ).toBe('Malformed request payload: args must be an object');
  });
});

describe('required fields (blank = missing, null or "")', () => {
  it.each([
    [{ request_id: 'r', service: 's' }, 'request_type'],
    [{ request_type: 't', service: 's' }, 'request_id'],
    [{ request_type: 't', request_id: 'r' }, 'service'],
    [{ service: 's' }, 'request_type, request_id'],
    [{ request_id: 'r' }, 'request_type, service'],
    [{ request_type: 't' }, 'request_id, service'],
    [{}, 'request_type, request_id, service'],
    [{ request_type: null, request_id: '', service: null }, 'request_type, request_id, service'],
    [{ request_type: '', request_id: 'r', service: 's' }, 'request_type'],
    [{ request_type: 't', request_id: null, service: 's' }, 'request_id'],
    [{ request_type: 't', request_id: 'r', service: '' }, 'service'],
  ])(
    '%j → "Missing required fields: %s" (fixed order request_type, request_id, service)',
    (payload, missing) => {
      const err = failure(payload);
      expect(err.reason).toBe('missing_field');
      expect(err.message).toBe(`Missing required fields: ${missing}`);
    },
  );

  it('missing fields are reported before type errors of the others', () => {
    expect(failure({ request_type: 5, service: '' }).message).toBe(
      'Missing required fields: request_id, service',
    );
  });

  it('whitespace and zero are not blank', () => {
    expect(decode({ request_type: ' ', request_id: 0, service: ' ' }).request).toMatchObject({
      request_type: ' ',
      request_id: '0',
      service: ' ',
    });
  });

  it('unknown keys are ignored', () => {
    expect(decode({ ...BASE, extra: 1, __proto__x: 2 }).request).toEqual({
      request_id: 'r1',
      request_type: 'echo',
      service: 'demo',
      version: null,
      args: {},
      user_id: null,
      device_id: null,
      user_roles: null,
    });
  });
});

describe('request_id', () => {
  it('a string is echoed as sent', () => {
    expect(decode(BASE)).toMatchObject({ rawRequestId: 'r1', request: { request_id: 'r1' } });
  });

  it('a number is echoed as a number and travels as its string', () => {
    expect(decode({ ...BASE, request_id: 42 })).toMatchObject({
      rawRequestId: 42,
      request: { request_id: '42' },
    });
    expect(decode({ ...BASE, request_id: 1.5 })).toMatchObject({
      rawRequestId: 1.5,
      request: { request_id: '1.5' },
    });
  });

  it('requestIdOf: the payload\'s request_id for error pushes, "unknown" when blank or not an object', () => {
    expect(requestIdOf({ request_id: 'x' })).toBe('x');
    expect(requestIdOf({ request_id: 7 })).toBe(7);
    expect(requestIdOf({ request_id: '' })).toBe('unknown');
    expect(requestIdOf({ request_id: null })).toBe('unknown');
    expect(requestIdOf({})).toBe('unknown');
    expect(requestIdOf(null)).toBe('unknown');
    expect(requestIdOf(['r1'])).toBe('unknown');
    expect(requestIdOf('r1')).toBe('unknown');
  });
});

describe('args', () => {
  it('missing or null → {}', () => {
    expect(decode(BASE).request.args).toEqual({});
    expect(decode({ ...BASE, args: null }).request.args).toEqual({});
  });

  it('an object is kept as it is', () => {
    const args = { message: 'hi', nested: { list: [1, 2] } };
    expect(decode({ ...BASE, args }).request.args).toEqual(args);
  });
});

describe('version', () => {
  it.each([
    ['missing', undefined],
    ['null', null],
    ['""', ''],
    ['"0.0.0"', '0.0.0'],
  ])('%s → null (latest)', (_name, version) => {
    expect(decode(version === undefined ? BASE : { ...BASE, version }).request.version).toBeNull();
  });

  it('any other string is kept (exact version)', () => {
    expect(decode({ ...BASE, version: '2.0.0' }).request.version).toBe('2.0.0');
    expect(decode({ ...BASE, version: '1.0.0-rc.1' }).request.version).toBe('1.0.0-rc.1');
  });
});

describe('identity', () => {
  const withIdentity = {
    ...BASE,
    user_id: 'payload-user',
    device_id: 'payload-dev',
    user_roles: ['admin'],
  };

  it("default: the socket's user_id, device_id and roles win over the payload's", () => {
    expect(decode(withIdentity, {}, SOCKET).request).toMatchObject({
      user_id: 'sock-user',
      device_id: 'sock-dev',
      user_roles: ['member'],
    });
  });

  it("by default the payload's user_id, device_id and roles are ignored even where the socket has none", () => {
    expect(decode(withIdentity, {}, NOBODY).request).toMatchObject({
      user_id: null,
      device_id: null,
      user_roles: null,
    });
    // A device-keyed limit cannot be dodged by naming a new device per request.
    const deviceOnly = { userId: 'sock-user', deviceId: null, roles: null };
    expect(decode(withIdentity, {}, deviceOnly).request.device_id).toBeNull();
  });

  it("trustClientUserId / trustClientDeviceId: the payload's values fill only what the socket lacks", () => {
    const trusted = { trustClientUserId: true, trustClientDeviceId: true };
    expect(decode(withIdentity, trusted, NOBODY).request).toMatchObject({
      user_id: 'payload-user',
      device_id: 'payload-dev',
      user_roles: null,
    });
    expect(decode(withIdentity, trusted, SOCKET).request).toMatchObject({
      user_id: 'sock-user',
      device_id: 'sock-dev',
    });
    expect(decode(withIdentity, { trustClientDeviceId: true }, NOBODY).request).toMatchObject({
      user_id: null,
      device_id: 'payload-dev',
    });
  });

  it("overrideUserId false: the payload's user_id wins; the socket's when the payload has none", () => {
    expect(decode(withIdentity, { overrideUserId: false }, SOCKET).request.user_id).toBe(
      'payload-user',
    );
    expect(decode(BASE, { overrideUserId: false }, SOCKET).request.user_id).toBe('sock-user');
    expect(
      decode({ ...BASE, user_id: '' }, { overrideUserId: false }, SOCKET).request.user_id,
    ).toBe('sock-user');
  });

  it("overrideDeviceId false: the payload's device_id wins; the socket's when the payload has none", () => {
    expect(decode(withIdentity, { overrideDeviceId: false }, SOCKET).request.device_id).toBe(
      'payload-dev',
    );
    expect(decode(BASE, { overrideDeviceId: false }, SOCKET).request.device_id).toBe('sock-dev');
  });

  it('non-string user_id/device_id in the payload are ignored', () => {
    expect(decode({ ...BASE, user_id: 5, device_id: { d: 1 } }, {}, NOBODY).request).toMatchObject({
      user_id: null,
      device_id: null,
    });
    expect(decode({ ...BASE, user_id: 5 }, { overrideUserId: false }, SOCKET).request.user_id).toBe(
      'sock-user',
    );
  });

  it('trustClientRoles: client roles only when the socket has none, filtered to non-empty strings; a non-list is null', () => {
    expect(
      decode(
        { ...BASE, user_roles: ['admin', '', 3, null, 'ops'] },
        { trustClientRoles: true },
        NOBODY,
      ).request.user_roles,
    ).toEqual(['admin', 'ops']);
    expect(
      decode({ ...BASE, user_roles: 'admin' }, { trustClientRoles: true }, NOBODY).request
        .user_roles,
    ).toBeNull();
    expect(
      decode({ ...BASE, user_roles: ['admin'] }, { trustClientRoles: true }, SOCKET).request
        .user_roles,
    ).toEqual(['member']);
  });

  it("socket roles are copied (an empty list stays empty, not the client's)", () => {
    const identity: Identity = { userId: 'u', deviceId: null, roles: [] };
    const { request } = decode(
      { ...BASE, user_roles: ['admin'] },
      { trustClientRoles: true },
      identity,
    );
    expect(request.user_roles).toEqual([]);
    expect(request.user_roles).not.toBe(identity.roles);
  });
});
