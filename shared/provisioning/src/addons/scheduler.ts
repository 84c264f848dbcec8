import { z } from 'zod';
import { parseSchedule, ScheduleError } from '@hearth/runtime';
import { ProvisionError, type Addon } from '../addon.ts';

const scheduleSchema = z.string().superRefine((text, ctx) => {
  try {
    parseSchedule(text);
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message });
  }
});

export const taskSchema = z.object({ schedule: scheduleSchema, command: z.string().min(1, 'command must not be empty').max(4096) }).strict();

/** The seed's periodic tasks: `sh -c <command>` in a container from the app's image (the runtime daemon runs them). */
export const scheduler: Addon = {
  name: 'scheduler',
  optionsSchema: z.record(z.string(), taskSchema).superRefine((tasks, ctx) => {
    for (const name of Object.keys(tasks)) {
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'task names are 1-64 letters, digits, ".", "_" and "-"' });
    }
  }),
  async provision(ctx) {
    if (!ctx.app.manifest.dockerImage) throw new ProvisionError('the scheduler addon runs tasks in the app\'s image: install the app with --image <ref> (or dockerImage in its manifest)');
    return {};
  },
  env() {
    return [];
  },
};
