/**
 * The member-account footprint (KeyRotationMember): the trust policy and its conditions, the role's
 * permissions, the member key's policy, prop validation, and cdk-nag AwsSolutions with zero
 * unacknowledged findings.
 */
import { App, CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { MemberCredentials } from '../../lambda/adapters/member-credentials';
import { SERVICE_NAME } from '../../lambda/contract';
import { DEFAULT_ORGANIZATION_SETTINGS } from '../../lambda/domain/organization';
import {
  KeyRotationMember,
  KeyRotationMemberProps,
  MEMBER_STACK_OUTPUT,
  resolveKeyRotationMemberProps,
} from '../../lib/constructs/key-rotation-member';
import {
  AssumeRoleRequest,
  flatten,
  flattenDeep,
  resolveTemplateValue,
  sortStatements,
  Statement,
  statementsOfRole,
  trustAllows,
} from './support';

const CENTRAL = '111122223333';
const PLANNER_ROLE = `arn:aws:iam::${CENTRAL}:role/KeyRotation-PlannerRole-ABC`;
const ROTATOR_ROLE = `arn:aws:iam::${CENTRAL}:role/KeyRotation-RotatorRole-DEF`;
const ADMIN_ROLE = `arn:aws:iam::${CENTRAL}:role/ops/secrets-admin`;
const ORG_ID = 'o-a1b2c3d4e5';
const REQUIRED: KeyRotationMemberProps = {
  centralAccountId: CENTRAL,
  centralRoleArns: [PLANNER_ROLE, ROTATOR_ROLE],
  organizationId: 'o-a1b2c3d4e5',
};
const CUSTOM: KeyRotationMemberProps = {
  ...REQUIRED,
  memberRoleName: 'keyrot-member',
  secretPrefix: 'acme/keys',
  includePaths: ['/', '/service/'],
  excludePaths: ['/break-glass/'],
  keyAliasName: 'alias/acme-keys',
  permissionsBoundaryArn: 'arn:aws:iam::444455556666:policy/org-boundary',
  operatorRoleArns: [ADMIN_ROLE],
};

interface Synth {
  readonly app: App;
  readonly member: KeyRotationMember;
  readonly template: Template;
  readonly roleId: string;
  readonly keyId: string;
}

function synth(props: KeyRotationMemberProps, nag = false): Synth {
  const app = new App();
  const stack = new Stack(app, 'Member');
  const member = new KeyRotationMember(stack, 'KeyRotationMember', props);
  if (nag) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const template = Template.fromStack(stack);
  const id = (construct: IConstruct): string => stack.getLogicalId(construct.node.defaultChild as CfnElement);
  return { app, member, template, roleId: id(member.role), keyId: id(member.secretsKey) };
}

const defaults = synth(REQUIRED);
const custom = synth(CUSTOM);

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;
const resources = (s: Synth): Resources => s.template.toJSON().Resources as Resources;
const roleProps = (s: Synth) => resources(s)[s.roleId]!.Properties;
const keyStatements = (s: Synth) =>
  (resources(s)[s.keyId]!.Properties.KeyPolicy as { Statement: Record<string, unknown>[] }).Statement.map(
    (statement) => flattenDeep(statement) as Record<string, unknown>,
  );

const SECRETS = (prefix: string) =>
  `arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${prefix}/*`;
const USERS = (path: string) => `arn:<AWS::Partition>:iam::<AWS::AccountId>:user${path}*`;
const VIA_SECRETS_MANAGER = (prefix: string) => ({
  StringEquals: { 'kms:ViaService': 'secretsmanager.<AWS::Region>.amazonaws.com' },
  StringLike: { 'kms:EncryptionContext:SecretARN': SECRETS(prefix) },
});

describe('KeyRotationMember: trust', () => {
  type TrustDocument = Parameters<typeof trustAllows>[0];
  const trustOf = (x: Synth): TrustDocument =>
    resolveTemplateValue(x.template.toJSON(), roleProps(x).AssumeRolePolicyDocument, {}) as TrustDocument;
  const CENTRAL_ROOT = `arn:aws:iam::${CENTRAL}:root`;
  const functionStatements = [
    {
      Sid: 'CentralFunctionsAssumeAsTheService',
      Effect: 'Allow',
      Principal: { AWS: CENTRAL_ROOT },
      Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'],
      Condition: {
        ArnEquals: { 'aws:PrincipalArn': [PLANNER_ROLE, ROTATOR_ROLE] },
        StringEquals: { 'aws:PrincipalOrgID': ORG_ID, 'sts:SourceIdentity': SERVICE_NAME },
      },
    },
    {
      Sid: 'CentralFunctionsTagSession',
      Effect: 'Allow',
      Principal: { AWS: CENTRAL_ROOT },
      Action: 'sts:TagSession',
      Condition: {
        ArnEquals: { 'aws:PrincipalArn': [PLANNER_ROLE, ROTATOR_ROLE] },
        StringEquals: { 'aws:PrincipalOrgID': ORG_ID },
      },
    },
  ];

  test('the central account is the principal, narrowed by aws:PrincipalArn to the function roles, within the organization, as the service; session tags in a statement of their own', () => {
    // Not the roles as principals: IAM would store their unique ids (a re-created role would no
    // longer be trusted) and refuse the policy while a named role does not exist.
    expect(trustOf(defaults)).toEqual({ Version: '2012-10-17', Statement: functionStatements });
  });

  test('operator roles: a statement of their own, without the source-identity condition', () => {
    expect(trustOf(custom).Statement).toEqual([
      ...functionStatements,
      {
        Sid: 'OperatorsAssume',
        Effect: 'Allow',
        Principal: { AWS: CENTRAL_ROOT },
        Action: ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'],
        Condition: {
          ArnEquals: { 'aws:PrincipalArn': [ADMIN_ROLE] },
          StringEquals: { 'aws:PrincipalOrgID': ORG_ID },
        },
      },
    ]);
  });

  const asPlanner: AssumeRoleRequest = {
    principalArn: PLANNER_ROLE,
    principalOrgId: ORG_ID,
    sourceIdentity: SERVICE_NAME,
  };
  test.each<[string, AssumeRoleRequest, boolean]>([
    ['the planner as the service', asPlanner, true],
    [
      'the rotator as the service, with session tags',
      { ...asPlanner, principalArn: ROTATOR_ROLE, sessionTags: true },
      true,
    ],
    ['the planner without a source identity', { ...asPlanner, sourceIdentity: undefined }, false],
    [
      'the planner with another source identity',
      { ...asPlanner, sourceIdentity: 'alice@example.com' },
      false,
    ],
    [
      'another role of the central account',
      { ...asPlanner, principalArn: `arn:aws:iam::${CENTRAL}:role/other` },
      false,
    ],
    [
      'the same role name in another account',
      { ...asPlanner, principalArn: 'arn:aws:iam::999999999999:role/KeyRotation-PlannerRole-ABC' },
      false,
    ],
    ['the planner from outside the organization', { ...asPlanner, principalOrgId: 'o-zzzzzzzzzz' }, false],
    [
      'the admin role when no operator role is given',
      { principalArn: ADMIN_ROLE, principalOrgId: ORG_ID },
      false,
    ],
  ])('defaults: %s -> %s', (_name, request, allowed) => {
    expect(trustAllows(trustOf(defaults), request)).toBe(allowed);
  });

  test.each<[string, AssumeRoleRequest, boolean]>([
    [
      'the operator role without a source identity',
      { principalArn: ADMIN_ROLE, principalOrgId: ORG_ID },
      true,
    ],
    // A source identity set at sign-in (SAML, OIDC) persists in the operator's session.
    [
      'the operator role carrying its sign-in source identity and tags',
      {
        principalArn: ADMIN_ROLE,
        principalOrgId: ORG_ID,
        sourceIdentity: 'alice@example.com',
        sessionTags: true,
      },
      true,
    ],
    [
      'the operator role from outside the organization',
      { principalArn: ADMIN_ROLE, principalOrgId: 'o-zzzzzzzzzz' },
      false,
    ],
    ['the planner still only as the service', { ...asPlanner, sourceIdentity: undefined }, false],
  ])('with an operator role: %s -> %s', (_name, request, allowed) => {
    expect(trustAllows(trustOf(custom), request)).toBe(allowed);
  });

  test("the central side's AssumeRole (MemberCredentials) meets the trust policy: role name, source identity, no session tags, duration", async () => {
    const sts = mockClient(STSClient);
    sts.on(AssumeRoleCommand).resolves({
      Credentials: {
        AccessKeyId: 'ASIAEXAMPLE',
        SecretAccessKey: 'not-a-secret',
        SessionToken: 'token',
        Expiration: new Date('2030-01-01T00:00:00Z'),
      },
    });
    const memberCredentials = new MemberCredentials(
      { memberRoleName: DEFAULT_ORGANIZATION_SETTINGS.memberRoleName, partition: 'aws' },
      new STSClient({ region: 'eu-west-1' }),
    );
    await memberCredentials.credentials('444455556666', 'run-2026-12-03');
    const input = sts.commandCalls(AssumeRoleCommand)[0]!.args[0].input;
    sts.restore();
    const role = roleProps(defaults);
    expect(input.RoleArn).toBe(`arn:aws:iam::444455556666:role/${String(role.RoleName)}`);
    expect(input.DurationSeconds).toBeLessThanOrEqual(role.MaxSessionDuration as number);
    // What the planner's and the rotator's AssumeRole asks, evaluated against the member trust.
    const request = (principalArn: string): AssumeRoleRequest => ({
      principalArn,
      principalOrgId: ORG_ID,
      ...(input.SourceIdentity === undefined ? {} : { sourceIdentity: input.SourceIdentity }),
      sessionTags: (input.Tags?.length ?? 0) > 0 || (input.TransitiveTagKeys?.length ?? 0) > 0,
    });
    expect(input.SourceIdentity).toBe(SERVICE_NAME);
    expect(input.Tags).toBeUndefined();
    for (const principalArn of [PLANNER_ROLE, ROTATOR_ROLE]) {
      expect(trustAllows(trustOf(defaults), request(principalArn))).toBe(true);
    }
    expect(trustAllows(trustOf(defaults), request(ADMIN_ROLE))).toBe(false);
  });

  test('the role has the fixed name, a one-hour maximum session and, when asked, the permissions boundary', () => {
    expect(roleProps(defaults)).toMatchObject({
      RoleName: 'iam-key-rotation-member',
      MaxSessionDuration: 3600,
    });
    expect(roleProps(defaults).PermissionsBoundary).toBeUndefined();
    expect(roleProps(custom)).toMatchObject({
      RoleName: 'keyrot-member',
      MaxSessionDuration: 3600,
      PermissionsBoundary: 'arn:aws:iam::444455556666:policy/org-boundary',
    });
  });
});

describe('KeyRotationMember: permissions', () => {
  const expected = (prefix: string, include: string[], exclude: string[], keyId: string): Statement[] =>
    sortStatements([
      {
        effect: 'Allow',
        actions: ['iam:GenerateCredentialReport', 'iam:GetCredentialReport', 'iam:ListUsers'],
        resources: ['*'],
      },
      {
        effect: 'Allow',
        actions: ['iam:GetAccessKeyLastUsed', 'iam:GetUser', 'iam:ListAccessKeys'],
        resources: include.map(USERS).sort(),
      },
      {
        effect: 'Allow',
        actions: ['iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:UpdateAccessKey'],
        resources: include.map(USERS).sort(),
      },
      ...(exclude.length > 0
        ? [
            {
              effect: 'Deny',
              actions: ['iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:UpdateAccessKey'],
              resources: exclude.map(USERS).sort(),
            },
          ]
        : []),
      {
        effect: 'Allow',
        actions: [
          'secretsmanager:CreateSecret',
          'secretsmanager:DescribeSecret',
          'secretsmanager:GetResourcePolicy',
          'secretsmanager:GetSecretValue',
          'secretsmanager:PutResourcePolicy',
          'secretsmanager:PutSecretValue',
          'secretsmanager:TagResource',
          'secretsmanager:UpdateSecretVersionStage',
        ],
        resources: [SECRETS(prefix)],
      },
      {
        effect: 'Allow',
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [`<${keyId}.Arn>`],
        conditions: VIA_SECRETS_MANAGER(prefix),
      },
    ]);

  test('defaults: the planner and rotator actions, scoped to this account, the prefix and the member key', () => {
    expect(statementsOfRole(defaults.template, defaults.roleId)).toEqual(
      expected('iam-key-rotation', ['/'], [], defaults.keyId),
    );
  });

  test('custom paths and prefix: scoped to them, exempt paths denied the key writes', () => {
    expect(statementsOfRole(custom.template, custom.roleId)).toEqual(
      expected('acme/keys', ['/', '/service/'], ['/break-glass/'], custom.keyId),
    );
  });

  test('no managed policy is attached', () => {
    expect(roleProps(defaults).ManagedPolicyArns).toBeUndefined();
  });
});

describe('KeyRotationMember: key', () => {
  test('rotated yearly and retained when the stack is deleted', () => {
    const key = (defaults.template.toJSON() as { Resources: Record<string, unknown> }).Resources[
      defaults.keyId
    ];
    expect(key).toMatchObject({
      Type: 'AWS::KMS::Key',
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  test("the account's principals decrypt only through Secrets Manager, only secrets under the prefix", () => {
    for (const [s, prefix] of [
      [defaults, 'iam-key-rotation'],
      [custom, 'acme/keys'],
    ] as const) {
      const statement = keyStatements(s).find(
        (x) => x.Sid === 'DecryptSecretsUnderPrefixThroughSecretsManager',
      );
      expect(statement).toEqual({
        Sid: 'DecryptSecretsUnderPrefixThroughSecretsManager',
        Effect: 'Allow',
        Principal: { AWS: '*' },
        Action: 'kms:Decrypt',
        Resource: '*',
        Condition: {
          StringEquals: {
            'kms:ViaService': 'secretsmanager.<AWS::Region>.amazonaws.com',
            'kms:CallerAccount': '<AWS::AccountId>',
          },
          StringLike: { 'kms:EncryptionContext:SecretARN': SECRETS(prefix) },
        },
      });
    }
  });

  test('the member role stores and reads secrets with the key, through Secrets Manager only', () => {
    const statement = keyStatements(defaults).find((x) => x.Sid === 'MemberRoleUsesKeyThroughSecretsManager');
    expect(statement).toEqual({
      Sid: 'MemberRoleUsesKeyThroughSecretsManager',
      Effect: 'Allow',
      Principal: { AWS: `<${defaults.roleId}.Arn>` },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Resource: '*',
      Condition: VIA_SECRETS_MANAGER('iam-key-rotation'),
    });
  });

  test('besides the account root (delegation to IAM), no other statement', () => {
    const sids = keyStatements(defaults).map(
      (x) => x.Sid ?? `root:${flatten((x.Principal as { AWS: unknown }).AWS)}`,
    );
    expect(sids.sort()).toEqual(
      [
        'DecryptSecretsUnderPrefixThroughSecretsManager',
        'MemberRoleUsesKeyThroughSecretsManager',
        'root:arn:<AWS::Partition>:iam::<AWS::AccountId>:root',
      ].sort(),
    );
  });

  test('the alias is the same in every account', () => {
    defaults.template.hasResourceProperties('AWS::KMS::Alias', {
      AliasName: 'alias/iam-key-rotation-member',
      TargetKeyId: { 'Fn::GetAtt': [defaults.keyId, 'Arn'] },
    });
    custom.template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/acme-keys' });
  });

  test('outputs: the role ARN and the key ARN, under plain names', () => {
    const outputs = defaults.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs[MEMBER_STACK_OUTPUT.roleArn]?.Value).toEqual({ 'Fn::GetAtt': [defaults.roleId, 'Arn'] });
    expect(outputs[MEMBER_STACK_OUTPUT.keyArn]?.Value).toEqual({ 'Fn::GetAtt': [defaults.keyId, 'Arn'] });
  });

  test('the template has nothing but the role, the key, its alias and the role policy that uses the key', () => {
    expect(
      Object.values(resources(defaults))
        .map((r) => r.Type)
        .sort(),
    ).toEqual(['AWS::IAM::Policy', 'AWS::IAM::Role', 'AWS::KMS::Alias', 'AWS::KMS::Key']);
  });
});

describe('KeyRotationMember: props', () => {
  const problem = (props: unknown): string => {
    try {
      resolveKeyRotationMemberProps(props as KeyRotationMemberProps);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('no error');
  };

  test('defaults', () => {
    expect(resolveKeyRotationMemberProps(REQUIRED)).toEqual({
      ...REQUIRED,
      operatorRoleArns: [],
      memberRoleName: 'iam-key-rotation-member',
      secretPrefix: 'iam-key-rotation',
      includePaths: ['/'],
      excludePaths: [],
      keyAliasName: 'alias/iam-key-rotation-member',
    });
  });

  test.each([
    [{ centralAccountId: '12345' }, /centralAccountId must be the 12-digit id.*got "12345"/],
    [{ centralRoleArns: [] }, /centralRoleArns must list the central planner's and rotator's role ARNs/],
    [
      { centralRoleArns: ['arn:aws:iam::111122223333:user/x'] },
      /centralRoleArns entry "arn:aws:iam::111122223333:user\/x" is not an IAM role ARN/,
    ],
    [
      { centralRoleArns: ['arn:aws:iam::999999999999:role/p'] },
      /centralRoleArns entry arn:aws:iam::999999999999:role\/p is in account 999999999999, not centralAccountId 111122223333/,
    ],
    [{ centralRoleArns: [PLANNER_ROLE, PLANNER_ROLE] }, /centralRoleArns names a role twice/],
    [{ operatorRoleArns: ADMIN_ROLE }, /operatorRoleArns must be a list of role ARNs of the central account/],
    [{ operatorRoleArns: ['none'] }, /operatorRoleArns entry "none" is not an IAM role ARN/],
    [
      { operatorRoleArns: ['arn:aws:iam::999999999999:role/admin'] },
      /operatorRoleArns entry arn:aws:iam::999999999999:role\/admin is in account 999999999999, not centralAccountId 111122223333/,
    ],
    [{ operatorRoleArns: [ADMIN_ROLE, ADMIN_ROLE] }, /operatorRoleArns names a role twice/],
    [
      { operatorRoleArns: [PLANNER_ROLE] },
      /operatorRoleArns entry ".*PlannerRole-ABC" is also in centralRoleArns: a role is either a central function's \(as the service\) or an operator's/,
    ],
    [{ organizationId: 'o-short' }, /organizationId must be an AWS Organizations id.*got "o-short"/],
    [{ organizationId: 'o-A1B2C3D4E5' }, /organizationId must be/],
    [{ memberRoleName: 'has space' }, /memberRoleName must be an IAM role name.*got "has space"/],
    [{ memberRoleName: 'x'.repeat(65) }, /memberRoleName must be an IAM role name/],
    [{ secretPrefix: '/leading' }, /secretPrefix must be 1-200 characters/],
    [{ includePaths: ['service'] }, /includePaths entry "service" is not an IAM path/],
    [{ excludePaths: ['/x'] }, /excludePaths entry "\/x" is not an IAM path/],
    [{ keyAliasName: 'alias/aws/secretsmanager' }, /keyAliasName must be "alias\/"/],
    [{ keyAliasName: 'member-key' }, /keyAliasName must be "alias\/"/],
    [
      { permissionsBoundaryArn: 'boundary' },
      /permissionsBoundaryArn must be the ARN of a managed policy.*got "boundary"/,
    ],
    [
      { memberRolename: 'x' },
      /memberRolename is not a KeyRotationMember prop: did you mean memberRoleName\?/,
    ],
  ])('%j is refused, naming the prop', (override, message) => {
    expect(problem({ ...REQUIRED, ...override })).toMatch(message);
  });

  test('every problem is listed at once, and the construct refuses at synth', () => {
    const message = problem({ centralAccountId: 'x', centralRoleArns: 'y', organizationId: 'z' });
    expect(message).toMatch(/centralAccountId/);
    expect(message).toMatch(/centralRoleArns/);
    expect(message).toMatch(/organizationId/);
    expect(() => synth({ ...REQUIRED, organizationId: 'bad' })).toThrow(/organizationId must be/);
  });
});

describe('KeyRotationMember: cdk-nag AwsSolutions', () => {
  const nagged = synth(CUSTOM, true);

  test('zero unacknowledged findings (synth fails otherwise)', () => {
    expect(() => nagged.app.synth()).not.toThrow();
    expect(new AwsSolutionsChecks().validateScope(nagged.app).violations).toEqual([]);
  });

  test('the acknowledgements are exactly the intended wildcards, each with a written reason, each hiding a real finding', () => {
    const acks = nagged.app.node.findAll().flatMap((construct) =>
      construct.node.metadata
        .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((entry) =>
          Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
            path: construct.node.path,
            ruleId: id.replace(/^annotation::/i, ''),
            reason,
          })),
        ),
    );
    for (const ack of acks) expect(ack.reason.trim().length).toBeGreaterThanOrEqual(40);
    const role = 'Member/KeyRotationMember/Role/Resource';
    expect(acks.map((a) => [a.path, a.ruleId]).sort()).toEqual(
      [
        [role, 'AwsSolutions-IAM5[Resource::*]'],
        [role, `AwsSolutions-IAM5[Resource::${USERS('/')}]`],
        [role, `AwsSolutions-IAM5[Resource::${USERS('/service/')}]`],
        [role, `AwsSolutions-IAM5[Resource::${SECRETS('acme/keys')}]`],
      ].sort(),
    );

    const pack = new AwsSolutionsChecks();
    (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
    const findings = pack
      .validateScope(nagged.app)
      .violations.flatMap((v) =>
        v.violatingResources.map((r) => ({ ruleId: v.ruleName, path: r.constructPath ?? '' })),
      );
    const key = (f: { path: string; ruleId: string }) => `${f.path} ${f.ruleId}`;
    expect(findings.map(key).sort()).toEqual(acks.map(key).sort());
  });
});
