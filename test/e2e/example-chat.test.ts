/**
 * examples/chat runs as the README says: the server and two Node clients as separate processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTs, type Spawned } from '../support/spawn.js';
import { until } from '../support/wait.js';

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

/** Waits for `text` on the process's stdout (a real process starting under tsx: 30 s). */
async function printed(proc: Spawned, text: string): Promise<void> {
  await until(
    () => proc.stdout().includes(text),
    () => `"${text}"; stdout: ${proc.stdout()} stderr: ${proc.stderr()}`,
    30_000,
  );
}

describe('examples/chat', () => {
  it.each(['websocket', 'longpoll'])(
    'two clients chat and see each other online (%s)',
    async (transport) => {
      const env = { PORT: String(port), TRANSPORT: transport };
      const alice = spawnTs('examples/chat/client.ts', ['alice'], env);
      let bob: Spawned | undefined;
      try {
        await printed(alice, 'joined room:lobby as alice');
        bob = spawnTs('examples/chat/client.ts', ['bob', 'hi from bob'], env);
        await printed(alice, 'bob: hi from bob');
        await printed(alice, 'online: alice, bob');
        await printed(bob, 'online: alice, bob');
      } finally {
        // SIGTERM makes the example client leave, disconnect and exit 0 (no EXIT_AFTER_MS wait).
        alice.kill('SIGTERM');
        bob?.kill('SIGTERM');
      }
      expect(await alice.exited).toBe(0);
      expect(await bob.exited).toBe(0);
    },
  );
});
