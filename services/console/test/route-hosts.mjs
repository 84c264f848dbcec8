// Loaded into the daemons of backchannel.test.ts (NODE_OPTIONS=--import): their outgoing TLS
// connections to a name in HEARTH_TEST_ROUTES ("name=address:port,…") go to that loopback
// address and port — what Chromium's --host-resolver-rules does for the browser. The TLS
// handshake is unchanged (SNI and the certificate check use the name; the test's CA comes in
// through NODE_EXTRA_CA_CERTS), so the provider talks real HTTPS to the test app.
import tls from 'node:tls';

const routes = new Map(
  (process.env.HEARTH_TEST_ROUTES ?? '')
    .split(',')
    .filter(Boolean)
    .map((entry) => {
      const [name, to] = entry.split('=');
      const at = to.lastIndexOf(':');
      return [name, { host: to.slice(0, at), port: Number(to.slice(at + 1)) }];
    }),
);
const connect = tls.connect;
tls.connect = function (...args) {
  const options = args[0];
  const route = options && typeof options === 'object' ? routes.get(options.host) : undefined;
  if (route) args[0] = { ...options, host: route.host, port: route.port, servername: options.servername || options.host };
  return connect.apply(this, args);
};
