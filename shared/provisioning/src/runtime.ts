import type { HearthConfig } from '@hearth/config';
import type { Directory } from '@hearth/directory';
import { AppRuntime, EngineError, runtimeApp, type Health, type RuntimeApp } from '@hearth/runtime';
import { appEnv, requireApp } from './apps.ts';

/** What `hearth app start|stop|status|logs` and the console's app page share: the app as the engine runs it. */

/** The installed app with its variables, ready for the engine; an app without an image is a one-line error. */
export function runnableApp(config: HearthConfig, directory: Directory, id: string): RuntimeApp {
  const app = requireApp(directory, id);
  const r = runtimeApp(app, appEnv(config, directory, id));
  if (!r) throw new EngineError(`app ${id} has no image; install it with --image <ref> (or dockerImage in its manifest) to run it`);
  return r;
}

/** The engine, or a one-line error when it cannot be reached. */
export async function engineRuntime(config: HearthConfig): Promise<AppRuntime> {
  const runtime = new AppRuntime(config);
  await runtime.requireEngine();
  return runtime;
}

export interface AppStatus {
  id: string;
  image: string;
  container: string;
  state: string;
  health: Health | 'not running';
  restarts: number;
  startedAt: string | null;
  finishedAt: string | null;
  exitCode: number | null;
}

/** The app container's state and, when it runs, its health check's answer. */
export async function appStatus(runtime: AppRuntime, app: RuntimeApp): Promise<AppStatus> {
  const state = await runtime.state(app.id);
  const health = state.state === 'running' ? await runtime.health(app) : 'not running';
  return { id: app.id, image: app.image, container: state.container, state: state.state, health, restarts: state.restarts, startedAt: state.startedAt, finishedAt: state.finishedAt, exitCode: state.exitCode };
}

/** The name of the app's container, whose log `app logs` shows; none is a one-line error. */
export async function appLogContainer(runtime: AppRuntime, appId: string): Promise<string> {
  const state = await runtime.state(appId);
  if (state.state === 'absent') throw new EngineError(`app ${appId} has no container; run hearth app install again`);
  return state.container;
}
