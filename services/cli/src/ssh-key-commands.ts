import fs from 'node:fs';
import type { Command } from './commands.ts';
import { printJson, printTable, readStdin, UsageError } from './output.ts';

const out = (line: string): void => void process.stdout.write(line + '\n');

/** `hearth user ssh-key …`: public keys a user logs in to SFTP with (services/sftp). */
export const SSH_KEY_COMMANDS: Command[] = [
  {
    path: ['user', 'ssh-key', 'add'],
    usage: '<u> ["ssh-ed25519 AAAA… comment" | --file id_ed25519.pub | - (stdin)]',
    args: [1, 2],
    options: { file: { type: 'string' } },
    async run({ directory, values, args }) {
      const file = typeof values.file === 'string' ? values.file : undefined;
      if (file && args[1]) throw new UsageError('give the key or --file, not both');
      const line = file ? fs.readFileSync(file, 'utf8') : args[1] && args[1] !== '-' ? args[1] : await readStdin();
      const lines = line.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
      if (lines.length !== 1) throw new UsageError('expected exactly one public key line');
      const key = await (await directory()).addSshKey(args[0]!, lines[0]!);
      out(`added ${key.algorithm} key ${key.fingerprint} (${key.id}) for ${args[0]}`);
    },
  },
  {
    path: ['user', 'ssh-key', 'list'],
    usage: '<u> [--json]',
    args: 1,
    async run({ directory, values, args }) {
      const keys = await (await directory()).sshKeys(args[0]!);
      if (values.json) return printJson(keys.map(({ id, algorithm, fingerprint, comment, createdAt }) => ({ id, algorithm, fingerprint, comment, createdAt })));
      printTable(keys.map((k) => ({ id: k.id, type: k.algorithm, fingerprint: k.fingerprint, comment: k.comment, added: k.createdAt })), ['id', 'type', 'fingerprint', 'comment', 'added']);
    },
  },
  {
    path: ['user', 'ssh-key', 'del'],
    usage: '<u> <key id | fingerprint>',
    args: 2,
    async run({ directory, args }) {
      await (await directory()).deleteSshKey(args[0]!, args[1]!);
      out(`deleted key ${args[1]} of ${args[0]}`);
    },
  },
];
