/**
 * The JSON bomb of issue 12 ("Why" point 3): 30 clients keep sending the costliest valid frame at
 * the default max frame size while a bystander heartbeats; its round trip must stay under 1 s.
 * The gateway runs as its own process so the round trip measures the gateway, and the file runs
 * in the `alone` project (vitest.config.ts): a latency bound means nothing while other test files
 * compete for the same two cores.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../support/gateway-process.js';
import { RawClient } from '../support/ws-client.js';
import { realTime } from '../support/wait.js';
import { heartbeatWorks } from './helpers.js';
import { percentile, recordFigure } from '../support/figures.js';

const OK = { status: 'ok', response: {} };

const opened: RawClient[] = [];
afterEach(() => {
  for (const client of opened.splice(0)) client.ws.terminate();
});

describe('JSON bomb: 30 clients at the max frame size', () => {
  let proc: GatewayProcess;
  beforeAll(async () => {
    proc = await GatewayProcess.start();
  });
  afterAll(() => proc.stop());

  it("keep a bystander's heartbeat round trip under 1 s", async () => {
    // A valid frame whose payload is `[[],[],…]`, padded to exactly 65 536 bytes (the default
    // maxFrameSize): the costliest frame to parse that is not refused by its shape.
    const bomb = Buffer.from(
      `["1","r","room:bomb","x",[${'[],'.repeat(21_830)}[]]]`.padEnd(65_536, ' '),
    );
    expect(bomb.length).toBe(65_536);
    const bystander = await RawClient.connect(proc.wsUrl());
    opened.push(bystander);
    let stop = false;
    let connections = 0;
    let closedByRate = 0;
    /** Bomb frames the gateway parsed (each is answered `unmatched topic`). */
    let parsed = 0;

    /** One attacker: keeps its socket's send buffer full of bombs; reconnects when closed. */
    async function attacker(): Promise<void> {
      while (!stop) {
        const client = await RawClient.connect(proc.wsUrl()).catch(() => null);
        if (client === null) continue;
        connections++;
        let open = true;
        client.closed.then(
          (info) => {
            open = false;
            if (info.code === 1008) closedByRate++;
          },
          () => undefined,
        );
        while (open && !stop) {
          // Keep the gateway's side full without spinning this process (it measures too).
          if (client.ws.bufferedAmount < 512 * 1024) client.ws.send(bomb, { binary: false });
          else await new Promise((resolve) => setTimeout(resolve, 2));
        }
        parsed += client.frames.length;
        client.ws.terminate();
      }
    }

    const attackers = Array.from({ length: 30 }, () => attacker());
    const roundTrips: number[] = [];
    const end = performance.now() + 4_000;
    let ref = 0;
    while (performance.now() < end) {
      const t0 = performance.now();
      const reply = await bystander.request(
        [null, `hb${++ref}`, 'phoenix', 'heartbeat', {}],
        10_000,
      );
      roundTrips.push(performance.now() - t0);
      expect(reply).toEqual([null, `hb${ref}`, 'phoenix', 'phx_reply', OK]);
      await realTime(50, 'the bystander heartbeats at a steady pace during the attack');
    }
    stop = true;
    await Promise.all(attackers);
    const max = Math.max(...roundTrips);
    recordFigure(
      'json-bomb',
      '30 clients sending JSON bombs at the max frame size (64 KiB of `[[],[],…]`), one bystander',
      {
        attackerConnections: connections,
        closedByByteRate: closedByRate,
        bombsParsed: parsed,
        heartbeats: roundTrips.length,
        'bystander heartbeat round trip (p50 / p99 / max)': `${percentile(roundTrips, 50).toFixed(1)} / ${percentile(roundTrips, 99).toFixed(1)} / ${max.toFixed(1)} ms`,
      },
      [
        {
          goal: 'bystander heartbeat round trip (max) < 1 s',
          value: Math.round(max),
          limit: 1_000,
          strict: true,
          unit: 'ms',
        },
      ],
    );
    // The attack was real: the gateway parsed bombs from every attacker, many times over.
    expect(parsed).toBeGreaterThan(30);
    expect(max).toBeLessThan(1_000);
    await heartbeatWorks(proc.wsUrl());
  });
});
