// TLS 1.3 resumed handshakes in a loop, for bench/tls.sh (openssl s_time -reuse cannot resume
// TLS 1.3: it closes before the ticket arrives). Usage: node tls-resume.mjs PORT SECONDS
// Prints "N handshakes in S s, R resumed".
import { connect } from 'node:tls';

const port = Number(process.argv[2]);
const secs = Number(process.argv[3] ?? 5);
const opts = { host: '127.0.0.1', port, servername: 'bench.portico.test', rejectUnauthorized: false, minVersion: 'TLSv1.3' };

function once(session) {
  return new Promise((resolve) => {
    const s = connect({ ...opts, session });
    let got;
    s.once('session', (t) => {
      got = t;
      resolve({ session: got, resumed: s.isSessionReused() });
      s.destroy();
    });
    s.once('secureConnect', () => {
      // A resumed session may bring no new ticket (Node servers send none): keep the one we have.
      if (session !== undefined && s.isSessionReused()) {
        resolve({ session, resumed: true });
        s.destroy();
      }
    });
    s.on('error', () => resolve({ session, resumed: false }));
    s.on('close', () => resolve({ session, resumed: false }));
    s.setTimeout(3000, () => s.destroy());
  });
}

let { session } = await once(undefined);
const until = Date.now() + secs * 1000;
let n = 0;
let resumed = 0;
const t0 = Date.now();
while (Date.now() < until) {
  const r = await once(session);
  n++;
  if (r.resumed) resumed++;
  if (r.session !== undefined) session = r.session;
}
console.log(`${n} handshakes in ${((Date.now() - t0) / 1000).toFixed(2)} s, ${resumed} resumed`);
