/** One endpoint's entry in a `$SRV.STATS` answer (ADR-32: times in nanoseconds). */
export interface EndpointStatsReport {
  name: string;
  subject: string;
  average_processing_time: number;
  num_errors: number;
  num_requests: number;
  processing_time: number;
  last_error?: string;
  queue_group: string;
}

/**
 * The statistics of one endpoint, kept by the SDK itself: a request is counted when it arrives,
 * and its time (and error, for an error reply) when its reply is sent, which for SDK handlers is
 * later than the message callback returns.
 */
export class EndpointStats {
  private requests = 0;
  private processingNs = 0;
  private errors = 0;
  private lastError: string | undefined = undefined;

  /** A request arrived. */
  received(): void {
    this.requests++;
  }

  /** The request that arrived at `startedAt` (ms) was answered; `error` for an error reply. */
  replied(startedAt: number, error: string | null): void {
    this.processingNs += Math.max(0, Date.now() - startedAt) * 1_000_000;
    if (error !== null) {
      this.errors++;
      this.lastError = error;
    }
  }

  /** The `$SRV.STATS` entry of the endpoint `name` on `subject` in queue group `queue`. */
  report(name: string, subject: string, queue: string): EndpointStatsReport {
    return {
      name,
      subject,
      average_processing_time:
        this.requests > 0 ? Math.round(this.processingNs / this.requests) : 0,
      num_errors: this.errors,
      num_requests: this.requests,
      processing_time: this.processingNs,
      ...(this.lastError === undefined ? {} : { last_error: this.lastError }),
      queue_group: queue,
    };
  }
}
