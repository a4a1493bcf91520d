import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { SqsPlanningQueue } from '../../../lambda/adapters/sqs-queue';
import { PLANNING_MESSAGE_VERSION, type PlanningMessage } from '../../../lambda/contract';
import { parsePlanningMessage } from '../../../lambda/domain/messages';
import {
  AccessDeniedError,
  KeyRotationError,
  ThrottledError,
  TransientServiceError,
} from '../../../lambda/domain/errors';
import { rejectionOf, sdkError, timeoutError } from './sdk-errors';

const sqs = mockClient(SQSClient);

const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/iam-key-rotation-planning';
const RUN = '2026-01-01T02:00:00.000Z';

function queue(): SqsPlanningQueue {
  return new SqsPlanningQueue(
    QUEUE_URL,
    new SQSClient({
      region: 'eu-west-1',
      maxAttempts: 1,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    }),
  );
}

function planning(index: number, overrides: Partial<PlanningMessage> = {}): PlanningMessage {
  return {
    version: PLANNING_MESSAGE_VERSION,
    accountId: String(100000000000 + index),
    dryRun: false,
    plannedAt: RUN,
    ...overrides,
  };
}

const accounts = (count: number) => Array.from({ length: count }, (_, index) => planning(index + 1));

beforeEach(() => sqs.reset());
afterAll(() => sqs.restore());

describe('SqsPlanningQueue', () => {
  test('sends in batches of at most 10, bodies the planner parses back, without FIFO fields', async () => {
    // Arrange
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    const messages = [...accounts(22), planning(23, { startAfter: 'alice' })];

    // Act
    await queue().send(messages);

    // Assert
    const batches = sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input);
    expect(batches.map((batch) => [batch.QueueUrl, batch.Entries?.length])).toEqual([
      [QUEUE_URL, 10],
      [QUEUE_URL, 10],
      [QUEUE_URL, 3],
    ]);
    const entries = batches.flatMap((batch) => batch.Entries ?? []);
    expect(entries.map((entry) => parsePlanningMessage(entry.MessageBody!))).toEqual(messages);
    // A standard queue: no MessageGroupId or MessageDeduplicationId (the FIFO work queue's fields).
    for (const entry of entries) {
      expect(Object.keys(entry).sort()).toEqual(['Id', 'MessageBody']);
    }
    expect(batches.map((batch) => new Set(batch.Entries?.map((entry) => entry.Id)).size)).toEqual([
      10, 10, 3,
    ]);
  });

  test('nothing to send makes no call (SQS refuses an empty batch)', async () => {
    // Act
    await queue().send([]);

    // Assert
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  test('a failed entry is an error naming the account it was for, in whichever batch; retryable unless the sender is at fault', async () => {
    // Arrange
    sqs
      .on(SendMessageBatchCommand)
      .resolvesOnce({ Successful: [], Failed: [] })
      .resolvesOnce({
        Successful: [],
        Failed: [{ Id: '4', Code: 'InternalError', SenderFault: false, Message: 'try again' }],
      });

    // Act
    const error = await rejectionOf(() => queue().send(accounts(20)));

    // Assert
    expect(error).toBeInstanceOf(TransientServiceError);
    expect((error as Error).message).toBe(
      'sqs:SendMessageBatch refused 1 planning message(s): account 100000000015 (InternalError: try again)',
    );
  });

  test("a failed entry that is the sender's fault is not retryable", async () => {
    // Arrange
    sqs.on(SendMessageBatchCommand).resolves({
      Successful: [],
      Failed: [{ Id: '0', Code: 'InvalidParameterValue', SenderFault: true }],
    });

    // Act
    const error = await rejectionOf(() => queue().send([planning(1)]));

    // Assert
    expect(error).toBeInstanceOf(KeyRotationError);
    expect((error as KeyRotationError).retryable).toBe(false);
    expect((error as Error).message).toContain('account 100000000001 (InvalidParameterValue)');
  });

  test.each([
    ['throttling', () => sdkError('ThrottlingException', { fault: 'client' }), ThrottledError],
    ['access denied', () => sdkError('AccessDenied', { fault: 'client', status: 403 }), AccessDeniedError],
    ['a timeout', timeoutError, TransientServiceError],
  ] as const)('%s fails the send with its engine error', async (_name, make, expected) => {
    // Arrange
    sqs.on(SendMessageBatchCommand).rejects(make());

    // Act / Assert
    await expect(queue().send([planning(1)])).rejects.toThrow(expected);
  });
});
