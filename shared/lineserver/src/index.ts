export { CommandQueue, type CommandQueueOptions } from './command-queue.ts';
export { Connections } from './connections.ts';
export { listenPair, type ListenerPair, type ListenPairOptions } from './listeners.ts';
export { TlsUpgradableTransport, type TransportHooks } from './transport.ts';
