// The container health checks of the Docker image and docker-compose.yml (plain node: the slim
// image has no curl or wget). Exit 0 healthy, 1 not.
//
//   node scripts/healthcheck.mjs gateway [path]
//     GET http://127.0.0.1:$PORT<path> (PORT default 4000, path default /healthz) answers 2xx
//     within TIMEOUT_MS. /healthz: the process serves HTTP; /readyz: it also has NATS, is not
//     draining (the compose file uses that one, so a gateway counts as healthy once it can serve).
//   node scripts/healthcheck.mjs worker
//     this container holds an established TCP connection to NATS_URL's port (default 4222): the
//     worker is connected. A worker only connects to NATS, and each container has its own network
//     namespace, so /proc/net/tcp{,6} shows exactly its own connections (Linux only).
import { readFileSync } from 'node:fs';

/** How long the gateway has to answer. Docker's own `--timeout` must be longer. */
const TIMEOUT_MS = 2000;
/** /proc/net/tcp's state code of an established connection. */
const TCP_ESTABLISHED = '01';

async function gatewayHealthy(path) {
  const port = process.env.PORT || '4000';
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    return res.ok;
  } catch {
    return false;
  }
}

function workerConnected() {
  const url = process.env.NATS_URL || 'nats://127.0.0.1:4222';
  const port = Number(new URL(url.split(',')[0].trim()).port || 4222);
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6'].some((table) => {
    let text;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      return false;
    }
    // Columns: sl local_address rem_address st …; addresses are HEXIP:HEXPORT.
    return text
      .split('\n')
      .slice(1)
      .some((line) => {
        const [, , remote, state] = line.trim().split(/\s+/);
        return remote?.endsWith(`:${hexPort}`) && state === TCP_ESTABLISHED;
      });
  });
}

const [role, path = '/healthz'] = process.argv.slice(2);
let healthy;
if (role === 'gateway') healthy = await gatewayHealthy(path);
else if (role === 'worker') healthy = workerConnected();
else {
  process.stderr.write('usage: node scripts/healthcheck.mjs gateway [path] | worker\n');
  process.exit(2);
}
process.exit(healthy ? 0 : 1);
