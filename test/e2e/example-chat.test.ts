/**
 * examples/chat runs as the README says: the server and two Node clients as separate processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTs, type Spawned } from '../support/spawn.js';

let server: Spawned;
let port: number;
beforeAll(async () => {
  server = spawnTs('examples/chat/server.ts', [], { PORT: '0' });
  port = Number((await server.logLine('gateway listening')).port);
});
afterAll(async () => {
  server.kill('SIGTERM');
  await server.exited;
});

async function waitFor(proc: Spawned, text: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.stdout().includes(text)) {
    if (Date.now() > deadline)
      throw new Error(`"${text}" not seen; stdout: ${proc.stdout()} stderr: ${proc.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('examples/chat', () => {
  it.each(['websocket', 'longpoll'])(
    'two clients chat and see each other online (%s)',
    async (transport) => {
      const env = { PORT: String(port), TRANSPORT: transport, EXIT_AFTER_MS: '3000' };
      const alice = spawnTs('examples/chat/client.ts', ['alice'], env);
      await waitFor(alice, 'joined room:lobby as alice');
      const bob = spawnTs('examples/chat/client.ts', ['bob', 'hi from bob'], env);
      await waitFor(alice, 'bob: hi from bob');
      await waitFor(alice, 'online: alice, bob');
      await waitFor(bob, 'online: alice, bob');
      expect(await alice.exited).toBe(0);
      expect(await bob.exited).toBe(0);
    },
  );
});
