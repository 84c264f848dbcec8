import type { HearthConfig } from '@hearth/config';
import type { App, Directory } from '@hearth/directory';
import { appEnv, requireApp, type AppDeployer } from '@hearth/provisioning';
import { AppRuntime, containerLogs, EngineError, execInApp, runtimeApp, type RuntimeApp } from '@hearth/runtime';
import type { Command } from './commands.ts';
import { printFields, printJson, UsageError } from './output.ts';

/** `hearth app …` commands that run the app's container on the Docker engine (@hearth/runtime). */

const out = (line: string): void => void process.stdout.write(line + '\n');

/** Creates the app's container for install and rotate (@hearth/provisioning calls it before storing the app). */
export function appDeployer(config: HearthConfig): AppDeployer {
  return {
    async deploy(app, env) {
      return new AppRuntime(config).deploy(runtimeApp(app, env)!);
    },
  };
}

/** Uninstall's first step: the app's containers and volumes go before its row, so a failure leaves the app installed. */
export async function removeAppContainers(config: HearthConfig, app: App): Promise<void> {
  const runtime = new AppRuntime(config);
  // An app without an image has no containers unless the engine says otherwise; no engine is no error then.
  if (!app.manifest.dockerImage && !(await runtime.reachable())) return;
  await runtime.remove(app.id);
}

function runnable(config: HearthConfig, directory: Directory, id: string): RuntimeApp {
  const app = requireApp(directory, id);
  const r = runtimeApp(app, appEnv(config, directory, id));
  if (!r) throw new EngineError(`app ${id} has no image; install it with --image <ref> (or dockerImage in its manifest) to run it`);
  return r;
}

async function withRuntime(config: HearthConfig): Promise<AppRuntime> {
  const runtime = new AppRuntime(config);
  await runtime.requireEngine();
  return runtime;
}

export const APP_RUNTIME_COMMANDS: Command[] = [
  ...(['start', 'stop', 'restart'] as const).map(
    (verb): Command => ({
      path: ['app', verb],
      usage: '<appId>',
      args: 1,
      async run({ config, directory, args }) {
        const app = runnable(config, await directory(), args[0]!);
        await (await withRuntime(config))[verb](app.id);
        out(`${verb === 'stop' ? 'stopped' : `${verb}ed`} app ${app.id}`);
      },
    }),
  ),
  {
    path: ['app', 'status'],
    usage: '<appId> [--json]',
    args: 1,
    async run({ config, directory, values, args }) {
      const app = runnable(config, await directory(), args[0]!);
      const runtime = await withRuntime(config);
      const state = await runtime.state(app.id);
      const health = state.state === 'running' ? await runtime.health(app) : 'not running';
      const view = { id: app.id, image: app.image, container: state.container, state: state.state, health, restarts: state.restarts, startedAt: state.startedAt, finishedAt: state.finishedAt, exitCode: state.exitCode };
      if (values.json) return printJson(view);
      printFields(Object.entries(view));
    },
  },
  {
    path: ['app', 'logs'],
    usage: '<appId> [-f] [--tail N]',
    args: 1,
    options: { follow: { type: 'boolean', short: 'f' }, tail: { type: 'string' } },
    async run({ config, directory, values, args }) {
      const app = runnable(config, await directory(), args[0]!);
      const tail = values.tail === undefined ? undefined : Number(values.tail);
      if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new UsageError('--tail must be a number of lines');
      const runtime = await withRuntime(config);
      const state = await runtime.state(app.id);
      if (state.state === 'absent') throw new EngineError(`app ${app.id} has no container; run hearth app install again`);
      await containerLogs(runtime, state.container, { follow: Boolean(values.follow), tail }, process);
    },
  },
  {
    path: ['app', 'exec'],
    usage: '<appId> [-- command args…]',
    args: [1, Infinity],
    async run({ config, directory, args }) {
      const app = runnable(config, await directory(), args[0]!);
      return execInApp(await withRuntime(config), app, args.slice(1), process);
    },
  },
];
