#!/usr/bin/env node
// The `hearth` command: the compiled CLI (npm run build; npm ci builds it), with plain node.
import fs from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!fs.existsSync(main)) {
  process.stderr.write('hearth: the CLI is not built yet; run "npm run build" in the Hearth checkout\n');
  process.exit(1);
}
// stack traces point at the TypeScript lines
process.setSourceMapsEnabled(true);
await import(main.href);
