/**
 * The integration tier never skips silently: without moto in python3 its global setup fails the
 * run with what to install.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');

test('a python3 without moto fails the global setup, saying what to install', () => {
  const realPython = spawnSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' }).stdout.trim();
  const bin = mkdtempSync(join(tmpdir(), 'no-moto-'));
  // python3 -S skips site-packages, where moto lives: the same interpreter without moto.
  writeFileSync(join(bin, 'python3'), `#!/bin/sh\nexec ${realPython} -S "$@"\n`);
  chmodSync(join(bin, 'python3'), 0o755);

  const run = spawnSync(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'),
      '-e',
      "import('./test/integration/global-setup.ts').then((m) => (m.default.default ?? m.default)()).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); })",
    ],
    {
      cwd: ROOT,
      encoding: 'utf8',
      // Nothing may bring moto back in through PYTHONPATH.
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, PYTHONPATH: '' },
      timeout: 60_000,
    },
  );

  expect(run.status).toBe(1);
  expect(run.stderr).toContain(
    "the integration tier needs moto (the AWS emulator) in python3: pip install 'moto[server]'",
  );
});
