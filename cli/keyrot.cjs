#!/usr/bin/env node
// Launcher for `npx keyrot`: runs the TypeScript CLI through tsx (a dev dependency of this repository).
require('tsx/cjs');
const { main } = require('./main.ts');

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
