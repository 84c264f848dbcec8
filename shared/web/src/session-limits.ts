/** Idle and absolute lifetimes of a server-side web session (the gateway's, the console's). */
export interface SessionLimits {
  sessionIdleSeconds: number;
  sessionMaxSeconds: number;
}

export interface SessionTimes {
  /** ms since epoch */
  createdAt: number;
  lastSeen: number;
}

export function sessionExpired(limits: SessionLimits, t: SessionTimes, now: number): boolean {
  return now - t.lastSeen > limits.sessionIdleSeconds * 1000 || now - t.createdAt > limits.sessionMaxSeconds * 1000;
}

/** How long the stored record must live: until it would go idle or reach its maximum age, whichever is first. */
export function sessionTtlSeconds(limits: SessionLimits, t: SessionTimes, now: number): number {
  const idleLeft = limits.sessionIdleSeconds * 1000 - (now - t.lastSeen);
  const maxLeft = limits.sessionMaxSeconds * 1000 - (now - t.createdAt);
  return Math.max(1, Math.ceil(Math.min(idleLeft, maxLeft) / 1000));
}
