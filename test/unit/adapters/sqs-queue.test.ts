import { createHash } from 'node:crypto';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { deduplicationId, messageGroupId, SqsWorkQueue } from '../../../lambda/adapters/sqs-queue';
import { WORK_MESSAGE_VERSION, WorkMessage } from '../../../lambda/contract';
import {
  AccessDeniedError,
  ThrottledError,
  KeyRotationError,
  TransientServiceError,
} from '../../../lambda/domain/errors';
import { rejectionOf, sdkError, timeoutError } from './sdk-errors';

const sqs = mockClient(SQSClient);

const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/iam-key-rotation-work.fifo';
const ACCOUNT = '123456789012';
const PLANNED_AT = '2026-01-01T02:00:00.000Z';

function queue(): SqsWorkQueue {
  return new SqsWorkQueue(
    QUEUE_URL,
    new SQSClient({
      region: 'eu-west-1',
      maxAttempts: 1,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    }),
  );
}

function work(userName: string, overrides: Partial<WorkMessage> = {}): WorkMessage {
  return {
    version: WORK_MESSAGE_VERSION,
    accountId: ACCOUNT,
    userName,
    dryRun: false,
    plannedActions: ['rotate'],
    plannedAt: PLANNED_AT,
    ...overrides,
  };
}

const users = (count: number) =>
  Array.from({ length: count }, (_, i) => `user-${String(i).padStart(2, '0')}`);

beforeEach(() => sqs.reset());
afterAll(() => sqs.restore());

describe('send', () => {
  test('sends in batches of at most 10, one message group per user, with deterministic dedup ids', async () => {
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    const messages = users(23).map((name) => work(name));

    await queue().send(messages);

    const batches = sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input);
    expect(batches.map((b) => [b.QueueUrl, b.Entries?.length])).toEqual([
      [QUEUE_URL, 10],
      [QUEUE_URL, 10],
      [QUEUE_URL, 3],
    ]);
    const entries = batches.flatMap((b) => b.Entries ?? []);
    expect(entries.map((e) => JSON.parse(e.MessageBody!) as WorkMessage)).toEqual(messages);
    expect(entries.map((e) => e.MessageGroupId)).toEqual(users(23).map((name) => `${ACCOUNT}/${name}`));
    // Ids are unique within each batch (SQS requires it).
    expect(batches.map((b) => b.Entries?.map((e) => e.Id))).toEqual([
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
      ['0', '1', '2'],
    ]);
    expect(entries[0]?.MessageDeduplicationId).toBe(
      createHash('sha256').update(`${PLANNED_AT}/${ACCOUNT}/user-00/false`).digest('hex'),
    );
    expect(new Set(entries.map((e) => e.MessageDeduplicationId)).size).toBe(23);
  });

  test('nothing to send makes no call', async () => {
    await queue().send([]);

    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });

  test("a failed entry that is the sender's fault is not retryable: sending it again cannot help", async () => {
    sqs.on(SendMessageBatchCommand).resolves({
      Successful: [],
      Failed: [{ Id: '0', Code: 'InvalidParameterValue', SenderFault: true }],
    });

    const error = await rejectionOf(() => queue().send([work('user-0')]));

    expect(error).toBeInstanceOf(KeyRotationError);
    expect(error).not.toBeInstanceOf(TransientServiceError);
    expect((error as KeyRotationError).retryable).toBe(false);
  });

  test('a failed entry is an error naming the user it was for, in whichever batch', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .resolvesOnce({ Successful: [], Failed: [] })
      .resolvesOnce({
        Successful: [],
        Failed: [
          { Id: '3', Code: 'InternalError', SenderFault: false },
          { Id: '7', Code: 'ThrottlingException', SenderFault: false },
        ],
      });

    const error = await rejectionOf(() => queue().send(users(20).map((name) => work(name))));

    expect(error).toBeInstanceOf(TransientServiceError);
    expect((error as Error).message).toBe(
      'sqs:SendMessageBatch refused 2 message(s): user-13 (InternalError), user-17 (ThrottlingException)',
    );
  });

  test.each([
    ['throttling', () => sdkError('ThrottlingException', { fault: 'client' }), ThrottledError],
    ['access denied', () => sdkError('AccessDenied', { fault: 'client', status: 403 }), AccessDeniedError],
    ['KMS access denied', () => sdkError('KMSAccessDeniedException', { fault: 'client' }), AccessDeniedError],
    ['a timeout', timeoutError, TransientServiceError],
  ] as const)('%s fails the send with its engine error', async (_name, make, expected) => {
    sqs.on(SendMessageBatchCommand).rejects(make());

    await expect(queue().send([work('alice')])).rejects.toThrow(expected);
  });
});

describe('message group and deduplication ids', () => {
  test('the group is <account>/<user>', () => {
    expect(messageGroupId({ accountId: ACCOUNT, userName: 'svc.deploy@ci' })).toBe(
      `${ACCOUNT}/svc.deploy@ci`,
    );
  });

  test('the same message from the same plan run always has the same id; any field of it changes the id', () => {
    const id = deduplicationId(work('alice'));

    expect(deduplicationId(work('alice'))).toBe(id);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(deduplicationId(work('bob'))).not.toBe(id);
    expect(deduplicationId(work('alice', { accountId: '210987654321' }))).not.toBe(id);
    expect(deduplicationId(work('alice', { plannedAt: '2026-01-02T02:00:00.000Z' }))).not.toBe(id);
    expect(deduplicationId(work('alice', { dryRun: true }))).not.toBe(id);
  });

  test('the id does not depend on the listed actions (audit only)', () => {
    expect(deduplicationId(work('alice', { plannedActions: ['deactivate'] }))).toBe(
      deduplicationId(work('alice')),
    );
  });
});
