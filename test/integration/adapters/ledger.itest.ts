/**
 * DynamoLedger (production code) against the emulator's DynamoDB, on a table created from the
 * synthesized template's AWS::DynamoDB::Table (cdk.out), as the construct creates it.
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { Agent } from 'node:http';
import { DynamoLedger, OWNER_PARTITION } from '../../../lambda/adapters/dynamodb-ledger';
import { SDK_CLIENT_CONFIG } from '../../../lambda/adapters/sdk-config';
import { ConcurrentUpdateError, LockHeldError } from '../../../lambda/domain/errors';
import { emptyLedger, type OwnerNotification, type UserLedger } from '../../../lambda/domain/model';
import { deployedTemplate, resourceOf } from '../deployed';
import { ACCOUNT, createKmsKey, rejectionOf } from './fixtures';

const TABLE = 'IamKeyRotation-KeyRotationLedger';
const dynamodb = new DynamoDBClient({});
const ledger = new DynamoLedger(TABLE);

/**
 * Two writers (two containers, each with its own client) for the races. DynamoDB applies the writes
 * to one item one after the other and checks each condition atomically with its write. moto's
 * threaded server does not: it checks a condition and then writes without a lock, so two writes
 * arriving together both passed their condition in about half the attempts (both took the same
 * lock). The writers therefore share one connection (maxSockets 1), which serialises their writes:
 * the second request goes out only once the first is answered, as DynamoDB would apply them. Both
 * writers start from the same version before either sends, so the tests show that the second write's
 * condition sees the first one's change and fails with ConcurrentUpdateError, not that moto resolves
 * truly simultaneous requests.
 */
const connections: Agent[] = [];
function racingWriters(): [DynamoLedger, DynamoLedger] {
  const oneConnection = new Agent({ keepAlive: true, maxSockets: 1 });
  connections.push(oneConnection);
  const writer = () =>
    new DynamoLedger(
      TABLE,
      new DynamoDBClient({
        ...SDK_CLIENT_CONFIG,
        requestHandler: { ...SDK_CLIENT_CONFIG.requestHandler, httpAgent: oneConnection },
      }),
    );
  return [writer(), writer()];
}

const T0 = new Date('2026-03-01T02:00:00.000Z');
const minutes = (n: number) => new Date(T0.getTime() + n * 60_000);

/**
 * The CreateTable request for the template's table. Properties this does not know fail the test,
 * so that a table the construct changes (an index, a TTL) is not silently tested without it.
 */
function createTableInput(properties: Record<string, unknown>, kmsKeyArn: string): CreateTableCommandInput {
  const known = new Set([
    'KeySchema',
    'AttributeDefinitions',
    'BillingMode',
    'SSESpecification',
    'PointInTimeRecoverySpecification', // a backup setting: no effect on reads and writes
    'GlobalSecondaryIndexes',
  ]);
  const unknown = Object.keys(properties).filter((name) => !known.has(name));
  if (unknown.length > 0)
    throw new Error(`the ledger table has properties this test does not create: ${unknown.join(', ')}`);
  const sse = properties.SSESpecification as { SSEEnabled?: boolean; SSEType?: 'KMS' } | undefined;
  return {
    TableName: TABLE,
    KeySchema: properties.KeySchema as CreateTableCommandInput['KeySchema'],
    AttributeDefinitions: properties.AttributeDefinitions as CreateTableCommandInput['AttributeDefinitions'],
    BillingMode: properties.BillingMode as CreateTableCommandInput['BillingMode'],
    GlobalSecondaryIndexes:
      properties.GlobalSecondaryIndexes as CreateTableCommandInput['GlobalSecondaryIndexes'],
    ...(sse
      ? { SSESpecification: { Enabled: sse.SSEEnabled, SSEType: sse.SSEType, KMSMasterKeyId: kmsKeyArn } }
      : {}),
  };
}

beforeAll(async () => {
  const [, table] = resourceOf(deployedTemplate(), 'AWS::DynamoDB::Table', 'KeyRotationLedger');
  const kmsKeyArn = await createKmsKey('iam-key-rotation ledger');
  await dynamodb.send(new CreateTableCommand(createTableInput(table.Properties ?? {}, kmsKeyArn)));
  const described = await dynamodb.send(new DescribeTableCommand({ TableName: TABLE }));
  expect(described.Table?.KeySchema).toEqual([
    { AttributeName: 'pk', KeyType: 'HASH' },
    { AttributeName: 'sk', KeyType: 'RANGE' },
  ]);
  expect(described.Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
  expect(
    described.Table?.GlobalSecondaryIndexes?.map(({ IndexName, KeySchema, Projection }) => ({
      IndexName,
      KeySchema,
      Projection,
    })),
  ).toEqual([
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
  ]);
});

afterAll(() => {
  dynamodb.destroy();
  for (const connection of connections) connection.destroy();
});

function rotatedNotice(): OwnerNotification {
  return {
    event: 'key.rotated',
    accountId: ACCOUNT,
    userName: 'full',
    owner: 'alice@example.com',
    recipients: ['alice@example.com'],
    subject: 'New access key for full',
    text: 'A new access key was created.',
    details: {},
    dedupeId: 'key.rotated:full',
  };
}

function record(userName: string, overrides: Partial<UserLedger> = {}): UserLedger {
  return { ...emptyLedger(ACCOUNT, userName), ...overrides };
}

async function storedVersion(userName: string): Promise<number | undefined> {
  const item = await dynamodb.send(
    new GetItemCommand({ TableName: TABLE, Key: { pk: { S: ACCOUNT }, sk: { S: userName } } }),
  );
  return item.Item?.version?.N === undefined ? undefined : Number(item.Item.version.N);
}

describe('saves are conditional on the version', () => {
  test('a new record is written once: version 0 creates it, a second creation is refused', async () => {
    await expect(ledger.load(ACCOUNT, 'new-user')).resolves.toBeUndefined();
    const first = record('new-user', {
      history: [{ at: T0.toISOString(), action: 'seen', detail: 'first' }],
    });

    const saved = await ledger.save(first);

    expect(saved.version).toBe(1);
    await expect(ledger.load(ACCOUNT, 'new-user')).resolves.toEqual(saved);
    const error = await rejectionOf(ledger.save(record('new-user')));
    expect(error).toBeInstanceOf(ConcurrentUpdateError);
    expect(error.message).toContain('new-user');
    await expect(ledger.load(ACCOUNT, 'new-user')).resolves.toEqual(saved);
  });

  test('a save from a stale version is refused and the stored record stays', async () => {
    const v1 = await ledger.save(record('stale'));
    const v2 = await ledger.save({ ...v1, notices: { 'tags:missing-owner': T0.toISOString() } });
    expect(v2.version).toBe(2);

    await expect(ledger.save({ ...v1, notices: { lost: 'update' } })).rejects.toBeInstanceOf(
      ConcurrentUpdateError,
    );

    await expect(ledger.load(ACCOUNT, 'stale')).resolves.toEqual(v2);
  });

  test('two writers racing from the same version: exactly one wins, the other is told', async () => {
    const base = await ledger.save(record('raced'));
    const [a, b] = racingWriters();

    const outcomes = await Promise.allSettled([
      a.save({ ...base, warnedKeys: { AKIAWRITERA000000000: 'a' } }),
      b.save({ ...base, warnedKeys: { AKIAWRITERB000000000: 'b' } }),
    ]);

    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const lost = outcomes.filter((outcome) => outcome.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrentUpdateError);
    await expect(ledger.load(ACCOUNT, 'raced')).resolves.toEqual(
      (won[0] as PromiseFulfilledResult<UserLedger>).value,
    );
  });

  test('two writers racing to create the same record: exactly one wins', async () => {
    const [a, b] = racingWriters();

    const outcomes = await Promise.allSettled([
      a.save(record('created-twice', { notices: { by: 'a' } })),
      b.save(record('created-twice', { notices: { by: 'b' } })),
    ]);

    expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
    const winner = outcomes.find(
      (outcome) => outcome.status === 'fulfilled',
    ) as PromiseFulfilledResult<UserLedger>;
    await expect(ledger.load(ACCOUNT, 'created-twice')).resolves.toEqual(winner.value);
  });

  test('a record keeps nested maps, lists and an in-flight rotation as written', async () => {
    const full = record('full', {
      inFlight: {
        oldKeyId: 'AKIAOLD0000000000000',
        keysBefore: ['AKIAOLD0000000000000'],
        phase: 'stored',
        newKeyId: 'AKIANEW0000000000000',
        startedAt: T0.toISOString(),
        reason: 'key age 91 days',
      },
      inactiveSince: { AKIAINACTIVE00000000: T0.toISOString() },
      rotations: [{ oldKeyId: 'AKIAA', newKeyId: 'AKIAB', rotatedAt: T0.toISOString() }],
      history: [{ at: T0.toISOString(), action: 'rotated', keyId: 'AKIAB', detail: '' }],
    });

    const saved = await ledger.save(full);
    await expect(ledger.load(ACCOUNT, 'full')).resolves.toEqual(saved);

    // Finished: fields set to undefined (at the top, in list items, in nested maps) are removed,
    // and null detail values kept, as the services write them.
    const notice = rotatedNotice();
    const finished = await ledger.save({
      ...saved,
      inFlight: undefined,
      history: [
        ...saved.history,
        { at: T0.toISOString(), action: 'finished', keyId: undefined, detail: 'ok' },
      ],
      outbox: [
        { id: 'n1', notification: { ...notice, toOperators: undefined, details: { lastUsed: null } } },
      ],
    });

    const loaded = await ledger.load(ACCOUNT, 'full');
    expect(loaded).toEqual(finished);
    expect(loaded).not.toHaveProperty('inFlight');
    expect(loaded?.history[1]).not.toHaveProperty('keyId');
    expect(loaded?.outbox[0]?.notification.details).toEqual({ lastUsed: null });
  });
});

describe('the lock, taken and released in the same write as the changes', () => {
  const lockOf = (holder: string, until: Date) => ({ lock: { holder, until } });

  test('taken on a new user (creating the record), with the changes of the same write', async () => {
    const taken = await ledger.save(
      record('locked', { warnedKeys: { AKIAWARNED0000000000: T0.toISOString() } }),
      lockOf('run-a', minutes(15)),
    );

    expect(taken).toMatchObject({
      version: 1,
      lock: { holder: 'run-a', until: minutes(15).toISOString() },
      warnedKeys: { AKIAWARNED0000000000: T0.toISOString() },
    });
    await expect(ledger.load(ACCOUNT, 'locked')).resolves.toEqual(taken);
  });

  test('taken by another run since this one loaded: LockHeldError naming the holder and lease, nothing written', async () => {
    const loaded = await ledger.save(record('contested'));
    const theirs = await ledger.save(loaded, lockOf('run-a', minutes(15)));

    const error = await rejectionOf(ledger.save(loaded, lockOf('run-b', minutes(20))));

    expect(error).toBeInstanceOf(LockHeldError);
    // Named from the item DynamoDB returns with the failed condition (ReturnValuesOnConditionCheckFailure).
    expect(error.message).toContain('run-a');
    expect(error.message).toContain(minutes(15).toISOString());
    await expect(ledger.load(ACCOUNT, 'contested')).resolves.toEqual(theirs);
  });

  test('kept by later writes of its holder, and released by the last one', async () => {
    const taken = await ledger.save(record('held'), lockOf('run-a', minutes(15)));
    const kept = await ledger.save({ ...taken, notices: { step: 'one' } });
    expect(kept.lock).toEqual({ holder: 'run-a', until: minutes(15).toISOString() });

    const released = await ledger.save({ ...kept, notices: { step: 'two' } }, { release: 'run-a' });

    const after = await ledger.load(ACCOUNT, 'held');
    expect(after).toEqual(released);
    expect(after?.lock).toBeUndefined();
    expect(after?.version).toBe(taken.version + 2);
  });

  test('released alone by its holder after a failure; another holder releases nothing', async () => {
    const taken = await ledger.save(record('failed'), lockOf('run-a', minutes(15)));

    await ledger.releaseLock(ACCOUNT, 'failed', 'run-b');
    await expect(ledger.load(ACCOUNT, 'failed')).resolves.toEqual(taken);
    await ledger.releaseLock(ACCOUNT, 'failed', 'run-a');

    const after = await ledger.load(ACCOUNT, 'failed');
    expect(after?.lock).toBeUndefined();
    expect(await storedVersion('failed')).toBe(taken.version + 1);
  });

  test('a save from the version before the lock was taken would drop the lock: refused', async () => {
    const existing = await ledger.save(
      record('kept', { warnedKeys: { AKIAWARNED0000000000: T0.toISOString() } }),
    );
    const locked = await ledger.save(existing, lockOf('run-a', minutes(15)));

    await expect(ledger.save(existing)).rejects.toBeInstanceOf(ConcurrentUpdateError);

    await expect(ledger.load(ACCOUNT, 'kept')).resolves.toEqual(locked);
  });

  test('two runs racing from the same version to take the lock: exactly one holds it', async () => {
    const base = await ledger.save(record('raced-lock'));
    const [a, b] = racingWriters();

    const outcomes = await Promise.allSettled([
      a.save(base, lockOf('run-a', minutes(15))),
      b.save(base, lockOf('run-b', minutes(15))),
    ]);

    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const lost = outcomes.filter((outcome) => outcome.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(LockHeldError);
    await expect(ledger.load(ACCOUNT, 'raced-lock')).resolves.toMatchObject({ lock: won[0]!.value.lock });
  });

  test("two runs racing to create a user's record with the lock: exactly one holds it", async () => {
    const [a, b] = racingWriters();

    const outcomes = await Promise.allSettled([
      a.save(record('created-locked'), lockOf('run-a', minutes(15))),
      b.save(record('created-locked'), lockOf('run-b', minutes(15))),
    ]);

    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const lost = outcomes.filter((outcome) => outcome.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(LockHeldError);
    await expect(ledger.load(ACCOUNT, 'created-locked')).resolves.toEqual(won[0]!.value);
  });
});

describe('owner subscriptions and whole accounts', () => {
  test('an owner subscription is found by its address in any case, also by another container', async () => {
    await expect(ledger.findOwnerSubscription('carol@example.com')).resolves.toBeUndefined();
    const topicArn = `arn:aws:sns:eu-west-1:${ACCOUNT}:iam-key-rotation-owner-abc123-carol`;

    await ledger.recordOwnerSubscription({
      owner: 'Carol@Example.com',
      topicArn,
      subscribedAt: T0.toISOString(),
    });

    const elsewhere = new DynamoLedger(TABLE);
    await expect(elsewhere.findOwnerSubscription('CAROL@example.COM')).resolves.toEqual({
      owner: 'carol@example.com',
      topicArn,
      subscribedAt: T0.toISOString(),
    });
    const item = await dynamodb.send(
      new GetItemCommand({
        TableName: TABLE,
        Key: { pk: { S: OWNER_PARTITION }, sk: { S: 'carol@example.com' } },
      }),
    );
    expect(item.Item?.topicArn).toEqual({ S: topicArn });
  });

  test('a confirmation is remembered: another container finds the subscription with when it was confirmed', async () => {
    const topicArn = `arn:aws:sns:eu-west-1:${ACCOUNT}:iam-key-rotation-owner-abc123-erin`;
    await ledger.recordOwnerSubscription({
      owner: 'erin@example.com',
      topicArn,
      subscribedAt: T0.toISOString(),
    });

    // The rotator saw the subscription confirmed (SNS) and records it, to trust it for a while
    // without asking SNS on every notice.
    await ledger.recordOwnerSubscription({
      owner: 'erin@example.com',
      topicArn,
      subscribedAt: T0.toISOString(),
      confirmedAt: minutes(60).toISOString(),
    });

    await expect(new DynamoLedger(TABLE).findOwnerSubscription('erin@example.com')).resolves.toEqual({
      owner: 'erin@example.com',
      topicArn,
      subscribedAt: T0.toISOString(),
      confirmedAt: minutes(60).toISOString(),
    });
  });

  test('loadAccount returns every record of the account over several pages, and nothing else', async () => {
    const OTHER_ACCOUNT = '210987654321';
    // ~150 KB per record: nine of them pass DynamoDB's 1 MB page, so the query needs a second page.
    const bulk = 'x'.repeat(150_000);
    const names = Array.from({ length: 9 }, (_, index) => `paged-${index}`);
    for (const userName of names) {
      await ledger.save(
        record(`${userName}`, { history: [{ at: T0.toISOString(), action: 'bulk', detail: bulk }] }),
      );
    }
    await ledger.save({ ...emptyLedger(OTHER_ACCOUNT, 'elsewhere') });
    await ledger.recordOwnerSubscription({
      owner: 'dave@example.com',
      topicArn: `arn:aws:sns:eu-west-1:${ACCOUNT}:t`,
      subscribedAt: T0.toISOString(),
    });
    // The data set does span pages: the first page of the same query stops short.
    const firstPage = await dynamodb.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: ACCOUNT } },
      }),
    );
    expect(firstPage.LastEvaluatedKey).toBeDefined();

    const records = await ledger.loadAccount(ACCOUNT);

    const paged = records.filter((candidate) => candidate.userName.startsWith('paged-'));
    expect(paged.map((candidate) => candidate.userName).sort()).toEqual(names);
    expect(paged.every((candidate) => candidate.history[0]?.detail === bulk)).toBe(true);
    expect(records.every((candidate) => candidate.accountId === ACCOUNT)).toBe(true);
    expect(records.map((candidate) => candidate.userName)).not.toContain('dave@example.com');
    // Every record this file wrote for the account, from all the tests above, is there once.
    expect(new Set(records.map((candidate) => candidate.userName)).size).toBe(records.length);
    await expect(ledger.loadAccount(OTHER_ACCOUNT)).resolves.toEqual([
      { ...emptyLedger(OTHER_ACCOUNT, 'elsewhere'), version: 1 },
    ]);
  });

  test('screenAccount reads the screening index: every record of the account over several pages, the screening fields only, nothing else', async () => {
    const THIRD_ACCOUNT = '333333333333';
    // ~150 KB of projected fields per record (a long review, for the test's sake): nine of them pass
    // the 1 MB page of the index too, so the query needs a second page. Long histories besides, which
    // the index does not hold. (moto returns only the projected attributes, as DynamoDB does, and
    // refuses ConsistentRead on the index as DynamoDB does, but pages an index query by the size of
    // the table's items rather than of the index's: hence projected fields this large, so that the
    // test pages in DynamoDB too.)
    const bulk = 'k'.repeat(150_000);
    const names = Array.from({ length: 9 }, (_, index) => `screened-${index}`);
    const review = {
      keys: bulk,
      due: minutes(60 * 24).toISOString(),
      seenAt: T0.toISOString(),
      settings: 's',
    };
    for (const userName of names) {
      await ledger.save(
        record(userName, {
          review,
          inactiveSince: { AKIAOLDKEY000000009: T0.toISOString() },
          warnedKeys: { AKIAOLDKEY000000009: T0.toISOString() },
          history: [{ at: T0.toISOString(), action: 'bulk', detail: 'h'.repeat(100_000) }],
        }),
      );
    }
    const unfinished = record('screened-unfinished', {
      inFlight: {
        oldKeyId: 'AKIAOLDKEY000000008',
        keysBefore: ['AKIAOLDKEY000000008'],
        phase: 'intent',
        startedAt: T0.toISOString(),
        reason: 'key is 90 days old',
      },
      outbox: [{ id: 'n-1', notification: rotatedNotice() }],
      lock: { holder: 'run-1', until: minutes(15).toISOString() },
    });
    await ledger.save(unfinished);
    await ledger.save({ ...emptyLedger(THIRD_ACCOUNT, 'elsewhere'), notices: { mark: T0.toISOString() } });
    const firstPage = await dynamodb.send(
      new QueryCommand({
        TableName: TABLE,
        IndexName: 'screening',
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: ACCOUNT } },
      }),
    );
    expect(firstPage.LastEvaluatedKey).toBeDefined();

    const screened = await ledger.screenAccount(ACCOUNT);
    const whole = await ledger.loadAccount(ACCOUNT);

    // The same users as the table holds for the account, each once, no owner subscription.
    expect(screened.map((candidate) => candidate.userName).sort()).toEqual(
      whole.map((candidate) => candidate.userName).sort(),
    );
    expect(new Set(screened.map((candidate) => candidate.userName)).size).toBe(screened.length);
    expect(screened.every((candidate) => candidate.accountId === ACCOUNT)).toBe(true);
    for (const userName of names) {
      expect(screened.find((candidate) => candidate.userName === userName)).toEqual({
        ...emptyLedger(ACCOUNT, userName),
        review,
        inactiveSince: { AKIAOLDKEY000000009: T0.toISOString() },
      });
    }
    expect(screened.find((candidate) => candidate.userName === 'screened-unfinished')).toEqual({
      ...emptyLedger(ACCOUNT, 'screened-unfinished'),
      inFlight: unfinished.inFlight,
      outbox: unfinished.outbox,
    });
    await expect(ledger.screenAccount(THIRD_ACCOUNT)).resolves.toEqual([
      emptyLedger(THIRD_ACCOUNT, 'elsewhere'),
    ]);
  });
});
