/**
 * The ledger through the real document client and DynamoDB client, with a fake HTTP handler in place
 * of the network: proves what the client-mock tests cannot, that values are marshalled as the
 * expressions expect and that a ConditionalCheckFailedException carries the old item in
 * AttributeValue form (the document client does not unmarshall errors), as a save taking the lock
 * reads it.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Readable } from 'node:stream';
import { DynamoLedger } from '../../../lambda/adapters/dynamodb-ledger';
import { ConcurrentUpdateError, LockHeldError } from '../../../lambda/domain/errors';
import { emptyLedger } from '../../../lambda/domain/model';
import { rejectionOf } from './sdk-errors';

interface WireReply {
  readonly status: number;
  readonly type?: string;
  readonly body: object;
}

/** A DynamoDBClient whose requests are recorded (as parsed JSON) and answered with `replies` in order. */
function wireClient(replies: WireReply[]) {
  const requests: { target: string; body: Record<string, unknown> }[] = [];
  const client = new DynamoDBClient({
    region: 'eu-west-1',
    maxAttempts: 1,
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestHandler: {
      handle: async (request: { headers: Record<string, string>; body?: Uint8Array | string }) => {
        const text = typeof request.body === 'string' ? request.body : new TextDecoder().decode(request.body);
        requests.push({
          target: request.headers['x-amz-target'] ?? '',
          body: JSON.parse(text) as Record<string, unknown>,
        });
        const reply = replies.shift();
        if (!reply) throw new Error('no reply left for this request');
        return {
          response: {
            statusCode: reply.status,
            headers: {
              'content-type': 'application/x-amz-json-1.0',
              ...(reply.type ? { 'x-amzn-errortype': reply.type } : {}),
            },
            body: Readable.from([Buffer.from(JSON.stringify(reply.body))]),
          },
        };
      },
    },
  });
  return { client, requests };
}

const ACCOUNT = '123456789012';
const conditionFailed = (item?: object): WireReply => ({
  status: 400,
  type: 'ConditionalCheckFailedException',
  body: {
    __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',
    message: 'The conditional request failed',
    ...(item ? { Item: item } : {}),
  },
});

test('save taking the lock: the lock is sent as a map, and a lock taken meanwhile names its holder from the wire error', async () => {
  const { client, requests } = wireClient([
    conditionFailed({
      pk: { S: ACCOUNT },
      sk: { S: 'alice' },
      version: { N: '7' },
      lock: { M: { holder: { S: 'run-0' }, until: { S: '2026-01-01T02:10:00.000Z' } } },
    }),
  ]);

  const error = await rejectionOf(() =>
    new DynamoLedger('ledger', client).save(
      { ...emptyLedger(ACCOUNT, 'alice'), version: 6 },
      { lock: { holder: 'run-1', until: new Date('2026-01-01T02:15:00.000Z') } },
    ),
  );

  expect(error).toBeInstanceOf(LockHeldError);
  expect((error as Error).message).toBe(
    'user alice is being worked on by run-0 until 2026-01-01T02:10:00.000Z',
  );
  expect(requests.map((r) => r.target)).toEqual(['DynamoDB_20120810.PutItem']);
  expect(requests[0]?.body).toMatchObject({
    TableName: 'ledger',
    Item: {
      pk: { S: ACCOUNT },
      sk: { S: 'alice' },
      version: { N: '7' },
      lock: { M: { holder: { S: 'run-1' }, until: { S: '2026-01-01T02:15:00.000Z' } } },
    },
    ExpressionAttributeValues: { ':expected': { N: '6' } },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  });
});

test('save releasing the lock: the item goes without it', async () => {
  const { client, requests } = wireClient([{ status: 200, body: {} }]);
  const locked = {
    ...emptyLedger(ACCOUNT, 'alice'),
    version: 3,
    lock: { holder: 'run-1', until: '2026-01-01T02:15:00.000Z' },
  };

  const saved = await new DynamoLedger('ledger', client).save(locked, { release: 'run-1' });

  expect(requests[0]?.body.Item).not.toHaveProperty('lock');
  expect(requests[0]?.body.Item).toMatchObject({ version: { N: '4' } });
  expect(saved).toEqual({ ...emptyLedger(ACCOUNT, 'alice'), version: 4 });
});

test('save: optional fields left undefined are dropped, empty collections kept, and the version is a number', async () => {
  const { client, requests } = wireClient([{ status: 200, body: {} }, conditionFailed()]);
  const ledger = new DynamoLedger('ledger', client);
  const record = { ...emptyLedger(ACCOUNT, 'alice'), version: 2, lock: undefined, inFlight: undefined };

  await ledger.save(record);
  const error = await rejectionOf(() => ledger.save(record));

  const item = requests[0]?.body.Item as Record<string, unknown>;
  expect(item).not.toHaveProperty('lock');
  expect(item).not.toHaveProperty('inFlight');
  expect(item).toMatchObject({
    pk: { S: ACCOUNT },
    sk: { S: 'alice' },
    version: { N: '3' },
    rotations: { L: [] },
    warnedKeys: { M: {} },
  });
  expect(requests[0]?.body.ExpressionAttributeValues).toEqual({ ':expected': { N: '2' } });
  expect(error).toBeInstanceOf(ConcurrentUpdateError);
});
