/**
 * Starts one moto server for the whole run on a free loopback port and exports its URL. The server
 * runs under a small Python wrapper (moto_server.py) that exits when this process dies, however it
 * dies; the teardown also stops it by process id. A missing moto fails the run with what to install:
 * the tier never skips silently.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { EMULATOR_ENV } from './emulator';

const STARTUP_TIMEOUT_MS = 60_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function waitForReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`moto did not start within ${STARTUP_TIMEOUT_MS / 1000} s:\n${output}`));
    }, STARTUP_TIMEOUT_MS);
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('READY')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(
        new Error(`could not run python3 (${error.message}): the integration tier needs Python 3 with moto`),
      );
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (output.includes('MOTO-MISSING')) {
        reject(
          new Error(
            `the integration tier needs moto (the AWS emulator) in python3: pip install 'moto[server]' (${output.trim()})`,
          ),
        );
      } else {
        reject(new Error(`moto exited with code ${code} before it was ready:\n${output}`));
      }
    });
  });
}

/** The newest modification time of the files under `dir` (recursively). */
function newestIn(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * The tier loads the template and bundles from cdk.out: a synth older than the sources would test
 * yesterday's code and pass. Refuse it, saying what to run.
 */
function requireFreshSynth(): void {
  const root = join(__dirname, '..', '..');
  const manifest = join(root, 'cdk.out', 'manifest.json');
  if (!existsSync(manifest)) {
    throw new Error(
      'cdk.out is missing: run `npx cdk synth --no-notices --quiet` before the integration tier',
    );
  }
  const synthesized = statSync(manifest).mtimeMs;
  const stale = ['lambda', 'lib', 'bin'].filter((dir) => newestIn(join(root, dir)) > synthesized);
  if (stale.length > 0) {
    throw new Error(
      `cdk.out is older than ${stale.join(', ')}/: run \`npx cdk synth --no-notices --quiet\` so that the tier tests the current code`,
    );
  }
}

export default async function globalSetup(): Promise<void> {
  const port = await freePort();
  const child = spawn('python3', [join(__dirname, 'moto_server.py'), String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitForReady(child);
  try {
    requireFreshSynth();
  } catch (error) {
    child.kill('SIGTERM');
    throw error;
  }
  child.removeAllListeners('exit');
  child.stdout?.removeAllListeners('data');
  child.stderr?.removeAllListeners('data');
  child.stdout?.resume();
  child.stderr?.resume();
  process.env[EMULATOR_ENV] = `http://127.0.0.1:${port}`;
  process.env.MOTO_PID = String(child.pid);
  // Stopped by the teardown; also on an interrupted run (and by the wrapper if we are killed).
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.once('exit', stop);
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      stop();
      process.exit(code);
    });
  }
}
