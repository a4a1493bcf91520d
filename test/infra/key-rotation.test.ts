/**
 * Fine-grained Template assertions for the KeyRotation construct and its stack: one synth with every
 * prop set (`custom`) and one with the defaults (`defaults`), shared by all tests.
 */
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { ENV, METRIC, METRICS_NAMESPACE, ROTATOR_USER_BUDGET_MS, STACK_OUTPUT } from '../../lambda/contract';
import type { KeyRotationProps } from '../../lib/constructs/key-rotation';
import { ROTATOR_BATCH_SIZE, ROTATOR_TIMEOUT, SERVICE_NAME } from '../../lib/constructs/key-rotation';
import { KeyRotationStack } from '../../lib/key-rotation-stack';
import { flatten, flattenDeep, sortStatements, Statement, statementsOfRole, synthesize } from './support';

const CUSTOM: KeyRotationProps = {
  rotateAfterDays: 60,
  warnDays: 5,
  graceDays: 5,
  maxKeyAgeDays: 75,
  includePaths: ['/', '/service/'],
  excludePaths: ['/break-glass/', '/vendor/'],
  secretPrefix: 'acme/keys',
  scheduleExpression: 'cron(30 6 ? * MON-FRI *)',
  scheduleTimeZone: 'Europe/Paris',
  dryRun: true,
  defaultRecipients: ['security@example.com', 'it@example.com'],
  opsRecipients: ['ops@example.com'],
  subscribeOwners: false,
  secretAdminRoleArn: 'arn:aws:iam::123456789012:role/secrets-admin',
  secretReaderArns: ['arn:aws:iam::123456789012:role/apps/billing', 'arn:aws:iam::123456789012:user/ci'],
  logRetention: RetentionDays.THREE_MONTHS,
  rotatorConcurrency: 3,
  reserveConcurrency: true,
  notRunningAlarmHours: 80,
};
const IMPORTED_KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

const custom = synthesize(CUSTOM);
const defaults = synthesize();
const rotation = custom.stack.rotation;
const ids = {
  key: custom.id(rotation.encryptionKey),
  table: custom.id(rotation.ledgerTable),
  topic: custom.id(rotation.notificationTopic),
  opsTopic: custom.id(rotation.opsTopic),
  queue: custom.id(rotation.workQueue),
  dlq: custom.id(rotation.deadLetterQueue),
  scheduleDlq: custom.id(rotation.scheduleDeadLetterQueue),
  planner: custom.id(rotation.planner),
  rotator: custom.id(rotation.rotator),
  plannerRole: custom.id(rotation.plannerRole),
  rotatorRole: custom.id(rotation.rotatorRole),
  schedulerRole: custom.id(rotation.schedulerRole),
  plannerLogs: custom.id(rotation.plannerLogGroup),
  rotatorLogs: custom.id(rotation.rotatorLogGroup),
};
const userArn = (path: string): string => `arn:<AWS::Partition>:iam::<AWS::AccountId>:user${path}*`;
const viaServices = (...services: string[]): unknown => ({
  StringEquals: { 'kms:ViaService': services.map((s) => `${s}.<AWS::Region>.amazonaws.com`) },
});
interface CfnResourceJson {
  Type: string;
  Properties: Record<string, unknown>;
  DependsOn?: string[];
}
const resources = (template = custom.template) =>
  template.toJSON().Resources as Record<string, CfnResourceJson>;
const ofType = (type: string, template = custom.template) =>
  Object.entries(resources(template)).filter(([, r]) => r.Type === type);
/** The one resource of a type. */
const single = (type: string): CfnResourceJson => {
  const found = ofType(type);
  expect(found).toHaveLength(1);
  return found[0]![1];
};

describe('schedule', () => {
  test('runs the planner on the configured expression and time zone with the dryRun input', () => {
    custom.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 6 ? * MON-FRI *)',
      ScheduleExpressionTimezone: 'Europe/Paris',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: { 'Fn::GetAtt': [ids.planner, 'Arn'] },
        RoleArn: { 'Fn::GetAtt': [ids.schedulerRole, 'Arn'] },
        Input: JSON.stringify({ dryRun: true }),
        RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 7200 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [ids.scheduleDlq, 'Arn'] } },
      },
    });
  });

  test('its dead-letter queue is a standard queue, encrypted with the key, refusing plain HTTP, kept 14 days', () => {
    const queue = resources()[ids.scheduleDlq];
    expect(queue?.Properties).toEqual({
      KmsMasterKeyId: { 'Fn::GetAtt': [ids.key, 'Arn'] },
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    custom.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: ids.scheduleDlq }],
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
  });

  test('defaults to a daily 02:00 UTC real run', () => {
    defaults.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 2 * * ? *)',
      ScheduleExpressionTimezone: 'UTC',
      Target: { Input: '{"dryRun":false}' },
    });
  });

  test('depends on the grants of its role: invoke the planner, send dead letters through SQS only', () => {
    const schedule = single('AWS::Scheduler::Schedule');
    const grantPolicy = custom.id(rotation.schedulerRole.node.findChild('DefaultPolicy'));
    expect(schedule.DependsOn).toEqual(expect.arrayContaining([grantPolicy, ids.schedulerRole]));
    expect(statementsOfRole(custom.template, ids.schedulerRole)).toEqual(
      sortStatements([
        {
          effect: 'Allow',
          actions: ['lambda:InvokeFunction'],
          resources: [`<${ids.planner}.Arn>`, `<${ids.planner}.Arn>:*`],
        },
        { effect: 'Allow', actions: ['sqs:SendMessage'], resources: [`<${ids.scheduleDlq}.Arn>`] },
        {
          effect: 'Allow',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [`<${ids.key}.Arn>`],
          conditions: viaServices('sqs'),
        },
      ]),
    );
  });

  test('its role can be assumed only by EventBridge Scheduler of this account', () => {
    const role = resources()[ids.schedulerRole];
    expect(flattenDeep(role?.Properties.AssumeRolePolicyDocument)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'scheduler.amazonaws.com' },
          Condition: {
            StringEquals: {
              'aws:SourceAccount': '<AWS::AccountId>',
              'aws:SourceArn':
                'arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule-group/default',
            },
          },
        },
      ],
    });
  });
});

describe('functions', () => {
  test.each([
    ['planner', ids.planner, ids.plannerRole, ids.plannerLogs, 600, 512, 1],
    ['rotator', ids.rotator, ids.rotatorRole, ids.rotatorLogs, 900, 256, 3],
  ])(
    '%s: runtime, ARM64, tracing, timeout, memory, reserved concurrency (opted in), role and log group',
    (...args) => {
      const [, logicalId, role, logGroup, timeout, memory, concurrency] = args;
      const fn = resources()[logicalId];
      expect(fn?.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        TracingConfig: { Mode: 'Active' },
        Timeout: timeout,
        MemorySize: memory,
        ReservedConcurrentExecutions: concurrency,
        Role: { 'Fn::GetAtt': [role, 'Arn'] },
        LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: logGroup } },
      });
    },
  );

  test('by default no concurrency is reserved (new accounts cannot spare it): the queue trigger caps the rotator', () => {
    for (const [, fn] of ofType('AWS::Lambda::Function', defaults.template)) {
      expect(fn.Properties).not.toHaveProperty('ReservedConcurrentExecutions');
    }
    defaults.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 5 },
    });
  });

  test('a full batch of users, each within its time budget, fits in the rotator timeout', () => {
    expect(ROTATOR_TIMEOUT.toMilliseconds()).toBeGreaterThanOrEqual(
      ROTATOR_BATCH_SIZE * ROTATOR_USER_BUDGET_MS,
    );
  });

  test('the planner is retried briefly when invoked asynchronously', () => {
    custom.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: ids.planner },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 7200,
    });
  });

  test('both functions get the contract environment', () => {
    const expected = {
      [ENV.ledgerTableName]: { Ref: ids.table },
      [ENV.topicArn]: { Ref: ids.topic },
      [ENV.queueUrl]: { Ref: ids.queue },
      [ENV.secretPrefix]: 'acme/keys',
      [ENV.kmsKeyArn]: { 'Fn::GetAtt': [ids.key, 'Arn'] },
      [ENV.subscribeOwners]: 'false',
      [ENV.adminRoleArn]: 'arn:aws:iam::123456789012:role/secrets-admin',
      // Readers of every secret, exempt from the Deny on reading only.
      [ENV.secretReaderArns]: JSON.stringify(CUSTOM.secretReaderArns),
      [ENV.opsTopicArn]: { Ref: ids.opsTopic },
      // The rotator's role, exempt from the Deny in each secret's policy.
      [ENV.serviceRoleArn]: { 'Fn::GetAtt': [ids.rotatorRole, 'Arn'] },
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      NODE_OPTIONS: '--enable-source-maps',
    };
    for (const logicalId of [ids.planner, ids.rotator]) {
      const variables = (
        resources()[logicalId]?.Properties.Environment as {
          Variables: Record<string, unknown>;
        }
      ).Variables;
      const { [ENV.rotationSettings]: settings, ...rest } = variables;
      expect(rest).toEqual(expected);
      expect(JSON.parse(settings as string)).toEqual({
        rotateAfterDays: 60,
        warnDays: 5,
        graceDays: 5,
        maxKeyAgeDays: 75,
        deleteAfterDays: 14,
        exemptionTag: 'key-rotation:exempt',
        ownerTag: 'key-rotation:owner',
        includePaths: ['/', '/service/'],
        excludePaths: ['/break-glass/', '/vendor/'],
      });
    }
  });

  test('by default owners are subscribed and no admin role is named', () => {
    for (const [, fn] of ofType('AWS::Lambda::Function', defaults.template)) {
      const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(variables[ENV.subscribeOwners]).toBe('true');
      expect(variables).not.toHaveProperty(ENV.adminRoleArn);
      expect(variables).not.toHaveProperty(ENV.secretReaderArns);
      expect(variables[ENV.secretPrefix]).toBe('iam-key-rotation');
    }
  });

  test('the rotator consumes the work queue in small batches and reports item failures', () => {
    custom.template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    custom.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [ids.queue, 'Arn'] },
      FunctionName: { Ref: ids.rotator },
      BatchSize: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 3 },
      MaximumBatchingWindowInSeconds: Match.absent(),
    });
  });

  test('each function logs to its own retained log group with the configured retention', () => {
    const logGroups = custom.template.toJSON().Resources as Record<string, unknown>;
    for (const logicalId of [ids.plannerLogs, ids.rotatorLogs]) {
      expect(logGroups[logicalId]).toEqual({
        Type: 'AWS::Logs::LogGroup',
        Properties: { RetentionInDays: 90 },
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
    }
    custom.template.resourceCountIs('AWS::Logs::LogGroup', 2);
    defaults.template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
  });
});

describe('IAM', () => {
  const keyArn = `<${ids.key}.Arn>`;
  const logging = (logGroup: string): Statement[] => [
    {
      effect: 'Allow',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [`<${logGroup}.Arn>`],
    },
    { effect: 'Allow', actions: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], resources: ['*'] },
  ];
  // Reading one user at a time (both functions)...
  const userReads: Statement = {
    effect: 'Allow',
    actions: ['iam:GetAccessKeyLastUsed', 'iam:GetUser', 'iam:ListAccessKeys'],
    resources: [userArn('/'), userArn('/service/')],
  };
  // ...and detection over the whole account (the planner only).
  const iamReads: Statement[] = [
    {
      effect: 'Allow',
      actions: ['iam:GenerateCredentialReport', 'iam:GetCredentialReport', 'iam:ListUsers'],
      resources: ['*'],
    },
    userReads,
  ];

  test('the planner reads IAM and the ledger, sends work and may continue itself, nothing more', () => {
    expect(statementsOfRole(custom.template, ids.plannerRole)).toEqual(
      sortStatements([
        ...iamReads,
        // The table (dry runs read whole records) and its screening index (the scheduled runs).
        {
          effect: 'Allow',
          actions: ['dynamodb:Query'],
          resources: [`<${ids.table}.Arn>`, `<${ids.table}.Arn>/index/screening`],
        },
        { effect: 'Allow', actions: ['sqs:SendMessage'], resources: [`<${ids.queue}.Arn>`] },
        {
          effect: 'Allow',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [keyArn],
          conditions: viaServices('sqs', 'dynamodb'),
        },
        // Itself (unqualified), to continue a run that comes close to its timeout.
        { effect: 'Allow', actions: ['lambda:InvokeFunction'], resources: [`<${ids.planner}.Arn>`] },
        ...logging(ids.plannerLogs),
      ]),
    );
  });

  test('the rotator writes keys under includePaths only, never under excludePaths', () => {
    expect(statementsOfRole(custom.template, ids.rotatorRole)).toEqual(
      sortStatements([
        userReads,
        {
          effect: 'Allow',
          actions: ['iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:UpdateAccessKey'],
          resources: [userArn('/'), userArn('/service/')],
        },
        {
          effect: 'Deny',
          actions: ['iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:UpdateAccessKey'],
          resources: [userArn('/break-glass/'), userArn('/vendor/')],
        },
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
          resources: [
            'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:acme/keys/*',
          ],
        },
        {
          effect: 'Allow',
          actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
          resources: [keyArn],
          conditions: viaServices('secretsmanager', 'sqs', 'sns', 'dynamodb'),
        },
        // subscribeOwners is off here: notices and findings only, no owner topics.
        {
          effect: 'Allow',
          actions: ['sns:Publish'],
          resources: [`<${ids.topic}>`, `<${ids.opsTopic}>`],
        },
        {
          effect: 'Allow',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          resources: [`<${ids.table}.Arn>`],
        },
        // Consuming the work queue (its messages are decrypted through SQS, by the statement above).
        {
          effect: 'Allow',
          actions: [
            'sqs:ChangeMessageVisibility',
            'sqs:DeleteMessage',
            'sqs:GetQueueAttributes',
            'sqs:GetQueueUrl',
            'sqs:ReceiveMessage',
          ],
          resources: [`<${ids.queue}.Arn>`],
        },
        ...logging(ids.rotatorLogs),
      ]),
    );
  });

  test('without excludePaths there is no Deny statement', () => {
    const role = defaults.id(defaults.stack.rotation.rotatorRole);
    const statements = statementsOfRole(defaults.template, role);
    expect(statements.filter((s) => s.effect === 'Deny')).toEqual([]);
    expect(statements).toContainEqual({
      effect: 'Allow',
      actions: ['iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:UpdateAccessKey'],
      resources: [userArn('/')],
    });
  });

  test('no role may use the key except through a named service (kms:ViaService on every KMS statement)', () => {
    for (const template of [custom.template, defaults.template]) {
      const roles = Object.entries(resources(template)).filter(([, r]) => r.Type === 'AWS::IAM::Role');
      expect(roles.length).toBeGreaterThanOrEqual(3);
      for (const [logicalId] of roles) {
        for (const statement of statementsOfRole(template, logicalId)) {
          if (!statement.actions.some((action) => action.startsWith('kms:'))) continue;
          const conditions = statement.conditions as { StringEquals?: Record<string, unknown> } | undefined;
          expect({ logicalId, statement, viaService: conditions?.StringEquals?.['kms:ViaService'] }).toEqual({
            logicalId,
            statement,
            viaService: expect.anything() as unknown,
          });
        }
      }
    }
  });

  test('no action has a wildcard and no role uses a managed policy', () => {
    for (const [logicalId, role] of ofType('AWS::IAM::Role')) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      for (const statement of statementsOfRole(custom.template, logicalId)) {
        for (const action of statement.actions) expect(action).not.toContain('*');
      }
    }
  });

  test('the functions are assumed by Lambda only', () => {
    for (const role of [ids.plannerRole, ids.rotatorRole]) {
      expect(resources()[role]?.Properties.AssumeRolePolicyDocument).toEqual({
        Version: '2012-10-17',
        Statement: [
          { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
        ],
      });
    }
  });
});

describe('encryption', () => {
  const keyArn = { 'Fn::GetAtt': [ids.key, 'Arn'] };

  test('one customer-managed key, rotated and retained', () => {
    custom.template.resourceCountIs('AWS::KMS::Key', 1);
    custom.template.hasResource('AWS::KMS::Key', {
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
    });
  });

  test('the key lets the account decrypt only through Secrets Manager, only secrets under the prefix', () => {
    const policy = flattenDeep(resources()[ids.key]?.Properties.KeyPolicy) as {
      Statement: { Sid?: string }[];
    };
    expect(policy.Statement).toContainEqual({
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
        StringLike: {
          'kms:EncryptionContext:SecretARN':
            'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:acme/keys/*',
        },
      },
    });
    expect(policy.Statement).toContainEqual({
      Sid: 'CloudWatchAlarmsPublishToEncryptedTopic',
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Resource: '*',
      // Only for alarms of this account and region.
      Condition: {
        ArnLike: {
          'aws:SourceArn': 'arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*',
        },
        StringEquals: { 'aws:SourceAccount': '<AWS::AccountId>' },
      },
    });
    // Besides those two, only the account root statement that lets IAM policies grant use of the key.
    expect(policy.Statement).toHaveLength(3);
    expect(policy.Statement).toContainEqual({
      Effect: 'Allow',
      Principal: { AWS: 'arn:<AWS::Partition>:iam::<AWS::AccountId>:root' },
      Action: 'kms:*',
      Resource: '*',
    });
  });

  test('the ledger: pk/sk strings, on demand, point-in-time recovery, the CMK, retained', () => {
    custom.template.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn },
      },
      DeletionPolicy: 'Retain',
    });
  });

  test("the ledger's screening index: the table's keys, projecting only what the planner's screen reads", () => {
    const tables = custom.template.findResources('AWS::DynamoDB::Table') as Record<
      string,
      { Properties: { GlobalSecondaryIndexes?: unknown } }
    >;
    expect(Object.values(tables).map((table) => table.Properties.GlobalSecondaryIndexes)).toEqual([
      [
        {
          IndexName: 'screening',
          KeySchema: [
            { AttributeName: 'pk', KeyType: 'HASH' },
            { AttributeName: 'sk', KeyType: 'RANGE' },
          ],
          Projection: {
            ProjectionType: 'INCLUDE',
            NonKeyAttributes: ['review', 'inactiveSince', 'inFlight', 'outbox'],
          },
        },
      ],
    ]);
    // No other role reads the index: the rotator reads records by key only.
    const indexReaders = [ids.plannerRole, ids.rotatorRole].filter((role) =>
      statementsOfRole(custom.template, role).some((statement) =>
        statement.resources.some((resource) => resource.includes('/index/')),
      ),
    );
    expect(indexReaders).toEqual([ids.plannerRole]);
  });

  test('both queues are FIFO, encrypted with the CMK and refuse plain HTTP', () => {
    for (const queue of [ids.queue, ids.dlq]) {
      expect(resources()[queue]?.Properties).toMatchObject({
        FifoQueue: true,
        KmsMasterKeyId: keyArn,
      });
      custom.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queue }],
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

  test('both topics are encrypted with the CMK and refuse plain HTTP', () => {
    for (const topic of [ids.topic, ids.opsTopic]) {
      expect(resources()[topic]?.Properties.KmsMasterKeyId).toEqual(keyArn);
      custom.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
        Topics: [{ Ref: topic }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sns:Publish',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });
});

describe('queue', () => {
  test('work queue: no content-based deduplication, DLQ after 3 receives, visibility ≥ 6 × rotator timeout', () => {
    const queue = resources()[ids.queue]?.Properties;
    expect(queue).toMatchObject({
      ContentBasedDeduplication: false,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [ids.dlq, 'Arn'] }, maxReceiveCount: 3 },
    });
    expect(queue?.VisibilityTimeout).toBeGreaterThanOrEqual(6 * ROTATOR_TIMEOUT.toSeconds());
    expect(resources()[ids.dlq]?.Properties.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });
});

describe('notifications', () => {
  test('default recipients get the notices of users without an owner (filter owner = default)', () => {
    for (const address of ['security@example.com', 'it@example.com']) {
      custom.template.hasResourceProperties('AWS::SNS::Subscription', {
        TopicArn: { Ref: ids.topic },
        Protocol: 'email',
        Endpoint: address,
        FilterPolicy: { owner: ['default'] },
      });
    }
  });

  test('ops recipients get every notice and every alarm, without a filter', () => {
    for (const topic of [ids.topic, ids.opsTopic]) {
      custom.template.hasResourceProperties('AWS::SNS::Subscription', {
        TopicArn: { Ref: topic },
        Protocol: 'email',
        Endpoint: 'ops@example.com',
        FilterPolicy: Match.absent(),
      });
    }
    custom.template.resourceCountIs('AWS::SNS::Subscription', 4);
    defaults.template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  test('CloudWatch alarms of this account may publish to the ops topic', () => {
    const policy = ofType('AWS::SNS::TopicPolicy').find(
      ([, p]) => JSON.stringify(p.Properties.Topics) === JSON.stringify([{ Ref: ids.opsTopic }]),
    );
    expect(
      (flattenDeep(policy?.[1].Properties.PolicyDocument) as { Statement: unknown[] }).Statement,
    ).toContainEqual({
      Sid: 'CloudWatchAlarmsPublish',
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: 'sns:Publish',
      Resource: `<${ids.opsTopic}>`,
      Condition: {
        ArnLike: {
          'aws:SourceArn': 'arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*',
        },
        StringEquals: { 'aws:SourceAccount': '<AWS::AccountId>' },
      },
    });
  });
});

describe('alarms', () => {
  const toOps = [{ Ref: ids.opsTopic }];
  const alarm = (construct: Parameters<typeof custom.id>[0]) => resources()[custom.id(construct)]?.Properties;

  test('nine alarms, each notifying the ops topic on alarm and on recovery', () => {
    custom.template.resourceCountIs('AWS::CloudWatch::Alarm', 9);
    custom.template.allResourcesProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: toOps,
      OKActions: toOps,
    });
  });

  test.each([
    ['planner', () => rotation.plannerErrorsAlarm, ids.planner],
    ['rotator', () => rotation.rotatorErrorsAlarm, ids.rotator],
  ])('%s errors ≥ 1', (_name, get, fn) => {
    expect(alarm(get())).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fn } }],
      Statistic: 'Sum',
      Period: 300,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  test('dead-letter queue not empty', () => {
    expect(alarm(rotation.deadLetterQueueAlarm)).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [ids.dlq, 'QueueName'] } }],
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
    });
  });

  test('planner not run: no invocation in any 1-hour period for notRunningAlarmHours, missing data breaching', () => {
    expect(alarm(rotation.plannerNotRunningAlarm)).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Invocations',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: ids.planner } }],
      Statistic: 'Sum',
      Period: 3600,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      EvaluationPeriods: 80,
      DatapointsToAlarm: 80,
      TreatMissingData: 'breaching',
    });
    const byDefault = resources(defaults.template)[
      defaults.id(defaults.stack.rotation.plannerNotRunningAlarm)
    ];
    expect(byDefault?.Properties).toMatchObject({ EvaluationPeriods: 26, DatapointsToAlarm: 26 });
  });

  test('overdue keys > 0 (the planner’s EMF metric), holding its state between daily runs', () => {
    expect(alarm(rotation.overdueKeysAlarm)).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.overdueKeys,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAME }],
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      // One datapoint a day: missing hours neither clear nor raise the alarm.
      TreatMissingData: 'ignore',
    });
  });

  test.each([
    [
      'rotation failures (users reported as failed batch items)',
      () => rotation.rotationFailuresAlarm,
      METRIC.rotationFailures,
    ],
    [
      'secret readers omitted (secretAdminRoleArn or secretReaderArns does not exist)',
      () => rotation.secretReadersOmittedAlarm,
      METRIC.secretReadersOmitted,
    ],
    [
      'owner subscription failures',
      () => rotation.ownerSubscriptionFailuresAlarm,
      METRIC.ownerSubscriptionFailures,
    ],
  ])('%s: sum ≥ 1 in 5 minutes (EMF metric), missing data not breaching', (_name, get, metricName) => {
    expect(alarm(get())).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: metricName,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAME }],
      Statistic: 'Sum',
      Period: 300,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  test('the secret-readers alarm says what it means and what to do', () => {
    expect(alarm(rotation.secretReadersOmittedAlarm)?.AlarmDescription).toBe(
      "A principal named for the secrets' policies does not exist (secretAdminRoleArn, secretReaderArns, or a deleted one in an operator's statement); secrets are stored without it. See the rotator's secret.reader-omitted audit line: create the role or user, or change the prop and redeploy.",
    );
  });

  test("schedule's dead-letter queue not empty", () => {
    expect(alarm(rotation.scheduleDeadLetterQueueAlarm)).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [ids.scheduleDlq, 'QueueName'] } }],
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
  });
});

describe('dashboard and saved queries', () => {
  test('the dashboard shows the service metrics, errors and the dead-letter queue', () => {
    const dashboard = single('AWS::CloudWatch::Dashboard');
    const body = flatten(dashboard.Properties.DashboardBody);
    // The organization metrics appear in organization mode only (test/infra/organization.test.ts).
    const organizationOnly: string[] = [
      METRIC.accountsSelected,
      METRIC.accountsSkipped,
      METRIC.accountFailures,
      METRIC.accountRetries,
    ];
    for (const name of [
      ...Object.values(METRIC).filter((name) => !organizationOnly.includes(name)),
      'Errors',
      'ApproximateNumberOfMessagesVisible',
      METRICS_NAMESPACE,
    ]) {
      expect(body).toContain(`"${name}"`);
    }
    expect(body).toContain(`<${ids.dlq}.QueueName>`);
    expect(body).toContain(`<${ids.scheduleDlq}.QueueName>`);
  });

  test('the dashboard shows every alarm', () => {
    const body = flatten(single('AWS::CloudWatch::Dashboard').Properties.DashboardBody);
    for (const [logicalId] of ofType('AWS::CloudWatch::Alarm')) {
      expect(body).toContain(`<${logicalId}.Arn>`);
    }
  });

  test.each([
    ['rotations', "filter audit.action = 'key.rotated'"],
    ['failures', "filter audit.outcome = 'failure' or level = 'ERROR'"],
    ['keys-still-in-use', "filter audit.action = 'key.postponed'"],
    ['actions-for-user', "filter audit.userName = 'USER'"],
  ])('saved query %s over both log groups', (name, filter) => {
    const query = ofType('AWS::Logs::QueryDefinition').find(([, q]) => q.Properties.Name === `Test/${name}`);
    expect(query).toBeDefined();
    const properties = query?.[1].Properties as { QueryString: string; LogGroupNames: unknown[] };
    expect(properties.QueryString).toContain(filter);
    expect(properties.QueryString).toContain(
      'fields @timestamp, audit.action, audit.accountId, audit.userName, audit.keyId, audit.newKeyId, audit.reason, audit.dryRun, audit.outcome',
    );
    expect(properties.LogGroupNames).toEqual([{ Ref: ids.plannerLogs }, { Ref: ids.rotatorLogs }]);
  });
});

describe('stack outputs', () => {
  test('the operator CLI finds every store by the contract output keys', () => {
    const outputs = custom.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs).toMatchObject({
      [STACK_OUTPUT.ledgerTableName]: { Value: { Ref: ids.table } },
      [STACK_OUTPUT.topicArn]: { Value: { Ref: ids.topic } },
      [STACK_OUTPUT.queueUrl]: { Value: { Ref: ids.queue } },
      [STACK_OUTPUT.secretPrefix]: { Value: 'acme/keys' },
      [STACK_OUTPUT.kmsKeyArn]: { Value: { 'Fn::GetAtt': [ids.key, 'Arn'] } },
      [STACK_OUTPUT.rotatorRoleArn]: { Value: { 'Fn::GetAtt': [ids.rotatorRole, 'Arn'] } },
      // The CLI names the same readers in the policies it writes.
      [STACK_OUTPUT.secretReaderArns]: { Value: JSON.stringify(CUSTOM.secretReaderArns) },
      PlannerFunctionName: { Value: { Ref: ids.planner } },
      ScheduleDeadLetterQueueUrl: { Value: { Ref: ids.scheduleDlq } },
      OpsTopicArn: { Value: { Ref: ids.opsTopic } },
    });
    expect(JSON.parse(outputs[STACK_OUTPUT.settings]?.Value as string)).toEqual(rotation.settings);
    // Every contract output but the organization's, which exists in organization mode only.
    for (const key of Object.values(STACK_OUTPUT)) {
      if (key === STACK_OUTPUT.organization) expect(outputs).not.toHaveProperty(key);
      else expect(outputs).toHaveProperty(key);
    }
  });

  test('without readers the readers output is an empty list', () => {
    const outputs = defaults.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs[STACK_OUTPUT.secretReaderArns]?.Value).toBe('[]');
  });
});

describe('per-owner notification topics', () => {
  const ownerTopics =
    'arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:iam-key-rotation-owner-4a09c2-*';

  test('by default the rotator may create and use topics under the owner prefix, and nothing wider', () => {
    const role = defaults.id(defaults.stack.rotation.rotatorRole);
    const sns = statementsOfRole(defaults.template, role).filter((statement) =>
      statement.actions.some((action) => action.startsWith('sns:')),
    );
    expect(sns).toEqual(
      sortStatements([
        {
          effect: 'Allow',
          actions: ['sns:Publish'],
          resources: [
            `<${defaults.id(defaults.stack.rotation.notificationTopic)}>`,
            `<${defaults.id(defaults.stack.rotation.opsTopic)}>`,
          ],
        },
        {
          effect: 'Allow',
          actions: [
            'sns:CreateTopic',
            'sns:GetTopicAttributes',
            'sns:Publish',
            'sns:SetTopicAttributes',
            'sns:Subscribe',
          ],
          resources: [ownerTopics],
        },
      ]),
    );
    expect(sns.flatMap((statement) => statement.actions)).not.toContain('sns:ListSubscriptionsByTopic');
  });

  test('the rotator is told the owner prefix and the ops topic; without subscribeOwners, no prefix', () => {
    // The rotator is the function whose description says it rotates.
    const environmentOf = (synthesized: typeof defaults): Record<string, unknown> => {
      const functions = synthesized.template.findResources('AWS::Lambda::Function') as Record<
        string,
        { Properties: { Environment: { Variables: Record<string, unknown> } } }
      >;
      const rotator = Object.values(functions).find((fn) =>
        JSON.stringify(fn).includes('rotates, deactivates'),
      );
      return rotator!.Properties.Environment.Variables;
    };
    expect(environmentOf(defaults)).toMatchObject({ OWNER_TOPIC_PREFIX: 'iam-key-rotation-owner-4a09c2-' });
    expect(environmentOf(defaults).OPS_TOPIC_ARN).toBeDefined();
    expect(environmentOf(custom).OWNER_TOPIC_PREFIX).toBeUndefined();
    const prefixOutput = (synthesized: typeof defaults): unknown =>
      (synthesized.template.toJSON().Outputs as Record<string, { Value: unknown }>)[
        STACK_OUTPUT.ownerTopicPrefix
      ]?.Value;
    expect(prefixOutput(custom)).toBe('none');
    expect(prefixOutput(defaults)).toBe('iam-key-rotation-owner-4a09c2-');
  });
});

describe('an existing key (encryptionKeyArn), for a redeploy after the stack was deleted', () => {
  const imported = synthesize({ encryptionKeyArn: IMPORTED_KEY_ARN });
  const importedResources = resources(imported.template);
  const of = (type: string) => Object.values(importedResources).filter((r) => r.Type === type);

  test('creates no key and encrypts the ledger, both topics and all three queues with the named one', () => {
    imported.template.resourceCountIs('AWS::KMS::Key', 0);
    expect(of('AWS::DynamoDB::Table')[0]?.Properties.SSESpecification).toMatchObject({
      KMSMasterKeyId: IMPORTED_KEY_ARN,
    });
    const topics = of('AWS::SNS::Topic');
    expect(topics).toHaveLength(2);
    for (const topic of topics) expect(topic.Properties.KmsMasterKeyId).toBe(IMPORTED_KEY_ARN);
    const queues = of('AWS::SQS::Queue');
    expect(queues).toHaveLength(3);
    for (const queue of queues) expect(queue.Properties.KmsMasterKeyId).toBe(IMPORTED_KEY_ARN);
  });

  test('grants, the functions and the stack output name the existing key', () => {
    const rotatorRole = imported.id(imported.stack.rotation.rotatorRole);
    const kmsStatements = statementsOfRole(imported.template, rotatorRole).filter((s) =>
      s.actions.some((action) => action.startsWith('kms:')),
    );
    expect(kmsStatements.length).toBeGreaterThan(0);
    for (const statement of kmsStatements) expect(statement.resources).toEqual([IMPORTED_KEY_ARN]);
    for (const fn of of('AWS::Lambda::Function')) {
      const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(variables[ENV.kmsKeyArn]).toBe(IMPORTED_KEY_ARN);
    }
    const outputs = imported.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs[STACK_OUTPUT.kmsKeyArn]?.Value).toBe(IMPORTED_KEY_ARN);
  });
});

describe('synth-time warnings', () => {
  const warnings = (template: ReturnType<typeof synthesize>) =>
    Annotations.fromStack(template.stack).findWarning('*', Match.stringLikeRegexp('defaultRecipients'));

  test('without defaultRecipients nobody would hear of users without an owner tag: a warning says so', () => {
    expect(warnings(defaults)).toHaveLength(1);
    expect(JSON.stringify(warnings(defaults)[0]?.entry.data)).toContain(
      'defaultRecipients is empty: nobody receives the notices of users without a (valid) owner tag',
    );
  });

  test('with defaultRecipients there is no such warning', () => {
    expect(warnings(custom)).toEqual([]);
  });
});

describe('a stack with a concrete account and region', () => {
  const build = (rotation: KeyRotationProps) => () =>
    Template.fromStack(
      new KeyRotationStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Pinned', {
        env: { account: '123456789012', region: 'eu-west-1' },
        rotation,
      }),
    );

  test('accepts a key and an admin role of its own account and region', () => {
    const template = build({
      encryptionKeyArn: IMPORTED_KEY_ARN,
      secretAdminRoleArn: 'arn:aws:iam::123456789012:role/secrets-admin',
    })();
    template.resourceCountIs('AWS::KMS::Key', 0);
  });

  test.each<[string, KeyRotationProps, RegExp]>([
    [
      'secretAdminRoleArn of another account',
      { secretAdminRoleArn: 'arn:aws:iam::999999999999:role/secrets-admin' },
      /secretAdminRoleArn must be a role of the stack's account 123456789012, but arn:aws:iam::999999999999:role\/secrets-admin is in account 999999999999/,
    ],
    [
      'encryptionKeyArn of another account',
      { encryptionKeyArn: IMPORTED_KEY_ARN.replace('123456789012', '999999999999') },
      /encryptionKeyArn must be a key of the stack's account 123456789012, but .* is in account 999999999999/,
    ],
    [
      'encryptionKeyArn of another region',
      { encryptionKeyArn: IMPORTED_KEY_ARN.replace('eu-west-1', 'us-east-1') },
      /encryptionKeyArn must be a key of the stack's region eu-west-1, but .* is in us-east-1/,
    ],
  ])('refuses %s, naming the prop', (_name, rotation, message) => {
    expect(build(rotation)).toThrow(message);
  });
});
