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
  KeyRotationError,
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

describe('screenAccount', () => {
  const review = {
    keys: '2025-10-01T00:00:00Z:A',
    due: '2026-01-06T00:00:00.000Z',
    seenAt: '2026-01-01T02:00:00.000Z',
    settings: 'digest',
  };
  const inFlight = {
    holder: 'run-1',
    oldKeyId: 'AKIAOLDKEY000000001',
    newKeyId: 'AKIANEWKEY000000001',
    phase: 'intent',
    startedAt: '2026-01-01T02:00:00.000Z',
  };

  test('queries the screening index of the account partition, eventually consistent, following every page (an empty one too)', async () => {
    const pages: Record<string, Partial<QueryCommandOutput>> = {
      first: {
        Items: [
          {
            pk: ACCOUNT,
            sk: 'alice',
            review,
            inactiveSince: { AKIAOLDKEY000000002: '2025-12-30T02:00:00.000Z' },
          },
        ],
        LastEvaluatedKey: { pk: ACCOUNT, sk: 'alice' },
      },
      // A page can come back empty and still not be the last.
      alice: { Items: [], LastEvaluatedKey: { pk: ACCOUNT, sk: 'bob' } },
      bob: { Items: [{ pk: ACCOUNT, sk: 'carol', inFlight, outbox: [] }] },
    };
    const requests: Record<string, unknown>[] = [];
    documents
      .on(QueryCommand)
      .callsFake((input: Record<string, unknown> & { ExclusiveStartKey?: { sk: string } }) => {
        requests.push({ ...input });
        return pages[input.ExclusiveStartKey?.sk ?? 'first'];
      });

    const records = await ledger().screenAccount(ACCOUNT);

    const base = {
      TableName: TABLE,
      IndexName: 'screening',
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': ACCOUNT },
      ConsistentRead: false,
    };
    expect(requests).toEqual([
      { ...base, ExclusiveStartKey: undefined },
      { ...base, ExclusiveStartKey: { pk: ACCOUNT, sk: 'alice' } },
      { ...base, ExclusiveStartKey: { pk: ACCOUNT, sk: 'bob' } },
    ]);
    expect(records).toEqual([
      {
        ...emptyLedger(ACCOUNT, 'alice'),
        review,
        inactiveSince: { AKIAOLDKEY000000002: '2025-12-30T02:00:00.000Z' },
      },
      { ...emptyLedger(ACCOUNT, 'carol'), inFlight },
    ]);
  });

  test('a record has the screening fields only, whatever else an item carries: every other field empty, version 0', async () => {
    documents.on(QueryCommand).resolves({
      Items: [
        {
          pk: ACCOUNT,
          sk: 'alice',
          version: 7,
          review,
          lock: { holder: 'run-1', until: '2026-01-01T02:15:00.000Z' },
          history: [{ at: '2025-12-01T02:00:00.000Z', event: 'key.rotated' }],
          warnedKeys: { AKIAOLDKEY000000001: '2025-12-25T02:00:00.000Z' },
          outbox: [{ id: 'n-1' }],
        },
      ],
    });

    const [record] = await ledger().screenAccount(ACCOUNT);

    expect(record).toEqual({ ...emptyLedger(ACCOUNT, 'alice'), review, outbox: [{ id: 'n-1' }] });
  });

  test('a failure on a later page rejects instead of returning part of the account', async () => {
    documents
      .on(QueryCommand)
      .resolvesOnce({ Items: [{ pk: ACCOUNT, sk: 'alice' }], LastEvaluatedKey: { pk: ACCOUNT, sk: 'alice' } })
      .rejectsOnce(sdkError('ProvisionedThroughputExceededException', { fault: 'client' }));

    await expect(ledger().screenAccount(ACCOUNT)).rejects.toThrow(ThrottledError);
  });

  test('an index the table does not have yet (a redeploy still creating it) is a failure, not an empty account', async () => {
    documents.on(QueryCommand).rejects(
      sdkError('ValidationException', {
        message: 'The table does not have the specified index: screening',
      }),
    );

    const error = await rejectionOf(() => ledger().screenAccount(ACCOUNT));

    expect(error).toBeInstanceOf(KeyRotationError);
    expect((error as Error).message).toBe(
      'dynamodb:Query: ValidationException: The table does not have the specified index: screening',
    );
    expect(documents.commandCalls(QueryCommand)).toHaveLength(1);
  });
});

describe('save taking or releasing the lock (one write with the changes)', () => {
  const record: UserLedger = {
    ...emptyLedger(ACCOUNT, 'alice'),
    version: 4,
    warnedKeys: { AKIAOLDKEY000000001: '2025-12-25T02:00:00.000Z' },
  };

  test('taking it: the lock is part of the item, on the same version condition, and a conflict returns the old item', async () => {
    documents.on(PutCommand).resolves({});

    const saved = await ledger().save(record, { lock: { holder: 'run-1', until: UNTIL } });

    const lock = { holder: 'run-1', until: '2026-01-01T02:15:00.000Z' };
    expect(documents.commandCalls(PutCommand).map((c) => c.args[0].input)).toEqual([
      {
        TableName: TABLE,
        Item: { pk: ACCOUNT, sk: 'alice', ...withoutIdentity(record), lock, version: 5 },
        ConditionExpression: '#version = :expected',
        ExpressionAttributeNames: { '#version': 'version' },
        ExpressionAttributeValues: { ':expected': 4 },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      },
    ]);
    expect(documents.commandCalls(UpdateCommand)).toHaveLength(0);
    expect(saved).toEqual({ ...record, lock, version: 5 });
  });

  test('taking it on a user without a record: created with the lock, only if still absent', async () => {
    documents.on(PutCommand).resolves({});

    const saved = await ledger().save(emptyLedger(ACCOUNT, 'bob'), {
      lock: { holder: 'run-1', until: UNTIL },
    });

    expect(documents.commandCalls(PutCommand)[0]?.args[0].input).toMatchObject({
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: { pk: ACCOUNT, sk: 'bob', version: 1, lock: { holder: 'run-1' } },
    });
    expect(saved.lock).toEqual({ holder: 'run-1', until: UNTIL.toISOString() });
  });

  test('releasing it: the item is written without the lock', async () => {
    documents.on(PutCommand).resolves({});
    const locked = { ...record, lock: { holder: 'run-1', until: UNTIL.toISOString() } };

    const saved = await ledger().save(locked, { release: 'run-1' });

    // Undefined here; the marshaller drops it (dynamodb-ledger.wire.test.ts).
    const item = documents.commandCalls(PutCommand)[0]?.args[0].input.Item;
    expect(item?.lock).toBeUndefined();
    expect(item).toMatchObject({ version: 5 });
    expect(saved.lock).toBeUndefined();
  });

  test("releasing another holder's lock leaves it in the item", async () => {
    documents.on(PutCommand).resolves({});
    const lockedByOther = { ...record, lock: { holder: 'run-0', until: UNTIL.toISOString() } };

    const saved = await ledger().save(lockedByOther, { release: 'run-1' });

    expect(documents.commandCalls(PutCommand)[0]?.args[0].input.Item).toMatchObject({
      lock: lockedByOther.lock,
    });
    expect(saved.lock).toEqual(lockedByOther.lock);
  });

  test('taken meanwhile by another run: LockHeldError naming the holder and lease from the stored item', async () => {
    // Errors are not unmarshalled by the document client: the item is in AttributeValue form.
    documents.on(PutCommand).rejects(
      conditionFailed({
        pk: { S: ACCOUNT },
        sk: { S: 'alice' },
        version: { N: '5' },
        lock: { M: { holder: { S: 'run-0' }, until: { S: '2026-01-01T02:10:00.000Z' } } },
      }),
    );

    const error = await rejectionOf(() => ledger().save(record, { lock: { holder: 'run-1', until: UNTIL } }));

    expect(error).toBeInstanceOf(LockHeldError);
    expect((error as LockHeldError).retryable).toBe(true);
    expect((error as Error).message).toBe(
      'user alice is being worked on by run-0 until 2026-01-01T02:10:00.000Z',
    );
  });

  test('changed meanwhile without a lock (or with our own): ConcurrentUpdateError', async () => {
    documents
      .on(PutCommand)
      .rejectsOnce(conditionFailed({ pk: { S: ACCOUNT }, sk: { S: 'alice' }, version: { N: '5' } }))
      .rejectsOnce(
        conditionFailed({
          pk: { S: ACCOUNT },
          sk: { S: 'alice' },
          version: { N: '5' },
          lock: { M: { holder: { S: 'run-1' }, until: { S: '2026-01-01T02:10:00.000Z' } } },
        }),
      )
      .rejectsOnce(conditionFailed());
    const take = () => ledger().save(record, { lock: { holder: 'run-1', until: UNTIL } });

    const errors = [await rejectionOf(take), await rejectionOf(take), await rejectionOf(take)];

    for (const error of errors) {
      expect(error).toBeInstanceOf(ConcurrentUpdateError);
      expect(error).not.toBeInstanceOf(LockHeldError);
    }
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
    documents.on(PutCommand).rejects(make());

    const error = await rejectionOf(() => ledger().save(record, { lock: { holder: 'run-1', until: UNTIL } }));

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

  test('writes the record with version + 1 on condition that the stored version is unchanged (its lock as it is)', async () => {
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
