export { addressKey } from './address.ts';
export { CommandQueue, type CommandQueueOptions } from './command-queue.ts';
export { loadConnectionLimits, type ConnectionLimits } from './limits.ts';
export { MemoryIO } from './memory-io.ts';
export { listenAll, type ListenerSpec, type Listeners, type ListenOptions } from './listeners.ts';
export { ConnectionPool, Slot, type AdmitHooks, type Refusal } from './pool.ts';
export { serveLines, type Framer, type LineProtocol, type LineServer, type LineServerOptions, type LineSession, type RequestResult } from './server.ts';
export { TlsUpgradableTransport, type SessionIO, type TransportHooks } from './transport.ts';
