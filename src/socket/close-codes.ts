/** Close codes the gateway uses (protocol/phoenix.md §Close codes). */
export const CLOSE = {
  normal: 1000,
  disconnect: 1001,
  idleTimeout: 1002,
  invalidFrame: 1011,
  /** An internal failure while handling one of the socket's frames (the same code as Phoenix). */
  internalError: 1011,
  tooLarge: 1009,
  drain: 1012,
  /** Policy violation: a flood of rate-limited messages, or client bytes over inboundByteRate. */
  flood: 1008,
  /**
   * The token the socket connected with expired (protocol/phoenix.md §Close codes). An abnormal
   * close, so Phoenix clients reconnect, with fresh params from their `params` function.
   */
  tokenExpired: 4001,
} as const;
