import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs the CDK app as `cdk synth` does, with the given context; returns exit code and stderr. */
function synth(context: Record<string, unknown>): { status: number | null; stderr: string; outdir: string } {
  const outdir = mkdtempSync(join(tmpdir(), 'keyrot-synth-'));
  const result = spawnSync(process.execPath, [join('node_modules', 'tsx', 'dist', 'cli.mjs'), 'bin/app.ts'], {
    encoding: 'utf8',
    env: {
      ...process.env,
      CDK_CONTEXT_JSON: JSON.stringify(context),
      CDK_OUTDIR: outdir,
    },
  });
  return { status: result.status, stderr: result.stderr, outdir };
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
    [
      { keyRotation: { organisation: { organizationId: 'o-a1b2c3d4e5' } } },
      'organisation is not a KeyRotation prop: did you mean organization?',
    ],
    [
      { keyRotation: { organization: { organizationId: 'o-a1b2c3d4e5' } } },
      'organization.includeOus must name at least one OU or root while deployMembers is true',
    ],
  ])('%j', (context, message) => {
    const { status, stderr } = synth(context);

    expect(status).toBe(1);
    expect(stderr).toContain(message);
    expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});

test('keyRotation.organization from the context reaches the construct: organization mode', () => {
  const { status, stderr, outdir } = synth({
    keyRotation: { organization: { organizationId: 'o-a1b2c3d4e5', includeOus: ['r-ab12'] } },
    // The template is what this test reads; bundling the handlers is the nag test's job.
    'aws:cdk:bundling-stacks': [],
  });

  expect({ status, stderr: status === 0 ? '' : stderr }).toEqual({ status: 0, stderr: '' });
  const template = JSON.parse(readFileSync(join(outdir, 'IamKeyRotation.template.json'), 'utf8')) as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  const stackSets = Object.values(template.Resources).filter(
    (r) => r.Type === 'AWS::CloudFormation::StackSet',
  );
  expect(stackSets.map((r) => r.Properties.StackInstancesGroup)).toEqual([
    [{ DeploymentTargets: { OrganizationalUnitIds: ['r-ab12'] }, Regions: [{ Ref: 'AWS::Region' }] }],
  ]);
});
