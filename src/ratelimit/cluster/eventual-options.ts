/** Eventual mode: hit batching, warm-up and replay (`RateLimitsOptions.eventual`). */
export interface EventualOptions {
  /** Hits wait at most this long before their batch is published. Default 5 ms. */
  flushMs?: number;
  /** A batch is published early once its hits reach about this many bytes. Default 32 KiB. */
  maxBatchBytes?: number;
  /** Ask peers for their recent batches on start (and backfill peers first heard mid-stream). Default true. */
  warmup?: boolean;
  /** Own hits kept for peers that missed them, at most. Default 200 000. */
  retainHits?: number;
  /** How long to wait for a sync or replay answer. Default 2000 ms. */
  replayTimeoutMs?: number;
  /**
   * Keys a peer's hits may create here and have held at once (its key budget); hits that would
   * create more are dropped (`overBudgetHits`, a warning per 10 s). Hits for keys already held
   * always count. Default 100 000 (`DEFAULT_MAX_KEYS_PER_ORIGIN`).
   */
  maxKeysPerOrigin?: number;
  /**
   * Hits in one batch, at most: a node publishes a batch once it has this many, and a received
   * batch with more is dropped whole (`oversizedBatches`). The same on every gateway. Default 10 000.
   */
  maxBatchHits?: number;
  /**
   * Bytes of one received batch message, at most; a bigger one is dropped unread
   * (`oversizedBatches`). At least 4 × `maxBatchBytes`. Default 1 MiB (NATS's default max_payload).
   */
  maxReceivedBatchBytes?: number;
  /**
   * Longest key (`<dimension>:<value>`, characters) shared with peers: a hit with a longer key
   * counts on its own gateway only (not published, `unsharedHits`; dropped on receipt,
   * `longKeyHits`). Bounds the memory of one remote key. Default 1024.
   */
  maxKeyLength?: number;
}

/** Default of `eventual.maxKeysPerOrigin`. */
export const DEFAULT_MAX_KEYS_PER_ORIGIN = 100_000;

/**
 * Out-of-order batches remembered per origin (above its watermark, waiting for a gap to be
 * replayed). Beyond it the oldest gap is given up (its batches taken as gone), so one origin's
 * sequence numbers cannot grow our memory without bound.
 */
export const MAX_OUT_OF_ORDER_BATCHES = 4096;

/** Counters of the eventual tier: hit batches published and received, duplicates, gaps, replays. */
export interface EventualStats {
  published: number;
  publishedHits: number;
  received: number;
  appliedHits: number;
  staleHits: number;
  unknownPolicyHits: number;
  duplicates: number;
  gaps: number;
  replayRequests: number;
  replayedBatches: number;
  syncs: number;
  /** True when the node started without warm-up (counts start empty; see protocol/ratelimit.md). */
  coldStart: boolean;
  /** Cold start: hits this node admitted before one longest horizon had passed (its overshoot is at most these). */
  coldAdmissions: number;
  /** Peers' hits that arrived for a key already at its limit here: cluster-wide overshoot as this node sees it. */
  overLimitHits: number;
  /** Peers' hits dropped: they would have created a key beyond their origin's maxKeysPerOrigin. */
  overBudgetHits: number;
  /** Peers' hits dropped for a key longer than maxKeyLength. */
  longKeyHits: number;
  /** Own hits not published: key longer than maxKeyLength (they count on this node only). */
  unsharedHits: number;
  /** Received batches dropped whole: over maxBatchHits hits or maxReceivedBatchBytes bytes. */
  oversizedBatches: number;
  /** Messages from a new origin ignored because maxOrigins origins were already known. */
  ignoredOrigins: number;
}

/**
 * How long an origin stays remembered after its last message, beyond the longest horizon. An
 * origin is forgotten only once every hit we applied from it has been stale for this long: if it
 * speaks again (a partition longer than that) and replays from batch 1, each replayed hit we had
 * already counted is older than its horizon and is dropped, never counted twice.
 */
export const FORGET_ORIGIN_MS = 10 * 60_000;
