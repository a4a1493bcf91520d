/**
 * The deployed code: the planner and rotator bundles of cdk.out (not the TypeScript sources), loaded
 * with the environment the template gives them, against resources created in the emulator from the
 * template, invoked with the events AWS sends them (the schedule's input; SQS batches received from
 * the real FIFO work queue, acknowledged as the event source mapping does), on a seeded account that
 * mixes every kind of user. A first run rotates exactly the due users; a second run the same day
 * changes nothing.
 *
 * Key ages: see "Ages and time" in test/integration/README.md (seeded keys are backdated by a relay
 * in front of moto's IAM endpoint; the service runs on the real clock).
 */
import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  GetAccessKeyLastUsedCommand,
  IAMClient,
  ListAccessKeysCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import {
  DescribeSecretCommand,
  GetResourcePolicyCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  ListTopicsCommand,
  paginateListSubscriptions,
  paginateListTopics,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { emulatorUrl, issuedSecretMatches } from './emulator';
import { deployedFunction, deployedTemplate, type CfnTemplate } from './deployed';
import { EmulatorRelay } from './deployed-relay';
import {
  BatchDelivery,
  coldStart,
  daysLater,
  drainQueue,
  FunctionLogs,
  lambdaContext,
} from './deployed-lambda';
import { ACCOUNT_ID, DeployedStack, provisionStack } from './deployed-stack';

interface Settings {
  readonly rotateAfterDays: number;
  readonly warnDays: number;
  readonly graceDays: number;
  readonly maxKeyAgeDays: number;
  readonly deleteAfterDays: number;
  readonly exemptionTag: string;
  readonly ownerTag: string;
}

/** What a first run must do to a seeded user. */
type Expectation =
  | 'rotate' // a new key, stored, verified, announced; the old key still active (its grace)
  | 'warn' // a key.expiring notice only
  | 'conflict' // a keys.conflict notice only
  | 'track' // the inactive key's deletion clock started in the ledger: nothing visible
  | 'untouched'; // not even queued

interface SeedKey {
  /** Age in days when the run starts. */
  readonly days: number;
  readonly inactive?: boolean;
}

interface SeedUser {
  readonly name: string;
  readonly path?: string;
  readonly tags?: Record<string, string>;
  readonly keys: readonly SeedKey[];
  readonly expect: Expectation;
  /** A tag problem the default recipients are told of (tags.invalid). */
  readonly badTags?: boolean;
  /** Its workload still signs with the old key after the rotation. */
  readonly stillInUse?: boolean;
  /**
   * What a run `graceDays` later does, when not the default (a rotated user's old key deactivated,
   * nothing for the others).
   */
  readonly later?: LaterExpectation;
}

type LaterExpectation = 'deactivate' | 'postpone' | 'enforce' | 'rotate' | 'none';

interface Notice {
  readonly event: string;
  readonly userName: string;
  /** The `owner` message attribute: the addresses the notice is for. */
  readonly owners: readonly string[];
  readonly subject: string;
  /** The JSON form (the `sqs` entry of the message structure). */
  readonly details: Record<string, unknown>;
  /** The SQS body as delivered, for the search for secrets. */
  readonly raw: string;
}

interface UserState {
  readonly keys: readonly { readonly id: string; readonly status: string }[];
  /** Version id → staging labels of the user's secret; undefined when there is none. */
  readonly secretVersions?: Readonly<Record<string, readonly string[]>>;
}

const template: CfnTemplate = deployedTemplate();
const planner = deployedFunction(template, 'KeyRotationPlanner');
const rotator = deployedFunction(template, 'KeyRotationRotator');
const settings = JSON.parse(String(planner.environment.ROTATION_SETTINGS)) as Settings;
const SECRET_PREFIX = String(rotator.environment.SECRET_PREFIX);

const DAY = 86_400_000;
const isoDay = (offsetDays: number) => new Date(Date.now() + offsetDays * DAY).toISOString().slice(0, 10);

// Ages derived from the deployed settings, far enough below each threshold they must stay under that
// a run crossing midnight UTC (every key a day older) expects the same; the first test checks it.
const due = settings.rotateAfterDays + 5;
const warning = settings.rotateAfterDays - settings.warnDays + Math.floor(settings.warnDays / 2);
const young = (offset: number) => settings.rotateAfterDays - settings.warnDays - 2 - offset;
const overdue = settings.maxKeyAgeDays + 5;
const owner = (...addresses: string[]) => ({ [settings.ownerTag]: addresses.join(' ') });
const exempt = (value: string) => ({ [settings.exemptionTag]: value });

const SEED: readonly SeedUser[] = [
  // Due: rotated, whoever owns them.
  { name: 'due-owned-1', tags: owner('alice@example.com'), keys: [{ days: due }], expect: 'rotate' },
  { name: 'due-owned-2', tags: owner('alice@example.com'), keys: [{ days: due + 1 }], expect: 'rotate' },
  { name: 'due-owned-3', tags: owner('bob@example.com'), keys: [{ days: due - 2 }], expect: 'rotate' },
  {
    name: 'due-two-owners',
    tags: owner('carol@example.com', 'Dave@Example.com'),
    keys: [{ days: due }],
    expect: 'rotate',
  },
  { name: 'due-tagless-1', keys: [{ days: due }], expect: 'rotate' },
  { name: 'due-tagless-2', keys: [{ days: due + 3 }], expect: 'rotate' },
  // Its workload keeps using the old key: deactivation is postponed until the key reaches maxKeyAgeDays.
  {
    name: 'due-still-in-use',
    keys: [{ days: settings.rotateAfterDays + 1 }],
    expect: 'rotate',
    stillInUse: true,
    later: 'postpone',
  },
  {
    name: 'due-in-path',
    path: '/service/',
    tags: owner('grace@example.com'),
    keys: [{ days: due }],
    expect: 'rotate',
  },
  {
    name: 'due-bad-owner-tag',
    tags: owner('not-an-address'),
    keys: [{ days: due }],
    expect: 'rotate',
    badTags: true,
  },
  {
    name: 'due-exemption-expired',
    tags: exempt(`legacy batch job until=${isoDay(-30)}`),
    keys: [{ days: due }],
    expect: 'rotate',
  },
  // Only two keys fit: the inactive one is deleted to make room for the replacement.
  { name: 'due-with-inactive', keys: [{ days: due }, { days: 40, inactive: true }], expect: 'rotate' },
  // Overdue: rotated now, the grace still applies to the old key; one still in use after the grace is
  // deactivated at the hard limit.
  {
    name: 'overdue-1',
    tags: owner('erin@example.com'),
    keys: [{ days: overdue }],
    expect: 'rotate',
    stillInUse: true,
    later: 'enforce',
  },
  { name: 'overdue-2', keys: [{ days: overdue + 40 }], expect: 'rotate' },
  { name: 'overdue-3', tags: owner('frank@example.com'), keys: [{ days: 400 }], expect: 'rotate' },
  // Warned days before the rotation, rotated on their day.
  {
    name: 'warn-1',
    tags: owner('alice@example.com'),
    keys: [{ days: warning }],
    expect: 'warn',
    later: 'rotate',
  },
  { name: 'warn-2', keys: [{ days: warning }], expect: 'warn', later: 'rotate' },
  {
    name: 'warn-3',
    tags: owner('heidi@example.com'),
    keys: [{ days: warning }],
    expect: 'warn',
    later: 'rotate',
  },
  // Young.
  { name: 'young-0', keys: [{ days: 0 }], expect: 'untouched' },
  // Young now; due (and never warned: the warning days fall between the runs) a grace later.
  {
    name: 'young-1',
    tags: owner('alice@example.com'),
    keys: [{ days: young(0) }],
    expect: 'untouched',
    later: 'rotate',
  },
  { name: 'young-2', keys: [{ days: young(20) }], expect: 'untouched' },
  { name: 'young-3', keys: [{ days: young(40) }], expect: 'untouched' },
  { name: 'young-4', tags: owner('ivan@example.com'), keys: [{ days: 10 }], expect: 'untouched' },
  // Exempt: never modified, whatever their keys.
  {
    name: 'exempt-due',
    tags: exempt('vendor appliance cannot rotate'),
    keys: [{ days: due }],
    expect: 'untouched',
  },
  { name: 'exempt-overdue', tags: exempt('break glass'), keys: [{ days: 200 }], expect: 'untouched' },
  {
    name: 'exempt-until-later',
    tags: { ...exempt(`migration until=${isoDay(60)}`), ...owner('judy@example.com') },
    keys: [{ days: overdue }],
    expect: 'untouched',
  },
  {
    name: 'exempt-two-keys',
    tags: exempt('vendor appliance'),
    keys: [{ days: overdue }, { days: 10 }],
    expect: 'untouched',
  },
  // Two active keys the service did not create: reported, never changed.
  {
    name: 'conflict-1',
    tags: owner('ivan@example.com'),
    keys: [{ days: overdue + 10 }, { days: 20 }],
    expect: 'conflict',
  },
  { name: 'conflict-2', keys: [{ days: due }, { days: due }], expect: 'conflict' },
  // Inactive keys: the deletion clock starts now (IAM does not say when a key became inactive).
  { name: 'inactive-only', keys: [{ days: 30, inactive: true }], expect: 'track' },
  { name: 'inactive-old-only', keys: [{ days: 300, inactive: true }], expect: 'track' },
  { name: 'young-with-inactive', keys: [{ days: 20 }, { days: 50, inactive: true }], expect: 'track' },
  { name: 'no-keys', keys: [], expect: 'untouched' },
];

const seedOf = (name: string) => SEED.find((user) => user.name === name)!;
const laterOf = (user: SeedUser): LaterExpectation =>
  user.later ?? (user.expect === 'rotate' ? 'deactivate' : 'none');
const expecting = (kind: Expectation) => SEED.filter((user) => user.expect === kind).map((user) => user.name);
/**
 * Exempt users whose keys are old enough to act on: the credential report cannot show the exemption
 * tag, and nothing may be written about an exempt user (I7), so the scheduled planner queues them
 * and the rotator, reading them live, does nothing.
 */
const EXEMPT_AGING = ['exempt-due', 'exempt-overdue', 'exempt-until-later', 'exempt-two-keys'];
const ownersOf = (user: SeedUser): string[] => {
  const tag = user.tags?.[settings.ownerTag];
  return tag && !user.badTags ? tag.split(' ').map((address) => address.toLowerCase()) : [];
};
const userArn = (user: SeedUser) => `arn:aws:iam::${ACCOUNT_ID}:user${user.path ?? '/'}${user.name}`;
const secretName = (userName: string) => `${SECRET_PREFIX}/${ACCOUNT_ID}/${userName}`;

/** What a failure may print of a secret access key: only its shape. */
const redacted = (secret: unknown) =>
  typeof secret === 'string' && /^[A-Za-z0-9/+]{40}$/.test(secret) ? '<40 characters>' : `<not a secret key>`;

// Straight to moto (not through the functions' relay): what the test arranges and reads back.
const direct = { endpoint: emulatorUrl() };
const iam = new IAMClient(direct);
const secrets = new SecretsManagerClient(direct);
const sqs = new SQSClient(direct);
const sns = new SNSClient(direct);
const documents = DynamoDBDocumentClient.from(new DynamoDBClient(direct));

let relay: EmulatorRelay;
/** The seeded keys' secrets, for the workloads that keep using an old key. */
const seededSecrets = new Map<string, string>();
let stack: DeployedStack;
let workQueue: { url: string; arn: string };
let deadLetterQueueUrl: string;
let noticeQueueUrl: string;
let opsQueueUrl: string;
const savedEnv = { ...process.env };

/** One daily run as AWS would drive it: the schedule invokes the planner, SQS feeds the rotator. */
interface RunResult {
  readonly plan: {
    readonly usersScanned: number;
    readonly keysScanned: number;
    readonly overdueKeys: number;
    readonly queued: number;
    readonly actions: Record<string, number>;
    readonly source: string;
  };
  readonly deliveries: readonly BatchDelivery[];
  readonly logs: FunctionLogs;
  readonly notices: readonly Notice[];
  readonly opsNotices: readonly Notice[];
}

/** The schedule's target input, as EventBridge Scheduler sends it to the planner. */
function scheduleInput(): unknown {
  const schedule = Object.values(template.Resources).find((r) => r.Type === 'AWS::Scheduler::Schedule')!;
  return JSON.parse((schedule.Properties!.Target as { Input: string }).Input) as unknown;
}

/**
 * A cold start of a deployed function, with its environment from the template. Every call goes to
 * moto through the relay that backdates the seeded keys (deployed-relay.ts): AWS_ENDPOINT_URL, and any
 * value that names moto's origin (the work queue's URL, which moto builds from its own host), so that
 * the SQS client, which sends to a queue URL's host, does not go around the relay.
 */
function coldStartOf<E, R>(prefix: 'KeyRotationPlanner' | 'KeyRotationRotator', bundleDir: string) {
  const fn = stack.byPrefix('AWS::Lambda::Function', prefix);
  const moto = new URL(emulatorUrl()).origin;
  const environment = Object.fromEntries(
    Object.entries(stack.environmentOf(fn.logicalId)).map(([name, value]) => [
      name,
      value.split(moto).join(relay.url),
    ]),
  );
  return coldStart<E, R>(template, fn.logicalId, bundleDir, fn.ref, {
    ...environment,
    AWS_ENDPOINT_URL: relay.url,
  });
}

async function dailyRun(input: unknown = scheduleInput()): Promise<RunResult> {
  const logs = new FunctionLogs();
  // Cold starts, as on a new day: each function's module state is fresh.
  const plannerFn = coldStartOf<unknown, RunResult['plan']>('KeyRotationPlanner', planner.bundleDir);
  const rotatorFn = coldStartOf<SQSEvent, SQSBatchResponse>('KeyRotationRotator', rotator.bundleDir);
  const plan = await logs.capture(() => plannerFn.handler(input, lambdaContext(plannerFn)));
  // The event source mapping, with the template's batch size.
  const mapping = Object.values(template.Resources).find(
    (r) => r.Type === 'AWS::Lambda::EventSourceMapping',
  )!;
  const batchSize = Number(mapping.Properties!.BatchSize);
  expect(mapping.Properties!.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
  const deliveries = await logs.capture(() =>
    drainQueue(sqs, workQueue, batchSize, (event) => rotatorFn.handler(event, lambdaContext(rotatorFn))),
  );
  return {
    plan,
    deliveries,
    logs,
    notices: await receiveAll(noticeQueueUrl),
    opsNotices: await receiveAll(opsQueueUrl),
  };
}

/** Every message in a capture queue (SNS envelopes), deleted as read. */
async function receiveAll(queueUrl: string): Promise<Notice[]> {
  const notices: Notice[] = [];
  for (;;) {
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return notices;
    for (const message of messages) {
      const envelope = JSON.parse(message.Body!) as {
        Subject: string;
        Message: string;
        MessageAttributes: Record<string, { Type: string; Value: string }>;
      };
      const attribute = (name: string) => envelope.MessageAttributes[name]?.Value ?? '';
      notices.push({
        event: attribute('event'),
        userName: attribute('userName'),
        owners: JSON.parse(attribute('owner') || '[]') as string[],
        subject: envelope.Subject,
        details: JSON.parse(envelope.Message) as Record<string, unknown>,
        raw: message.Body!,
      });
    }
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.map((message, index) => ({
          Id: String(index),
          ReceiptHandle: message.ReceiptHandle!,
        })),
      }),
    );
  }
}

/** Keys and secret versions of every seeded user, read from moto directly. */
async function accountState(): Promise<Map<string, UserState>> {
  const state = new Map<string, UserState>();
  for (const user of SEED) {
    const listed = await iam.send(new ListAccessKeysCommand({ UserName: user.name }));
    const keys = (listed.AccessKeyMetadata ?? [])
      .map((key) => ({ id: key.AccessKeyId!, status: key.Status! }))
      .sort((a, b) => a.id.localeCompare(b.id));
    let secretVersions: Record<string, string[]> | undefined;
    try {
      const described = await secrets.send(new DescribeSecretCommand({ SecretId: secretName(user.name) }));
      secretVersions = described.VersionIdsToStages ?? {};
    } catch (error) {
      if ((error as Error).name !== 'ResourceNotFoundException') throw error;
    }
    state.set(user.name, { keys, ...(secretVersions ? { secretVersions } : {}) });
  }
  return state;
}

/**
 * What a run may change besides keys and secrets: the ledger's items (less the version counters and
 * locks, which a run that changes nothing else may still move) and the topics and subscriptions the
 * service made for owners. Read from moto directly.
 */
async function serviceState(): Promise<{ ledger: unknown[]; topics: string[]; subscriptions: string[] }> {
  const ledger: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({
        TableName: stack.byPrefix('AWS::DynamoDB::Table', 'KeyRotationLedger').ref,
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    ledger.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  const items = ledger
    .map((item) => {
      const rest = { ...item };
      delete rest.version;
      delete rest.lock;
      return rest;
    })
    .sort((a, b) => `${String(a.pk)}/${String(a.sk)}`.localeCompare(`${String(b.pk)}/${String(b.sk)}`));
  const topics: string[] = [];
  for await (const page of paginateListTopics({ client: sns }, {})) {
    topics.push(...(page.Topics ?? []).map((topic) => topic.TopicArn!));
  }
  const subscriptions: string[] = [];
  for await (const page of paginateListSubscriptions({ client: sns }, {})) {
    subscriptions.push(
      ...(page.Subscriptions ?? []).map(
        (subscription) =>
          `${subscription.TopicArn} ${subscription.Protocol} ${subscription.Endpoint} ${subscription.SubscriptionArn}`,
      ),
    );
  }
  return { ledger: items, topics: topics.sort(), subscriptions: subscriptions.sort() };
}

async function queueDepth(queueUrl: string): Promise<number> {
  const read = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(read.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(read.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

/**
 * A queue that receives a topic's notices with their message attributes (SNS's JSON envelope). Relies
 * on a moto gap: it delivers SNS to SQS without a queue policy; AWS delivers only if the queue's
 * policy grants sqs:SendMessage to sns.amazonaws.com for the topic (README, "Where moto differs").
 */
async function captureQueue(name: string, topicArn: string): Promise<string> {
  const created = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const attributes = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: created.QueueUrl!, AttributeNames: ['QueueArn'] }),
  );
  await sns.send(
    new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: attributes.Attributes!.QueueArn! }),
  );
  return created.QueueUrl!;
}

async function seedAccount(): Promise<void> {
  for (const user of SEED) {
    await iam.send(
      new CreateUserCommand({
        UserName: user.name,
        Path: user.path ?? '/',
        Tags: Object.entries(user.tags ?? {}).map(([Key, Value]) => ({ Key, Value })),
      }),
    );
    for (const key of user.keys) {
      const created = await iam.send(new CreateAccessKeyCommand({ UserName: user.name }));
      const keyId = created.AccessKey!.AccessKeyId!;
      if (key.inactive) {
        await iam.send(
          new UpdateAccessKeyCommand({ UserName: user.name, AccessKeyId: keyId, Status: 'Inactive' }),
        );
      }
      if (key.days > 0) relay.backdate(user.name, keyId, key.days);
      seededSecrets.set(keyId, created.AccessKey!.SecretAccessKey!);
    }
  }
}

beforeAll(async () => {
  relay = await EmulatorRelay.start(emulatorUrl());
  stack = await provisionStack(template);
  const queue = stack.byPrefix('AWS::SQS::Queue', 'KeyRotationWorkQueue');
  workQueue = { url: queue.ref, arn: queue.attributes.Arn! };
  deadLetterQueueUrl = stack.byPrefix('AWS::SQS::Queue', 'KeyRotationDeadLetterQueue').ref;
  noticeQueueUrl = await captureQueue(
    'captured-notices',
    stack.byPrefix('AWS::SNS::Topic', 'KeyRotationNotificationTopic').ref,
  );
  opsQueueUrl = await captureQueue(
    'captured-ops',
    stack.byPrefix('AWS::SNS::Topic', 'KeyRotationOpsTopic').ref,
  );
  await seedAccount();
});

afterAll(async () => {
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
  await relay?.stop();
  for (const client of [iam, secrets, sqs, sns, documents]) client.destroy();
});

/** What the dry run said it would do. */
let dryPlan: Record<string, number> | undefined;
let before: Map<string, UserState>;
let first: RunResult;
let afterFirst: Map<string, UserState>;

describe('the deployed stack on a seeded account', () => {
  test('the account mixes every kind of user the service meets', () => {
    expect(SEED.length).toBeGreaterThanOrEqual(30);
    for (const kind of ['rotate', 'warn', 'conflict', 'track', 'untouched'] as const) {
      expect(expecting(kind).length).toBeGreaterThan(0);
    }
    // The ages sit between the deployed thresholds they stand for.
    expect(due).toBeLessThan(settings.maxKeyAgeDays - 1);
    expect(warning).toBeGreaterThanOrEqual(settings.rotateAfterDays - settings.warnDays + 1);
    expect(warning).toBeLessThan(settings.rotateAfterDays - 1);
    // ... and those a grace later (a day more if a run crosses midnight UTC).
    const later = (days: number) => days + settings.graceDays;
    expect(later(young(0))).toBeGreaterThanOrEqual(settings.rotateAfterDays + 1);
    expect(later(young(20)) + 1).toBeLessThan(settings.rotateAfterDays - settings.warnDays);
    expect(later(warning)).toBeGreaterThanOrEqual(settings.rotateAfterDays + 1);
    expect(later(settings.rotateAfterDays + 1) + 1).toBeLessThan(settings.maxKeyAgeDays);
    expect(settings.graceDays + 1).toBeLessThan(settings.deleteAfterDays);
  });

  test('a dry run by hand (the README\'s {"dryRun": true}) plans what the first run will do and changes nothing', async () => {
    const untouched = await accountState();
    const serviceBefore = await serviceState();

    const dry = await dailyRun({ dryRun: true });

    expect(await accountState()).toEqual(untouched);
    expect(await serviceState()).toEqual(serviceBefore);
    expect(dry.notices).toEqual([]);
    expect(dry.opsNotices).toEqual([]);
    expect(dry.plan.queued).toBe(SEED.filter((user) => user.expect !== 'untouched').length);
    dryPlan = dry.plan.actions;
    const processed = dry.logs.entries().filter((entry) => entry.message === 'user processed');
    expect(processed).toHaveLength(dry.plan.queued);
    for (const entry of processed) expect(entry).toMatchObject({ dryRun: true, performed: [] });
    expect(await queueDepth(workQueue.url)).toBe(0);
  });

  test('a first run rotates exactly the due users: each new key stored, verified and announced', async () => {
    before = await accountState();
    first = await dailyRun();
    afterFirst = await accountState();

    // The relay was on the planner's and rotator's path to IAM, and to SQS (the planner's batches go
    // to the queue URL's host: the relay's, not moto's).
    expect(relay.rewritten).toEqual(expect.arrayContaining(['GetCredentialReport', 'ListAccessKeys']));
    expect([...relay.actions]).toContain('SendMessageBatch');

    // The planner read the credential report and the ledger, and queued every user with work (and
    // the exempt users with aging keys, whose tags the report does not show), reading nobody live.
    const seededKeys = SEED.flatMap((user) => user.keys);
    const withWork = SEED.filter((user) => user.expect !== 'untouched').map((user) => user.name);
    expect(first.plan).toMatchObject({
      source: 'credential-report',
      usersScanned: SEED.length,
      keysScanned: seededKeys.length,
      overdueKeys: seededKeys.filter((key) => !key.inactive && key.days >= settings.maxKeyAgeDays).length,
      queued: withWork.length + EXEMPT_AGING.length,
    });
    expect(relay.actions.has('GetUser')).toBe(true); // the rotator's live reads (the planner makes none)
    const delivered = first.deliveries.flatMap((delivery) =>
      delivery.event.Records.map((record) => (JSON.parse(record.body) as { userName: string }).userName),
    );
    expect(delivered.sort()).toEqual([...withWork, ...EXEMPT_AGING].sort());
    // The dry run reported exactly what this run did: the rotator, deciding again from live state,
    // carried out the actions the dry run announced, and nothing for the exempt users.
    const AUDITED_AS: Record<string, string> = {
      'key.rotated': 'rotate',
      'key.warned': 'warn',
      'keys.conflict': 'conflict',
      'key.tracked': 'track-inactive',
      'key.deleted': 'make-room', // the only deletion of a first run: room for a replacement
    };
    const performed: Record<string, number> = {};
    for (const entry of first.logs.entries()) {
      const audited = entry.audit as { action?: string; userName?: string } | undefined;
      const kind = AUDITED_AS[audited?.action ?? ''];
      if (!kind) continue;
      expect(EXEMPT_AGING).not.toContain(audited?.userName);
      performed[kind] = (performed[kind] ?? 0) + 1;
    }
    expect(dryPlan).toEqual(performed);
    // Lambda's batches: at most BatchSize records, each with its FIFO group; none failed.
    for (const delivery of first.deliveries) {
      expect(delivery.event.Records.length).toBeLessThanOrEqual(5);
      for (const record of delivery.event.Records) {
        const userName = (JSON.parse(record.body) as { userName: string }).userName;
        expect(record.attributes.MessageGroupId).toBe(`${ACCOUNT_ID}/${userName}`);
        expect(record.attributes.ApproximateReceiveCount).toBe('1');
      }
      expect(delivery.response.batchItemFailures).toEqual([]);
    }
    expect(await queueDepth(workQueue.url)).toBe(0);
    expect(await queueDepth(deadLetterQueueUrl)).toBe(0);

    const noticesOf = (userName: string) => first.notices.filter((notice) => notice.userName === userName);
    for (const user of SEED) {
      const old = before.get(user.name)!;
      const now = afterFirst.get(user.name)!;
      if (user.expect !== 'rotate') {
        // Nothing else changes: same keys, same statuses, no secret.
        expect({ user: user.name, ...now }).toEqual({ user: user.name, ...old });
        expect({ user: user.name, secret: now.secretVersions }).toEqual({
          user: user.name,
          secret: undefined,
        });
        const expectedEvents = {
          warn: ['key.expiring'],
          conflict: ['keys.conflict'],
          track: [],
          untouched: [],
        }[user.expect];
        expect({ user: user.name, events: noticesOf(user.name).map((n) => n.event) }).toEqual({
          user: user.name,
          events: expectedEvents,
        });
        continue;
      }
      const seed = seedOf(user.name);
      const oldActive = old.keys.filter((key) => key.status === 'Active').map((key) => key.id);
      const oldInactive = old.keys.filter((key) => key.status === 'Inactive').map((key) => key.id);
      const added = now.keys.filter((key) => !old.keys.some((o) => o.id === key.id));
      expect({ user: user.name, added: added.length }).toEqual({ user: user.name, added: 1 });
      const newKeyId = added[0]!.id;
      // The old key stays active through its grace; an inactive key made room.
      expect(
        now.keys
          .filter((key) => key.status === 'Active')
          .map((key) => key.id)
          .sort(),
      ).toEqual([...oldActive, newKeyId].sort());
      for (const id of oldInactive) expect(now.keys.some((key) => key.id === id)).toBe(false);

      // Stored: the secret's AWSCURRENT is the new key, nothing left pending. Read with an explicit
      // VersionStage: moto answers GetSecretValue without VersionId/VersionStage with the version last
      // written as current (the placeholder), not the one UpdateSecretVersionStage made AWSCURRENT;
      // AWS returns AWSCURRENT (see README, "Where moto differs from AWS").
      const versions = now.secretVersions!;
      const current = Object.entries(versions).filter(([, stages]) => stages.includes('AWSCURRENT'));
      expect(current).toHaveLength(1);
      expect(Object.values(versions).some((stages) => stages.includes('AWSPENDING'))).toBe(false);
      const value = await secrets.send(
        new GetSecretValueCommand({ SecretId: secretName(user.name), VersionStage: 'AWSCURRENT' }),
      );
      const stored = JSON.parse(value.SecretString!) as Record<string, string>;
      // Compared without the secret, so that a failure never prints it.
      expect({ ...stored, SecretAccessKey: redacted(stored.SecretAccessKey) }).toEqual({
        AccessKeyId: newKeyId,
        SecretAccessKey: '<40 characters>',
        UserName: user.name,
        CreateDate: expect.any(String) as string,
      });
      expect(value.VersionId).toBe(current[0]![0]);
      const described = await secrets.send(new DescribeSecretCommand({ SecretId: secretName(user.name) }));
      expect(described.KmsKeyId).toBe(
        stack.byPrefix('AWS::KMS::Key', 'KeyRotationEncryptionKey').attributes.Arn,
      );
      const policy = JSON.parse(
        (await secrets.send(new GetResourcePolicyCommand({ SecretId: secretName(user.name) })))
          .ResourcePolicy!,
      ) as { Statement: { Sid: string; Principal: { AWS: string | string[] } }[] };
      const readers = policy.Statement.find((statement) => statement.Sid === 'KeyOwnerReadsOwnKey')!;
      expect([readers.Principal.AWS].flat()).toContain(userArn(seed));

      // Verified: the service signed a request with the new key (moto records its last use). What is
      // stored is the secret IAM issued for it, read from moto's state: its STS checks no signature,
      // so the STS call below proves the stored key id signs as the user, not the secret (README,
      // "Where moto differs from AWS").
      expect({
        user: user.name,
        issued: await issuedSecretMatches(newKeyId, String(stored.SecretAccessKey)),
      }).toEqual({ user: user.name, issued: true });
      const lastUsed = await iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: newKeyId }));
      expect(lastUsed.AccessKeyLastUsed?.LastUsedDate).toBeInstanceOf(Date);
      const sts = new STSClient({
        endpoint: emulatorUrl(), // straight to moto, not through the functions' relay
        credentials: { accessKeyId: stored.AccessKeyId!, secretAccessKey: stored.SecretAccessKey! },
      });
      try {
        const identity = await sts.send(new GetCallerIdentityCommand({}));
        expect(identity.Arn).toBe(userArn(seed));
        expect(identity.Account).toBe(ACCOUNT_ID);
      } finally {
        sts.destroy();
      }

      // Announced: one key.rotated notice naming the old and new key, for the owners (whose own
      // topics are not confirmed yet, so the default recipients get their copy) or the default.
      const events = noticesOf(user.name).map((notice) => notice.event);
      const expectedEvents = [
        ...(seed.badTags ? ['tags.invalid'] : []),
        ...(oldInactive.length > 0 ? ['key.deleted'] : []),
        'key.rotated',
      ];
      expect({ user: user.name, events: events.sort() }).toEqual({
        user: user.name,
        events: expectedEvents.sort(),
      });
      const rotated = noticesOf(user.name).find((notice) => notice.event === 'key.rotated')!;
      expect(rotated.details).toMatchObject({ oldKeyId: oldActive[0], newKeyId, userName: user.name });
      expect(rotated.owners).toEqual([...ownersOf(seed), 'default']);
    }

    // Owners were subscribed on topics of their own when their key was rotated or about to be.
    const topics = await sns.send(new ListTopicsCommand({}));
    const prefix = String(rotator.environment.OWNER_TOPIC_PREFIX);
    const ownerTopics = (topics.Topics ?? []).filter((topic) =>
      topic.TopicArn!.split(':')[5]!.startsWith(prefix),
    );
    const notifiedOwners = new Set(
      SEED.filter((user) => user.expect === 'rotate' || user.expect === 'warn').flatMap(ownersOf),
    );
    expect(ownerTopics).toHaveLength(notifiedOwners.size);
    expect(first.opsNotices).toEqual([]);

    // No secret material anywhere: not in logs, notices or work messages.
    const secretValues = await Promise.all(
      expecting('rotate').map(async (name) => {
        const value = await secrets.send(
          new GetSecretValueCommand({ SecretId: secretName(name), VersionStage: 'AWSCURRENT' }),
        );
        return (JSON.parse(value.SecretString!) as { SecretAccessKey: string }).SecretAccessKey;
      }),
    );
    const outputs = [
      ...first.logs.lines,
      ...first.notices.map((notice) => notice.raw),
      ...first.deliveries.flatMap((delivery) => delivery.event.Records.map((record) => record.body)),
    ];
    expect(outputs.length).toBeGreaterThan(0);
    // Counted, not listed: a failure must not print the secret it found.
    const leaks = secretValues.filter((secret) => outputs.some((line) => line.includes(secret))).length;
    expect({ secrets: secretValues.length, leaked: leaks }).toEqual({
      secrets: secretValues.length,
      leaked: 0,
    });
    // The audit trail names every rotation.
    const rotatedAudits = first.logs
      .entries()
      .filter((entry) => (entry.audit as { action?: string } | undefined)?.action === 'key.rotated');
    expect(rotatedAudits.map((entry) => (entry.audit as { userName: string }).userName).sort()).toEqual(
      expecting('rotate').sort(),
    );
  });

  test('a second run the same day changes nothing', async () => {
    expect(afterFirst).toBeDefined(); // the first run's test ran
    const secretsBefore = await secrets.send(new ListSecretsCommand({}));
    const serviceBefore = await serviceState();
    const reportsServedBefore = relay.reportsServedAgain;

    const second = await dailyRun();

    // As on AWS within four hours, the planner read the same credential report as the first run
    // (without the new keys), and confirmed live state user by user.
    expect(relay.reportsServedAgain).toBeGreaterThan(reportsServedBefore);
    expect(second.plan).toMatchObject({
      source: 'credential-report',
      usersScanned: first.plan.usersScanned,
      keysScanned: first.plan.keysScanned,
    });

    expect(await accountState()).toEqual(afterFirst);
    expect(await serviceState()).toEqual(serviceBefore);
    const secretsAfter = await secrets.send(new ListSecretsCommand({}));
    expect(secretsAfter.SecretList?.length).toBe(secretsBefore.SecretList?.length);
    expect(second.notices).toEqual([]);
    expect(second.opsNotices).toEqual([]);
    // The planner queues only the exempt users with aging keys (see EXEMPT_AGING): every other user
    // has a review in the ledger, recorded by the rotator after the live read of the first run, and
    // this report, reused from before that read, cannot show anything newer. The rotator does nothing.
    expect(second.plan.queued).toBe(EXEMPT_AGING.length);
    const processed = second.logs.entries().filter((entry) => entry.message === 'user processed');
    expect(processed).toHaveLength(second.plan.queued);
    for (const entry of processed) expect(entry.performed).toEqual([]);
    for (const delivery of second.deliveries) expect(delivery.response.batchItemFailures).toEqual([]);
    expect(await queueDepth(workQueue.url)).toBe(0);
    expect(await queueDepth(deadLetterQueueUrl)).toBe(0);
  });
  test('a grace later: unused old keys deactivated, used ones postponed or enforced, newly due keys rotated', async () => {
    expect(afterFirst).toBeDefined(); // the first run's test ran
    // Workloads that still sign with their old key after the rotation (moto records the use).
    for (const user of SEED.filter((seed) => seed.stillInUse)) {
      const oldKeyId = before.get(user.name)!.keys[0]!.id;
      const sts = new STSClient({
        endpoint: emulatorUrl(),
        credentials: { accessKeyId: oldKeyId, secretAccessKey: seededSecrets.get(oldKeyId)! },
      });
      try {
        expect((await sts.send(new GetCallerIdentityCommand({}))).Arn).toBe(userArn(user));
      } finally {
        sts.destroy();
      }
    }
    const beforeLater = await accountState();

    // graceDays later: the functions' Date moves ahead, so the keys made by the first run (stamped by
    // moto with the real date) are as old as on AWS. Keys this run makes are stamped with the real
    // date too, a grace too early: only their existence, storage and notice are checked here.
    const later = await daysLater(settings.graceDays, () => dailyRun());

    const afterLater = await accountState();
    for (const delivery of later.deliveries) expect(delivery.response.batchItemFailures).toEqual([]);
    expect(await queueDepth(workQueue.url)).toBe(0);
    expect(later.opsNotices).toEqual([]);
    const noticeEvent: Record<LaterExpectation, string[]> = {
      deactivate: ['key.deactivated'],
      postpone: ['key.deactivation-postponed'],
      enforce: ['key.enforced'],
      rotate: ['key.rotated'],
      none: [],
    };
    for (const user of SEED) {
      const expected = laterOf(user);
      const events = later.notices.filter((notice) => notice.userName === user.name).map((n) => n.event);
      expect({ user: user.name, events }).toEqual({ user: user.name, events: noticeEvent[expected] });
      const was = beforeLater.get(user.name)!;
      const is = afterLater.get(user.name)!;
      const status = (state: UserState) => Object.fromEntries(state.keys.map((key) => [key.id, key.status]));
      if (expected === 'none' || expected === 'postpone') {
        expect({ user: user.name, ...is }).toEqual({ user: user.name, ...was });
        continue;
      }
      if (expected === 'rotate') {
        const added = is.keys.filter((key) => !was.keys.some((old) => old.id === key.id));
        expect({ user: user.name, added: added.map((key) => key.status) }).toEqual({
          user: user.name,
          added: ['Active'],
        });
        const current = Object.entries(is.secretVersions ?? {}).find(([, stages]) =>
          stages.includes('AWSCURRENT'),
        );
        expect(current?.[0]).toContain(added[0]!.id);
        continue;
      }
      // Deactivated (unused since the rotation, or at the hard limit): the old key, not the new one.
      const oldKeyId = before.get(user.name)!.keys.find((key) => key.status === 'Active')!.id;
      expect({ user: user.name, keys: status(is) }).toEqual({
        user: user.name,
        keys: { ...status(was), [oldKeyId]: 'Inactive' },
      });
      expect(is.secretVersions).toEqual(was.secretVersions);
    }
  });
});
