#!/usr/bin/env node
// Launcher for `npx keyrot` (package.json bin). In this repository, beside the TypeScript sources, it
// runs them through tsx (a dev dependency), so that `npx keyrot` works right after `npm ci` and always
// runs the sources as they are; installed from the package (which ships this file and dist/, not the
// sources) it runs the compiled CLI, dist/cli/main.js (built by `npm run build`).
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const fromSources = existsSync(join(__dirname, 'main.ts'));
if (fromSources) require('tsx/cjs');

// The AWS SDK warns on every start under Node 20 (its support ends in 2027; see the README). Keep
// stderr for what this command has to say; every other warning is still printed.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  const text = `${warning.name}: ${warning.message}`;
  if (!text.includes('NodeVersionSupportWarning')) process.stderr.write(`${text}\n`);
});
const { main } = require(fromSources ? './main.ts' : '../dist/cli/main.js');

main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  isTTY: Boolean(process.stderr.isTTY),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`keyrot: unexpected failure: ${error && error.message}\n`);
    process.exitCode = 1;
  },
);
