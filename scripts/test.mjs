#!/usr/bin/env node
// One test runner for the whole repo: node's built-in runner over every *.test.ts
// under the given folders (default: the whole workspace), TypeScript through tsx.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const args = process.argv.slice(2);
const dirs = args.length ? args.map((a) => path.resolve(a)) : ['shared', 'services', 'test'].map((d) => path.join(root, d));

function find(dir, out) {
  if (!fs.existsSync(dir)) return out;
  if (fs.statSync(dir).isFile()) return [...out, dir];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) find(p, out);
    else if (e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = dirs.flatMap((d) => find(d, [])).sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const concurrency = process.env.HEARTH_TEST_CONCURRENCY ?? String(Math.max(2, os.availableParallelism()));
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  cwd: root,
  env: { ...process.env, HEARTH_ARGON2_MEMORY_KIB: process.env.HEARTH_ARGON2_MEMORY_KIB ?? '1024', HEARTH_ARGON2_TIME_COST: process.env.HEARTH_ARGON2_TIME_COST ?? '1', HEARTH_LOG_LEVEL: process.env.HEARTH_LOG_LEVEL ?? 'warn' },
});
process.exit(r.status ?? 1);
