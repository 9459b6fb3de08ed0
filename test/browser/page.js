// Runs inside headless Chromium, served from a different origin than the gateway. Drives the
// unmodified phoenix.mjs and POSTs what it saw to /report on the page's own server.
import { LongPoll, Presence, Socket } from '/phoenix.mjs';

const gateway = new URLSearchParams(location.search).get('gateway');

function within(ms, label, executor) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout: ${label}`)), ms);
    executor(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

const reply = (push, label) =>
  within(5000, label, (resolve) => {
    push.receive('ok', (response) => resolve({ status: 'ok', response }));
    push.receive('error', (response) => resolve({ status: 'error', response }));
  });

async function session(path, options) {
  const socket = new Socket(`${gateway}${path}`, options);
  socket.connect();
  const channel = socket.channel('room:afterjoin', {});
  const welcome = within(5000, 'welcome', (resolve) => channel.on('welcome', resolve));
  const joined = await reply(channel.join(), 'join');
  const echo = await reply(channel.push('echo', { hello: 'browser' }), 'echo');
  const out = {
    joined,
    welcome: await welcome,
    echo,
    transport: socket.transport === LongPoll ? 'longpoll' : 'websocket',
  };
  if (out.transport === 'websocket') {
    const binary = await reply(channel.push('bin', new Uint8Array([1, 2, 3]).buffer), 'binary');
    out.binary = Array.from(new Uint8Array(binary.response));
  }
  const lobby = socket.channel('presence:browser', { key: `${out.transport}-user` });
  const presence = new Presence(lobby);
  const synced = within(5000, 'presence', (resolve) =>
    presence.onSync(() => {
      const keys = presence.list((key) => key);
      if (keys.length > 0) resolve(keys);
    }),
  );
  await reply(lobby.join(), 'presence join');
  out.presence = await synced;
  socket.disconnect();
  return out;
}

async function refused(path) {
  const socket = new Socket(`${gateway}${path}`, { reconnectAfterMs: () => 60000 });
  let opened = false;
  socket.onOpen(() => (opened = true));
  const errored = within(5000, 'error', (resolve) => socket.onError(() => resolve(true)));
  socket.connect();
  await errored;
  socket.disconnect();
  return { errored: await errored, opened };
}

async function fallback(path) {
  const socket = new Socket(`${gateway}${path}`, {
    longPollFallbackMs: 300,
    sessionStorage: window.sessionStorage,
  });
  socket.connect();
  const channel = socket.channel('room:fallback', {});
  const joined = await reply(channel.join(), 'fallback join');
  const echo = await reply(channel.push('echo', { via: 'fallback' }), 'fallback echo');
  const out = {
    joined,
    echo,
    transport: socket.transport === LongPoll ? 'longpoll' : 'websocket',
    remembered: window.sessionStorage.getItem('phx:fallback:LongPoll'),
  };
  socket.disconnect();
  return out;
}

async function run() {
  const results = {};
  const params = { user_id: '7' };
  for (const [name, task] of [
    ['websocket', () => session('/defaults', { params, authToken: 'tok' })],
    ['longpoll', () => session('/defaults', { params, authToken: 'tok', transport: LongPoll })],
    ['originRefused', () => refused('/strict')],
    ['fallback', () => fallback('/nows')],
  ]) {
    try {
      results[name] = await task();
    } catch (error) {
      results[name] = { failed: String(error) };
    }
  }
  await fetch('/report', { method: 'POST', body: JSON.stringify(results) });
}

run();
