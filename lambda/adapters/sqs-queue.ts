/**
 * SQS over the AWS SDK v3: the planner's WorkQueue port (FIFO) and, in organization mode, the
 * dispatcher's PlanningQueue port (a standard queue).
 */
import { createHash } from 'node:crypto';
import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, SQSClient } from '@aws-sdk/client-sqs';
import type { PlanningMessage, WorkMessage } from '../contract';
import { KeyRotationError, TransientServiceError } from '../domain/errors';
import type { PlanningQueue, WorkQueue } from '../ports';
import { call } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

/** SendMessageBatch's maximum number of entries (TooManyEntriesInBatchRequest beyond). */
const BATCH = 10;

/** One group per user, so that messages for a user are handled one at a time and in order (I5). */
export function messageGroupId(message: Pick<WorkMessage, 'accountId' | 'userName'>): string {
  return `${message.accountId}/${message.userName}`;
}

/** The same plan run never queues the same user twice. */
export function deduplicationId(message: WorkMessage): string {
  return createHash('sha256')
    .update(`${message.plannedAt}/${message.accountId}/${message.userName}/${message.dryRun}`)
    .digest('hex');
}

/**
 * Sends `messages` with SendMessageBatch, ten at a time, in order. SendMessageBatch answers 200 with
 * per-entry failures, so each response's `Failed` is checked: any failed entry fails the send, naming
 * its message (`name`) and what SQS said; a sender fault (the request itself is wrong, and sending it
 * again will not help) as KeyRotationError, else as TransientServiceError (retryable).
 */
async function sendInBatches<M>(
  client: SQSClient,
  queueUrl: string,
  messages: readonly M[],
  what: string,
  entry: (message: M) => Omit<SendMessageBatchRequestEntry, 'Id'>,
  name: (message: M | undefined) => string,
): Promise<void> {
  for (let start = 0; start < messages.length; start += BATCH) {
    const batch = messages.slice(start, start + BATCH);
    const response = await call('sqs:SendMessageBatch', () =>
      client.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((message, index) => ({ Id: String(index), ...entry(message) })),
        }),
      ),
    );
    const failed = response.Failed ?? [];
    if (failed.length > 0) {
      const names = failed.map(
        (failure) =>
          `${name(batch[Number(failure.Id)])} (${failure.Code}${failure.Message ? `: ${failure.Message}` : ''})`,
      );
      const message = `sqs:SendMessageBatch refused ${failed.length} ${what}(s): ${names.join(', ')}`;
      throw failed.some((failure) => failure.SenderFault)
        ? new KeyRotationError(message)
        : new TransientServiceError(message);
    }
  }
}

export class SqsWorkQueue implements WorkQueue {
  constructor(
    private readonly queueUrl: string,
    private readonly client: SQSClient = new SQSClient(SDK_CLIENT_CONFIG),
  ) {}

  send(messages: readonly WorkMessage[]): Promise<void> {
    return sendInBatches(
      this.client,
      this.queueUrl,
      messages,
      'message',
      (message) => ({
        MessageBody: JSON.stringify(message),
        MessageGroupId: messageGroupId(message),
        MessageDeduplicationId: deduplicationId(message),
      }),
      (message) => `${message?.userName}`,
    );
  }
}

/**
 * The planning queue: one message per account to plan. A standard queue (no MessageGroupId, no
 * deduplication id): planners take accounts in any order and in parallel, and a message delivered
 * twice plans the account twice, which changes nothing (the work messages it queues are deduplicated
 * by the FIFO work queue, per run and user). Ten messages per SendMessageBatch, each a few hundred
 * bytes, well under the batch's payload limit; any failed entry fails the send, naming the account.
 */
export class SqsPlanningQueue implements PlanningQueue {
  constructor(
    private readonly queueUrl: string,
    private readonly client: SQSClient = new SQSClient(SDK_CLIENT_CONFIG),
  ) {}

  send(messages: readonly PlanningMessage[]): Promise<void> {
    return sendInBatches(
      this.client,
      this.queueUrl,
      messages,
      'planning message',
      (message) => ({ MessageBody: JSON.stringify(message) }),
      (message) => `account ${message?.accountId}`,
    );
  }
}
