/**
 * Organization mode end to end on the emulator: a first run across the member accounts of an
 * organization, through the real handlers wired with the production adapters as the entry points
 * wire them (dispatcher.ts, planner.ts, rotator.ts), against moto's Organizations, STS, IAM, Secrets
 * Manager, DynamoDB, SQS and SNS.
 *
 * The organization: root → workloads → team (two nested OUs) holding the member accounts app
 * (workloads), team-one and team-two (team), and legacy (team), whose member role refuses the
 * service; sandbox, an excluded OU, holds play; the management account (moto's default account, also
 * the central account here) is excluded by id. Each member account has the footprint the member
 * stack deploys (the member role and the member KMS key with alias/iam-key-rotation-member) and a user
 * `ci` with one key, so that the same user name lives in every account.
 *
 * The run: the dispatcher lists the organization and queues one planning message per account; the
 * planning queue's messages are handed to the planner one at a time (the event source's batch size in
 * organization mode), each account planned through its member role; the work queue's messages go to
 * the rotator in batches, each user rotated in its own account with that account's key. The outcome
 * is read back from moto in each account through its own credentials.
 *
 * Where moto differs from AWS (README.md, "Where moto differs"):
 * - STS AssumeRole checks neither that the member role exists nor its trust policy, in any account,
 *   in the organization or not; so the member account whose role refuses the service is a stand-in:
 *   the planner's STS client answers AssumeRole for that account's role as STS does (HTTP 403,
 *   AccessDenied) and sends every other call to moto (stsRefusing, below). The first test pins the gap.
 * - Secrets Manager does not resolve a secret's KmsKeyId: a secret naming an alias the account does
 *   not hold is created all the same (AWS encrypts the value with the key the alias names in the
 *   calling account, so it cannot store a value under an alias the account lacks). The member key
 *   is created anyway, as the member stack creates it, and the test checks that the secrets name
 *   it; pinned in the second test.
 * - The planner's and the CLI's STS stand-in aside, every call goes to moto; the member role exists
 *   in each reachable account (created as the member stack does) although moto does not need it.
 * - Ages: moto stamps keys with its own clock, so the services run SHIFT_DAYS ahead through the
 *   Clock port (as bad-input.itest.ts does; README, "Ages and time").
 * - SNS delivers to the tap queue without a queue policy (AWS needs one granting sns.amazonaws.com).
 */
import { Readable } from 'node:stream';
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord, SQSRecordAttributes } from 'aws-lambda';
import { CreateTableCommand, type CreateTableCommandInput, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListUsersCommand,
} from '@aws-sdk/client-iam';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateAccountCommand,
  CreateOrganizationalUnitCommand,
  CreateOrganizationCommand,
  ListRootsCommand,
  MoveAccountCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoLedger } from '../../lambda/adapters/dynamodb-ledger';
import { IamAdapter } from '../../lambda/adapters/iam';
import { MemberAccountAccess } from '../../lambda/adapters/member-account-access';
import { MemberCredentials } from '../../lambda/adapters/member-credentials';
import { OrganizationsAdapter } from '../../lambda/adapters/organizations';
import { SecretsManagerVault } from '../../lambda/adapters/secrets-manager';
import { SnsNotifier } from '../../lambda/adapters/sns';
import { SqsPlanningQueue, SqsWorkQueue } from '../../lambda/adapters/sqs-queue';
import { StsVerifier } from '../../lambda/adapters/sts';
import { ACCOUNT_DIMENSION, ENV, LEDGER_ACCOUNT_PARTITION, METRIC } from '../../lambda/contract';
import { resolveOrganizationSettings } from '../../lambda/domain/organization';
import { MS_PER_DAY } from '../../lambda/domain/time';
import { createDispatcherHandler } from '../../lambda/handlers/dispatcher-app';
import { createOrganizationPlannerHandler } from '../../lambda/handlers/org-planner-app';
import { createRotatorHandler } from '../../lambda/handlers/rotator-app';
import {
  type DispatcherConfig,
  loadDispatcherConfig,
  loadPlannerConfig,
  loadRotatorConfig,
  partitionOfRegion,
  type PlannerConfig,
  type RotatorConfig,
} from '../../lambda/handlers/runtime';
import type { Clock } from '../../lambda/ports';
import type { DispatchResult } from '../../lambda/services/dispatch-accounts';
import { AWS_WIRING, main } from '../../cli/main';
import { captureOutput } from '../unit/handlers/lambda-context';
import { deployedFunction, deployedTemplate, resourceOf } from './deployed';
import { emulatorUrl, issuedSecretMatches } from './emulator';

const MANAGEMENT = '123456789012'; // moto's default account: the management (and central) account
const REGION = 'eu-west-1';
const TABLE = 'keyrot-ledger';
const MEMBER_ROLE = 'iam-key-rotation-member';
const MEMBER_KEY_ALIAS = 'alias/iam-key-rotation-member';
/** The role Organizations creates in every account it creates: the set-up acts through it. */
const SETUP_ROLE = 'OrganizationAccountAccessRole';
const OWNER_TAG = 'key-rotation:owner';
/** Every seeded key is due under the deployed settings (rotateAfterDays 80, maxKeyAgeDays 90). */
const SHIFT_DAYS = 85;
/** The user every account has. */
const USER = 'ci';

/** The services' clock, SHIFT_DAYS ahead of the emulator's. */
const clockAhead: Clock = {
  now: () => new Date(Date.now() + SHIFT_DAYS * MS_PER_DAY),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

const organizations = new OrganizationsClient({});
const sts = new STSClient({});
const iam = new IAMClient({});
const secrets = new SecretsManagerClient({});
const sqs = new SQSClient({});
const sns = new SNSClient({});
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}));

afterAll(() => {
  for (const client of [organizations, sts, iam, secrets, sqs, sns]) client.destroy();
  documents.destroy();
});

// ---------------------------------------------------------------------------------------------------
// The organization, and each account as its administrator sees it

interface AccountClients {
  readonly iam: IAMClient;
  readonly secrets: SecretsManagerClient;
  readonly kms: KMSClient;
  readonly sts: STSClient;
}

let rootId: string;
const ous: Record<'workloads' | 'team' | 'sandbox', string> = { workloads: '', team: '', sandbox: '' };
/** Account ids by name. */
const accounts: Record<'app' | 'teamOne' | 'teamTwo' | 'legacy' | 'play', string> = {
  app: '',
  teamOne: '',
  teamTwo: '',
  legacy: '',
  play: '',
};
/** The accounts that must be rotated. */
const rotated = () => [accounts.app, accounts.teamOne, accounts.teamTwo];
/** Clients acting in each account (the set-up role's session), by account id. */
const inAccount = new Map<string, AccountClients>();
/** The key each account's user was seeded with, by account id. */
const seededKey = new Map<string, string>();

async function createOu(parentId: string, name: string): Promise<string> {
  const { OrganizationalUnit } = await organizations.send(
    new CreateOrganizationalUnitCommand({ ParentId: parentId, Name: name }),
  );
  return OrganizationalUnit!.Id!;
}

async function createAccount(name: string, parentId: string): Promise<string> {
  const { CreateAccountStatus } = await organizations.send(
    new CreateAccountCommand({ AccountName: name, Email: `${name}@example.com` }),
  );
  // moto creates the account at once (organizations.itest.ts); AWS would have us poll its status.
  const accountId = CreateAccountStatus!.AccountId!;
  await organizations.send(
    new MoveAccountCommand({ AccountId: accountId, SourceParentId: rootId, DestinationParentId: parentId }),
  );
  return accountId;
}

/** Clients in `accountId`, as its administrator works there (through the role Organizations created). */
async function clientsIn(accountId: string): Promise<AccountClients> {
  const { Credentials } = await sts.send(
    new AssumeRoleCommand({
      RoleArn: `arn:aws:iam::${accountId}:role/${SETUP_ROLE}`,
      RoleSessionName: 'itest-setup',
    }),
  );
  const credentials = {
    accessKeyId: Credentials!.AccessKeyId!,
    secretAccessKey: Credentials!.SecretAccessKey!,
    sessionToken: Credentials!.SessionToken!,
  };
  return {
    iam: new IAMClient({ credentials }),
    secrets: new SecretsManagerClient({ credentials }),
    kms: new KMSClient({ credentials }),
    sts: new STSClient({ credentials }),
  };
}

/**
 * What the member stack deploys in an account (KeyRotationMember): the member role, trusting the
 * central planner and rotator roles, and the member key with its alias. moto checks neither when the
 * service assumes the role or writes a secret with the key; they are created as on AWS.
 */
async function deployMemberFootprint(clients: AccountClients, centralRoles: readonly string[]) {
  await clients.iam.send(
    new CreateRoleCommand({
      RoleName: MEMBER_ROLE,
      MaxSessionDuration: 3_600,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { AWS: centralRoles },
            Action: ['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession'],
          },
        ],
      }),
    }),
  );
  const { KeyMetadata } = await clients.kms.send(
    new CreateKeyCommand({ Description: 'iam-key-rotation secrets of this account' }),
  );
  await clients.kms.send(
    new CreateAliasCommand({ AliasName: MEMBER_KEY_ALIAS, TargetKeyId: KeyMetadata!.KeyId! }),
  );
}

async function seedUser(clients: AccountClients, userName: string): Promise<string> {
  await clients.iam.send(
    new CreateUserCommand({ UserName: userName, Tags: [{ Key: OWNER_TAG, Value: 'platform@example.com' }] }),
  );
  const { AccessKey } = await clients.iam.send(new CreateAccessKeyCommand({ UserName: userName }));
  return AccessKey!.AccessKeyId!;
}

// ---------------------------------------------------------------------------------------------------
// The central deployment: what the functions reach, with the template's attributes where it has them

let kmsKeyArn: string;
let topicArn: string;
let opsTopicArn: string;
let workQueueUrl: string;
let workQueueArn: string;
let workDeadLetterUrl: string;
let planningQueueUrl: string;
let planningQueueArn: string;
let planningDeadLetterUrl: string;
let noticesQueueUrl: string;
let plannerRoleArn: string;
let rotatorRoleArn: string;
let rotatorBatchSize: number;
let dispatcherConfig: DispatcherConfig;
let plannerConfig: PlannerConfig;
let rotatorConfig: RotatorConfig;

async function queueArn(queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  return Attributes!.QueueArn!;
}

async function createLedgerTable(): Promise<void> {
  const [, table] = resourceOf(deployedTemplate(), 'AWS::DynamoDB::Table', 'KeyRotationLedger');
  const properties = table.Properties as {
    KeySchema: { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[];
    AttributeDefinitions: { AttributeName: string; AttributeType: 'S' | 'N' | 'B' }[];
    BillingMode: 'PAY_PER_REQUEST';
    // The planner's `screening` index, as the template declares it.
    GlobalSecondaryIndexes?: CreateTableCommandInput['GlobalSecondaryIndexes'];
  };
  await new DynamoDBClient({}).send(
    new CreateTableCommand({
      TableName: TABLE,
      KeySchema: properties.KeySchema,
      AttributeDefinitions: properties.AttributeDefinitions,
      BillingMode: properties.BillingMode,
      GlobalSecondaryIndexes: properties.GlobalSecondaryIndexes,
      SSESpecification: { Enabled: true, SSEType: 'KMS', KMSMasterKeyId: kmsKeyArn },
    }),
  );
}

/** The FIFO work queue and its dead-letter queue, with the template's attributes and redrive policy. */
async function createWorkQueues(): Promise<void> {
  const template = deployedTemplate();
  const [, work] = resourceOf(template, 'AWS::SQS::Queue', 'KeyRotationWorkQueue');
  const properties = work.Properties as {
    ContentBasedDeduplication: boolean;
    VisibilityTimeout: number;
    RedrivePolicy: { maxReceiveCount: number };
  };
  ({ QueueUrl: workDeadLetterUrl = '' } = await sqs.send(
    new CreateQueueCommand({
      QueueName: 'keyrot-dead-letters.fifo',
      Attributes: { FifoQueue: 'true', KmsMasterKeyId: kmsKeyArn },
    }),
  ));
  ({ QueueUrl: workQueueUrl = '' } = await sqs.send(
    new CreateQueueCommand({
      QueueName: 'keyrot-work.fifo',
      Attributes: {
        FifoQueue: 'true',
        ContentBasedDeduplication: String(properties.ContentBasedDeduplication),
        VisibilityTimeout: String(properties.VisibilityTimeout),
        KmsMasterKeyId: kmsKeyArn,
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: await queueArn(workDeadLetterUrl),
          maxReceiveCount: properties.RedrivePolicy.maxReceiveCount,
        }),
      },
    }),
  ));
  workQueueArn = await queueArn(workQueueUrl);
  const [, mapping] = resourceOf(
    template,
    'AWS::Lambda::EventSourceMapping',
    'KeyRotationRotatorSqsEventSource',
  );
  rotatorBatchSize = (mapping.Properties as { BatchSize: number }).BatchSize;
}

/**
 * The planning queue of organization mode (not in the single-account template cdk.out holds): a
 * standard queue with KMS and a dead-letter queue after PLANNING_MAX_RECEIVE_COUNT receives, as the
 * construct creates it (test/infra/organization.test.ts asserts the template).
 */
async function createPlanningQueues(): Promise<void> {
  ({ QueueUrl: planningDeadLetterUrl = '' } = await sqs.send(
    new CreateQueueCommand({
      QueueName: 'keyrot-planning-dead-letters',
      Attributes: { KmsMasterKeyId: kmsKeyArn },
    }),
  ));
  ({ QueueUrl: planningQueueUrl = '' } = await sqs.send(
    new CreateQueueCommand({
      QueueName: 'keyrot-planning',
      Attributes: {
        KmsMasterKeyId: kmsKeyArn,
        VisibilityTimeout: String(6 * 900),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: await queueArn(planningDeadLetterUrl),
          maxReceiveCount: 3,
        }),
      },
    }),
  ));
  planningQueueArn = await queueArn(planningQueueUrl);
}

/**
 * One queue subscribed to both topics: every notice lands there, with its topic. Relies on a moto
 * gap: it delivers SNS to SQS without a queue policy (README, "Where moto differs").
 */
async function tapNotices(): Promise<void> {
  ({ QueueUrl: noticesQueueUrl = '' } = await sqs.send(new CreateQueueCommand({ QueueName: 'notices-tap' })));
  const endpoint = await queueArn(noticesQueueUrl);
  for (const topic of [topicArn, opsTopicArn]) {
    await sns.send(new SubscribeCommand({ TopicArn: topic, Protocol: 'sqs', Endpoint: endpoint }));
  }
}

async function createCentralRole(name: string): Promise<string> {
  const { Role } = await iam.send(
    new CreateRoleCommand({
      RoleName: name,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      }),
    }),
  );
  return Role!.Arn!;
}

/**
 * A function's environment as the template sets it in one account (references replaced by what was
 * created here), plus what the construct adds in organization mode: the settings, the planning
 * queue (dispatcher, planner) and the member key's alias (rotator).
 */
function environmentOf(
  prefix: 'KeyRotationPlanner' | 'KeyRotationRotator',
  organization: Record<string, string>,
): Record<string, string> {
  const created: Record<string, string> = {
    [ENV.ledgerTableName]: TABLE,
    [ENV.topicArn]: topicArn,
    [ENV.queueUrl]: workQueueUrl,
    [ENV.kmsKeyArn]: kmsKeyArn,
    [ENV.serviceRoleArn]: rotatorRoleArn,
    [ENV.opsTopicArn]: opsTopicArn,
  };
  const { environment } = deployedFunction(deployedTemplate(), prefix);
  return {
    ...Object.fromEntries(
      Object.entries(environment).map(([name, value]) => {
        if (typeof value === 'string') return [name, value];
        const mapped = created[name];
        if (mapped === undefined)
          throw new Error(`${prefix}'s ${name} refers to a resource not created here`);
        return [name, mapped];
      }),
    ),
    ...organization,
  };
}

// ---------------------------------------------------------------------------------------------------
// The functions, wired as their entry points wire them, with the clock ahead

/**
 * An STS client that goes to moto for everything but AssumeRole of `refusedAccount`'s member role,
 * which it answers as STS answers a role that does not exist or does not trust the caller: HTTP 403,
 * AccessDenied. moto lets any AssumeRole in (README, "Where moto differs"), so this one response
 * stands in for STS; the SDK parses it as STS's own, and MemberCredentials maps it unchanged.
 */
function stsRefusing(refusedAccount: string): STSClient {
  const moto = new STSClient({});
  type Handle = STSClient['config']['requestHandler']['handle'];
  const refusedRole = `arn:aws:iam::${refusedAccount}:role/${MEMBER_ROLE}`;
  const handle = async (
    request: { readonly body?: unknown },
    options?: Parameters<Handle>[1],
  ): ReturnType<Handle> => {
    const form = new URLSearchParams(typeof request.body === 'string' ? request.body : '');
    if (form.get('Action') !== 'AssumeRole' || form.get('RoleArn') !== refusedRole) {
      return moto.config.requestHandler.handle(request, options);
    }
    const xml =
      '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>' +
      `<Code>AccessDenied</Code><Message>User: arn:aws:sts::${MANAGEMENT}:assumed-role/keyrot-planner/keyrot-planner ` +
      `is not authorized to perform: sts:AssumeRole on resource: ${refusedRole}</Message></Error>` +
      '<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>';
    return {
      response: {
        statusCode: 403,
        headers: { 'content-type': 'text/xml', 'x-amzn-requestid': '00000000-0000-0000-0000-000000000000' },
        body: Readable.from([Buffer.from(xml)]),
      },
    };
  };
  return new STSClient({
    requestHandler: { handle, updateHttpClientConfig: () => undefined, httpHandlerConfigs: () => ({}) },
  });
}

/** The member role sessions of the planner, its STS client refusing the legacy account's role. */
function plannerMemberCredentials(): MemberCredentials {
  return new MemberCredentials(
    { memberRoleName: MEMBER_ROLE, partition: partitionOfRegion(REGION) },
    stsRefusing(accounts.legacy),
  );
}

const observability = () => ({
  logger: new PowertoolsLogger({ serviceName: 'iam-key-rotation' }),
  metrics: new Metrics({ namespace: 'IamKeyRotation', serviceName: 'iam-key-rotation' }),
});

function dispatcherHandler() {
  return createDispatcherHandler({
    config: dispatcherConfig,
    directory: new OrganizationsAdapter(),
    queue: new SqsPlanningQueue(dispatcherConfig.planningQueueUrl),
    runs: new DynamoLedger(dispatcherConfig.tableName),
    clock: clockAhead,
    ...observability(),
  });
}

function plannerHandler() {
  const organization = plannerConfig.organization!;
  return createOrganizationPlannerHandler({
    config: plannerConfig,
    access: new MemberAccountAccess({
      memberRoleName: organization.settings.memberRoleName,
      partition: partitionOfRegion(REGION),
      credentials: plannerMemberCredentials(),
      clientConfig: { endpoint: emulatorUrl() },
    }),
    ledger: new DynamoLedger(plannerConfig.tableName),
    queue: new SqsWorkQueue(plannerConfig.queueUrl),
    planningQueue: new SqsPlanningQueue(organization.planningQueueUrl),
    notifier: new SnsNotifier({
      topicArn: organization.topicArn,
      kmsKeyArn: organization.kmsKeyArn,
      ...(organization.opsTopicArn ? { opsTopicArn: organization.opsTopicArn } : {}),
    }),
    clock: clockAhead,
    ...observability(),
  });
}

function rotatorHandler() {
  const config = rotatorConfig;
  return createRotatorHandler({
    config,
    iam: new IamAdapter(),
    verifier: new StsVerifier(),
    vault: new SecretsManagerVault({
      kmsKeyArn: config.kmsKeyArn,
      adminRoleArn: config.adminRoleArn,
      readerArns: config.readerArns,
      serviceRoleArn: config.serviceRoleArn,
    }),
    notifier: new SnsNotifier({
      topicArn: config.topicArn,
      ...(config.subscribeOwners ? { ownerTopicPrefix: config.ownerTopicPrefix } : {}),
      kmsKeyArn: config.kmsKeyArn,
      ...(config.opsTopicArn ? { opsTopicArn: config.opsTopicArn } : {}),
    }),
    access: new MemberAccountAccess({
      memberRoleName: config.organization!.settings.memberRoleName,
      partition: partitionOfRegion(REGION),
      memberKeyAlias: config.organization!.memberKeyAlias,
      ...(config.adminRoleArn ? { adminRoleArn: config.adminRoleArn } : {}),
      readerArns: config.readerArns,
      clientConfig: { endpoint: emulatorUrl() },
    }),
    ledger: new DynamoLedger(config.tableName),
    clock: clockAhead,
    ...observability(),
  });
}

function lambdaContext(functionName: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:${MANAGEMENT}:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: `request-${Date.now()}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'itest',
    getRemainingTimeInMillis: () => 900_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Runs `invoke` with the function's output (Powertools logs, EMF metrics) captured and kept quiet. */
async function quietly<T>(invoke: () => Promise<T>): Promise<{ result: T; logs: Record<string, unknown>[] }> {
  const output = captureOutput();
  try {
    const result = await invoke();
    return { result, logs: output.lines() };
  } finally {
    output.restore();
  }
}

function sqsEvent(messages: readonly Message[], sourceArn: string): SQSEvent {
  return {
    Records: messages.map((message): SQSRecord => ({
      messageId: message.MessageId!,
      receiptHandle: message.ReceiptHandle!,
      body: message.Body!,
      attributes: message.Attributes as unknown as SQSRecordAttributes,
      messageAttributes: {},
      md5OfBody: message.MD5OfBody!,
      eventSource: 'aws:sqs',
      eventSourceARN: sourceArn,
      awsRegion: REGION,
    })),
  };
}

/**
 * What Lambda's event source mapping does until the queue is empty: receive up to `batchSize`
 * messages, invoke the function with them, delete those not reported as batch item failures (the
 * failed ones would come back after the visibility timeout: not waited for here, and none expected).
 */
async function drain(
  queueUrl: string,
  sourceArn: string,
  batchSize: number,
  handler: () => (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>,
  functionName: string,
) {
  const batches: { bodies: string[]; failed: string[] }[] = [];
  const logs: Record<string, unknown>[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: batchSize,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) return { batches, logs };
    const invoked = await quietly(() =>
      handler()(sqsEvent(Messages, sourceArn), lambdaContext(functionName)),
    );
    logs.push(...invoked.logs);
    const failed = new Set(invoked.result.batchItemFailures.map((item) => item.itemIdentifier));
    batches.push({
      bodies: Messages.map((message) => message.Body!),
      failed: Messages.filter((message) => failed.has(message.MessageId!)).map((message) => message.Body!),
    });
    for (const message of Messages) {
      if (failed.has(message.MessageId!)) continue;
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Reading the outcome back

interface Notice {
  readonly topicArn: string;
  readonly event: string;
  readonly accountId: string;
  readonly userName: string;
  readonly details: Record<string, unknown>;
}

async function newNotices(): Promise<Notice[]> {
  const notices: Notice[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: noticesQueueUrl, MaxNumberOfMessages: 10 }),
    );
    if (Messages.length === 0) return notices;
    for (const message of Messages) {
      const envelope = JSON.parse(message.Body!) as {
        TopicArn: string;
        Message: string;
        MessageAttributes: Record<string, { Value: string }>;
      };
      notices.push({
        topicArn: envelope.TopicArn,
        event: envelope.MessageAttributes.event!.Value,
        accountId: envelope.MessageAttributes.accountId!.Value,
        userName: envelope.MessageAttributes.userName!.Value,
        details: JSON.parse(envelope.Message) as Record<string, unknown>,
      });
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: noticesQueueUrl, ReceiptHandle: message.ReceiptHandle! }),
      );
    }
  }
}

async function keysIn(accountId: string, userName = USER): Promise<{ id: string; status: string }[]> {
  const { AccessKeyMetadata = [] } = await inAccount
    .get(accountId)!
    .iam.send(new ListAccessKeysCommand({ UserName: userName }));
  return AccessKeyMetadata.map((key) => ({ id: key.AccessKeyId!, status: key.Status! })).sort((a, b) =>
    a.id.localeCompare(b.id),
  );
}

async function secretNamesIn(client: SecretsManagerClient): Promise<string[]> {
  const { SecretList = [] } = await client.send(new ListSecretsCommand({}));
  return SecretList.map((secret) => secret.Name!).sort();
}

async function queueDepth(queueUrl: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible)
  );
}

// ---------------------------------------------------------------------------------------------------

beforeAll(async () => {
  await organizations.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
  rootId = (await organizations.send(new ListRootsCommand({}))).Roots![0]!.Id!;
  ous.workloads = await createOu(rootId, 'workloads');
  ous.team = await createOu(ous.workloads, 'team');
  ous.sandbox = await createOu(rootId, 'sandbox');
  accounts.app = await createAccount('app', ous.workloads);
  accounts.teamOne = await createAccount('team-one', ous.team);
  accounts.teamTwo = await createAccount('team-two', ous.team);
  accounts.legacy = await createAccount('legacy', ous.team);
  accounts.play = await createAccount('play', ous.sandbox);

  ({ KeyMetadata: { Arn: kmsKeyArn = '' } = {} } = await new KMSClient({}).send(
    new CreateKeyCommand({ Description: 'keyrot ledger, topics and queues' }),
  ));
  await createLedgerTable();
  ({ TopicArn: topicArn = '' } = await sns.send(
    new CreateTopicCommand({ Name: 'keyrot-notices', Attributes: { KmsMasterKeyId: kmsKeyArn } }),
  ));
  ({ TopicArn: opsTopicArn = '' } = await sns.send(
    new CreateTopicCommand({ Name: 'keyrot-ops', Attributes: { KmsMasterKeyId: kmsKeyArn } }),
  ));
  await createWorkQueues();
  await createPlanningQueues();
  await tapNotices();
  plannerRoleArn = await createCentralRole('keyrot-planner');
  rotatorRoleArn = await createCentralRole('keyrot-rotator');

  for (const accountId of Object.values(accounts)) {
    const clients = await clientsIn(accountId);
    inAccount.set(accountId, clients);
    // legacy never got the member stack: its member role is missing (the STS stand-in refuses it).
    if (accountId !== accounts.legacy) await deployMemberFootprint(clients, [plannerRoleArn, rotatorRoleArn]);
    seededKey.set(accountId, await seedUser(clients, USER));
  }
  await seedUser(inAccount.get(accounts.play)!, 'sandbox-admin');

  // As the construct sets ORGANIZATION_SETTINGS: the whole organization from the root, the sandbox
  // OU left out, the management account left out by id (a plain member stack would cover it).
  const organization = JSON.stringify(
    resolveOrganizationSettings({
      includeOus: [rootId],
      excludeOus: [ous.sandbox],
      excludeAccounts: [MANAGEMENT],
    }),
  );
  dispatcherConfig = loadDispatcherConfig({
    [ENV.organization]: organization,
    [ENV.planningQueueUrl]: planningQueueUrl,
    [ENV.ledgerTableName]: TABLE,
  });
  plannerConfig = loadPlannerConfig(
    environmentOf('KeyRotationPlanner', {
      [ENV.organization]: organization,
      [ENV.planningQueueUrl]: planningQueueUrl,
    }),
  );
  rotatorConfig = loadRotatorConfig(
    environmentOf('KeyRotationRotator', {
      [ENV.organization]: organization,
      [ENV.memberKeyAlias]: MEMBER_KEY_ALIAS,
    }),
  );
});

describe('where moto does not model AWS (pinned: a moto that starts enforcing shows up here)', () => {
  test('STS AssumeRole into an account outside the organization, or of a role that does not exist, succeeds', async () => {
    // AWS: AccessDenied (no such role, or its trust policy does not let the caller in). This is why
    // the legacy account's refusal is a stand-in (stsRefusing).
    const outsider = '999988887777';
    const { Credentials } = await sts.send(
      new AssumeRoleCommand({
        RoleArn: `arn:aws:iam::${outsider}:role/${MEMBER_ROLE}`,
        RoleSessionName: 'probe',
      }),
    );
    const probe = new STSClient({
      credentials: {
        accessKeyId: Credentials!.AccessKeyId!,
        secretAccessKey: Credentials!.SecretAccessKey!,
        sessionToken: Credentials!.SessionToken!,
      },
    });
    await expect(probe.send(new GetCallerIdentityCommand({}))).resolves.toMatchObject({ Account: outsider });
    probe.destroy();
  });

  test('Secrets Manager creates a secret whose KmsKeyId names an alias the account does not hold', async () => {
    // AWS encrypts the value with the key the alias names in the calling account, so it cannot store
    // it here: the legacy account has no member key. The probe secret is deleted at once.
    const legacy = inAccount.get(accounts.legacy)!;
    await legacy.secrets.send(
      new CreateSecretCommand({ Name: 'probe', KmsKeyId: MEMBER_KEY_ALIAS, SecretString: '{}' }),
    );
    await legacy.secrets.send(
      new DeleteSecretCommand({ SecretId: 'probe', ForceDeleteWithoutRecovery: true }),
    );
    expect(await secretNamesIn(legacy.secrets)).toEqual([]);
  });
});

describe('keyrot plan --org, before the run (it only reads)', () => {
  let code: number;
  let stdout = '';
  let stderr = '';

  beforeAll(async () => {
    // The CLI's main() in this process, with the operator's (the management account's) credentials
    // and AWS_WIRING, but for the member role sessions: its STS client refuses legacy's member role
    // as the planner's does (Wiring.accountAccess is the CLI's seam for this). Run on the real clock:
    // the plan lists every user, due or not.
    code = await main(
      ['plan', '--org', '--ou', ous.workloads, '--table', TABLE],
      {
        stdout: { write: (text: string) => (stdout += text) },
        stderr: { write: (text: string) => (stderr += text) },
        isTTY: false,
      },
      {
        ...AWS_WIRING,
        accountAccess: (_connection, _options, memberRoleName) =>
          new MemberAccountAccess({
            memberRoleName,
            partition: 'aws',
            memberKeyAlias: MEMBER_KEY_ALIAS,
            credentials: plannerMemberCredentials(),
          }),
      },
    );
  });

  test('the ACCOUNT column covers the 3 reachable member accounts under the OU, 2 deep; legacy is named unreachable (exit 2)', () => {
    const [header, ...rows] = stdout.split('\n\n')[0]!.trim().split('\n');
    expect(header!.split(/\s+/).slice(0, 3)).toEqual(['ACCOUNT', 'USER', 'KEY']);
    const listed = rows.map((row) => row.split(/\s+/));
    expect([...new Set(listed.map(([account]) => account))].sort()).toEqual(rotated().sort());
    expect(listed.map((cells) => `${cells[0]}/${cells[1]}/${cells[2]}`).sort()).toEqual(
      rotated()
        .map((accountId) => `${accountId}/${USER}/${seededKey.get(accountId)}`)
        .sort(),
    );
    for (const absent of [accounts.play, MANAGEMENT]) expect(stdout).not.toContain(absent);
    expect(stderr).toContain(accounts.legacy);
    expect(stderr).toMatch(/AccessDenied|not authorized/);
    expect(code).toBe(2);
  });

  test('nothing was written in any account', async () => {
    for (const accountId of Object.values(accounts)) {
      expect(await keysIn(accountId)).toEqual([{ id: seededKey.get(accountId), status: 'Active' }]);
      expect(await secretNamesIn(inAccount.get(accountId)!.secrets)).toEqual([]);
    }
  });
});

describe('a first run across the organization', () => {
  let dispatch: DispatchResult;
  let planning: Awaited<ReturnType<typeof drain>>;
  let work: Awaited<ReturnType<typeof drain>>;
  let notices: Notice[];

  beforeAll(async () => {
    ({ result: dispatch } = await quietly(() => dispatcherHandler()({}, lambdaContext('keyrot-dispatcher'))));
    // Batch size 1, as the construct's event source on the planning queue.
    planning = await drain(planningQueueUrl, planningQueueArn, 1, plannerHandler, 'keyrot-planner');
    work = await drain(workQueueUrl, workQueueArn, rotatorBatchSize, rotatorHandler, 'keyrot-rotator');
    notices = await newNotices();
  });

  test('the dispatcher selects the 4 member accounts 2 OUs deep, never the excluded OU or the management account', () => {
    expect(dispatch.dryRun).toBe(false);
    expect(dispatch.selected.map((account) => account.accountId).sort()).toEqual(
      [...rotated(), accounts.legacy].sort(),
    );
    expect(Object.fromEntries(dispatch.skipped.map((skip) => [skip.accountId, skip.reason]))).toEqual({
      [MANAGEMENT]: 'excluded-account',
      [accounts.play]: 'excluded-ou',
    });
    expect(dispatch.queued).toBe(4);
    // The run id every account's session is named after, SHIFT_DAYS ahead.
    expect(Date.parse(dispatch.plannedAt) - Date.now()).toBeGreaterThan((SHIFT_DAYS - 1) * MS_PER_DAY);
  });

  test('each account was planned from its own message; the work went to the rotator; every queue is empty', async () => {
    const planned = planning.batches.map(
      (batch) => (JSON.parse(batch.bodies[0]!) as { accountId: string; plannedAt: string }).accountId,
    );
    expect(planning.batches.every((batch) => batch.bodies.length === 1)).toBe(true);
    expect(planned.sort()).toEqual([...rotated(), accounts.legacy].sort());
    // legacy's AccessDenied is not retryable: consumed, the next daily run tries again.
    expect(planning.batches.flatMap((batch) => batch.failed)).toEqual([]);
    const messages = work.batches.flatMap((batch) =>
      batch.bodies.map((body) => JSON.parse(body) as Record<string, unknown>),
    );
    expect(
      messages.map((message) => `${message.accountId as string}/${message.userName as string}`).sort(),
    ).toEqual(
      rotated()
        .map((accountId) => `${accountId}/${USER}`)
        .sort(),
    );
    expect(messages.every((message) => message.plannedAt === dispatch.plannedAt)).toBe(true);
    expect(work.batches.flatMap((batch) => batch.failed)).toEqual([]);
    for (const queueUrl of [planningQueueUrl, planningDeadLetterUrl, workQueueUrl, workDeadLetterUrl]) {
      expect(await queueDepth(queueUrl)).toBe(0);
    }
    expect(work.logs.filter((line) => line.message === 'user processed')).toEqual(
      rotated().map((): unknown => expect.objectContaining({ status: 'done', performed: ['rotate'] })),
    );
  });

  test.each(['app', 'teamOne', 'teamTwo'] as const)(
    'in %s the user has a new active key, stored in a secret in that account with its own key',
    async (name) => {
      const accountId = accounts[name];
      const clients = inAccount.get(accountId)!;
      const seeded = seededKey.get(accountId)!;
      const keys = await keysIn(accountId);
      const fresh = keys.find((key) => key.id !== seeded);

      expect(keys).toEqual(
        expect.arrayContaining([
          { id: seeded, status: 'Active' }, // in its grace until the owner moves over
          { id: fresh?.id, status: 'Active' },
        ]),
      );
      expect(keys).toHaveLength(2);
      const secretName = `${rotatorConfig.secretPrefix}/${accountId}/${USER}`;
      expect(await secretNamesIn(clients.secrets)).toEqual([secretName]);
      // Stage named: moto answers a read without one with the version last written (README).
      const { SecretString } = await clients.secrets.send(
        new GetSecretValueCommand({ SecretId: secretName, VersionStage: 'AWSCURRENT' }),
      );
      const stored = JSON.parse(SecretString!) as {
        AccessKeyId: string;
        SecretAccessKey: string;
        UserName: string;
      };
      expect(stored.AccessKeyId).toBe(fresh!.id);
      expect(stored.UserName).toBe(USER);
      expect(await issuedSecretMatches(stored.AccessKeyId, stored.SecretAccessKey)).toBe(true);
      const signed = new STSClient({
        credentials: { accessKeyId: stored.AccessKeyId, secretAccessKey: stored.SecretAccessKey },
      });
      await expect(signed.send(new GetCallerIdentityCommand({}))).resolves.toMatchObject({
        Arn: `arn:aws:iam::${accountId}:user/${USER}`,
      });
      signed.destroy();
      const described = await clients.secrets.send(new DescribeSecretCommand({ SecretId: secretName }));
      expect(described.KmsKeyId).toBe(MEMBER_KEY_ALIAS);
      expect(described.ARN).toContain(`:secretsmanager:${REGION}:${accountId}:secret:`);
    },
  );

  test("no account holds another account's secret, and the central account holds none", async () => {
    for (const accountId of Object.values(accounts)) {
      const names = await secretNamesIn(inAccount.get(accountId)!.secrets);
      expect(names.every((name) => name.includes(`/${accountId}/`))).toBe(true);
    }
    expect(await secretNamesIn(secrets)).toEqual([]);
  });

  test('the excluded account and the account whose role refused are untouched, with no secret', async () => {
    for (const accountId of [accounts.play, accounts.legacy]) {
      expect(await keysIn(accountId)).toEqual([{ id: seededKey.get(accountId), status: 'Active' }]);
      expect(await secretNamesIn(inAccount.get(accountId)!.secrets)).toEqual([]);
    }
    const play = inAccount.get(accounts.play)!;
    const { Users = [] } = await play.iam.send(new ListUsersCommand({}));
    expect(Users.map((user) => user.UserName).sort()).toEqual([USER, 'sandbox-admin']);
    expect(await keysIn(accounts.play, 'sandbox-admin')).toHaveLength(1);
  });

  test('the ledger holds each rotation under its account, and an account run record per account', async () => {
    for (const accountId of rotated()) {
      const fresh = (await keysIn(accountId)).find((key) => key.id !== seededKey.get(accountId))?.id;
      const { Item } = await documents.send(
        new GetCommand({ TableName: TABLE, Key: { pk: accountId, sk: USER }, ConsistentRead: true }),
      );
      expect(Item).toMatchObject({
        pk: accountId,
        sk: USER,
        rotations: [expect.objectContaining({ oldKeyId: seededKey.get(accountId), newKeyId: fresh })],
      });
    }
    for (const accountId of [accounts.play, accounts.legacy, MANAGEMENT]) {
      const { Item } = await documents.send(
        new GetCommand({ TableName: TABLE, Key: { pk: accountId, sk: USER }, ConsistentRead: true }),
      );
      expect(Item).toBeUndefined();
    }

    const runs = await new DynamoLedger(TABLE).listAccountRuns();

    const byAccount = Object.fromEntries(runs.map((run) => [run.accountId, run]));
    for (const accountId of rotated()) {
      expect(byAccount[accountId]).toMatchObject({
        runId: dispatch.plannedAt,
        dryRun: false,
        status: 'planned',
        queued: 1,
        consecutiveFailures: 0,
      });
    }
    expect(byAccount[accounts.legacy]).toMatchObject({
      runId: dispatch.plannedAt,
      dryRun: false,
      status: 'failed',
      retryable: false,
      consecutiveFailures: 1,
      error: { name: 'MemberRoleAccessDeniedError' },
    });
    expect(runs.map((run) => run.accountId).sort()).toEqual([...rotated(), accounts.legacy].sort());
    const { Item } = await documents.send(
      new GetCommand({ TableName: TABLE, Key: { pk: LEDGER_ACCOUNT_PARTITION, sk: accounts.play } }),
    );
    expect(Item).toBeUndefined();
  });

  test('a notice per rotation, naming its account; the unreachable account told to operators', () => {
    const rotatedNotices = notices.filter((notice) => notice.event === 'key.rotated');
    expect(rotatedNotices.map((notice) => `${notice.accountId}/${notice.userName}`).sort()).toEqual(
      rotated()
        .map((accountId) => `${accountId}/${USER}`)
        .sort(),
    );
    expect(rotatedNotices.every((notice) => notice.topicArn === topicArn)).toBe(true);
    const unreachable = notices.filter((notice) => notice.event === 'account.unreachable');
    expect(unreachable.map((notice) => notice.topicArn).sort()).toEqual([topicArn, opsTopicArn].sort());
    expect(unreachable.every((notice) => notice.accountId === accounts.legacy)).toBe(true);
    expect(JSON.stringify(unreachable[0]!.details)).toContain(
      `arn:aws:iam::${accounts.legacy}:role/${MEMBER_ROLE}`,
    );
    expect(
      notices.filter((notice) => !['key.rotated', 'account.unreachable'].includes(notice.event)),
    ).toEqual([]);
  });

  test('the planner counts the failed account, plain and by AccountId', () => {
    const failures = planning.logs.filter((line) => line[METRIC.accountFailures] !== undefined);
    expect(failures).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ [METRIC.accountFailures]: 1, [ACCOUNT_DIMENSION]: accounts.legacy }),
      ]),
    );
    expect(failures.filter((line) => line[ACCOUNT_DIMENSION] === undefined)).toHaveLength(1);
  });

  test("no new key's secret appears in any log line or notice", async () => {
    const printed = JSON.stringify([planning.logs, work.logs, notices]);
    for (const accountId of rotated()) {
      const { SecretString } = await inAccount.get(accountId)!.secrets.send(
        new GetSecretValueCommand({
          SecretId: `${rotatorConfig.secretPrefix}/${accountId}/${USER}`,
          VersionStage: 'AWSCURRENT',
        }),
      );
      const secret = (JSON.parse(SecretString!) as { SecretAccessKey: string }).SecretAccessKey;
      expect(printed.includes(secret)).toBe(false);
    }
  });
});
