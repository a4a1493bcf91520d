#!/usr/bin/env node
// Launcher for `npx keyrot`. Installed from the package (dist/cli/, built by `npm run build`) it runs
// the compiled CLI beside it; in this repository it runs the TypeScript sources through tsx (a dev
// dependency).
const compiled = require('node:fs').existsSync(require('node:path').join(__dirname, 'main.js'));
if (!compiled) require('tsx/cjs');

// The AWS SDK warns on every start under Node 20 (its support ends in 2027; see the README). Keep
// stderr for what this command has to say; every other warning is still printed.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  const text = `${warning.name}: ${warning.message}`;
  if (!text.includes('NodeVersionSupportWarning')) process.stderr.write(`${text}\n`);
});
const { main } = require(compiled ? './main.js' : './main.ts');

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
