/**
 * Helpers of the cluster presence tests (and the benchmark's convergence figures): real `phoenix`
 * clients with the JS `Presence` helper, their view as `{key: refs}`, and convergence waits that
 * report how long they took.
 */
import WebSocket from 'ws';
import { Presence, Socket, type Channel } from 'phoenix';
import { expect } from 'vitest';
import { replyOf, waitFor } from '../support/phoenix-client.js';
import { eventually } from '../support/wait.js';

/** One member: a socket, its channel on the topic and the Presence helper's view. */
export interface Member {
  readonly name: string;
  readonly socket: Socket;
  readonly channel: Channel;
  readonly presence: Presence;
  /** Every presence_diff payload received, in order. */
  readonly diffs: unknown[];
  /** Keys the member ever listed with more than one meta (`key×n`), checked after each event. */
  readonly duplicates: string[];
}

/** Connects to `socketUrl` (the Phoenix endpoint) and joins `topic` with `{name}`. */
export async function joinMember(socketUrl: string, topic: string, name: string): Promise<Member> {
  const socket = new Socket(socketUrl, {
    transport: WebSocket,
    params: { user_id: name },
    reconnectAfterMs: () => 200,
  });
  socket.connect();
  await waitFor(() => socket.isConnected(), `${name} connects to ${socketUrl}`);
  const channel = socket.channel(topic, { name });
  const presence = new Presence(channel);
  const diffs: unknown[] = [];
  const duplicates: string[] = [];
  // Bound after the Presence helper's handlers, so they see the state it just computed.
  const check = () => {
    for (const [key, entry] of Object.entries(presence.state))
      if (entry.metas.length > 1) duplicates.push(`${key}×${entry.metas.length}`);
  };
  channel.on('presence_diff', (payload) => {
    diffs.push(payload);
    check();
  });
  channel.on('presence_state', check);
  const reply = await replyOf(channel.join());
  expect(reply.status, `${name} joins ${topic}`).toBe('ok');
  return { name, socket, channel, presence, diffs, duplicates };
}

/** `{key: metas count}` as the member's Presence helper lists it. */
export function view(member: Member): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, count] of member.presence.list(
    (key, entry) => [key, entry.metas.length] as const,
  ))
    out[key] = count;
  return out;
}

/** Every key once per expected name: the same view everywhere, no duplicates, no ghosts. */
export function expected(names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of names) out[name] = (out[name] ?? 0) + 1;
  return out;
}

/** Waits until every member lists exactly `names`; resolves with the ms it took. */
export async function converge(
  members: readonly Member[],
  names: readonly string[],
  label: string,
  timeoutMs = 15_000,
): Promise<number> {
  const started = performance.now();
  const want = expected(names);
  await eventually(
    () => {
      for (const member of members) expect(view(member), `${member.name}'s view`).toEqual(want);
    },
    label,
    { timeoutMs, intervalMs: 5 },
  );
  return performance.now() - started;
}

export function leave(members: readonly Member[]): void {
  for (const member of members) member.socket.disconnect();
}
