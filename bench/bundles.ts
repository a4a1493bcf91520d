/**
 * Bundle size and cold initialisation of each Lambda: bundled as the construct bundles them
 * (esbuild, minified, @aws-sdk/* left to the runtime), then loaded in fresh Node processes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { ENV } from '../lambda/contract';

const ENTRIES = { planner: 'lambda/handlers/planner.ts', rotator: 'lambda/handlers/rotator.ts' } as const;

/** What the construct sets; values only need to be well-formed, nothing is called. */
export const LAMBDA_ENV: Record<string, string> = {
  [ENV.ledgerTableName]: 'ledger',
  [ENV.queueUrl]: 'https://sqs.eu-west-1.amazonaws.com/111122223333/work.fifo',
  [ENV.topicArn]: 'arn:aws:sns:eu-west-1:111122223333:notices',
  [ENV.secretPrefix]: 'iam-key-rotation',
  [ENV.kmsKeyArn]: 'arn:aws:kms:eu-west-1:111122223333:key/1234',
  [ENV.rotationSettings]: '{}',
  [ENV.subscribeOwners]: 'true',
  [ENV.serviceRoleArn]: 'arn:aws:iam::111122223333:role/iam-key-rotation-rotator',
  [ENV.opsTopicArn]: 'arn:aws:sns:eu-west-1:111122223333:ops',
  AWS_REGION: 'eu-west-1',
  POWERTOOLS_SERVICE_NAME: 'iam-key-rotation',
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export function measureBundles(runs = 7) {
  const dir = mkdtempSync(join(tmpdir(), 'keyrot-bundles-'));
  return Object.entries(ENTRIES).map(([name, entry]) => {
    const outfile = join(dir, `${name}.js`);
    buildSync({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'cjs',
      minify: true,
      external: ['@aws-sdk/*'],
      outfile,
      logLevel: 'error',
    });
    const bytes = statSync(outfile).size;
    // The child resolves @aws-sdk/* from this repository's node_modules, as Lambda does from the runtime.
    const script = `const t=process.hrtime.bigint();require(${JSON.stringify(outfile)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
    const times: number[] = [];
    for (let run = 0; run < runs; run++) {
      const out = execFileSync(process.execPath, ['--no-warnings', '-e', script], {
        env: { ...process.env, ...LAMBDA_ENV, NODE_PATH: join(process.cwd(), 'node_modules') },
        encoding: 'utf8',
      });
      times.push(Number(out));
    }
    return { name, bytes, initMs: median(times) };
  });
}
