import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoLedger } from '../../../lambda/adapters/dynamodb-ledger';
import { LEDGER_ACCOUNT_PARTITION } from '../../../lambda/contract';
import { AccessDeniedError, ThrottledError } from '../../../lambda/domain/errors';
import type { AccountRunRecord } from '../../../lambda/ports';
import { Faults } from '../../fakes/faults';
import { FakeLedger } from '../../fakes/ledger';
import { rejectionOf, sdkError } from './sdk-errors';

const documents = mockClient(DynamoDBDocumentClient);

const TABLE = 'iam-key-rotation-ledger';
const ACCOUNT = '111122223333';

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

function failedRun(accountId = ACCOUNT): AccountRunRecord {
  return {
    accountId,
    runId: '2026-01-01T02:00:00.000Z',
    dryRun: false,
    status: 'failed',
    at: '2026-01-01T02:00:03.000Z',
    error: { name: 'MemberRoleAccessDeniedError', message: 'sts:AssumeRole denied' },
    retryable: false,
    consecutiveFailures: 2,
    lastPlannedAt: '2025-12-30T02:00:00.000Z',
  };
}

function plannedRun(accountId: string): AccountRunRecord {
  return {
    accountId,
    runId: '2026-01-01T02:00:00.000Z',
    dryRun: false,
    status: 'planned',
    at: '2026-01-01T02:00:09.000Z',
    queued: 3,
    consecutiveFailures: 0,
    lastPlannedAt: '2026-01-01T02:00:00.000Z',
  };
}

/** The item as the table holds it: the account-runs partition, the account id as sort key. */
function itemOf({ accountId, ...rest }: AccountRunRecord) {
  return { pk: LEDGER_ACCOUNT_PARTITION, sk: accountId, ...rest };
}

beforeEach(() => documents.reset());
afterAll(() => documents.restore());

describe('DynamoLedger account runs', () => {
  test('recordAccountRun puts one item in the account-runs partition, keyed by account id', async () => {
    // Arrange
    documents.on(PutCommand).resolves({});

    // Act
    await ledger().recordAccountRun(failedRun());

    // Assert
    expect(documents.commandCalls(PutCommand).map((call) => call.args[0].input)).toEqual([
      { TableName: TABLE, Item: itemOf(failedRun()) },
    ]);
  });

  test('lastAccountRun reads the item consistently and returns the record', async () => {
    // Arrange
    documents.on(GetCommand).resolves({ Item: itemOf(failedRun()) });

    // Act
    const found = await ledger().lastAccountRun(ACCOUNT);

    // Assert
    expect(found).toEqual(failedRun());
    expect(documents.commandCalls(GetCommand).map((call) => call.args[0].input)).toEqual([
      { TableName: TABLE, Key: { pk: LEDGER_ACCOUNT_PARTITION, sk: ACCOUNT }, ConsistentRead: true },
    ]);
  });

  test('lastAccountRun of an account never recorded is undefined', async () => {
    // Arrange
    documents.on(GetCommand).resolves({});

    // Act / Assert
    expect(await ledger().lastAccountRun(ACCOUNT)).toBeUndefined();
  });

  test('listAccountRuns queries the partition and follows every page, an empty one too', async () => {
    // Arrange
    const pages: Partial<QueryCommandOutput>[] = [
      { Items: [itemOf(plannedRun('100000000001'))], LastEvaluatedKey: { pk: 'p', sk: '1' } },
      { Items: [], LastEvaluatedKey: { pk: 'p', sk: '2' } },
      { Items: [itemOf(failedRun('100000000002'))] },
    ];
    let page = 0;
    documents.on(QueryCommand).callsFake(() => pages[page++]);

    // Act
    const runs = await ledger().listAccountRuns();

    // Assert
    expect(runs).toEqual([plannedRun('100000000001'), failedRun('100000000002')]);
    const inputs = documents.commandCalls(QueryCommand).map((call) => call.args[0].input);
    expect(inputs).toHaveLength(3);
    expect(inputs[0]).toMatchObject({
      TableName: TABLE,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': LEDGER_ACCOUNT_PARTITION },
    });
    expect(inputs[2]?.ExclusiveStartKey).toEqual({ pk: 'p', sk: '2' });
  });

  test.each([
    ['AccessDeniedException', 400, AccessDeniedError],
    ['ThrottlingException', 400, ThrottledError],
  ])('errors are mapped: %s', async (name, status, expected) => {
    // Arrange
    documents.on(PutCommand).rejects(sdkError(name, { fault: 'client', status }));
    documents.on(GetCommand).rejects(sdkError(name, { fault: 'client', status }));

    // Act
    const putError = await rejectionOf(() => ledger().recordAccountRun(failedRun()));
    const getError = await rejectionOf(() => ledger().lastAccountRun(ACCOUNT));

    // Assert
    expect(putError).toBeInstanceOf(expected);
    expect(getError).toBeInstanceOf(expected);
    expect((putError as Error).message).toContain('dynamodb:PutItem');
    expect((getError as Error).message).toContain('dynamodb:GetItem');
  });
});

describe('FakeLedger account runs', () => {
  test('keeps the last run per account, through counted calls', async () => {
    // Arrange
    const faults = new Faults();
    const fake = new FakeLedger(faults);

    // Act
    await fake.recordAccountRun(failedRun());
    await fake.recordAccountRun(plannedRun(ACCOUNT));
    await fake.recordAccountRun(failedRun('100000000002'));
    const last = await fake.lastAccountRun(ACCOUNT);
    const all = await fake.listAccountRuns();

    // Assert
    expect(last).toEqual(plannedRun(ACCOUNT));
    expect(all).toEqual([plannedRun(ACCOUNT), failedRun('100000000002')]);
    expect(faults.calls).toEqual([
      'dynamodb:PutItem',
      'dynamodb:PutItem',
      'dynamodb:PutItem',
      'dynamodb:GetItem',
      'dynamodb:Query',
    ]);
    expect(faults.writes()).toEqual(['dynamodb:PutItem', 'dynamodb:PutItem', 'dynamodb:PutItem']);
  });

  test('faults apply to its calls', async () => {
    // Arrange
    const faults = new Faults();
    const fake = new FakeLedger(faults);
    faults.inject('dynamodb:PutItem', 'throttle');

    // Act
    const error = await rejectionOf(() => fake.recordAccountRun(failedRun()));

    // Assert
    expect(error).toBeInstanceOf(ThrottledError);
    expect(fake.peekAccountRun(ACCOUNT)).toBeUndefined();
  });

  test('returns copies: a caller changing a record does not change the ledger', async () => {
    // Arrange
    const fake = new FakeLedger(new Faults());
    await fake.recordAccountRun(failedRun());

    // Act
    const read = (await fake.lastAccountRun(ACCOUNT)) as { consecutiveFailures: number };
    read.consecutiveFailures = 99;

    // Assert
    expect(fake.peekAccountRun(ACCOUNT)?.consecutiveFailures).toBe(2);
  });
});
