import assert from 'node:assert/strict';
import { Directory, generateSecret, type App } from '@hearth/directory';
import { createLogger } from '@hearth/log';
import { testEnv, type TestEnv } from '@hearth/testkit';
import { startTurn, type TurnServer } from '../src/server.ts';
import { loadTurnSettings, type TurnSettings } from '../src/settings.ts';
import { Attr, attrValue, Class, Method, parseXorAddress, requestedTransportValue } from '../src/stun-codec.ts';
import { errorOf, login, restCredentials, signed, TestClient, type Session } from './client.ts';

const UDP = requestedTransportValue(17);

export interface Fixture {
  env: TestEnv;
  directory: Directory;
  server: TurnServer;
  secret: string;
  close(): Promise<void>;
}

export function turnApp(id: string, secret: string): App {
  return {
    id,
    domain: `${id}.example.test`,
    manifest: { addons: { turn: {} } },
    access: null,
    upstream: null,
    credentials: { turn: { secret } },
    createdAt: new Date().toISOString(),
  };
}

/** An in-process TURN server on port 0 over a fresh directory holding one app with a TURN secret. */
export async function startFixture(opts: { allowLoopback?: boolean; settings?: Partial<TurnSettings>; listen?: string; env?: Record<string, string> } = {}): Promise<Fixture> {
  const env = await testEnv({
    env: { HEARTH_TURN_PORT: '0', HEARTH_TURN_TLS_PORT: '0', HEARTH_TURN_ALLOW_LOOPBACK_PEERS: opts.allowLoopback ? '1' : '', HEARTH_LISTEN: opts.listen ?? '127.0.0.1', ...opts.env },
  });
  const logger = createLogger('turn-test', 'silent');
  const directory = await Directory.open(env.config, { logger });
  const secret = generateSecret(32);
  await directory.putApp(turnApp('meet', secret), []);
  const settings = { ...loadTurnSettings({}), ...opts.settings };
  const server = await startTurn({ config: env.config, directory, logger, tls: null, settings });
  return {
    env,
    directory,
    server,
    secret,
    close: async () => {
      await server.close();
      await directory.close();
      await env.cleanup();
    },
  };
}

/** Opens a client, logs in and allocates; returns the client, its session and the relayed address. */
export async function allocated(f: Fixture, transport: 'udp' | 'tcp' = 'udp', user = 'alice'): Promise<{ c: TestClient; s: Session; relayPort: number }> {
  const c = await TestClient.open(transport, f.server.udpPort);
  const { username, password } = restCredentials(f.secret, user);
  const s = await login(c, username, password);
  const r = await signed(c, s, Method.Allocate, [[Attr.RequestedTransport, UDP]]);
  assert.equal(r?.cls, Class.Success, `allocate failed: ${errorOf(r)}`);
  const relay = parseXorAddress(attrValue(r!, Attr.XorRelayedAddress)!, r!.transactionId)!;
  return { c, s, relayPort: relay.port };
}
