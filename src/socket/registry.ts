import type { Assigns } from '../channel/types.js';
import { CLOSE, type Session } from './session.js';

/**
 * Socket ids → sessions, across every mount of a gateway. `disconnect(id)` is Phoenix's
 * `Endpoint.broadcast("users_socket:" <> id, "disconnect", %{})`: every socket with that id is
 * closed (WebSocket code 1001; LongPoll sessions end and their next request gets 410).
 */
export class SocketRegistry {
  /** One session, or a set once a second socket shares the id (most ids have one socket). */
  private readonly byId = new Map<string, Session<Assigns> | Set<Session<Assigns>>>();

  add(session: Session<Assigns>): void {
    if (session.id === null) return;
    const entry = this.byId.get(session.id);
    if (entry === undefined) this.byId.set(session.id, session);
    else if (entry instanceof Set) entry.add(session);
    else if (entry !== session) this.byId.set(session.id, new Set([entry, session]));
  }

  remove(session: Session<Assigns>): void {
    if (session.id === null) return;
    const entry = this.byId.get(session.id);
    if (entry === session) this.byId.delete(session.id);
    else if (entry instanceof Set && entry.delete(session)) {
      if (entry.size === 1) this.byId.set(session.id, entry.values().next().value!);
    }
  }

  /** Closes every socket with this id; returns how many were closed. */
  disconnect(id: string): number {
    const sessions = this.sessions(id);
    for (const session of sessions) session.close(CLOSE.disconnect, 'disconnected by server');
    return sessions.length;
  }

  count(id: string): number {
    const entry = this.byId.get(id);
    return entry === undefined ? 0 : entry instanceof Set ? entry.size : 1;
  }

  private sessions(id: string): Session<Assigns>[] {
    const entry = this.byId.get(id);
    return entry === undefined ? [] : entry instanceof Set ? [...entry] : [entry];
  }
}
