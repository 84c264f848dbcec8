import type { HearthConfig } from '@hearth/config';
import type { App } from '@hearth/directory';
import { AppRuntime, imageOf } from '@hearth/runtime';
import type { Logger } from './create.ts';

/**
 * An app's container bind-mounts its /app/data: a folder swapped in by rename would stay out of
 * its sight (it would keep the old one, then see it emptied). The containers of the apps being
 * restored are stopped before the swap and started again after, whatever the swap's outcome;
 * no other app's container is touched.
 */
export async function stopAppContainers(config: HearthConfig, apps: App[], logger?: Logger): Promise<{ start(): Promise<void> }> {
  const stopped: string[] = [];
  const withImage = apps.filter((a) => imageOf(a.manifest));
  const runtime = withImage.length ? new AppRuntime(config) : null;
  if (runtime && (await runtime.reachable())) {
    for (const a of withImage) {
      if ((await runtime.state(a.id)).state !== 'running') continue;
      await runtime.stop(a.id);
      stopped.push(a.id);
    }
  }
  return {
    async start() {
      for (const id of stopped) {
        await runtime!.start(id).then(
          () => logger?.info({ app: id }, 'app container started again after the restore'),
          (err: Error) => logger?.warn({ app: id, err: err.message }, 'app container could not be started again after the restore'),
        );
      }
    },
  };
}
