/**
 * The jest setup file test/drop-sdk-node-warning.js keeps the AWS SDK's Node 20 support warning out
 * of the test output (it was printed once per suite), and nothing else.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const SETUP_FILE = join(__dirname, '../../drop-sdk-node-warning.js');

test('jest loads the setup file before every suite', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const config = require('../../../jest.config.js') as { setupFiles?: string[] };

  expect(config.setupFiles).toEqual(['<rootDir>/test/drop-sdk-node-warning.js']);
});

test("it drops the SDK's Node version warning and keeps every other warning", () => {
  const script = [
    // What @aws-sdk/core's emitWarningIfUnsupportedVersion emits under Node < 22:
    "process.emitWarning('NodeVersionSupportWarning: The AWS SDK for JavaScript (v3)\\nversions published after the first week of January 2027\\nwill require node >=22.');",
    "process.emitWarning('something else went wrong');",
    "process.emitWarning(new Error('an Error object too'));",
  ].join('\n');

  const withSetup = spawnSync(process.execPath, ['--require', SETUP_FILE, '-e', script], {
    encoding: 'utf8',
  });
  const without = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });

  expect(without.stderr).toContain('NodeVersionSupportWarning');
  expect(withSetup.stderr).not.toContain('NodeVersionSupportWarning');
  expect(withSetup.stderr).toContain('Warning: something else went wrong');
  expect(withSetup.stderr).toContain('an Error object too');
});
