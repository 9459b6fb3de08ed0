/** Raw LongPoll requests with fetch, for the §J conformance cases. */
import { WAIT_MS } from './wait.js';

export interface PollResponse {
  http: number;
  headers: Headers;
  body: { status: number; token?: string; messages?: string[]; [key: string]: unknown } | null;
  text: string;
}

export async function lp(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    signal?: AbortSignal;
  } = {},
): Promise<PollResponse> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: PollResponse['body'];
  try {
    body = text === '' ? null : (JSON.parse(text) as PollResponse['body']);
  } catch {
    body = null;
  }
  return { http: res.status, headers: res.headers, body, text };
}

/** Opens a LongPoll session (the first GET) and returns its token. */
export async function openSession(
  base: string,
  query = 'vsn=2.0.0',
  headers: Record<string, string> = {},
): Promise<string> {
  const res = await lp(`${base}?${query}`, { headers });
  if (res.body?.status !== 410 || typeof res.body.token !== 'string')
    throw new Error(`no session: ${res.text}`);
  return res.body.token;
}

export function post(
  base: string,
  token: string,
  lines: string[],
  query = 'vsn=2.0.0',
): Promise<PollResponse> {
  return lp(`${base}?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', 'x-phoenix-longpoll-token': token },
    body: lines.join('\n'),
  });
}

export function poll(base: string, token: string, query = 'vsn=2.0.0'): Promise<PollResponse> {
  return lp(`${base}?${query}`, { headers: { 'x-phoenix-longpoll-token': token } });
}

/** Polls until `count` messages arrived (parsed), failing after `timeoutMs`. */
export async function collect(
  base: string,
  token: string,
  count: number,
  timeoutMs = WAIT_MS,
): Promise<unknown[]> {
  const out: unknown[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count) {
    if (Date.now() > deadline)
      throw new Error(`only ${out.length}/${count} messages: ${JSON.stringify(out)}`);
    const res = await poll(base, token);
    if (res.body?.status === 200)
      for (const message of res.body.messages ?? []) out.push(JSON.parse(message));
    else if (res.body?.status !== 204) throw new Error(`poll failed: ${res.text}`);
  }
  return out;
}

/** A POST with any body and content type (the token in the header unless `token` is null). */
export function postBody(
  base: string,
  token: string | null,
  body: string,
  contentType = 'application/x-ndjson',
  query = 'vsn=2.0.0',
): Promise<PollResponse> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (token !== null) headers['x-phoenix-longpoll-token'] = token;
  return lp(`${base}?${query}`, { method: 'POST', headers, body });
}

/**
 * Polls until `done(messages so far)` holds, failing after `timeoutMs`; returns every parsed
 * message received (in order).
 */
export async function collectUntil(
  base: string,
  token: string,
  done: (messages: unknown[]) => boolean,
  timeoutMs = WAIT_MS,
  query = 'vsn=2.0.0',
): Promise<unknown[]> {
  const out: unknown[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(out)) {
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(out)}`);
    const res = await poll(base, token, query);
    if (res.body?.status === 200)
      for (const message of res.body.messages ?? []) out.push(JSON.parse(message));
    else if (res.body?.status !== 204) throw new Error(`poll failed: ${res.text}`);
  }
  return out;
}

/** The ndjson line for a client binary push (kind 0): standard base64, padded, as btoa gives. */
export function binaryPushLine(
  joinRef: string,
  ref: string,
  topic: string,
  event: string,
  payload: Uint8Array,
): string {
  const fields = [joinRef, ref, topic, event].map((field) => Buffer.from(field, 'utf8'));
  const header = Buffer.from([0, ...fields.map((field) => field.length)]);
  return Buffer.concat([header, ...fields, Buffer.from(payload)]).toString('base64');
}
