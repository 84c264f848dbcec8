import { counter } from '@hearth/metrics';

/** ProxyAuth's own metrics; HTTP requests and connections are counted by instrumentHttp. */

const decisions = counter({
  name: 'hearth_proxyauth_requests_total',
  help: 'Requests the gateway decided on (proxied, /verify, WebSocket upgrades), by app id and decision: allow, unauthenticated (sign-in needed), forbidden (not on the access list), invalid_credentials (HTTP Basic), throttled.',
  labelNames: ['app', 'decision'],
});

/** `app` is an installed app's id: bounded by what the operator installs, never a user or an address. */
export function countDecision(app: string, decision: 'allow' | 'unauthenticated' | 'forbidden' | 'invalid_credentials' | 'throttled'): void {
  decisions.inc({ app, decision });
}
