/** One of this node's published hit batches, kept for peers that missed it. */
interface Retained {
  readonly seq: number;
  readonly data: Uint8Array;
  readonly hits: number;
  /** After this (wall clock) no hit of the batch can change a decision. */
  readonly expiresAt: number;
}

/**
 * This node's published hit batches, oldest first, kept for replays (a peer that missed some, or
 * one that starts): dropped once expired, or beyond `retainHits` hits.
 */
export class RetainedBatches {
  private readonly batches: Retained[] = [];
  private hits = 0;

  constructor(
    /** Own hits kept, at most (`eventual.retainHits`). */
    private readonly retainHits: number,
    private readonly wall: () => number,
  ) {}

  /** Batches and hits kept (memory diagnostics). */
  get size(): { batches: number; hits: number } {
    return { batches: this.batches.length, hits: this.hits };
  }

  add(seq: number, data: Uint8Array, hits: number, expiresAt: number): void {
    this.batches.push({ seq, data, hits, expiresAt });
    this.hits += hits;
  }

  /** Drops retained batches nobody can need: expired, or beyond the retention cap. */
  trim(): void {
    const now = this.wall();
    let drop = 0;
    while (drop < this.batches.length) {
      const batch = this.batches[drop]!;
      if (batch.expiresAt > now && this.hits <= this.retainHits) break;
      this.hits -= batch.hits;
      drop++;
    }
    if (drop > 0) this.batches.splice(0, drop);
  }

  /** Each kept batch numbered from `from` to `to`, in order, that can still count at `now`. */
  forEachLive(from: number, to: number, now: number, send: (data: Uint8Array) => void): void {
    for (const batch of this.batches) {
      if (batch.seq < from) continue;
      if (batch.seq > to) break;
      // Expired batches behind a longer-lived one: nothing in them can count any more.
      if (batch.expiresAt <= now) continue;
      send(batch.data);
    }
  }
}
