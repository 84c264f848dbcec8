import { z } from 'zod';
import { generateSecret } from '@hearth/directory';
import type { Addon } from '../addon.ts';

/** The TURN REST API shared secret; the TURN server accepts credentials made from any app's secret. */
export const turn: Addon = {
  name: 'turn',
  optionsSchema: z.object({}).strict(),
  async provision(_ctx, existing) {
    return existing ?? { secret: generateSecret(32) };
  },
  async rotate() {
    return { secret: generateSecret(32) };
  },
  env({ config }, c) {
    return [
      ['CLOUDRON_TURN_SERVER', config.hostname],
      ['CLOUDRON_TURN_PORT', String(config.ports.turn)],
      ['CLOUDRON_TURN_TLS_PORT', String(config.ports.turnTls)],
      ['CLOUDRON_TURN_SECRET', c.secret!],
    ];
  },
};
