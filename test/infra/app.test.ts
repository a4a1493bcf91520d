import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs the CDK app as `cdk synth` does, with the given context; returns exit code and stderr. */
function synth(context: Record<string, unknown>): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, [join('node_modules', 'tsx', 'dist', 'cli.mjs'), 'bin/app.ts'], {
    encoding: 'utf8',
    env: {
      ...process.env,
      CDK_CONTEXT_JSON: JSON.stringify(context),
      CDK_OUTDIR: mkdtempSync(join(tmpdir(), 'keyrot-synth-')),
    },
  });
  return { status: result.status, stderr: result.stderr };
}

describe('bin/app.ts refuses bad context before building anything, saying what to change', () => {
  test.each([
    [
      { keyrotation: { rotateAfterDays: 60 } },
      'context "keyrotation" is not read: did you mean "keyRotation"?',
    ],
    [{ keyRotation: '{rotateAfterDays: 60}' }, 'context "keyRotation" (cdk.json or -c) is not valid JSON'],
    [{ keyRotation: [1] }, 'context "keyRotation" (cdk.json or -c) must be an object of construct props'],
    [{ stackName: 'bad name!' }, 'context "stackName" must be a CloudFormation stack name'],
    [
      { keyRotation: { rotateAfterDays: 85, graceDays: 10 } },
      'rotateAfterDays + graceDays (95) exceeds maxKeyAgeDays (90): lower rotateAfterDays or graceDays, or raise maxKeyAgeDays',
    ],
  ])('%j', (context, message) => {
    const { status, stderr } = synth(context);

    expect(status).toBe(1);
    expect(stderr).toContain(message);
    expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
