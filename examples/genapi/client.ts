/**
 * Calls gen_api functions with the unmodified phoenix client, as a browser app would:
 *
 *   npm start                                        # embedded demo service
 *   npx tsx examples/genapi/client.ts                # echo, a stream, then a rate limit
 *
 * URL and USER_ID may be set in the environment.
 */
import { Socket } from 'phoenix';
import WebSocket from 'ws';

const url = process.env.URL ?? 'ws://127.0.0.1:4000/socket';
// In the demo the user id comes from connect params; a real app authenticates in its connect hook.
const socket = new Socket(url, {
  transport: WebSocket,
  params: { user_id: process.env.USER_ID ?? 'u1' },
});
socket.connect();

const api = socket.channel('gen_api:lobby', {});
const pending = new Map<string, (response: Record<string, unknown>) => void>();
api.on('phoenix_gen_api', (payload) => {
  const response = payload as Record<string, unknown>;
  pending.get(String(response.request_id))?.(response);
});

let next = 0;
/**
 * One sync or stream call: resolves with every response pushed for it, up to the one with
 * `has_more: false`. (An async call would end with a second push whose `async` is false.)
 */
function call(
  service: string,
  requestType: string,
  args: object,
): Promise<Record<string, unknown>[]> {
  const requestId = `r${++next}`;
  return new Promise((resolve, reject) => {
    const seen: Record<string, unknown>[] = [];
    pending.set(requestId, (response) => {
      seen.push(response);
      if (response.has_more !== true) {
        pending.delete(requestId);
        resolve(seen);
      }
    });
    api
      .push('phoenix_gen_api', { request_id: requestId, service, request_type: requestType, args })
      .receive('error', (reason) => reject(new Error(String(reason))));
  });
}

/** Echo, a stream, then the rate limit at work. */
async function demo(): Promise<void> {
  const [echo] = await call('demo', 'echo', { message: 'hello' });
  console.log('echo ->', echo?.result);
  // A stream: "init", the start Response, one push per chunk, then the end marker.
  const pushes = await call('demo', 'count', { to: 5, interval_ms: 20 });
  console.log(
    'count ->',
    pushes
      .slice(2, -1)
      .map((push) => push.result)
      .join(' '),
  );
  // `demo.limited` allows 5 calls per 10 s per user: the 6th is refused, with when to come back.
  const results = [];
  for (let i = 1; i <= 6; i++)
    results.push((await call('demo', 'limited', { message: `call ${i}` }))[0]);
  console.log(
    'limited ->',
    results.map((response) => (response?.success ? 'ok' : 'refused')).join(' '),
  );
  const refused = results.find((response) => response?.success === false);
  if (refused) console.log('refused with:', refused.error, JSON.stringify(refused.rate_limit));
  socket.disconnect(() => process.exit(0));
}

api.join().receive('ok', () => {
  demo().catch((err: unknown) => {
    console.error('demo failed:', err);
    process.exit(1);
  });
});
