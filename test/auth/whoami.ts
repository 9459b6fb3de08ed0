/**
 * The demo's `whoami` over a fresh gen_api socket on `port` with connect `query`: what identity
 * the gateway's auth gave that connect (the issue 13 demo contract).
 */
import { GenApiClient } from '../support/genapi-exec.js';

/** The pushes answering one `whoami` request (`request_id` "who"). */
export async function whoami(port: number, query: string): Promise<unknown> {
  const client = await GenApiClient.connect(
    `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&${query}`,
  );
  const { pushes } = await client.call({
    request_id: 'who',
    service: 'demo',
    request_type: 'whoami',
    args: {},
  });
  client.raw.close();
  return pushes;
}
