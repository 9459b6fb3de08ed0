/**
 * A minimal XMLHttpRequest over `fetch`: exactly what the LongPoll transport of phoenix 1.6/1.7
 * uses (open, setRequestHeader, send, abort, timeout/ontimeout, onerror, onreadystatechange,
 * readyState, status, responseText). Those releases have no fetch fallback and Node has no XHR.
 *
 * Semantics kept from browsers: readyState becomes 4 (DONE) and onreadystatechange fires when a
 * response has been read; a network failure calls onerror; a timeout calls ontimeout; an aborted
 * request calls nothing (the client has already stopped listening).
 */
export class FetchXMLHttpRequest {
  static readonly DONE = 4;
  /** Every request sent (method and request headers), for assertions on what a client sent. */
  static readonly log: { method: string; url: string; headers: Record<string, string> }[] = [];
  readyState = 0;
  status = 0;
  responseText = '';
  timeout = 0;
  onreadystatechange: (() => void) | null = null;
  onerror: (() => void) | null = null;
  ontimeout: (() => void) | null = null;
  private method = 'GET';
  private url = '';
  private readonly headers: Record<string, string> = {};
  private controller: AbortController | null = null;
  private aborted = false;

  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
    this.readyState = 1;
  }

  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
  }

  send(body?: string | null): void {
    FetchXMLHttpRequest.log.push({
      method: this.method,
      url: this.url,
      headers: { ...this.headers },
    });
    const controller = new AbortController();
    this.controller = controller;
    let timedOut = false;
    const timer =
      this.timeout > 0
        ? setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, this.timeout)
        : null;
    const init: RequestInit = {
      method: this.method,
      headers: this.headers,
      signal: controller.signal,
    };
    if (body !== undefined && body !== null) init.body = body;
    fetch(this.url, init)
      .then(async (res) => {
        const text = await res.text();
        if (this.aborted) return;
        this.status = res.status;
        this.responseText = text;
        this.readyState = FetchXMLHttpRequest.DONE;
        this.onreadystatechange?.();
      })
      .catch(() => {
        if (this.aborted) return;
        this.readyState = FetchXMLHttpRequest.DONE;
        if (timedOut) this.ontimeout?.();
        else this.onerror?.();
      })
      .finally(() => {
        if (timer) clearTimeout(timer);
      });
  }

  abort(): void {
    this.aborted = true;
    this.controller?.abort();
  }
}
