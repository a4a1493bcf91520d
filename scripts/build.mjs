#!/usr/bin/env node
// `npm run build`: the installable package in dist/. The library and the CLI compiled to JavaScript
// with declarations (tsconfig.build.json), the Lambda handlers bundled into dist/assets/<name>/ with
// the options NodejsFunction uses (lib/constructs/bundling.ts), and the CLI's launcher.
import { execFileSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const require = createRequire(import.meta.url);

rmSync(dist, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
  {
    cwd: root,
    stdio: 'inherit',
  },
);

// The compiled module, so that the options are those the installed construct was built with.
const { HANDLER_NAMES, handlerEntry, handlerEsbuildOptions } = require(
  join(dist, 'lib/constructs/bundling.js'),
);
const esbuild = require('esbuild');
for (const name of HANDLER_NAMES) {
  const options = handlerEsbuildOptions(handlerEntry(name), join(dist, 'assets', name));
  await esbuild.build({ ...options, absWorkingDir: root });
  console.log(`dist/assets/${name}/index.js ${statSync(options.outfile).size} bytes`);
}
// The CLI's launcher is cli/keyrot.cjs itself (package.json bin): installed, it runs dist/cli/main.js.
