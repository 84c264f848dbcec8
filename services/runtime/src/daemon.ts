import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import type { Logger } from '@hearth/log';
import { appEnv } from '@hearth/provisioning';
import { AppRuntime, certChanged, markCertApplied, runtimeApp, Scheduler, type RuntimeSettings, type ScheduledApp } from '@hearth/runtime';

/** The apps that run (have an image), as the runtime needs them, from the directory's live view. */
function runningApps(config: HearthConfig, directory: Directory): { addons: Record<string, Record<string, unknown>>; app: NonNullable<ReturnType<typeof runtimeApp>> }[] {
  return directory.apps().flatMap((a) => {
    if (!a.manifest.dockerImage) return [];
    const app = runtimeApp(a, appEnv(config, directory, a.id));
    return app ? [{ addons: a.manifest.addons, app }] : [];
  });
}

export function scheduledApps(config: HearthConfig, directory: Directory): ScheduledApp[] {
  return runningApps(config, directory)
    .filter(({ addons }) => addons.scheduler)
    .map(({ app, addons }) => ({
      app,
      tasks: Object.entries(addons.scheduler as Record<string, { schedule: string; command: string }>).map(([name, t]) => ({ name, schedule: t.schedule, command: t.command })),
    }));
}

/**
 * Restarts an app whose tls pair changed on disk (a renewal, or `hearth app cert` while the app
 * was stopped) so it reads the new one; polls every HEARTH_CERT_POLL_SECONDS.
 */
export function watchCerts(runtime: AppRuntime, directory: Directory, logger: Logger): { close(): void } {
  let busy = false;
  const check = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      for (const { app } of runningApps(runtime.config, directory)) {
        if (!app.tls || !certChanged(runtime.dataDir, app.id)) continue;
        const state = await runtime.state(app.id);
        if (state.state === 'running') {
          await runtime.restart(app.id);
          logger.info({ app: app.id }, 'tls certificate changed; app restarted');
        }
        markCertApplied(runtime.dataDir, app.id);
      }
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'certificate watcher');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void check(), runtime.settings.certPollSeconds * 1000);
  return { close: () => clearInterval(timer) };
}

/** The runtime daemon: the scheduler and the certificate watcher over the engine at HEARTH_DOCKER_HOST. */
export async function startRuntime(opts: { config: HearthConfig; directory: Directory; logger: Logger; settings: RuntimeSettings }): Promise<{ endpoints: string[]; close(): Promise<void> }> {
  const runtime = new AppRuntime(opts.config, opts.settings);
  await runtime.requireEngine();
  const scheduler = new Scheduler(runtime, () => scheduledApps(opts.config, opts.directory), opts.logger, opts.settings.schedulerGraceSeconds);
  scheduler.start();
  const certs = watchCerts(runtime, opts.directory, opts.logger);
  return {
    endpoints: [`app containers on ${opts.config.dockerHost}`],
    async close() {
      scheduler.close();
      certs.close();
    },
  };
}
