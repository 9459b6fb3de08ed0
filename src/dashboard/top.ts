/**
 * The `k` best items seen, best first, kept in a small sorted array while scanning (k is tens, the
 * scan up to a limit of many thousands: one comparison per item that does not make the list).
 */
export class TopK<T> {
  private readonly items: T[] = [];

  constructor(
    private readonly k: number,
    /** Negative when `a` ranks before `b`. */
    private readonly compare: (a: T, b: T) => number,
  ) {}

  /** Whether an item ranked like `probe` would make the list (cheap pre-check before building one). */
  wants(probe: T): boolean {
    if (this.k === 0) return false;
    return this.items.length < this.k || this.compare(probe, this.items[this.k - 1]!) < 0;
  }

  /** Adds `item` if it makes the list (keep it: the list holds the object itself). */
  offer(item: T): void {
    if (!this.wants(item)) return;
    let i = this.items.length;
    while (i > 0 && this.compare(item, this.items[i - 1]!) < 0) i--;
    this.items.splice(i, 0, item);
    if (this.items.length > this.k) this.items.pop();
  }

  /** The list, best first. */
  list(): T[] {
    return [...this.items];
  }
}
