import type net from 'node:net';
import type { Logger } from '@hearth/log';
import { ConnectionMeter } from '@hearth/metrics';
import { addressKey } from './address.ts';
import type { ConnectionLimits } from './limits.ts';

/** Why a new connection was turned away. */
export type Refusal = 'full' | 'address';

export interface AdmitHooks {
  /** the protocol's own refusal (e.g. "421 4.7.0 …"), written before the socket is closed */
  refusal(reason: Refusal): Buffer | string;
  /** the connection was idle too long: say goodbye; the socket is cut once this settles (or after 2 s) */
  onIdle(): Promise<void> | void;
  /** true while the client waits for us (e.g. a slow DATA handler): silence then is not idleness */
  busy?(): boolean;
}

/** How often, relative to the idle timeout, a connection's traffic counters are looked at. */
const IDLE_CHECKS_PER_TIMEOUT = 4;
const GOODBYE_GRACE_MS = 2000;
/** one log line per refused address in this window, so a flood does not flood the log */
const REFUSAL_LOG_WINDOW_MS = 10_000;

/**
 * One admitted connection. Idleness is read from the accepted socket's byte counters, which keep
 * counting after a STARTTLS upgrade wraps the socket, so protocol code (ours or smtp-server's)
 * stays free to use socket.setTimeout for its own purposes.
 */
export class Slot {
  readonly remote: string;
  readonly key: string;
  #idleMs: number;
  #lastBytes = -1;
  #lastActive = Date.now();
  #idleTimer: NodeJS.Timeout | null = null;
  #lifeTimer: NodeJS.Timeout | null = null;
  #released = false;

  constructor(
    private readonly socket: net.Socket,
    limits: ConnectionLimits,
    private readonly hooks: AdmitHooks,
    private readonly onRelease: (slot: Slot) => void,
  ) {
    this.remote = socket.remoteAddress ?? 'unknown';
    this.key = addressKey(socket.remoteAddress);
    this.#idleMs = limits.idleTimeoutMs;
    this.#arm();
    if (limits.maxLifetimeMs > 0) {
      this.#lifeTimer = setTimeout(() => this.socket.destroy(), limits.maxLifetimeMs);
      this.#lifeTimer.unref();
    }
    socket.once('close', () => this.#release());
  }

  /** the idle timeout from now on (IMAP: short before login, long after) */
  setIdleTimeout(ms: number): void {
    if (ms === this.#idleMs) return;
    this.#idleMs = ms;
    this.#lastActive = Date.now();
    this.#arm();
  }

  #arm(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (this.#released) return;
    this.#idleTimer = setTimeout(() => this.#check(), Math.max(50, this.#idleMs / IDLE_CHECKS_PER_TIMEOUT));
    this.#idleTimer.unref();
  }

  #check(): void {
    const bytes = this.socket.bytesRead + this.socket.bytesWritten;
    const now = Date.now();
    if (bytes !== this.#lastBytes || this.hooks.busy?.()) {
      this.#lastBytes = bytes;
      this.#lastActive = now;
    }
    if (now - this.#lastActive < this.#idleMs) return this.#arm();
    const cut = setTimeout(() => this.socket.destroy(), GOODBYE_GRACE_MS);
    cut.unref();
    void Promise.resolve()
      .then(() => this.hooks.onIdle())
      .catch(() => {})
      .finally(() => {
        clearTimeout(cut);
        this.socket.destroy();
      });
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    if (this.#lifeTimer) clearTimeout(this.#lifeTimer);
    this.onRelease(this);
  }
}

/**
 * The connections of one daemon, over all its listeners: a global cap, a per-address share of it,
 * idle timeouts and a lifetime cap. Every TCP protocol admits its sockets here.
 */
export class ConnectionPool {
  #slots = new Set<Slot>();
  #sockets = new Set<net.Socket>();
  #perKey = new Map<string, number>();
  #refusalLogged = new Map<string, number>();
  readonly #meter: ConnectionMeter;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly log: { logger: Logger; protocol: string },
  ) {
    this.#meter = new ConnectionMeter(log.protocol);
  }

  get size(): number {
    return this.#slots.size;
  }

  /**
   * Takes a new socket in, or writes the protocol's refusal and closes it when the daemon or the
   * client's address has no slot left. Socket errors are swallowed either way: they concern that
   * client only.
   */
  admit(socket: net.Socket, hooks: AdmitHooks): Slot | null {
    socket.on('error', () => {});
    // Responses go out in several writes; without this, Nagle + delayed ACK add ~40 ms to each.
    socket.setNoDelay(true);
    const key = addressKey(socket.remoteAddress);
    const fromKey = this.#perKey.get(key) ?? 0;
    const reason: Refusal | null = this.#slots.size >= this.limits.maxConnections ? 'full' : fromKey >= this.limits.maxPerAddress ? 'address' : null;
    if (reason) {
      this.#meter.refused(reason);
      this.#logRefusal(key, reason, fromKey);
      socket.end(hooks.refusal(reason));
      setTimeout(() => socket.destroy(), GOODBYE_GRACE_MS).unref();
      return null;
    }
    this.#perKey.set(key, fromKey + 1);
    this.#meter.opened();
    const slot = new Slot(socket, this.limits, hooks, (s) => {
      this.#meter.closed();
      this.#slots.delete(s);
      this.#sockets.delete(socket);
      const n = (this.#perKey.get(s.key) ?? 1) - 1;
      if (n > 0) this.#perKey.set(s.key, n);
      else this.#perKey.delete(s.key);
    });
    this.#slots.add(slot);
    this.#sockets.add(socket);
    return slot;
  }

  #logRefusal(key: string, reason: Refusal, open: number): void {
    const now = Date.now();
    if (now - (this.#refusalLogged.get(key) ?? 0) < REFUSAL_LOG_WINDOW_MS) return;
    if (this.#refusalLogged.size > 10_000) this.#refusalLogged.clear();
    this.#refusalLogged.set(key, now);
    const why = reason === 'full' ? `all ${this.limits.maxConnections} connections are in use` : `${open} connections already open from this address (limit ${this.limits.maxPerAddress})`;
    this.log.logger.info({ protocol: this.log.protocol, remote: key, reason }, `${this.log.protocol} connection refused: ${why}`);
  }

  /** cuts every connection still open */
  closeAll(): void {
    for (const s of this.#sockets) s.destroy();
  }
}
