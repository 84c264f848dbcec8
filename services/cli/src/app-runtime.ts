import fs from 'node:fs';
import { appLogContainer, appStatus, appTasks, engineRuntime, installAppCert, runnableApp, taskLogContainer } from '@hearth/provisioning';
import { containerLogs, execInApp } from '@hearth/runtime';
import type { Command } from './commands.ts';
import { printFields, printJson, printTable, UsageError } from './output.ts';

/** `hearth app …` commands that run the app's container on the Docker engine (@hearth/runtime). */

const out = (line: string): void => void process.stdout.write(line + '\n');

export const APP_RUNTIME_COMMANDS: Command[] = [
  ...(['start', 'stop', 'restart'] as const).map(
    (verb): Command => ({
      path: ['app', verb],
      usage: '<appId>',
      args: 1,
      async run({ config, directory, args }) {
        const app = runnableApp(config, await directory(), args[0]!);
        await (await engineRuntime(config))[verb](app.id);
        out(`${verb === 'stop' ? 'stopped' : `${verb}ed`} app ${app.id}`);
      },
    }),
  ),
  {
    path: ['app', 'status'],
    usage: '<appId> [--json]',
    args: 1,
    async run({ config, directory, values, args }) {
      const app = runnableApp(config, await directory(), args[0]!);
      const runtime = await engineRuntime(config);
      const view = await appStatus(runtime, app);
      const tasks = await appTasks(runtime, await directory(), app.id);
      if (values.json) return printJson({ ...view, tasks });
      printFields(Object.entries(view));
      if (tasks.length) {
        out('');
        printTable(
          tasks.map((t) => ({ task: t.name, schedule: t.schedule, 'last run': t.lastRun?.due ?? 'never', state: t.lastRun?.state ?? '', exit: t.lastRun?.exitCode ?? '' })),
          ['task', 'schedule', 'last run', 'state', 'exit'],
        );
      }
    },
  },
  {
    path: ['app', 'logs'],
    usage: '<appId> [-f] [--tail N] [--task <name>]',
    args: 1,
    options: { follow: { type: 'boolean', short: 'f' }, tail: { type: 'string' }, task: { type: 'string' } },
    async run({ config, directory, values, args }) {
      const app = runnableApp(config, await directory(), args[0]!);
      const tail = values.tail === undefined ? undefined : Number(values.tail);
      if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new UsageError('--tail must be a number of lines');
      const runtime = await engineRuntime(config);
      let container: string;
      if (typeof values.task === 'string') {
        // A task's log is its last run's output (`app status` says when that was and how it ended).
        container = await taskLogContainer(runtime, await directory(), app.id, values.task);
      } else {
        container = await appLogContainer(runtime, app.id);
      }
      await containerLogs(runtime, container, { follow: Boolean(values.follow), tail }, process);
    },
  },
  {
    path: ['app', 'exec'],
    usage: '<appId> [-- command args…]',
    args: [1, Infinity],
    async run({ config, directory, args }) {
      const app = runnableApp(config, await directory(), args[0]!);
      return execInApp(await engineRuntime(config), app, args.slice(1), process);
    },
  },
  {
    path: ['app', 'cert'],
    usage: '<appId> --cert <cert.pem> --key <key.pem>',
    args: 1,
    options: { cert: { type: 'string' }, key: { type: 'string' } },
    async run({ config, directory, values, args }) {
      const certFile = values.cert;
      const keyFile = values.key;
      if (typeof certFile !== 'string' || typeof keyFile !== 'string') throw new UsageError('--cert and --key are required');
      const { restarted } = await installAppCert(config, await directory(), args[0]!, fs.readFileSync(certFile, 'utf8'), fs.readFileSync(keyFile, 'utf8'));
      out(restarted ? `installed the certificate of ${args[0]}; the app was restarted to read it` : `installed the certificate of ${args[0]}; the app reads it when it starts`);
    },
  },
];

