/**
 * SqsWorkQueue (production code) against the emulator's SQS, on a FIFO work queue (and its dead-letter
 * queue) created from the synthesized template's AWS::SQS::Queue resources, as the construct creates them.
 */
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { deduplicationId, messageGroupId, SqsWorkQueue } from '../../../lambda/adapters/sqs-queue';
import { WORK_MESSAGE_VERSION, type WorkMessage } from '../../../lambda/contract';
import { KeyRotationError } from '../../../lambda/domain/errors';
import { deployedTemplate, resourceOf } from '../deployed';
import { ACCOUNT, createKmsKey, rejectionOf } from './fixtures';

const sqs = new SQSClient({});
let queueUrl: string;
let queue: SqsWorkQueue;

/** The CreateQueue attributes for a template queue (CloudFormation names them as SQS does). */
function queueAttributes(
  properties: Record<string, unknown>,
  refs: { kmsKeyArn: string; deadLetterArn?: string },
): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(properties)) {
    if (name === 'KmsMasterKeyId') attributes[name] = refs.kmsKeyArn;
    else if (name === 'RedrivePolicy') {
      const { maxReceiveCount } = value as { maxReceiveCount: number };
      if (!refs.deadLetterArn) throw new Error('a redrive policy needs its dead-letter queue');
      attributes[name] = JSON.stringify({ deadLetterTargetArn: refs.deadLetterArn, maxReceiveCount });
    } else if (
      ['FifoQueue', 'ContentBasedDeduplication', 'VisibilityTimeout', 'MessageRetentionPeriod'].includes(name)
    ) {
      attributes[name] = String(value);
    } else {
      throw new Error(`the template's queue has a property this test does not create: ${name}`);
    }
  }
  return attributes;
}

beforeAll(async () => {
  const template = deployedTemplate();
  const [, work] = resourceOf(template, 'AWS::SQS::Queue', 'KeyRotationWorkQueue');
  const [, deadLetter] = resourceOf(template, 'AWS::SQS::Queue', 'KeyRotationDeadLetterQueue');
  const kmsKeyArn = await createKmsKey('iam-key-rotation queues');
  const dlq = await sqs.send(
    new CreateQueueCommand({
      QueueName: 'IamKeyRotation-DeadLetterQueue.fifo',
      Attributes: queueAttributes(deadLetter.Properties ?? {}, { kmsKeyArn }),
    }),
  );
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes!.QueueArn!;
  const created = await sqs.send(
    new CreateQueueCommand({
      QueueName: 'IamKeyRotation-WorkQueue.fifo',
      Attributes: queueAttributes(work.Properties ?? {}, { kmsKeyArn, deadLetterArn: dlqArn }),
    }),
  );
  queueUrl = created.QueueUrl!;
  queue = new SqsWorkQueue(queueUrl);
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }),
  );
  expect(Attributes).toMatchObject({ FifoQueue: 'true', ContentBasedDeduplication: 'false' });
});

afterAll(() => sqs.destroy());

function work(userName: string, plannedAt = '2026-03-01T02:00:00.000Z'): WorkMessage {
  return {
    version: WORK_MESSAGE_VERSION,
    accountId: ACCOUNT,
    userName,
    dryRun: false,
    plannedActions: ['rotate'],
    plannedAt,
  };
}

/** One receive (up to 10 messages), with the FIFO system attributes. */
async function receive(max = 10): Promise<Message[]> {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: max,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ['MessageGroupId', 'MessageDeduplicationId'],
    }),
  );
  return Messages;
}

async function remove(messages: readonly Message[]): Promise<void> {
  for (const message of messages) {
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
  }
}

/** Receives and deletes until the queue gives nothing more. */
async function drain(): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const messages = await receive();
    if (messages.length === 0) return all;
    all.push(...messages);
    await remove(messages);
  }
}

test('25 messages go out (in batches of at most 10), one group per user, with their deduplication ids', async () => {
  const messages = Array.from({ length: 25 }, (_, index) => work(`user-${String(index).padStart(2, '0')}`));

  // SQS refuses a batch of more than 10 entries (TooManyEntriesInBatchRequest): 25 arriving means
  // the adapter split them.
  await queue.send(messages);

  const received = await drain();
  expect(received).toHaveLength(25);
  const byUser = new Map(
    received.map((message) => [(JSON.parse(message.Body!) as WorkMessage).userName, message]),
  );
  for (const sent of messages) {
    const message = byUser.get(sent.userName);
    expect(JSON.parse(message!.Body!)).toEqual(sent);
    expect(message!.Attributes).toMatchObject({
      MessageGroupId: `${ACCOUNT}/${sent.userName}`,
      MessageDeduplicationId: deduplicationId(sent),
    });
    expect(message!.Attributes!.MessageGroupId).toBe(messageGroupId(sent));
  }
});

test('the same message sent again within the deduplication window is dropped; a new plan run is not', async () => {
  await queue.send([work('dedup-a'), work('dedup-b')]);

  // A planner retry of the same run (same plannedAt, so the same deduplication ids): accepted, and
  // dropped. AWS keeps dropping it for 5 minutes even after the first copy was received and deleted;
  // moto forgets a deduplication id once its message is deleted, so the retry is sent while the
  // first copies are still queued.
  await queue.send([work('dedup-a'), work('dedup-b')]);
  expect(
    (await drain()).map((message) => (JSON.parse(message.Body!) as WorkMessage).userName).sort(),
  ).toEqual(['dedup-a', 'dedup-b']);

  // The next run (another plannedAt) is new work.
  await queue.send([work('dedup-a', '2026-03-02T02:00:00.000Z')]);
  const next = await drain();
  expect(next.map((message) => (JSON.parse(message.Body!) as WorkMessage).plannedAt)).toEqual([
    '2026-03-02T02:00:00.000Z',
  ]);
});

test('messages for one user are handed out one at a time, in order (one message group per user)', async () => {
  await queue.send([work('ordered', '2026-03-03T02:00:00.000Z'), work('other', '2026-03-03T02:00:00.000Z')]);
  await queue.send([work('ordered', '2026-03-04T02:00:00.000Z')]);
  const labels = (messages: readonly Message[]) =>
    messages.map((message) => {
      const body = JSON.parse(message.Body!) as WorkMessage;
      return `${body.userName} ${body.plannedAt.slice(0, 10)}`;
    });

  const first = await receive(1);
  expect(labels(first)).toEqual(['ordered 2026-03-03']);
  // While it is in flight, its group holds the user's next message back; other users' come.
  const meanwhile = await receive();
  expect(labels(meanwhile)).toEqual(['other 2026-03-03']);
  await remove([...first, ...meanwhile]);

  expect(labels(await drain())).toEqual(['ordered 2026-03-04']);
});

test('a queue that does not exist: a KeyRotationError that is not retried', async () => {
  const missing = new SqsWorkQueue(queueUrl.replace('IamKeyRotation-WorkQueue.fifo', 'no-such-queue.fifo'));

  const error = await rejectionOf(missing.send([work('lost')]));

  expect(error).toBeInstanceOf(KeyRotationError);
  expect((error as KeyRotationError).retryable).toBe(false);
  expect(error.message).toContain('sqs:SendMessageBatch');
});
