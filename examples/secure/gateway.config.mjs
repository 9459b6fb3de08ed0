/**
 * A gateway for the hardened deployment of examples/secure (README there): NATS as the `gateway`
 * user with private inboxes, workers authenticated by the push token, rate limits shared with a
 * cluster secret, the admin API behind a token. Secrets come from the environment and the gateway
 * refuses to start when one is missing.
 *
 * Identity: the connect hook accepts `token=<user_id>.<signature>` (HMAC-SHA256 of the user id
 * with USER_TOKEN_SECRET, base64url), minted by your backend. Replace it with your own check.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { env } from 'node:process';

function required(name) {
  const value = env[name];
  if (value === undefined || value === '')
    throw new Error(`examples/secure/gateway.config.mjs: set ${name} in the environment`);
  return value;
}

const userTokenSecret = required('USER_TOKEN_SECRET');

/** The user id a token was minted for, or null. */
function verifyUserToken(token) {
  if (typeof token !== 'string') return null;
  const dot = token.lastIndexOf('.');
  if (dot <= 0) return null;
  const userId = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = createHmac('sha256', userTokenSecret).update(userId).digest();
  return given.length === expected.length && timingSafeEqual(given, expected) ? userId : null;
}

export default {
  host: env.HOST ?? '127.0.0.1',
  port: Number(env.PORT ?? 4000),
  socket: {
    // The host names browsers use to reach this gateway (Origin is checked against them).
    publicHosts: (env.PUBLIC_HOSTS ?? 'localhost').split(','),
    connect: ({ params }) => {
      const userId = verifyUserToken(params.token);
      // false: HTTP 403, nothing else said.
      return userId === null
        ? false
        : { assigns: { user_id: userId, device_id: null, roles: [] }, id: `user:${userId}` };
    },
  },
  nats: {
    servers: env.NATS_URL ?? 'nats://127.0.0.1:4222',
    user: 'gateway',
    pass: required('GATEWAY_NATS_PASS'),
    inboxPrefix: '_INBOX_gateway',
  },
  genApi: { pushToken: required('GENAPI_PUSH_TOKEN') },
  rateLimits: { clusterSecret: required('GENAPI_CLUSTER_SECRET') },
  admin: { token: required('GENAPI_ADMIN_TOKEN') },
};
