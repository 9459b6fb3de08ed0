import { createHash } from 'node:crypto';
import type { PolicyChange } from './messages.js';

/** What a change is about: one policy id, or the global shadow switch. */
function targetOf(change: PolicyChange): string {
  return change.op === 'shadow'
    ? 'shadow'
    : `policy:${change.op === 'put' ? change.policy.id : change.id}`;
}

/** Versions order by time, then origin: every node picks the same winner (last writer wins). */
function newer(a: PolicyChange, b: PolicyChange): boolean {
  return a.t !== b.t ? a.t > b.t : a.o > b.o;
}

/**
 * The runtime policy changes a gateway knows of, the newest per policy id (deletions included,
 * as tombstones) plus the newest shadow switch. Versions are hybrid clocks: the wall clock, but
 * never behind any version seen, so a change made after seeing another always wins over it even
 * when clocks disagree. Nodes that hold the same changes have the same digest (heartbeats carry
 * it; a difference makes them exchange their ledgers). Config-file policies have no version:
 * any runtime change to them wins.
 */
export class PolicyLedger {
  private clock = 0;
  private readonly latest = new Map<string, PolicyChange>();
  private cachedDigest: string | null = null;

  /** A version for a change made here now. */
  stamp(now: number): number {
    this.clock = Math.max(Math.floor(now), this.clock + 1);
    return this.clock;
  }

  /** Records `change` if it is newer than the one held for its target; false when it is not. */
  accept(change: PolicyChange): boolean {
    const target = targetOf(change);
    const held = this.latest.get(target);
    if (held && !newer(change, held)) return false;
    this.latest.set(target, change);
    if (change.t > this.clock) this.clock = change.t;
    this.cachedDigest = null;
    return true;
  }

  /** Every change held (what a sync answer carries). */
  changes(): PolicyChange[] {
    return [...this.latest.values()];
  }

  get size(): number {
    return this.latest.size;
  }

  /** A short hash of the versions held ("" when none). */
  digest(): string {
    if (this.cachedDigest !== null) return this.cachedDigest;
    if (this.latest.size === 0) return (this.cachedDigest = '');
    const versions = [...this.latest.entries()]
      .map(([target, change]) => `${target}@${change.t}/${change.o}`)
      .sort();
    this.cachedDigest = createHash('sha256').update(versions.join('\n')).digest('hex').slice(0, 16);
    return this.cachedDigest;
  }
}
