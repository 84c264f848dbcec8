import fs from 'node:fs';
import { appContainerName } from '@hearth/runtime';
import { appDeployer, appEnv, installApp, removeAppContainers, requireApp, rotateApp, uninstallApp } from '@hearth/provisioning';
import { APP_RUNTIME_COMMANDS } from './app-runtime.ts';
import { accessView, appFields, appView } from './app-view.ts';
import { out, str, type Command } from './commands.ts';
import { printFields, printJson, printTable, UsageError } from './output.ts';

/** `hearth app …`: its own module, so the user and group commands never load provisioning and the app runtime. */
export const APP_COMMANDS: Command[] = [
  {
    path: ['app', 'install'],
    usage: '<CloudronManifest.json> --id <appId> --domain <fqdn> [--access "users:a,b groups:g"] [--upstream http://host:port] [--image <ref>]',
    args: 1,
    options: { id: { type: 'string' }, domain: { type: 'string' }, access: { type: 'string', multiple: true }, upstream: { type: 'string' }, image: { type: 'string' } },
    async run({ config, directory, values, args }) {
      const id = str(values.id);
      const domain = str(values.domain);
      if (!id || !domain) throw new UsageError('--id and --domain are required');
      const manifestText = fs.readFileSync(args[0]!, 'utf8');
      const d = await directory();
      const existed = !!d.app(id);
      const app = await installApp(config, d, { manifestText, id, domain, access: values.access as string[] | undefined, upstream: str(values.upstream), image: str(values.image) }, appDeployer(config));
      out(`${existed ? 'updated' : 'installed'} app ${app.id} at ${app.domain} (addons: ${Object.keys(app.manifest.addons).join(', ') || 'none'})`);
      if (app.manifest.dockerImage) out(`started container ${appContainerName(app.id)} from ${app.manifest.dockerImage}`);
    },
  },
  {
    path: ['app', 'env'],
    usage: '<appId> [--json]',
    args: 1,
    async run({ config, directory, values, args }) {
      const vars = appEnv(config, await directory(), args[0]!);
      if (values.json) return printJson(Object.fromEntries(vars));
      for (const [k, v] of vars) out(`${k}=${v}`);
    },
  },
  {
    path: ['app', 'list'],
    usage: '[--json]',
    args: 0,
    async run({ directory, values }) {
      const d = await directory();
      const rows = d
        .apps()
        .map((a) => ({ id: a.id, domain: a.domain, title: a.manifest.title ?? '', addons: Object.keys(a.manifest.addons), access: accessView(d, a.access), upstream: a.upstream }))
        .sort((a, b) => a.id.localeCompare(b.id));
      if (values.json) return printJson(rows);
      printTable(rows.map((r) => ({ ...r, addons: r.addons.join(',') })), ['id', 'domain', 'title', 'addons', 'access']);
    },
  },
  {
    path: ['app', 'show'],
    usage: '<appId> [--json]',
    args: 1,
    async run({ config, directory, values, args }) {
      const d = await directory();
      const view = appView(config, d, requireApp(d, args[0]!));
      if (values.json) return printJson(view);
      printFields(appFields(view));
    },
  },
  {
    path: ['app', 'rotate'],
    usage: '<appId>',
    args: 1,
    async run({ config, directory, args }) {
      const app = await rotateApp(config, await directory(), args[0]!, appDeployer(config));
      out(app.manifest.dockerImage ? `rotated credentials of ${app.id}; its container was recreated with them` : `rotated credentials of ${app.id}; restart the app so it reads the new variables`);
    },
  },
  {
    path: ['app', 'uninstall'],
    usage: '<appId>',
    args: 1,
    async run({ config, directory, args }) {
      const d = await directory();
      await removeAppContainers(config, requireApp(d, args[0]!));
      await uninstallApp(config, d, args[0]!);
      out(`uninstalled app ${args[0]}`);
    },
  },
  ...APP_RUNTIME_COMMANDS,
];
