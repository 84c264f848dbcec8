import type net from 'node:net';

/** The open sockets and sessions of one daemon, capped, so that shutdown and directory changes reach them all. */
export class Connections<S extends { recheck(): Promise<void> }> {
  readonly sessions = new Set<S>();
  #sockets = new Set<net.Socket>();

  constructor(private readonly maxConnections: number) {}

  /**
   * Takes a new socket in, or refuses it with `refusal` (the protocol's own line) when full.
   * Either way its errors are swallowed: they concern that client only.
   */
  admit(socket: net.Socket, refusal: string): boolean {
    socket.on('error', () => {});
    // Responses go out in several writes; without this, Nagle + delayed ACK add ~40 ms to each.
    socket.setNoDelay(true);
    if (this.#sockets.size >= this.maxConnections) {
      socket.end(refusal);
      return false;
    }
    this.#sockets.add(socket);
    return true;
  }

  add(session: S): void {
    this.sessions.add(session);
  }

  /** forgets a connection that closed (`socket` is the one admit() took) */
  remove(socket: net.Socket, session: S): void {
    this.sessions.delete(session);
    this.#sockets.delete(socket);
  }

  /** asks every session to re-check its user on each directory change; returns the unsubscribe */
  recheckOn(directory: { onChange(listener: () => void): () => void }): () => void {
    return directory.onChange(() => {
      for (const s of this.sessions) void s.recheck().catch(() => {});
    });
  }

  /** cuts every connection still open */
  closeAll(): void {
    for (const s of this.#sockets) s.destroy();
  }
}
