import type { Assigns } from '../channel/types.js';
import { CLOSE, type Session } from './session.js';

/**
 * Socket ids → sessions, across every mount of a gateway. `disconnect(id)` is Phoenix's
 * `Endpoint.broadcast("users_socket:" <> id, "disconnect", %{})`: every socket with that id is
 * closed (WebSocket code 1001; LongPoll sessions end and their next request gets 410).
 */
export class SocketRegistry {
  private readonly byId = new Map<string, Set<Session<Assigns>>>();

  add(session: Session<Assigns>): void {
    if (session.id === null) return;
    let set = this.byId.get(session.id);
    if (!set) {
      set = new Set();
      this.byId.set(session.id, set);
    }
    set.add(session);
  }

  remove(session: Session<Assigns>): void {
    if (session.id === null) return;
    const set = this.byId.get(session.id);
    if (!set?.delete(session)) return;
    if (set.size === 0) this.byId.delete(session.id);
  }

  /** Closes every socket with this id; returns how many were closed. */
  disconnect(id: string): number {
    const set = this.byId.get(id);
    if (!set) return 0;
    const sessions = [...set];
    for (const session of sessions) session.close(CLOSE.disconnect, 'disconnected by server');
    return sessions.length;
  }

  count(id: string): number {
    return this.byId.get(id)?.size ?? 0;
  }
}
