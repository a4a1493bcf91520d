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
    [
      { memberStack: true },
      'context "memberStack" needs "keyRotation.organization" (the organization id and settings of the central stack)',
    ],
    [{ memberStack: 'yes' }, 'context "memberStack" must be true or false (got "yes")'],
    [{ memberstack: true }, 'context "memberstack" is not read: did you mean "memberStack"?'],
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
    Outputs: Record<string, { Value: unknown }>;
  };
  // What a plain member stack (the management account) takes as its CentralRoleArns parameter: the
  // same list the StackSet passes.
  const stackSetParameters = JSON.stringify(
    Object.values(template.Resources).find((r) => r.Type === 'AWS::CloudFormation::StackSet')?.Properties
      .Parameters,
  );
  expect(stackSetParameters).toContain(JSON.stringify(template.Outputs.MemberTrustedRoleArns?.Value));
  expect(template.Outputs.MemberOperatorRoleArns?.Value).toBe('none');
  expect(stackSetParameters).toContain(
    JSON.stringify({
      ParameterKey: 'OperatorRoleArns',
      ParameterValue: template.Outputs.MemberOperatorRoleArns?.Value,
    }),
  );
  const stackSets = Object.values(template.Resources).filter(
    (r) => r.Type === 'AWS::CloudFormation::StackSet',
  );
  expect(stackSets.map((r) => r.Properties.StackInstancesGroup)).toEqual([
    [{ DeploymentTargets: { OrganizationalUnitIds: ['r-ab12'] }, Regions: [{ Ref: 'AWS::Region' }] }],
  ]);
});

test('memberStack=true synthesizes the plain member stack (for the management account) instead of the central one', () => {
  const { status, stderr, outdir } = synth({
    memberStack: 'true',
    keyRotation: {
      secretPrefix: 'platform/keys',
      includePaths: ['/ci/'],
      organization: {
        organizationId: 'o-a1b2c3d4e5',
        includeOus: ['r-ab12'],
        memberRoleName: 'keyrot-member',
        memberPermissionsBoundaryArn: 'arn:aws:iam::111122223333:policy/org-boundary',
      },
    },
  });

  expect({ status, stderr: status === 0 ? '' : stderr }).toEqual({ status: 0, stderr: '' });
  const template = JSON.parse(readFileSync(join(outdir, 'IamKeyRotation-member.template.json'), 'utf8')) as {
    Parameters: Record<string, unknown>;
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    Outputs: Record<string, unknown>;
  };
  // No bootstrap version parameter: deployable in an account that was never bootstrapped.
  expect(Object.keys(template.Parameters).sort()).toEqual([
    'CentralAccountId',
    'CentralRoleArns',
    'OperatorRoleArns',
  ]);
  expect(Object.keys(template.Outputs).sort()).toEqual(['MemberKeyArn', 'MemberRoleArn']);
  const roles = Object.values(template.Resources).filter((r) => r.Type === 'AWS::IAM::Role');
  expect(roles.map((role) => role.Properties.RoleName)).toEqual(['keyrot-member']);
  expect(roles[0]!.Properties.PermissionsBoundary).toBe('arn:aws:iam::111122223333:policy/org-boundary');
  // The central stack's settings reach the member footprint: secrets under the prefix, users under the path.
  const text = JSON.stringify(template.Resources);
  expect(text).toContain('secret:platform/keys/');
  expect(text).toContain(':user/ci/');
  expect(readFileSync(join(outdir, 'manifest.json'), 'utf8')).not.toContain('IamKeyRotation.template.json');
});
