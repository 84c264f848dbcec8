import { plainAddress, type LoginThrottleSettings } from '@hearth/config';
import type { SharedCounters } from './shared-state.ts';

export type ThrottleLimits = LoginThrottleSettings;

export const DEFAULT_THROTTLE: ThrottleLimits = { perUser: 10, perAddress: 50, windowSeconds: 900, knownAddressSeconds: 30 * 86400 };

const FAILURES = 'login-failures';
const KNOWN = 'login-known';

/**
 * What a login is counted against: the account it resolves to, however it was spelt (username, email,
 * id, any case or padding), or for a login that names nobody its normalised form, so ` erin`, `ERIN`
 * and `erin@example.test` share one count.
 */
export function throttleAccount(kind: 'user' | 'app', id: string | null, login: string): string {
  return id !== null ? `${kind}:${id}` : `${kind}-login:${login.trim().toLowerCase()}`;
}

/** One login attempt: whether it is refused, and where its outcome is counted. */
export interface LoginAttempt {
  readonly blocked: boolean;
  failed(): Promise<void>;
  /** Remembers the address; never throws (a full disk must not turn a right password into an error). */
  succeeded(): Promise<void>;
}

/**
 * Failed-login throttling shared by every protocol: the counters live in the store or Redis, so ten
 * wrong LDAP binds also lock the same account out of IMAP. Failures count per account and per source
 * address. An account with `perUser` failures in the window is refused, except from an address it
 * signed in from successfully within `knownAddressSeconds`: there only failures from that same address
 * count. Whoever knows a username can lock it out of new places, not out of the user's own.
 */
export class LoginThrottle {
  constructor(
    private readonly counters: SharedCounters,
    readonly limits: ThrottleLimits = DEFAULT_THROTTLE,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  async begin(account: string, remote: string | null): Promise<LoginAttempt> {
    const { perUser, perAddress, windowSeconds, knownAddressSeconds } = this.limits;
    const address = remote ? plainAddress(remote) : null;
    const pair = address && knownAddressSeconds > 0 ? `${account}|${address}` : null;
    const [known, fromAddress, forAccount, forPair] = await Promise.all([
      pair ? this.counters.get(KNOWN, pair) : 0,
      address ? this.counters.get(FAILURES, `a:${address}`) : 0,
      this.counters.get(FAILURES, `u:${account}`),
      pair ? this.counters.get(FAILURES, `p:${pair}`) : 0,
    ]);
    const blocked = fromAddress >= perAddress || (known > 0 ? forPair : forAccount) >= perUser;
    return {
      blocked,
      failed: async () => {
        await Promise.all([
          this.counters.incr(FAILURES, `u:${account}`, windowSeconds),
          address ? this.counters.incr(FAILURES, `a:${address}`, windowSeconds) : null,
          pair ? this.counters.incr(FAILURES, `p:${pair}`, windowSeconds) : null,
        ]);
      },
      // The account-wide count is left to expire: a user signing in often must not wipe an attacker's tally.
      succeeded: async () => {
        if (!pair) return;
        await Promise.all([this.counters.touch(KNOWN, pair, knownAddressSeconds), forPair > 0 ? this.counters.reset(FAILURES, `p:${pair}`) : null]).catch(this.onError);
      },
    };
  }
}
