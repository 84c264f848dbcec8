import type net from 'node:net';

export interface CommandQueueOptions<T> {
  /** above this many waiting items the socket stops reading; it resumes below a quarter of it */
  maxQueued: number;
  /** the socket to pause and resume (the current one, which changes on a TLS upgrade) */
  socket(): net.Socket;
  /** once true, waiting items are left alone */
  closed(): boolean;
  handle(item: T): Promise<void>;
  /** a handler threw: the connection goes on with the next item */
  onError(err: unknown): void;
  /** after each item, e.g. to change the idle timeout once logged in */
  afterEach?(): void;
  /** whenever nothing is left to run, e.g. to send responses batched over pipelined requests */
  whenEmpty?(): Promise<void>;
}

/** Runs a connection's commands one at a time, in order, pausing the socket while too many wait. */
export class CommandQueue<T> {
  #items: T[] = [];
  #running = false;
  #paused = false;

  constructor(private readonly opts: CommandQueueOptions<T>) {}

  /** queues what one read produced and runs it */
  enqueue(items: Iterable<T>): void {
    for (const item of items) this.#items.push(item);
    if (this.#items.length > this.opts.maxQueued && !this.#paused) {
      this.#paused = true;
      this.opts.socket().pause();
    }
    void this.#pump();
  }

  /** removes and returns everything still waiting */
  drop(): T[] {
    return this.#items.splice(0);
  }

  async #pump(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    while (!this.opts.closed()) {
      if (!this.#items.length) {
        if (!this.opts.whenEmpty) break;
        await this.opts.whenEmpty().catch((err: unknown) => this.opts.onError(err));
        if (!this.#items.length) break;
        continue;
      }
      const item = this.#items.shift()!;
      try {
        await this.opts.handle(item);
      } catch (err) {
        this.opts.onError(err);
      }
      if (this.#paused && this.#items.length < this.opts.maxQueued / 4) {
        this.#paused = false;
        this.opts.socket().resume();
      }
      this.opts.afterEach?.();
    }
    this.#running = false;
  }
}
