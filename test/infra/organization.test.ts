/**
 * Organization mode of the construct (the `organization` prop): the dispatcher and the schedule, the
 * planning queue and the planner's event source, each role's permissions, the functions' environment,
 * the member StackSet and its template (trust, parameters, size, cdk-nag), alarms, dashboard, outputs,
 * prop errors; and that one account (no `organization`) gets none of it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import {
  ENV,
  LEDGER_ACCOUNT_PARTITION,
  LEDGER_SCREENING_INDEX,
  METRIC,
  METRICS_NAMESPACE,
  PLANNING_MAX_RECEIVE_COUNT,
  SERVICE_NAME,
  STACK_OUTPUT,
} from '../../lambda/contract';
import { DEFAULT_ORGANIZATION_SETTINGS, resolveOrganizationSettings } from '../../lambda/domain/organization';
import type { KeyRotationProps } from '../../lib/constructs/key-rotation';
import { PLANNER_TIMEOUT } from '../../lib/constructs/key-rotation';
import { resolveKeyRotationProps } from '../../lib/constructs/key-rotation-props';
import {
  MEMBER_TEMPLATE_PARAMETER,
  NO_OPERATOR_ROLES,
  memberTemplate,
  memberTemplateStack,
  TEMPLATE_BODY_MAX_BYTES,
} from '../../lib/constructs/member-stack-set';
import { KeyRotationStack } from '../../lib/key-rotation-stack';
import {
  flatten,
  flattenDeep,
  resolveTemplateValue,
  Statement,
  statementsOfRole,
  Synthesized,
  synthesize,
  trustAllows,
} from './support';

const ORG_ID = 'o-a1b2c3d4e5';
const ROOT = 'r-ab12';
const OU = 'ou-ab12-cdef3456';
const EXCLUDED_ACCOUNT = '444455556666';
const ADMIN_ROLE = 'arn:aws:iam::123456789012:role/secrets-admin';
const BOUNDARY = 'arn:aws:iam::aws:policy/PowerUserAccess';
const MANY_OUS = Array.from({ length: 51 }, (_, i) => `ou-ab12-${String(i).padStart(8, '0')}`);
const ORGANIZATION = {
  organizationId: ORG_ID,
  includeOus: [ROOT],
  excludeOus: [OU],
  excludeAccounts: [EXCLUDED_ACCOUNT],
  planConcurrency: 7,
  callAs: 'DELEGATED_ADMIN' as const,
};
const PROPS: KeyRotationProps = {
  organization: ORGANIZATION,
  secretAdminRoleArn: ADMIN_ROLE,
  includePaths: ['/', '/service/'],
  excludePaths: ['/break-glass/'],
};

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: unknown };
type MemberBody = {
  Parameters: Record<string, { Type: string; AllowedPattern?: string; Default?: string }>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, Resource>;
};
const resourcesOf = (s: Synthesized) => s.template.toJSON().Resources as Record<string, Resource>;
const ofType = (s: Synthesized, type: string) =>
  Object.entries(resourcesOf(s)).filter(([, resource]) => resource.Type === type);
const envOf = (s: Synthesized, fn: IConstruct) =>
  (resourcesOf(s)[s.id(fn)]!.Properties.Environment as { Variables: Record<string, unknown> }).Variables;

const org = synthesize(PROPS);
const single = synthesize({ secretAdminRoleArn: ADMIN_ROLE });
const rotation = () => org.stack.rotation;

describe('one account (no organization prop)', () => {
  test('no organization resource, environment variable or output', () => {
    const json = JSON.stringify(single.template.toJSON());
    expect(ofType(single, 'AWS::CloudFormation::StackSet')).toEqual([]);
    expect(ofType(single, 'AWS::Lambda::Function')).toHaveLength(2);
    expect(ofType(single, 'AWS::Lambda::EventSourceMapping')).toHaveLength(1);
    for (const name of [
      ENV.organization,
      ENV.planningQueueUrl,
      ENV.memberKeyAlias,
      'sts:SetSourceIdentity',
      'organizations:',
    ]) {
      expect(json).not.toContain(name);
    }
    const outputs = Object.keys(single.template.toJSON().Outputs as object);
    for (const name of [
      STACK_OUTPUT.organization,
      'PlanningQueueUrl',
      'DispatcherFunctionName',
      'MemberStackSetName',
    ]) {
      expect(outputs).not.toContain(name);
    }
    expect(single.stack.rotation.organization).toBeUndefined();
    expect(single.stack.rotation.dispatcher).toBeUndefined();
  });

  test('the schedule starts the planner, which may continue itself', () => {
    single.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      Target: { Arn: { 'Fn::GetAtt': [single.id(single.stack.rotation.planner), 'Arn'] } },
    });
    single.template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          {
            Action: 'lambda:InvokeFunction',
            Resource: { 'Fn::GetAtt': [single.id(single.stack.rotation.planner), 'Arn'] },
          },
        ],
      },
    });
  });
});

describe('organization mode: dispatcher and schedule', () => {
  test("the schedule starts the dispatcher (not the planner) with dryRun and the schedule's time (the run id, the same when Lambda retries)", () => {
    const input = (s: Synthesized) => {
      const [[, schedule]] = ofType(s, 'AWS::Scheduler::Schedule') as [[string, Resource]];
      const target = schedule.Properties.Target as { Arn: unknown; Input: string };
      return { arn: target.Arn, input: JSON.parse(target.Input) as unknown };
    };
    expect(input(org)).toEqual({
      arn: { 'Fn::GetAtt': [org.id(rotation().dispatcher!), 'Arn'] },
      // EventBridge Scheduler's context attribute, replaced at each invocation.
      input: { dryRun: false, scheduledAt: '<aws.scheduler.scheduled-time>' },
    });
    expect(input(synthesize({ ...PROPS, dryRun: true })).input).toEqual({
      dryRun: true,
      scheduledAt: '<aws.scheduler.scheduled-time>',
    });
    // One account: the planner's input, exactly as before.
    expect(input(single).input).toEqual({ dryRun: false });
  });

  test('the dispatcher: its own role and log group, Node.js on ARM with tracing, the organization settings and the planning queue', () => {
    const dispatcher = rotation().dispatcher!;
    const fn = resourcesOf(org)[org.id(dispatcher)]!.Properties;
    expect(fn).toMatchObject({
      Role: { 'Fn::GetAtt': [org.id(rotation().dispatcherRole!), 'Arn'] },
      LoggingConfig: { LogGroup: { Ref: org.id(rotation().dispatcherLogGroup!) } },
      Architectures: ['arm64'],
      TracingConfig: { Mode: 'Active' },
      Timeout: 900,
    });
    const env = envOf(org, dispatcher);
    const { includeOus, excludeOus, excludeAccounts, planConcurrency, callAs } = ORGANIZATION;
    expect(JSON.parse(env[ENV.organization] as string)).toEqual(
      resolveOrganizationSettings({ includeOus, excludeOus, excludeAccounts, planConcurrency, callAs }),
    );
    expect(flatten(env[ENV.planningQueueUrl])).toBe(`<${org.id(rotation().planningQueue!)}>`);
    expect(flatten(env[ENV.ledgerTableName])).toBe(`<${org.id(rotation().ledgerTable)}>`);
    expect(env.POWERTOOLS_SERVICE_NAME).toBe(SERVICE_NAME);
    // The settings the handlers validate at cold start: the organization id is not one of them.
    expect(Object.keys(JSON.parse(env[ENV.organization] as string) as object).sort()).toEqual(
      Object.keys(DEFAULT_ORGANIZATION_SETTINGS).sort(),
    );
    org.template.hasResourceProperties('AWS::Logs::LogGroup', {
      RetentionInDays: 365,
    });
  });

  test('the planner is invoked by its SQS event source only: no asynchronous invocation configuration (one account keeps its own)', () => {
    const invokeConfigs = (s: Synthesized) =>
      ofType(s, 'AWS::Lambda::EventInvokeConfig').map(([, r]) => flatten(r.Properties.FunctionName));
    expect(invokeConfigs(org)).toEqual([`<${org.id(rotation().dispatcher!)}>`]);
    expect(invokeConfigs(single)).toEqual([`<${single.id(single.stack.rotation.planner)}>`]);
  });

  test('the planner no longer invokes itself: no PlannerContinuation policy', () => {
    expect(rotation().node.tryFindChild('PlannerContinuation')).toBeUndefined();
    expect(JSON.stringify(statementsOfRole(org.template, org.id(rotation().plannerRole)))).not.toContain(
      'lambda:InvokeFunction',
    );
  });
});

describe('organization mode: planning queue', () => {
  test('standard queue, encrypted with the construct key, dead-letter queue after PLANNING_MAX_RECEIVE_COUNT, visibility 6 x the planner timeout', () => {
    const queue = resourcesOf(org)[org.id(rotation().planningQueue!)]!.Properties;
    expect(queue.FifoQueue).toBeUndefined();
    expect(queue.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [org.id(rotation().encryptionKey), 'Arn'] });
    expect(queue.VisibilityTimeout).toBe(PLANNER_TIMEOUT.toSeconds() * 6);
    expect(queue.VisibilityTimeout).toBeLessThanOrEqual(12 * 3600);
    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [org.id(rotation().planningDeadLetterQueue!), 'Arn'] },
      maxReceiveCount: PLANNING_MAX_RECEIVE_COUNT,
    });
    const dlq = resourcesOf(org)[org.id(rotation().planningDeadLetterQueue!)]!.Properties;
    expect(dlq.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [org.id(rotation().encryptionKey), 'Arn'] });
    expect(dlq.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });

  test('both queues refuse requests without TLS', () => {
    for (const queue of [rotation().planningQueue!, rotation().planningDeadLetterQueue!]) {
      org.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: org.id(queue) }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  test('the planner consumes it one account per invocation, planConcurrency at a time, reporting failed items', () => {
    org.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: org.id(rotation().planner) },
      EventSourceArn: { 'Fn::GetAtt': [org.id(rotation().planningQueue!), 'Arn'] },
      BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: 7 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    // The rotator keeps the work queue.
    org.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: org.id(rotation().rotator) },
      EventSourceArn: { 'Fn::GetAtt': [org.id(rotation().workQueue), 'Arn'] },
    });
  });

  test('with reserveConcurrency, the planner reserves planConcurrency (a lower reservation would throttle deliveries to the DLQ)', () => {
    const reserved = synthesize({ ...PROPS, reserveConcurrency: true });
    const planner = resourcesOf(reserved)[reserved.id(reserved.stack.rotation.planner)]!.Properties;
    expect(planner.ReservedConcurrentExecutions).toBe(7);
    const dispatcher = resourcesOf(reserved)[reserved.id(reserved.stack.rotation.dispatcher!)]!.Properties;
    expect(dispatcher.ReservedConcurrentExecutions).toBe(1);
  });
});

describe('organization mode: environment', () => {
  test('planner: the organization settings, the planning queue, both topics and the key besides what it had', () => {
    const env = envOf(org, rotation().planner);
    expect(JSON.parse(env[ENV.organization] as string)).toMatchObject({
      includeOus: [ROOT],
      excludeOus: [OU],
      excludeAccounts: [EXCLUDED_ACCOUNT],
      planConcurrency: 7,
      callAs: 'DELEGATED_ADMIN',
    });
    expect(flatten(env[ENV.planningQueueUrl])).toBe(`<${org.id(rotation().planningQueue!)}>`);
    expect(flatten(env[ENV.topicArn])).toBe(`<${org.id(rotation().notificationTopic)}>`);
    expect(flatten(env[ENV.opsTopicArn])).toBe(`<${org.id(rotation().opsTopic)}>`);
    expect(flatten(env[ENV.kmsKeyArn])).toBe(`<${org.id(rotation().encryptionKey)}.Arn>`);
    expect(env[ENV.rotationSettings]).toBe(JSON.stringify(rotation().settings));
  });

  test('rotator: the organization settings and the member key alias besides what it had', () => {
    const env = envOf(org, rotation().rotator);
    expect(JSON.parse(env[ENV.organization] as string)).toMatchObject({
      memberRoleName: 'iam-key-rotation-member',
    });
    expect(env[ENV.memberKeyAlias]).toBe('alias/iam-key-rotation-member');
    expect(env[ENV.planningQueueUrl]).toBeUndefined();
    expect(flatten(env[ENV.serviceRoleArn])).toBe(`<${org.id(rotation().rotatorRole)}.Arn>`);
  });
});

describe('organization mode: permissions', () => {
  const MEMBER_ROLES = 'arn:<AWS::Partition>:iam::*:role/iam-key-rotation-member';
  const assumeMember: Statement[] = [
    {
      effect: 'Allow',
      actions: ['sts:AssumeRole', 'sts:SetSourceIdentity'],
      resources: [MEMBER_ROLES],
      conditions: { StringEquals: { 'aws:ResourceOrgID': ORG_ID, 'sts:SourceIdentity': SERVICE_NAME } },
    },
    {
      effect: 'Allow',
      actions: ['sts:TagSession'],
      resources: [MEMBER_ROLES],
      conditions: { StringEquals: { 'aws:ResourceOrgID': ORG_ID } },
    },
  ];
  const kms = (actions: string[], services: string[]): Statement => ({
    effect: 'Allow',
    actions: actions.sort(),
    resources: [`<${org.id(rotation().encryptionKey)}.Arn>`],
    conditions: {
      StringEquals: { 'kms:ViaService': services.map((s) => `${s}.<AWS::Region>.amazonaws.com`) },
    },
  });
  const statements = (role: IConstruct) =>
    statementsOfRole(org.template, org.id(role)).filter(
      (s) => !s.actions.some((a) => a.startsWith('logs:') || a.startsWith('xray:')),
    );

  test('dispatcher: list the organization, read account tags of this organization only, queue planning messages, read the account-run records only', () => {
    const queue = `<${org.id(rotation().planningQueue!)}.Arn>`;
    expect(statements(rotation().dispatcherRole!)).toEqual(
      expect.arrayContaining([
        {
          effect: 'Allow',
          actions: [
            'organizations:ListAccounts',
            'organizations:ListAccountsForParent',
            'organizations:ListChildren',
          ],
          resources: ['*'],
        },
        {
          effect: 'Allow',
          actions: ['organizations:ListTagsForResource'],
          resources: [`arn:<AWS::Partition>:organizations::*:account/${ORG_ID}/*`],
        },
        { effect: 'Allow', actions: ['sqs:SendMessage'], resources: [queue] },
        kms(['kms:Decrypt', 'kms:GenerateDataKey'], ['sqs']),
        {
          effect: 'Allow',
          actions: ['dynamodb:Query'],
          resources: [`<${org.id(rotation().ledgerTable)}.Arn>`],
          conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [LEDGER_ACCOUNT_PARTITION] } },
        },
        kms(['kms:Decrypt'], ['dynamodb']),
      ]),
    );
    expect(statements(rotation().dispatcherRole!)).toHaveLength(6);
  });

  test('planner: assume member roles in the organization, consume and continue the planning queue, account run records only, both topics; no IAM of its own', () => {
    const all = statements(rotation().plannerRole);
    expect(all).toEqual(
      expect.arrayContaining([
        ...assumeMember,
        {
          effect: 'Allow',
          actions: [
            'sqs:ChangeMessageVisibility',
            'sqs:DeleteMessage',
            'sqs:GetQueueAttributes',
            'sqs:GetQueueUrl',
            'sqs:ReceiveMessage',
            'sqs:SendMessage',
          ],
          resources: [`<${org.id(rotation().planningQueue!)}.Arn>`],
        },
        {
          effect: 'Allow',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
          resources: [`<${org.id(rotation().ledgerTable)}.Arn>`],
          conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [LEDGER_ACCOUNT_PARTITION] } },
        },
        {
          effect: 'Allow',
          actions: ['sns:Publish'],
          resources: [`<${org.id(rotation().notificationTopic)}>`, `<${org.id(rotation().opsTopic)}>`].sort(),
        },
        // Both topics are encrypted with the construct key: a publisher needs the key through SNS.
        kms(['kms:Decrypt', 'kms:GenerateDataKey'], ['sns']),
        // The users' records: the table (dry runs) and the screening index (scheduled runs, and the
        // finish-only pass of an account that left the selection).
        {
          effect: 'Allow',
          actions: ['dynamodb:Query'],
          resources: [
            `<${org.id(rotation().ledgerTable)}.Arn>`,
            `<${org.id(rotation().ledgerTable)}.Arn>/index/${LEDGER_SCREENING_INDEX}`,
          ],
        },
        {
          effect: 'Allow',
          actions: ['sqs:SendMessage'],
          resources: [`<${org.id(rotation().workQueue)}.Arn>`],
        },
      ]),
    );
    for (const topic of [rotation().notificationTopic, rotation().opsTopic]) {
      expect(resourcesOf(org)[org.id(topic)]!.Properties.KmsMasterKeyId).toEqual({
        'Fn::GetAtt': [org.id(rotation().encryptionKey), 'Arn'],
      });
    }
    const actions = all.flatMap((s) => s.actions);
    expect(actions.filter((a) => a.startsWith('iam:') || a.startsWith('secretsmanager:'))).toEqual([]);
    expect(actions).not.toContain('lambda:InvokeFunction');
    // No unconditioned kms:Decrypt (the SQS event source's grant does not reach the role).
    for (const s of all.filter((st) => st.actions.some((a) => a.startsWith('kms:')))) {
      expect(s.conditions).toBeDefined();
    }
  });

  test('rotator: assume member roles in the organization; no IAM or Secrets Manager in the central account', () => {
    const all = statements(rotation().rotatorRole);
    expect(all).toEqual(expect.arrayContaining(assumeMember));
    const actions = all.flatMap((s) => s.actions);
    expect(actions.filter((a) => a.startsWith('iam:') || a.startsWith('secretsmanager:'))).toEqual([]);
    expect(actions).toEqual(
      expect.arrayContaining(['dynamodb:PutItem', 'sns:Publish', 'sqs:ReceiveMessage']),
    );
    expect(all).toContainEqual(
      kms(['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'], ['sqs', 'sns', 'dynamodb']),
    );
  });

  test('a custom member role name is what both functions may assume', () => {
    const custom = synthesize({ organization: { ...ORGANIZATION, memberRoleName: 'keyrot-member' } });
    for (const role of [custom.stack.rotation.plannerRole, custom.stack.rotation.rotatorRole]) {
      const resources = statementsOfRole(custom.template, custom.id(role)).flatMap((s) => s.resources);
      expect(resources).toContain('arn:<AWS::Partition>:iam::*:role/keyrot-member');
    }
  });
});

describe('organization mode: the member StackSet', () => {
  const stackSet = () => {
    const [[, resource]] = ofType(org, 'AWS::CloudFormation::StackSet') as [[string, Resource]];
    return resource.Properties;
  };

  test('service-managed, automatic deployment that keeps the stacks of accounts that leave the OUs, callAs, named IAM, managed execution', () => {
    expect(stackSet()).toMatchObject({
      StackSetName: 'Test-member',
      PermissionModel: 'SERVICE_MANAGED',
      AutoDeployment: { Enabled: true, RetainStacksOnAccountRemoval: true },
      CallAs: 'DELEGATED_ADMIN',
      Capabilities: ['CAPABILITY_NAMED_IAM'],
      ManagedExecution: { Active: true },
      OperationPreferences: { MaxConcurrentPercentage: 25, FailureTolerancePercentage: 10 },
    });
  });

  test('deployed to every account under includeOus, excluded accounts not filtered out (they keep the role), in the stack region', () => {
    expect(stackSet().StackInstancesGroup).toEqual([
      { DeploymentTargets: { OrganizationalUnitIds: [ROOT] }, Regions: [{ Ref: 'AWS::Region' }] },
    ]);
    expect(JSON.stringify(stackSet())).not.toContain(EXCLUDED_ACCOUNT);
    const plain = synthesize({ organization: { organizationId: ORG_ID, includeOus: [OU] } });
    const [[, resource]] = ofType(plain, 'AWS::CloudFormation::StackSet') as [[string, Resource]];
    expect(resource.Properties.CallAs).toBe('SELF');
    expect(resource.Properties.StackInstancesGroup).toEqual([
      { DeploymentTargets: { OrganizationalUnitIds: [OU] }, Regions: [{ Ref: 'AWS::Region' }] },
    ]);
  });

  test('parameters: the central account, the planner and rotator role ARNs, and the secret admin role as operator', () => {
    const parameters = stackSet().Parameters as { ParameterKey: string; ParameterValue: unknown }[];
    expect(parameters.map((p) => [p.ParameterKey, flatten(p.ParameterValue)])).toEqual([
      [MEMBER_TEMPLATE_PARAMETER.centralAccountId, '<AWS::AccountId>'],
      [
        MEMBER_TEMPLATE_PARAMETER.centralRoleArns,
        [`<${org.id(rotation().plannerRole)}.Arn>`, `<${org.id(rotation().rotatorRole)}.Arn>`].join(','),
      ],
      [MEMBER_TEMPLATE_PARAMETER.operatorRoleArns, ADMIN_ROLE],
    ]);
    // Without an admin role: "none", not an empty value (which a StackSet refuses).
    const plain = synthesize({ organization: ORGANIZATION });
    const [[, resource]] = ofType(plain, 'AWS::CloudFormation::StackSet') as [[string, Resource]];
    expect(resource.Properties.Parameters).toContainEqual({
      ParameterKey: MEMBER_TEMPLATE_PARAMETER.operatorRoleArns,
      ParameterValue: NO_OPERATOR_ROLES,
    });
  });

  test('the StackSet parameters fed to its template body: the planner and rotator may assume the member role as the service, the admin role without it, no one else', () => {
    const CENTRAL = '123456789012';
    const planner = `arn:aws:iam::${CENTRAL}:role/Test-PlannerRole-A`;
    const rotator = `arn:aws:iam::${CENTRAL}:role/Test-RotatorRole-B`;
    const deployed = (s: Synthesized): Record<string, string> => {
      const [[, resource]] = ofType(s, 'AWS::CloudFormation::StackSet') as [[string, Resource]];
      const parameters = resource.Properties.Parameters as {
        ParameterKey: string;
        ParameterValue: unknown;
      }[];
      return Object.fromEntries(
        parameters.map((p) => [
          p.ParameterKey,
          flatten(p.ParameterValue)
            .replace('<AWS::AccountId>', CENTRAL)
            .replace(`<${s.id(s.stack.rotation.plannerRole)}.Arn>`, planner)
            .replace(`<${s.id(s.stack.rotation.rotatorRole)}.Arn>`, rotator),
        ]),
      );
    };
    const trust = (s: Synthesized) => {
      const [[, resource]] = ofType(s, 'AWS::CloudFormation::StackSet') as [[string, Resource]];
      const body = JSON.parse(resource.Properties.TemplateBody as string) as MemberBody;
      const [role] = Object.values(body.Resources).filter((r) => r.Type === 'AWS::IAM::Role');
      return resolveTemplateValue(body, role!.Properties.AssumeRolePolicyDocument, deployed(s)) as Parameters<
        typeof trustAllows
      >[0];
    };
    const service = { principalOrgId: ORG_ID, sourceIdentity: SERVICE_NAME };
    const withAdmin = trust(org);
    expect(trustAllows(withAdmin, { principalArn: planner, ...service })).toBe(true);
    expect(trustAllows(withAdmin, { principalArn: rotator, ...service, sessionTags: true })).toBe(true);
    expect(trustAllows(withAdmin, { principalArn: planner, principalOrgId: ORG_ID })).toBe(false);
    expect(trustAllows(withAdmin, { principalArn: ADMIN_ROLE, principalOrgId: ORG_ID })).toBe(true);
    expect(
      trustAllows(withAdmin, { principalArn: ADMIN_ROLE, principalOrgId: ORG_ID, sourceIdentity: 'alice' }),
    ).toBe(true);
    expect(trustAllows(withAdmin, { principalArn: `arn:aws:iam::${CENTRAL}:role/other`, ...service })).toBe(
      false,
    );
    expect(
      trustAllows(withAdmin, { principalArn: planner, ...service, principalOrgId: 'o-zzzzzzzzzz' }),
    ).toBe(false);

    const withoutAdmin = trust(synthesize({ organization: ORGANIZATION }));
    expect(withoutAdmin.Statement).toHaveLength(2);
    expect(trustAllows(withoutAdmin, { principalArn: planner, ...service })).toBe(true);
    expect(trustAllows(withoutAdmin, { principalArn: ADMIN_ROLE, principalOrgId: ORG_ID })).toBe(false);
  });

  test('the template body is the member template for the construct settings, within the 51,200-byte limit', () => {
    const body = stackSet().TemplateBody as string;
    expect(Buffer.byteLength(body, 'utf8')).toBeLessThan(TEMPLATE_BODY_MAX_BYTES);
    expect(JSON.parse(body)).toEqual(
      memberTemplate({
        organizationId: ORG_ID,
        memberRoleName: 'iam-key-rotation-member',
        secretPrefix: 'iam-key-rotation',
        includePaths: ['/', '/service/'],
        excludePaths: ['/break-glass/'],
        keyAliasName: 'alias/iam-key-rotation-member',
      }),
    );
    // No assets, no bootstrap version check, no CDK metadata.
    expect(body).not.toMatch(/BootstrapVersion|AWS::CDK::Metadata|aws:cdk:path|aws:asset/);
  });

  test('memberPermissionsBoundaryArn: the member role of the template body gets the boundary', () => {
    const bounded = synthesize({
      ...PROPS,
      organization: { ...ORGANIZATION, memberPermissionsBoundaryArn: BOUNDARY },
    });
    const [[, resource]] = ofType(bounded, 'AWS::CloudFormation::StackSet') as [[string, Resource]];
    const body = JSON.parse(resource.Properties.TemplateBody as string) as MemberBody;
    const [role] = Object.values(body.Resources).filter((r) => r.Type === 'AWS::IAM::Role');
    expect(role!.Properties.PermissionsBoundary).toBe(BOUNDARY);
    const [, unbounded] = Object.entries(
      (JSON.parse(stackSet().TemplateBody as string) as MemberBody).Resources,
    ).find(([, r]) => r.Type === 'AWS::IAM::Role')!;
    expect(unbounded.Properties.PermissionsBoundary).toBeUndefined();
  });

  test('deployMembers false: no StackSet and no MemberStackSetName output', () => {
    const bare = synthesize({ organization: { organizationId: ORG_ID, deployMembers: false } });
    expect(ofType(bare, 'AWS::CloudFormation::StackSet')).toEqual([]);
    expect(Object.keys(bare.template.toJSON().Outputs as object)).not.toContain('MemberStackSetName');
    expect(bare.stack.rotation.dispatcher).toBeDefined();
  });
});

describe('the member template', () => {
  const template = memberTemplate({ organizationId: ORG_ID });
  const body = template as unknown as MemberBody;

  test('parameters: the central account (12 digits), the central function role ARNs and the operator role ARNs (lists; none by default)', () => {
    expect(Object.keys(body.Parameters).sort()).toEqual(
      [
        MEMBER_TEMPLATE_PARAMETER.centralAccountId,
        MEMBER_TEMPLATE_PARAMETER.centralRoleArns,
        MEMBER_TEMPLATE_PARAMETER.operatorRoleArns,
      ].sort(),
    );
    expect(body.Parameters[MEMBER_TEMPLATE_PARAMETER.centralAccountId]).toMatchObject({
      Type: 'String',
      AllowedPattern: '^\\d{12}$',
    });
    expect(body.Parameters[MEMBER_TEMPLATE_PARAMETER.centralRoleArns]).toMatchObject({
      Type: 'CommaDelimitedList',
    });
    expect(body.Parameters[MEMBER_TEMPLATE_PARAMETER.centralRoleArns]!.Default).toBeUndefined();
    expect(body.Parameters[MEMBER_TEMPLATE_PARAMETER.operatorRoleArns]).toMatchObject({
      Type: 'CommaDelimitedList',
      Default: NO_OPERATOR_ROLES,
    });
  });

  const CENTRAL_ROOT = 'arn:aws:iam::123456789012:root';
  const FUNCTIONS = ['arn:aws:iam::123456789012:role/p', 'arn:aws:iam::123456789012:role/r'];
  const functionStatements = [
    {
      Sid: 'CentralFunctionsAssumeAsTheService',
      Effect: 'Allow',
      Principal: { AWS: CENTRAL_ROOT },
      Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'],
      Condition: {
        ArnEquals: { 'aws:PrincipalArn': FUNCTIONS },
        StringEquals: { 'aws:PrincipalOrgID': ORG_ID, 'sts:SourceIdentity': SERVICE_NAME },
      },
    },
    {
      Sid: 'CentralFunctionsTagSession',
      Effect: 'Allow',
      Principal: { AWS: CENTRAL_ROOT },
      Action: 'sts:TagSession',
      Condition: {
        ArnEquals: { 'aws:PrincipalArn': FUNCTIONS },
        StringEquals: { 'aws:PrincipalOrgID': ORG_ID },
      },
    },
  ];
  const trustFor = (operatorRoleArns?: string) => {
    const [role] = Object.values(body.Resources).filter((r) => r.Type === 'AWS::IAM::Role');
    return resolveTemplateValue(body, role!.Properties.AssumeRolePolicyDocument, {
      [MEMBER_TEMPLATE_PARAMETER.centralAccountId]: '123456789012',
      [MEMBER_TEMPLATE_PARAMETER.centralRoleArns]: FUNCTIONS.join(','),
      ...(operatorRoleArns === undefined
        ? {}
        : { [MEMBER_TEMPLATE_PARAMETER.operatorRoleArns]: operatorRoleArns }),
    });
  };

  test('the trust: the central account, narrowed by aws:PrincipalArn to the parameter roles, within the organization, as the service; no operator statement by default', () => {
    const [role] = Object.values(body.Resources).filter((r) => r.Type === 'AWS::IAM::Role');
    expect(role!.Properties.RoleName).toBe('iam-key-rotation-member');
    // The list parameter itself is the condition's value list, not a principal.
    expect(JSON.stringify(role!.Properties.AssumeRolePolicyDocument)).toContain(
      JSON.stringify({ 'aws:PrincipalArn': { Ref: MEMBER_TEMPLATE_PARAMETER.centralRoleArns } }),
    );
    for (const none of [undefined, NO_OPERATOR_ROLES, '']) {
      expect(trustFor(none)).toEqual({ Version: '2012-10-17', Statement: functionStatements });
    }
    expect(flattenDeep(role!.Properties.Description)).toContain(
      `<${MEMBER_TEMPLATE_PARAMETER.centralAccountId}>`,
    );
  });

  test('the trust with operator roles: a statement of their own, without the source identity', () => {
    expect(trustFor(`${ADMIN_ROLE},arn:aws:iam::123456789012:role/break-glass`)).toEqual({
      Version: '2012-10-17',
      Statement: [
        ...functionStatements,
        {
          Sid: 'OperatorsAssume',
          Effect: 'Allow',
          Principal: { AWS: CENTRAL_ROOT },
          Action: ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'],
          Condition: {
            ArnEquals: { 'aws:PrincipalArn': [ADMIN_ROLE, 'arn:aws:iam::123456789012:role/break-glass'] },
            StringEquals: { 'aws:PrincipalOrgID': ORG_ID },
          },
        },
      ],
    });
  });

  test('stays far below the TemplateBody limit with many user paths', () => {
    const paths = Array.from({ length: 20 }, (_, i) => `/team-${i}/`);
    const big = memberTemplate({
      organizationId: ORG_ID,
      includePaths: paths,
      excludePaths: ['/break-glass/'],
    });
    expect(Buffer.byteLength(JSON.stringify(big), 'utf8')).toBeLessThan(TEMPLATE_BODY_MAX_BYTES);
  });

  test('cdk-nag AwsSolutions: zero unacknowledged findings', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'member-nag-'));
    try {
      const { app } = memberTemplateStack(
        { organizationId: ORG_ID, includePaths: ['/', '/service/'], secretPrefix: 'acme/keys' },
        outdir,
      );
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      // Throws with the report if any finding is not acknowledged.
      expect(() => app.synth()).not.toThrow();
      expect(new AwsSolutionsChecks().validateScope(app).violations).toEqual([]);
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });

  test('literal member props are still validated', () => {
    expect(() => memberTemplateStack({ organizationId: 'o-bad' })).toThrow(
      /organizationId must be an AWS Organizations id/,
    );
  });
});

describe('organization mode: alarms, dashboard, outputs', () => {
  const alarm = (id: string) => resourcesOf(org)[org.id(rotation().node.findChild(id))]!.Properties;

  test('AccountFailures > 0, on the plain metric (service dimension only), to the ops topic', () => {
    expect(alarm('AccountFailuresAlarm')).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.accountFailures,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAME }],
      Statistic: 'Sum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: [{ Ref: org.id(rotation().opsTopic) }],
    });
  });

  test('messages in the planning dead-letter queue, and dispatcher errors', () => {
    expect(alarm('PlanningDeadLetterQueueAlarm')).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [org.id(rotation().planningDeadLetterQueue!), 'QueueName'] },
        },
      ],
      Threshold: 1,
    });
    // What lands there: not an account's failure (consumed on its last delivery, AccountFailures).
    const description = alarm('PlanningDeadLetterQueueAlarm').AlarmDescription as string;
    expect(description).toMatch(/a message the planner cannot read, a failure of the central service itself/);
    expect(description).toMatch(/An unreachable member account is not among them \(see AccountFailures\)/);
    expect(description).not.toMatch(/retryable failure each time/);
    expect(alarm('DispatcherErrorsAlarm')).toMatchObject({
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: org.id(rotation().dispatcher!) } }],
    });
  });

  test('not running: watches the dispatcher, which the schedule starts', () => {
    expect(alarm('PlannerNotRunningAlarm')).toMatchObject({
      MetricName: 'Invocations',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: org.id(rotation().dispatcher!) } }],
    });
  });

  test('the dashboard shows AccountFailures by AccountId (SEARCH) and the organization alarms', () => {
    const [[, dashboard]] = ofType(org, 'AWS::CloudWatch::Dashboard') as [[string, Resource]];
    const text = JSON.stringify(flattenDeep(dashboard.Properties.DashboardBody));
    expect(text).toContain('AccountFailures by AccountId');
    for (const name of [
      METRIC.accountsSelected,
      METRIC.accountsSkipped,
      METRIC.accountFailures,
      METRIC.accountRetries,
    ]) {
      expect(text).toContain(`\\"${name}\\"`);
    }
    expect(text).toContain(
      `SEARCH('{${METRICS_NAMESPACE},AccountId,service} MetricName=\\\\\\"${METRIC.accountFailures}\\\\\\"', 'Sum', 86400)`,
    );
    for (const title of ['AccountFailures', 'PlanningDeadLetterQueue', 'DispatcherErrors']) {
      expect(text).toContain(`\\"title\\":\\"${title}\\"`);
    }
  });

  test('outputs: the resolved organization settings with the id, the planning queue, the dispatcher, the StackSet', () => {
    const outputs = org.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.parse(outputs[STACK_OUTPUT.organization]!.Value as string)).toEqual({
      organizationId: ORG_ID,
      ...resolveKeyRotationProps(PROPS).organization!.settings,
    });
    expect(flatten(outputs.PlanningQueueUrl!.Value)).toBe(`<${org.id(rotation().planningQueue!)}>`);
    expect(flatten(outputs.DispatcherFunctionName!.Value)).toBe(`<${org.id(rotation().dispatcher!)}>`);
    expect(flatten(outputs.MemberStackSetName!.Value)).toBe('Test-member');
    // What a plain member stack takes as its CentralRoleArns and OperatorRoleArns parameters: the
    // StackSet's values.
    const parameters = Object.fromEntries(
      (
        (ofType(org, 'AWS::CloudFormation::StackSet')[0]![1].Properties.Parameters ?? []) as {
          ParameterKey: string;
          ParameterValue: unknown;
        }[]
      ).map((p) => [p.ParameterKey, p.ParameterValue]),
    );
    expect(outputs.MemberTrustedRoleArns!.Value).toEqual(
      parameters[MEMBER_TEMPLATE_PARAMETER.centralRoleArns],
    );
    expect(outputs.MemberOperatorRoleArns!.Value).toEqual(ADMIN_ROLE);
    expect(outputs.MemberOperatorRoleArns!.Value).toEqual(
      parameters[MEMBER_TEMPLATE_PARAMETER.operatorRoleArns],
    );
    const plain = synthesize({ organization: ORGANIZATION }).template.toJSON().Outputs as Record<
      string,
      { Value: unknown }
    >;
    expect(plain.MemberOperatorRoleArns!.Value).toBe(NO_OPERATOR_ROLES);
  });
});

describe('organization props: errors name the prop and say what to change', () => {
  const problems = (organization: unknown): string => {
    try {
      resolveKeyRotationProps({ organization } as KeyRotationProps);
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('expected the props to be refused');
  };

  test.each<[string, unknown, RegExp]>([
    ['not an object', 'o-a1b2c3d4e5', /organization must be an object/],
    [
      'organizationId missing',
      { includeOus: [ROOT] },
      /organization\.organizationId must be the AWS Organizations id/,
    ],
    [
      'organizationId shape',
      { organizationId: 'o-ABC', includeOus: [ROOT] },
      /organization\.organizationId .*\(got "o-ABC"\)/,
    ],
    [
      'misspelt prop',
      { organisationId: ORG_ID, includeOus: [ROOT] },
      /organization\.organisationId is not an organization prop: did you mean organizationId\?/,
    ],
    [
      'misspelt setting',
      { organizationId: ORG_ID, includeOu: [ROOT] },
      /organization\.includeOu is not an organization prop: did you mean includeOus\?/,
    ],
    [
      'deployMembers type',
      { organizationId: ORG_ID, includeOus: [ROOT], deployMembers: 'yes' },
      /organization\.deployMembers must be true or false/,
    ],
    [
      'includeOus entry (from the settings)',
      { organizationId: ORG_ID, includeOus: ['ou-x'] },
      /organization\.includeOus entry "ou-x" is not valid/,
    ],
    [
      'planConcurrency',
      { organizationId: ORG_ID, includeOus: [ROOT], planConcurrency: 1 },
      /organization\.planConcurrency must be a whole number from 2 to 1000/,
    ],
    [
      'callAs',
      { organizationId: ORG_ID, includeOus: [ROOT], callAs: 'DELEGATED_ADMN' },
      /organization\.callAs .*did you mean "DELEGATED_ADMIN"\?/,
    ],
    [
      'no OU for the StackSet',
      { organizationId: ORG_ID },
      /organization\.includeOus must name at least one OU or root while deployMembers is true .* give the root id r-… to cover the whole organization/,
    ],
    [
      'more OUs than a StackSet operation takes',
      { organizationId: ORG_ID, includeOus: MANY_OUS },
      /organization\.includeOus lists 51 OUs, but a StackSet deploys to at most 50 OUs per operation while deployMembers is true: target a parent OU that contains them/,
    ],
    [
      'memberPermissionsBoundaryArn',
      { organizationId: ORG_ID, includeOus: [ROOT], memberPermissionsBoundaryArn: 'boundary' },
      /organization\.memberPermissionsBoundaryArn must be the ARN of a managed policy, such as "arn:aws:iam::111122223333:policy\/boundary" \(got "boundary"\)/,
    ],
    [
      'misspelt memberPermissionsBoundaryArn',
      { organizationId: ORG_ID, includeOus: [ROOT], memberPermissionBoundaryArn: 'x' },
      /organization\.memberPermissionBoundaryArn is not an organization prop: did you mean memberPermissionsBoundaryArn\?/,
    ],
    [
      'accounts with the StackSet',
      { organizationId: ORG_ID, accounts: ['111122223333'] },
      /organization\.accounts: the member StackSet \(deployMembers\) deploys to OUs/,
    ],
  ])('%s', (_name, organization, message) => {
    expect(problems(organization)).toMatch(message);
  });

  test('without the StackSet, more than 50 OUs are fine; a boundary ARN is kept', () => {
    expect(
      resolveKeyRotationProps({
        organization: { organizationId: ORG_ID, includeOus: MANY_OUS, deployMembers: false },
      }).organization?.settings.includeOus,
    ).toHaveLength(51);
    expect(
      resolveKeyRotationProps({
        organization: {
          ...ORGANIZATION,
          includeOus: MANY_OUS.slice(0, 50),
          memberPermissionsBoundaryArn: BOUNDARY,
        },
      }).organization,
    ).toMatchObject({ memberPermissionsBoundaryArn: BOUNDARY });
  });

  test('without the StackSet, the whole organization or an account list is fine', () => {
    expect(
      resolveKeyRotationProps({ organization: { organizationId: ORG_ID, deployMembers: false } })
        .organization,
    ).toMatchObject({ organizationId: ORG_ID, deployMembers: false, settings: { includeOus: [] } });
    expect(
      resolveKeyRotationProps({
        organization: { organizationId: ORG_ID, deployMembers: false, accounts: ['111122223333'] },
      }).organization?.settings.accounts,
    ).toEqual(['111122223333']);
  });

  test('secretReaderArns is refused with organization (the member keys let no central reader decrypt); secretAdminRoleArn is not', () => {
    const reader = 'arn:aws:iam::123456789012:role/billing-app';
    expect(() => resolveKeyRotationProps({ organization: ORGANIZATION, secretReaderArns: [reader] })).toThrow(
      /secretReaderArns cannot be combined with organization: .* Remove secretReaderArns: the workload in the member account reads its own secret as the key's IAM user, and operators read secrets through the member role \(secretAdminRoleArn, keyrot --org\)/,
    );
    expect(() => synthesize({ ...PROPS, secretReaderArns: [reader] })).toThrow(
      /KeyRotation props are invalid:[\s\S]*secretReaderArns cannot be combined with organization/,
    );
    // An empty list is no reader; the admin role stays allowed; one account keeps its readers.
    expect(resolveKeyRotationProps({ ...PROPS, secretReaderArns: [] }).secretAdminRoleArn).toBe(ADMIN_ROLE);
    expect(resolveKeyRotationProps({ secretReaderArns: [reader] }).secretReaderArns).toEqual([reader]);
  });

  test('the construct refuses at synth, with the prop named', () => {
    expect(() => synthesize({ organization: { organizationId: ORG_ID } })).toThrow(
      /KeyRotation props are invalid:[\s\S]*organization\.includeOus must name at least one OU or root/,
    );
  });
});

describe('cdk-nag AwsSolutions over the central stack in organization mode', () => {
  test('zero unacknowledged findings, and no acknowledgement that hides nothing', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'org-nag-'));
    try {
      const app = new App({ outdir, context: { 'aws:cdk:bundling-stacks': [] } });
      new KeyRotationStack(app, 'Nag', { rotation: { ...PROPS, opsRecipients: ['ops@example.com'] } });
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      expect(() => app.synth()).not.toThrow();

      const pack = new AwsSolutionsChecks();
      (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
      const findings = pack
        .validateScope(app)
        .violations.flatMap((v) =>
          v.violatingResources.map((r) => ({ ruleId: v.ruleName, path: r.constructPath ?? '' })),
        );
      const acks = app.node.findAll().flatMap((construct) =>
        construct.node.metadata
          .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
          .flatMap((entry) =>
            Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
              ruleId: id.replace(/^annotation::/i, ''),
              path: construct.node.path,
              reason,
            })),
          ),
      );
      const covers = (ack: { ruleId: string; path: string }, finding: { ruleId: string; path: string }) =>
        ack.ruleId === finding.ruleId &&
        (finding.path === ack.path || finding.path.startsWith(`${ack.path}/`));
      for (const ack of acks) {
        expect({ ack, used: findings.some((finding) => covers(ack, finding)) }).toEqual({ ack, used: true });
        expect(ack.reason.length).toBeGreaterThanOrEqual(40);
      }
      const org = acks.filter((a) =>
        /Dispatcher|role\/iam-key-rotation-member|organizations/.test(a.path + a.ruleId),
      );
      const scheduler =
        /^Nag\/KeyRotation\/SchedulerRole\/DefaultPolicy\/Resource AwsSolutions-IAM5\[Resource::<KeyRotationDispatcher[0-9A-F]+\.Arn>:\*\]$/;
      expect(
        org.map((a) => `${a.path} ${a.ruleId}`.replace(scheduler, 'scheduler invokes the dispatcher')).sort(),
      ).toEqual(
        [
          'Nag/KeyRotation/DispatcherRole/DefaultPolicy/Resource AwsSolutions-IAM5[Resource::*]',
          'Nag/KeyRotation/DispatcherRole/Resource AwsSolutions-IAM5[Resource::*]',
          `Nag/KeyRotation/DispatcherRole/Resource AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:organizations::*:account/${ORG_ID}/*]`,
          'Nag/KeyRotation/PlannerRole/Resource AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/iam-key-rotation-member]',
          'Nag/KeyRotation/RotatorRole/Resource AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/iam-key-rotation-member]',
          'scheduler invokes the dispatcher',
        ].sort(),
      );
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});
