import type { SharedCounters } from './shared-state.ts';

export interface ThrottleLimits {
  /** failed logins per account within the window before further attempts are refused */
  perUser: number;
  /** failed logins per source address within the window */
  perAddress: number;
  windowSeconds: number;
}

export const DEFAULT_THROTTLE: ThrottleLimits = { perUser: 10, perAddress: 50, windowSeconds: 900 };

const NS = 'login-failures';

/**
 * Failed-login throttling shared by every protocol: the counters live in the store
 * or Redis, so ten wrong LDAP binds also lock the same account out of IMAP.
 */
export class LoginThrottle {
  constructor(
    private readonly counters: SharedCounters,
    readonly limits: ThrottleLimits = DEFAULT_THROTTLE,
  ) {}

  private keys(login: string, remote: string | null): [string, string | null] {
    return [`u:${login.toLowerCase()}`, remote ? `a:${remote}` : null];
  }

  async isBlocked(login: string, remote: string | null): Promise<boolean> {
    const [u, a] = this.keys(login, remote);
    const [nu, na] = await Promise.all([this.counters.get(NS, u), a ? this.counters.get(NS, a) : 0]);
    return nu >= this.limits.perUser || na >= this.limits.perAddress;
  }

  async recordFailure(login: string, remote: string | null): Promise<void> {
    const [u, a] = this.keys(login, remote);
    await Promise.all([this.counters.incr(NS, u, this.limits.windowSeconds), a ? this.counters.incr(NS, a, this.limits.windowSeconds) : null]);
  }

  async recordSuccess(login: string): Promise<void> {
    await this.counters.reset(NS, this.keys(login, null)[0]);
  }
}
