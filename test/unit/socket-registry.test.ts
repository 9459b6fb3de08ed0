import { describe, expect, it } from 'vitest';
import type { Assigns } from '../../src/channel/types.js';
import { SocketRegistry } from '../../src/socket/registry.js';
import type { Session } from '../../src/socket/session.js';

/** Just what the registry uses of a session: its id and close(). */
function fakeSession(id: string | null) {
  const closed: [number, string][] = [];
  const session = {
    id,
    closed,
    close: (code: number, reason: string) => void closed.push([code, reason]),
  };
  return session as unknown as Session<Assigns> & { closed: [number, string][] };
}

describe('SocketRegistry (socket ids → sessions)', () => {
  it('counts, disconnects and forgets one socket per id', () => {
    const registry = new SocketRegistry();
    const a = fakeSession('user:1');
    registry.add(a);
    registry.add(a);
    expect(registry.count('user:1')).toBe(1);
    expect(registry.disconnect('user:1')).toBe(1);
    expect(a.closed).toEqual([[1001, 'disconnected by server']]);
    registry.remove(a);
    expect(registry.count('user:1')).toBe(0);
    expect(registry.disconnect('user:1')).toBe(0);
  });

  it('holds several sockets of one id, and goes back to one as they leave', () => {
    const registry = new SocketRegistry();
    const [a, b, c] = [fakeSession('user:2'), fakeSession('user:2'), fakeSession('user:2')];
    registry.add(a);
    registry.add(b);
    registry.add(c);
    expect(registry.count('user:2')).toBe(3);
    registry.remove(b);
    expect(registry.count('user:2')).toBe(2);
    registry.remove(a);
    expect(registry.count('user:2')).toBe(1);
    registry.remove(a);
    expect(registry.count('user:2')).toBe(1);
    registry.add(a);
    expect(registry.disconnect('user:2')).toBe(2);
    expect(a.closed).toHaveLength(1);
    expect(b.closed).toHaveLength(0);
    expect(c.closed).toHaveLength(1);
    registry.remove(a);
    registry.remove(c);
    expect(registry.count('user:2')).toBe(0);
  });

  it('ignores sockets without an id, and ids never added', () => {
    const registry = new SocketRegistry();
    const anonymous = fakeSession(null);
    registry.add(anonymous);
    registry.remove(anonymous);
    registry.remove(fakeSession('user:3'));
    expect(registry.count('user:3')).toBe(0);
  });
});
