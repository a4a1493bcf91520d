import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  QueryCommandOutput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoLedger, OWNER_PARTITION } from '../../../lambda/adapters/dynamodb-ledger';
import {
  AccessDeniedError,
  ConcurrentUpdateError,
  LockHeldError,
  ThrottledError,
  TransientServiceError,
} from '../../../lambda/domain/errors';
import { emptyLedger, UserLedger } from '../../../lambda/domain/model';
import { rejectionOf, sdkError, timeoutError } from './sdk-errors';

// The adapter wraps its DynamoDBClient in a DynamoDBDocumentClient; the document client is what sends.
const documents = mockClient(DynamoDBDocumentClient);

const TABLE = 'iam-key-rotation-ledger';
const ACCOUNT = '123456789012';
const NOW = new Date('2026-01-01T02:00:00.000Z');
const UNTIL = new Date('2026-01-01T02:15:00.000Z');

function ledger(): DynamoLedger {
  return new DynamoLedger(
    TABLE,
    new DynamoDBClient({
      region: 'eu-west-1',
      maxAttempts: 1,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    }),
  );
}

function conditionFailed(item?: ConditionalCheckFailedException['Item']): ConditionalCheckFailedException {
  return new ConditionalCheckFailedException({
    message: 'The conditional request failed',
    $metadata: {},
    Item: item,
  });
}

/** The record's fields as stored: the item carries pk/sk instead of accountId/userName. */
function withoutIdentity(record: UserLedger): Record<string, unknown> {
  const attributes: Record<string, unknown> = { ...record };
  delete attributes.accountId;
  delete attributes.userName;
  return attributes;
}

beforeEach(() => documents.reset());
afterAll(() => documents.restore());

describe('load', () => {
  test('reads the item by account and user, consistently, filling fields older items lack', async () => {
    documents.on(GetCommand).resolves({
      Item: {
        pk: ACCOUNT,
        sk: 'alice',
        version: 3,
        warnedKeys: { AKIAOLDKEY000000001: '2025-12-25T02:00:00.000Z' },
      },
    });

    const record = await ledger().load(ACCOUNT, 'alice');

    expect(documents.commandCalls(GetCommand).map((c) => c.args[0].input)).toEqual([
      { TableName: TABLE, Key: { pk: ACCOUNT, sk: 'alice' }, ConsistentRead: true },
    ]);
    expect(record).toEqual({
      ...emptyLedger(ACCOUNT, 'alice'),
      version: 3,
      warnedKeys: { AKIAOLDKEY000000001: '2025-12-25T02:00:00.000Z' },
    });
  });

  test('no item is undefined', async () => {
    documents.on(GetCommand).resolves({});

    await expect(ledger().load(ACCOUNT, 'alice')).resolves.toBeUndefined();
  });

  test('throttling is ThrottledError, not "no record"', async () => {
    documents.on(GetCommand).rejects(sdkError('ProvisionedThroughputExceededException', { fault: 'client' }));

    await expect(ledger().load(ACCOUNT, 'alice')).rejects.toThrow(ThrottledError);
  });
});

describe('loadAccount', () => {
  test('queries the account partition consistently and collects every page', async () => {
    const pages: Record<string, Partial<QueryCommandOutput>> = {
      first: {
        Items: [
          { pk: ACCOUNT, sk: 'alice', version: 1 },
          { pk: ACCOUNT, sk: 'bob', version: 2 },
        ],
        LastEvaluatedKey: { pk: ACCOUNT, sk: 'bob' },
      },
      bob: {
        Items: [{ pk: ACCOUNT, sk: 'carol', version: 5 }],
        LastEvaluatedKey: { pk: ACCOUNT, sk: 'carol' },
      },
      carol: { Items: [{ pk: ACCOUNT, sk: 'dave', version: 1 }] },
    };
    // The paginator reuses one input object, so record each request when it is sent.
    const requests: Record<string, unknown>[] = [];
    documents
      .on(QueryCommand)
      .callsFake((input: Record<string, unknown> & { ExclusiveStartKey?: { sk: string } }) => {
        requests.push({ ...input });
        return pages[input.ExclusiveStartKey?.sk ?? 'first'];
      });

    const records = await ledger().loadAccount(ACCOUNT);

    expect(records.map((r) => [r.userName, r.version])).toEqual([
      ['alice', 1],
      ['bob', 2],
      ['carol', 5],
      ['dave', 1],
    ]);
    expect(records[0]).toEqual({ ...emptyLedger(ACCOUNT, 'alice'), version: 1 });
    const base = {
      TableName: TABLE,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': ACCOUNT },
      ConsistentRead: true,
    };
    expect(requests).toEqual([
      { ...base, ExclusiveStartKey: undefined },
      { ...base, ExclusiveStartKey: { pk: ACCOUNT, sk: 'bob' } },
      { ...base, ExclusiveStartKey: { pk: ACCOUNT, sk: 'carol' } },
    ]);
  });

  test('a failure on a later page rejects instead of returning part of the account', async () => {
    documents
      .on(QueryCommand)
      .resolvesOnce({
        Items: [{ pk: ACCOUNT, sk: 'alice', version: 1 }],
        LastEvaluatedKey: { pk: ACCOUNT, sk: 'alice' },
      })
      .rejectsOnce(timeoutError());

    await expect(ledger().loadAccount(ACCOUNT)).rejects.toThrow(TransientServiceError);
  });
});

describe('acquireLock', () => {
  test('takes the lock when free, expired or already ours, and returns the record as stored', async () => {
    documents.on(UpdateCommand).resolves({
      Attributes: {
        pk: ACCOUNT,
        sk: 'alice',
        version: 4,
        lock: { holder: 'run-1', until: UNTIL.toISOString() },
      },
    });

    const record = await ledger().acquireLock(ACCOUNT, 'alice', 'run-1', NOW, UNTIL);

    expect(documents.commandCalls(UpdateCommand).map((c) => c.args[0].input)).toEqual([
      {
        TableName: TABLE,
        Key: { pk: ACCOUNT, sk: 'alice' },
        UpdateExpression: 'SET #lock = :lock, #version = if_not_exists(#version, :zero) + :one',
        ConditionExpression: 'attribute_not_exists(#lock) OR #lock.#holder = :holder OR #lock.#until < :now',
        ExpressionAttributeNames: {
          '#lock': 'lock',
          '#version': 'version',
          '#holder': 'holder',
          '#until': 'until',
        },
        ExpressionAttributeValues: {
          ':lock': { holder: 'run-1', until: '2026-01-01T02:15:00.000Z' },
          ':holder': 'run-1',
          ':now': '2026-01-01T02:00:00.000Z',
          ':zero': 0,
          ':one': 1,
        },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    ]);
    expect(record).toEqual({
      ...emptyLedger(ACCOUNT, 'alice'),
      version: 4,
      lock: { holder: 'run-1', until: '2026-01-01T02:15:00.000Z' },
    });
  });

  test('a failed condition is LockHeldError naming the holder and lease from the stored item', async () => {
    // Errors are not unmarshalled by the document client: the item is in AttributeValue form.
    documents.on(UpdateCommand).rejects(
      conditionFailed({
        pk: { S: ACCOUNT },
        sk: { S: 'alice' },
        version: { N: '7' },
        lock: { M: { holder: { S: 'run-0' }, until: { S: '2026-01-01T02:10:00.000Z' } } },
      }),
    );

    const error = await rejectionOf(() => ledger().acquireLock(ACCOUNT, 'alice', 'run-1', NOW, UNTIL));

    expect(error).toBeInstanceOf(LockHeldError);
    expect((error as LockHeldError).retryable).toBe(true);
    expect((error as Error).message).toBe(
      'user alice is being worked on by run-0 until 2026-01-01T02:10:00.000Z',
    );
  });

  test('a failed condition without the old item is still LockHeldError', async () => {
    documents.on(UpdateCommand).rejects(conditionFailed());

    const error = await rejectionOf(() => ledger().acquireLock(ACCOUNT, 'alice', 'run-1', NOW, UNTIL));

    expect(error).toBeInstanceOf(LockHeldError);
    expect((error as Error).message).toBe(
      'user alice is being worked on by another run until its lease ends',
    );
  });

  test.each([
    [
      'throttling',
      () => sdkError('ProvisionedThroughputExceededException', { fault: 'client' }),
      ThrottledError,
    ],
    ['access denied', () => sdkError('AccessDeniedException', { fault: 'client' }), AccessDeniedError],
    ['a timeout', timeoutError, TransientServiceError],
  ] as const)('%s is mapped, not taken for a held lock', async (_name, make, expected) => {
    documents.on(UpdateCommand).rejects(make());

    const error = await rejectionOf(() => ledger().acquireLock(ACCOUNT, 'alice', 'run-1', NOW, UNTIL));

    expect(error).toBeInstanceOf(expected);
    expect(error).not.toBeInstanceOf(LockHeldError);
  });
});

describe('save', () => {
  const record: UserLedger = {
    ...emptyLedger(ACCOUNT, 'alice'),
    version: 4,
    lock: { holder: 'run-1', until: UNTIL.toISOString() },
    warnedKeys: { AKIAOLDKEY000000001: '2025-12-25T02:00:00.000Z' },
  };

  test('writes the record with version + 1 on condition that the stored version is unchanged', async () => {
    documents.on(PutCommand).resolves({});

    const saved = await ledger().save(record);

    const attributes = withoutIdentity(record);
    expect(documents.commandCalls(PutCommand).map((c) => c.args[0].input)).toEqual([
      {
        TableName: TABLE,
        Item: { pk: ACCOUNT, sk: 'alice', ...attributes, version: 5 },
        ConditionExpression: '#version = :expected',
        ExpressionAttributeNames: { '#version': 'version' },
        ExpressionAttributeValues: { ':expected': 4 },
      },
    ]);
    expect(saved).toEqual({ ...record, version: 5 });
  });

  test('a record never stored (version 0) is written only if no item exists', async () => {
    documents.on(PutCommand).resolves({});

    const saved = await ledger().save(emptyLedger(ACCOUNT, 'bob'));

    const attributes = withoutIdentity(emptyLedger(ACCOUNT, 'bob'));
    // Strict: no ExpressionAttributeNames/Values at all, and the item keeps pk/sk, not accountId/userName.
    expect(documents.commandCalls(PutCommand).map((c) => c.args[0].input)).toStrictEqual([
      {
        TableName: TABLE,
        Item: { pk: ACCOUNT, sk: 'bob', ...attributes, version: 1 },
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    ]);
    expect(saved).toEqual({ ...emptyLedger(ACCOUNT, 'bob'), version: 1 });
  });

  test('a failed condition is ConcurrentUpdateError', async () => {
    documents.on(PutCommand).rejects(conditionFailed());

    const error = await rejectionOf(() => ledger().save(record));

    expect(error).toBeInstanceOf(ConcurrentUpdateError);
    expect((error as ConcurrentUpdateError).retryable).toBe(true);
    expect((error as Error).message).toBe('ledger record of alice changed since version 4');
  });

  test('throttling is ThrottledError, not a concurrent update', async () => {
    documents.on(PutCommand).rejects(sdkError('ThrottlingException', { fault: 'client' }));

    const error = await rejectionOf(() => ledger().save(record));

    expect(error).toBeInstanceOf(ThrottledError);
    expect((error as Error).message.startsWith('dynamodb:PutItem: ')).toBe(true);
  });
});

describe('releaseLock', () => {
  test('removes the lock on condition that we still hold it', async () => {
    documents.on(UpdateCommand).resolves({});

    await ledger().releaseLock(ACCOUNT, 'alice', 'run-1');

    expect(documents.commandCalls(UpdateCommand).map((c) => c.args[0].input)).toEqual([
      {
        TableName: TABLE,
        Key: { pk: ACCOUNT, sk: 'alice' },
        UpdateExpression: 'REMOVE #lock SET #version = #version + :one',
        ConditionExpression: '#lock.#holder = :holder',
        ExpressionAttributeNames: { '#lock': 'lock', '#version': 'version', '#holder': 'holder' },
        ExpressionAttributeValues: { ':holder': 'run-1', ':one': 1 },
      },
    ]);
  });

  test('a lock that is no longer ours (failed condition) is left alone without an error', async () => {
    documents.on(UpdateCommand).rejects(conditionFailed());

    await expect(ledger().releaseLock(ACCOUNT, 'alice', 'run-1')).resolves.toBeUndefined();
  });

  test('other failures are not swallowed', async () => {
    documents.on(UpdateCommand).rejects(sdkError('InternalServerError', { fault: 'server', status: 500 }));

    await expect(ledger().releaseLock(ACCOUNT, 'alice', 'run-1')).rejects.toThrow(TransientServiceError);
  });
});

describe('owner subscriptions', () => {
  const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:iam-key-rotation-owner-a_at_example-com-0011';

  test('are read from their own partition, so an account query never returns them', async () => {
    documents.on(GetCommand).resolves({
      Item: {
        pk: OWNER_PARTITION,
        sk: 'a@example.com',
        topicArn: TOPIC_ARN,
        subscribedAt: NOW.toISOString(),
      },
    });

    const found = await ledger().findOwnerSubscription('A@Example.com');

    expect(found).toEqual({ owner: 'a@example.com', topicArn: TOPIC_ARN, subscribedAt: NOW.toISOString() });
    expect(documents.commandCalls(GetCommand)[0]?.args[0].input.Key).toEqual({
      pk: OWNER_PARTITION,
      sk: 'a@example.com',
    });
    expect(OWNER_PARTITION).not.toMatch(/^\d{12}$/);
  });

  test('an unknown owner is undefined, and asked again next time', async () => {
    documents.on(GetCommand).resolves({});
    const subject = ledger();

    expect(await subject.findOwnerSubscription('b@example.com')).toBeUndefined();
    expect(await subject.findOwnerSubscription('b@example.com')).toBeUndefined();
    expect(documents.commandCalls(GetCommand)).toHaveLength(2);
  });

  test('a recorded subscription is written once and then known without a call', async () => {
    documents.on(PutCommand).resolves({});
    const subject = ledger();

    await subject.recordOwnerSubscription({
      owner: 'C@example.com',
      topicArn: TOPIC_ARN,
      subscribedAt: NOW.toISOString(),
    });
    const found = await subject.findOwnerSubscription('c@example.com');

    expect(documents.commandCalls(PutCommand)[0]?.args[0].input).toEqual({
      TableName: TABLE,
      Item: {
        pk: OWNER_PARTITION,
        sk: 'c@example.com',
        topicArn: TOPIC_ARN,
        subscribedAt: NOW.toISOString(),
      },
    });
    expect(found?.topicArn).toBe(TOPIC_ARN);
    expect(documents.commandCalls(GetCommand)).toHaveLength(0);
  });

  test('when it was confirmed is written, and read back by another container', async () => {
    documents.on(PutCommand).resolves({});
    const confirmed = {
      owner: 'd@example.com',
      topicArn: TOPIC_ARN,
      subscribedAt: NOW.toISOString(),
      confirmedAt: UNTIL.toISOString(),
    };

    await ledger().recordOwnerSubscription(confirmed);
    const written = documents.commandCalls(PutCommand)[0]?.args[0].input.Item;
    documents.on(GetCommand).resolves({ Item: written });

    expect(written).toMatchObject({ confirmedAt: UNTIL.toISOString() });
    await expect(ledger().findOwnerSubscription('d@example.com')).resolves.toEqual(confirmed);
  });
});
