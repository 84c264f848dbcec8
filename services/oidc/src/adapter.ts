import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { ClientRegistry } from './clients.ts';
import type { OidcStorage } from './storage.ts';

/** The adapter class oidc-provider instantiates per model. Clients come from the directory, never from storage. */
export function adapterFor(storage: OidcStorage, clients: ClientRegistry): new (name: string) => Adapter {
  return class HearthAdapter implements Adapter {
    constructor(private readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      if (this.model === 'Client') return;
      await storage.set(this.model, id, payload, expiresIn);
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return clients.get(id)?.metadata;
      return storage.get(this.model, id);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return (await storage.findAll(this.model, 'uid', uid))[0];
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await storage.findAll(this.model, 'userCode', userCode))[0];
    }

    async consume(id: string): Promise<void> {
      // Two requests racing with one code (or refresh token): the loser gets invalid_grant.
      if (!(await storage.consume(this.model, id))) throw new errors.InvalidGrant(`${this.model} already consumed`);
    }

    async destroy(id: string): Promise<void> {
      await storage.delete(this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await storage.deleteAll(this.model, 'grantId', grantId);
    }
  };
}
