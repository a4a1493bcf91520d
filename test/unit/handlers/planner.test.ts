import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import {
  GenerateCredentialReportCommand,
  GetAccessKeyLastUsedCommand,
  GetCredentialReportCommand,
  GetUserCommand,
  IAMClient,
  ListAccessKeysCommand,
} from '@aws-sdk/client-iam';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { mockClient } from 'aws-sdk-client-mock';
import { ENV } from '../../../lambda/contract';
import { DynamoLedger } from '../../../lambda/adapters/dynamodb-ledger';
import { IamAdapter } from '../../../lambda/adapters/iam';
import { LambdaContinuation } from '../../../lambda/adapters/lambda-invoke';
import { SqsWorkQueue } from '../../../lambda/adapters/sqs-queue';
import { parsePlannerInput } from '../../../lambda/domain/messages';
import { resolveSettings } from '../../../lambda/domain/settings';
import { createPlannerHandler } from '../../../lambda/handlers/planner-app';
import { FakeClock } from '../../fakes/clock';
import type { Context } from 'aws-lambda';
import { ACCOUNT, captureOutput, lambdaContext } from './lambda-context';

const HEADER =
  'user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated';
const REPORT = [
  HEADER,
  `<root_account>,arn:aws:iam::${ACCOUNT}:root,2020-01-01T00:00:00+00:00,not_supported,2026-01-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A`,
  `fresh,arn:aws:iam::${ACCOUNT}:user/fresh,2025-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2025-12-20T10:00:00+00:00,2025-12-31T10:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A`,
  `deploy-bot,arn:aws:iam::${ACCOUNT}:user/ci/deploy-bot,2025-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2025-09-01T10:00:00+00:00,2025-12-31T10:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A`,
].join('\n');

const iam = mockClient(IAMClient);
const dynamo = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);
const lambda = mockClient(LambdaClient);

function plannerDeps() {
  const client = {
    region: 'eu-west-1',
    maxAttempts: 1,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  return {
    config: {
      tableName: 'ledger',
      queueUrl: 'https://sqs.eu-west-1.amazonaws.com/111122223333/work.fifo',
      settings: resolveSettings({}),
    },
    iam: new IamAdapter(new IAMClient(client)),
    ledger: new DynamoLedger('ledger', new DynamoDBClient(client)),
    queue: new SqsWorkQueue(
      'https://sqs.eu-west-1.amazonaws.com/111122223333/work.fifo',
      new SQSClient(client),
    ),
    continuation: new LambdaContinuation(new LambdaClient(client)),
    clock: new FakeClock('2026-01-01T02:00:00Z'),
    logger: new Logger({ serviceName: 'iam-key-rotation' }),
    metrics: new Metrics({ namespace: 'IamKeyRotation', serviceName: 'iam-key-rotation' }),
  };
}

function planner() {
  return createPlannerHandler(plannerDeps());
}

describe('planner handler', () => {
  let output: ReturnType<typeof captureOutput>;
  beforeEach(() => {
    iam.reset();
    dynamo.reset();
    sqs.reset();
    lambda.reset();
    output = captureOutput();
    iam.on(GenerateCredentialReportCommand).resolves({ State: 'COMPLETE' });
    iam
      .on(GetCredentialReportCommand)
      .resolves({ Content: new TextEncoder().encode(REPORT), ReportFormat: 'text/csv' });
    iam.on(GetUserCommand, { UserName: 'deploy-bot' }).resolves({
      User: {
        UserName: 'deploy-bot',
        UserId: 'AIDAEXAMPLE',
        Path: '/ci/',
        Arn: `arn:aws:iam::${ACCOUNT}:user/ci/deploy-bot`,
        CreateDate: new Date('2025-01-01T00:00:00Z'),
        Tags: [{ Key: 'key-rotation:owner', Value: 'ci-team@example.com' }],
      },
    });
    iam.on(ListAccessKeysCommand, { UserName: 'deploy-bot' }).resolves({
      AccessKeyMetadata: [
        {
          UserName: 'deploy-bot',
          AccessKeyId: 'AKIAOLDKEY0000000001',
          Status: 'Active',
          CreateDate: new Date('2025-09-01T10:00:00Z'),
        },
      ],
    });
    iam.on(GetAccessKeyLastUsedCommand).resolves({
      AccessKeyLastUsed: {
        LastUsedDate: new Date('2025-12-31T10:00:00Z'),
        Region: 'us-east-1',
        ServiceName: 's3',
      },
    });
    dynamo.on(QueryCommand).resolves({ Items: [] });
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'm-1', MD5OfMessageBody: 'x' }], Failed: [] });
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
  });
  afterEach(() => output.restore());

  test('a scheduled run queues one FIFO message per user with work and reports its figures', async () => {
    // The schedule's input, as EventBridge Scheduler delivers it.
    const result = await planner()({ dryRun: false }, lambdaContext('planner'));

    expect(result).toMatchObject({
      accountId: ACCOUNT,
      dryRun: false,
      source: 'credential-report',
      usersScanned: 2,
      keysScanned: 2,
      overdueKeys: 1,
      queued: 1,
      actions: { rotate: 1 },
    });
    const sent = sqs.commandCalls(SendMessageBatchCommand);
    expect(sent).toHaveLength(1);
    const entries = sent[0]!.args[0].input.Entries!;
    expect(entries).toHaveLength(1);
    expect(entries[0]!.MessageGroupId).toBe(`${ACCOUNT}/deploy-bot`);
    expect(JSON.parse(entries[0]!.MessageBody!)).toEqual({
      version: 1,
      accountId: ACCOUNT,
      userName: 'deploy-bot',
      dryRun: false,
      plannedActions: ['rotate'],
      plannedAt: '2026-01-01T02:00:00.000Z',
    });
    // Nobody was read live: the report and the ledger decided; the rotator reads deploy-bot itself.
    expect(iam.commandCalls(GetUserCommand)).toHaveLength(0);
    expect(iam.commandCalls(ListAccessKeysCommand)).toHaveLength(0);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0); // finished in one invocation
    const emf = output.lines().find((line) => line._aws !== undefined);
    expect(emf).toMatchObject({ UsersScanned: 2, KeysScanned: 2, OverdueKeys: 1, WorkMessages: 1 });
    const decision = output
      .lines()
      .find((line) => (line.audit as { action?: string } | undefined)?.action === 'user.planned');
    expect(decision?.audit).toMatchObject({ userName: 'deploy-bot', planned: 'rotate', dryRun: false });
  });

  test('an invocation by hand with {"dryRun": true} confirms the due user live and queues dry-run messages only', async () => {
    const result = await planner()({ dryRun: true }, lambdaContext('planner'));

    expect(result.dryRun).toBe(true);
    expect(iam.commandCalls(GetUserCommand).map((call) => call.args[0].input.UserName)).toEqual([
      'deploy-bot',
    ]);
    const body = JSON.parse(
      sqs.commandCalls(SendMessageBatchCommand)[0]!.args[0].input.Entries![0]!.MessageBody!,
    ) as {
      dryRun: boolean;
    };
    expect(body.dryRun).toBe(true);
  });

  test('bad input is refused with what to change, and logged', async () => {
    await expect(planner()({ dryRun: 'yes' }, lambdaContext('planner'))).rejects.toThrow(
      'planner input "dryRun" must be true or false (got "yes")',
    );
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
    expect(output.lines().find((line) => line.message === 'planning failed')).toMatchObject({
      level: 'ERROR',
    });
  });

  test('a dry run: a user that cannot be read: the others are queued, then the invocation fails (alarm, retry)', async () => {
    iam
      .on(GetUserCommand, { UserName: 'deploy-bot' })
      .rejects(
        Object.assign(new Error('User is not authorized to perform iam:GetUser'), { name: 'AccessDenied' }),
      );

    await expect(planner()({ dryRun: true }, lambdaContext('planner'))).rejects.toThrow(
      '1 user(s) could not be planned: deploy-bot',
    );
    // Nothing else was due here, so nothing was queued; the failure is in the log for the operator.
    const failed = output.lines().find((line) => line.message === 'user could not be planned');
    expect(failed).toMatchObject({ level: 'ERROR', userName: 'deploy-bot' });
  });

  test('a scheduled run does not read users, so a user IAM will not show the planner is still queued', async () => {
    iam
      .on(GetUserCommand)
      .rejects(
        Object.assign(new Error('User is not authorized to perform iam:GetUser'), { name: 'AccessDenied' }),
      );

    const result = await planner()({ dryRun: false }, lambdaContext('planner'));

    expect(result).toMatchObject({ queued: 1, failed: [] });
  });

  test('throttling of the credential report fails the run rather than reporting no keys', async () => {
    iam
      .on(GetCredentialReportCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));

    await expect(planner()({ dryRun: false }, lambdaContext('planner'))).rejects.toThrow('Throttling');
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });
});

describe('planner handler: a run that comes close to the timeout continues in a new invocation', () => {
  let output: ReturnType<typeof captureOutput>;
  const due = ['a-bot', 'b-bot', 'c-bot', 'd-bot'];
  const dueRow = (name: string) =>
    `${name},arn:aws:iam::${ACCOUNT}:user/${name},2025-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2025-09-01T10:00:00+00:00,2025-12-31T10:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A`;
  /** An invocation with `remaining` ms left, the clock standing still. */
  const context = (remaining: number): Context => ({
    ...lambdaContext('planner'),
    getRemainingTimeInMillis: () => remaining,
  });

  beforeEach(() => {
    iam.reset();
    dynamo.reset();
    sqs.reset();
    lambda.reset();
    output = captureOutput();
    iam.on(GenerateCredentialReportCommand).resolves({ State: 'COMPLETE' });
    iam.on(GetCredentialReportCommand).resolves({
      // In no particular order: the planner goes by user name.
      Content: new TextEncoder().encode([HEADER, ...[...due].reverse().map(dueRow)].join('\n')),
      ReportFormat: 'text/csv',
    });
    dynamo.on(QueryCommand).resolves({ Items: [] });
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'm-1', MD5OfMessageBody: 'x' }], Failed: [] });
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
  });
  afterEach(() => output.restore());

  function sentUsers(): string[] {
    return sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((call) =>
        call.args[0].input.Entries!.map((entry) => JSON.parse(entry.MessageBody!) as { userName: string }),
      )
      .map((body) => body.userName);
  }

  test('with less than a minute left, the run sends what it found and invokes itself to continue', async () => {
    const result = await planner()({ dryRun: false }, context(59_000));

    // At least one user per invocation, so that the chain always moves on.
    expect(result).toMatchObject({ queued: 1, continueAfter: 'a-bot' });
    expect(sentUsers()).toEqual(['a-bot']);
    const invoke = lambda.commandCalls(InvokeCommand);
    expect(invoke).toHaveLength(1);
    expect(invoke[0]!.args[0].input).toMatchObject({ FunctionName: 'planner', InvocationType: 'Event' });
    expect(JSON.parse(new TextDecoder().decode(invoke[0]!.args[0].input.Payload as Uint8Array))).toEqual({
      dryRun: false,
      startAfter: 'a-bot',
      plannedAt: '2026-01-01T02:00:00.000Z',
    });
    const emf = output.lines().find((line) => line._aws !== undefined);
    expect(emf).toMatchObject({ PlannerContinuations: 1, WorkMessages: 1, UsersScanned: 4 });
    expect(
      output.lines().find((line) => line.message === 'planning run continues in a new invocation'),
    ).toMatchObject({
      level: 'WARN',
      continuation: { startAfter: 'a-bot' },
    });
  });

  test("the continuation plans the users after the last one handled, under the first run's time (same FIFO deduplication ids)", async () => {
    const first = await planner()({ dryRun: false }, context(59_000));
    const payload = JSON.parse(
      new TextDecoder().decode(lambda.commandCalls(InvokeCommand)[0]!.args[0].input.Payload as Uint8Array),
    ) as unknown;
    output.restore();
    output = captureOutput();

    // A later invocation (its own clock is an hour on), with the whole timeout ahead.
    const handler = createPlannerHandler({ ...plannerDeps(), clock: new FakeClock('2026-01-01T03:00:00Z') });
    const second = await handler(payload, context(600_000));

    expect(first.continueAfter).toBe('a-bot');
    expect(second).toMatchObject({ queued: 3 });
    expect(second.continueAfter).toBeUndefined();
    expect(sentUsers()).toEqual(due);
    const plannedAt = sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((call) =>
        call.args[0].input.Entries!.map(
          (entry) => (JSON.parse(entry.MessageBody!) as { plannedAt: string }).plannedAt,
        ),
      );
    expect(new Set(plannedAt)).toEqual(new Set(['2026-01-01T02:00:00.000Z']));
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(1); // the chain ends
    // The account's figures are counted once per run, by its first invocation.
    const emf = output.lines().find((line) => line._aws !== undefined);
    expect(emf).toMatchObject({ WorkMessages: 3 });
    expect(emf).not.toHaveProperty('UsersScanned');
  });

  test('a continuation that cannot be started fails the invocation (retried), after sending what was found', async () => {
    lambda
      .on(InvokeCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException' }));

    await expect(planner()({ dryRun: false }, context(59_000))).rejects.toThrow('lambda:Invoke');
    expect(sentUsers()).toEqual(['a-bot']);
    expect(output.lines().find((line) => line.message === 'planning failed')).toMatchObject({
      level: 'ERROR',
    });
  });
});

describe('parsePlannerInput', () => {
  test.each([
    [undefined, { dryRun: false }],
    [{}, { dryRun: false }],
    [{ dryRun: true }, { dryRun: true }],
    [
      { dryRun: false, startAfter: 'deploy-bot', plannedAt: '2026-01-01T02:00:00.000Z' },
      { dryRun: false, startAfter: 'deploy-bot', plannedAt: '2026-01-01T02:00:00.000Z' },
    ],
    [
      { dryRun: true, startAfter: 'a.b@c', plannedAt: '2026-01-01T02:00:00Z' },
      { dryRun: true, startAfter: 'a.b@c', plannedAt: '2026-01-01T02:00:00Z' },
    ],
  ])('%j is read as %j', (input, expected) => {
    expect(parsePlannerInput(input)).toEqual(expected);
  });

  test.each([
    [[true], 'planner input must be a JSON object such as {"dryRun": true}'],
    [{ dry: true }, 'planner input has unknown field(s) dry; only "dryRun" is read'],
    [
      { startAfter: 'deploy-bot' },
      'planner input "startAfter" and "plannedAt" go together: the planner writes both to continue a run',
    ],
    [
      { startAfter: 'no spaces', plannedAt: '2026-01-01T02:00:00.000Z' },
      'planner input "startAfter" must be an IAM user name (1-64 of letters, digits and _+=,.@-) (got "no spaces")',
    ],
    [
      { startAfter: 'bob', plannedAt: 'yesterday' },
      'planner input "plannedAt" must be an ISO date-time such as 2026-01-01T02:00:00.000Z (got "yesterday")',
    ],
    [
      { startAfter: 'bob', plannedAt: '2026-02-31T02:00:00.000Z' },
      'planner input "plannedAt" must be an ISO date-time',
    ],
  ])('%j is refused: %s', (input, message) => {
    expect(() => parsePlannerInput(input)).toThrow(message);
  });
});

/** Loads an entry module as Lambda would at cold start (a fresh module registry). */
function coldStart(path: string): { handler: unknown } {
  let loaded: { handler: unknown } | undefined;
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(path) as { handler: unknown };
  });
  return loaded!;
}

describe('handler entry points', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  test('fail at cold start, naming the missing variable', () => {
    delete process.env[ENV.ledgerTableName];
    expect(() => coldStart('../../../lambda/handlers/planner')).toThrow(
      'environment variable LEDGER_TABLE_NAME is not set; the KeyRotation construct sets it',
    );
  });

  test('fail at cold start on invalid settings, naming the setting', () => {
    Object.assign(process.env, {
      [ENV.ledgerTableName]: 'ledger',
      [ENV.topicArn]: `arn:aws:sns:eu-west-1:${ACCOUNT}:notices`,
      [ENV.secretPrefix]: 'iam-key-rotation',
      [ENV.kmsKeyArn]: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1`,
      [ENV.rotationSettings]: '{"rotateAfterDays": 85, "graceDays": 10}',
      [ENV.serviceRoleArn]: `arn:aws:iam::${ACCOUNT}:role/rotator`,
    });
    expect(() => coldStart('../../../lambda/handlers/rotator')).toThrow(
      'rotateAfterDays + graceDays (95) exceeds maxKeyAgeDays (90)',
    );
  });

  test('load with the environment the construct sets', () => {
    Object.assign(process.env, {
      [ENV.ledgerTableName]: 'ledger',
      [ENV.queueUrl]: 'https://sqs.eu-west-1.amazonaws.com/111122223333/work.fifo',
      [ENV.topicArn]: `arn:aws:sns:eu-west-1:${ACCOUNT}:notices`,
      [ENV.secretPrefix]: 'iam-key-rotation',
      [ENV.kmsKeyArn]: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1`,
      [ENV.rotationSettings]: '{"rotateAfterDays": 60, "maxKeyAgeDays": 75}',
      [ENV.subscribeOwners]: 'false',
      [ENV.serviceRoleArn]: `arn:aws:iam::${ACCOUNT}:role/rotator`,
      [ENV.secretReaderArns]: `["arn:aws:iam::${ACCOUNT}:role/billing-app"]`,
      AWS_REGION: 'eu-west-1',
    });
    expect(typeof coldStart('../../../lambda/handlers/planner').handler).toBe('function');
    expect(typeof coldStart('../../../lambda/handlers/rotator').handler).toBe('function');
  });
});
