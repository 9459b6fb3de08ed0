/**
 * src/nats/peer-auth.ts: what each signature covers (protocol/nats.md §10.2). The vectors in
 * protocol/vectors/nats.json are checked by test/genapi/protocol-docs.test.ts; here, what must be
 * refused.
 */
import { describe, expect, it } from 'vitest';
import { PEER_AUTH_DEFAULTS, PeerAuth } from '../../src/nats/peer-auth.js';

const body = new TextEncoder().encode('{"service":"svc","config_version":"v1","fun_configs":[]}');
const auth = new PeerAuth('a-token-of-at-least-16');
const other = new PeerAuth('another-token-of-16+');

describe('PeerAuth', () => {
  it('pushes: valid within maxPushAgeMs either way; refused when unsigned, tampered, re-aimed, signed with another token or too old', () => {
    const now = 1_765_000_000_000;
    const signed = auth.signPush('p.config.push.svc', body, now);
    expect(auth.verifyPush('p.config.push.svc', body, signed, now)).toBeNull();
    const edge = PEER_AUTH_DEFAULTS.maxPushAgeMs;
    expect(auth.verifyPush('p.config.push.svc', body, signed, now + edge)).toBeNull();
    expect(auth.verifyPush('p.config.push.svc', body, signed, now - edge)).toBeNull();
    expect(auth.verifyPush('p.config.push.svc', body, signed, now + edge + 1)).toBe('expired');
    expect(auth.verifyPush('p.config.push.svc', body, undefined, now)).toBe('unsigned');
    expect(auth.verifyPush('p.config.push.svc', body, '', now)).toBe('unsigned');
    expect(auth.verifyPush('p.config.push.other', body, signed, now)).toBe('bad_signature');
    const tampered = new Uint8Array(body);
    tampered[2] = tampered[2]! ^ 1;
    expect(auth.verifyPush('p.config.push.svc', tampered, signed, now)).toBe('bad_signature');
    expect(other.verifyPush('p.config.push.svc', body, signed, now)).toBe('bad_signature');
    // The time is covered: moving it forward breaks the signature.
    const [, mac] = signed.split('.');
    expect(auth.verifyPush('p.config.push.svc', body, `${now + 1}.${mac}`, now)).toBe(
      'bad_signature',
    );
    for (const garbage of ['.', 'x.y', `${now}`, `-1.${mac}`, `${'9'.repeat(17)}.${mac}`])
      expect(auth.verifyPush('p.config.push.svc', body, garbage, now)).toBe('bad_signature');
  });

  it('pull answers are bound to the nonce and the subject asked', () => {
    const nonce = PeerAuth.nonce();
    expect(nonce).not.toBe(PeerAuth.nonce());
    const signed = auth.signConfig('p.inst.svc.ID.config', nonce, body);
    expect(auth.verifyConfig('p.inst.svc.ID.config', nonce, body, signed)).toBeNull();
    expect(auth.verifyConfig('p.inst.svc.ID.config', PeerAuth.nonce(), body, signed)).toBe(
      'bad_signature',
    );
    expect(auth.verifyConfig('p.inst.svc.ID2.config', nonce, body, signed)).toBe('bad_signature');
    expect(auth.verifyConfig('p.inst.svc.ID.config', nonce, body, undefined)).toBe('unsigned');
  });

  it('instance proofs cover name, version and config version; kinds cannot stand in for each other', () => {
    const proof = auth.instanceProof('svc', '1.0.0', 'v1');
    expect(auth.verifyInstance('svc', '1.0.0', 'v1', proof)).toBeNull();
    expect(auth.verifyInstance('svc', '99.0.0', 'v1', proof)).toBe('bad_signature');
    expect(auth.verifyInstance('evil', '1.0.0', 'v1', proof)).toBe('bad_signature');
    expect(auth.verifyInstance('svc', '1.0.0', 'v2', proof)).toBe('bad_signature');
    expect(auth.verifyInstance('svc', '1.0.0', 'v1', undefined)).toBe('unsigned');
    expect(auth.verifyInstance('svc', '1.0.0', 'v1', 42)).toBe('unsigned');
    // A config answer's signature is not an instance proof for the same strings.
    expect(auth.verifyInstance('svc', '1.0.0', 'v1', auth.signConfig('svc', '1.0.0', body))).toBe(
      'bad_signature',
    );
  });
});
