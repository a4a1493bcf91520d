/**
 * SQS over the AWS SDK v3: the planner's WorkQueue port (FIFO) and, in organization mode, the
 * dispatcher's PlanningQueue port (a standard queue).
 */
import { createHash } from 'node:crypto';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
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

export class SqsWorkQueue implements WorkQueue {
  constructor(
    private readonly queueUrl: string,
    private readonly client: SQSClient = new SQSClient(SDK_CLIENT_CONFIG),
  ) {}

  async send(messages: readonly WorkMessage[]): Promise<void> {
    for (let start = 0; start < messages.length; start += BATCH) {
      const batch = messages.slice(start, start + BATCH);
      const response = await call('sqs:SendMessageBatch', () =>
        this.client.send(
          new SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: batch.map((message, index) => ({
              Id: String(index),
              MessageBody: JSON.stringify(message),
              MessageGroupId: messageGroupId(message),
              MessageDeduplicationId: deduplicationId(message),
            })),
          }),
        ),
      );
      const failed = response.Failed ?? [];
      if (failed.length > 0) {
        const users = failed.map((entry) => `${batch[Number(entry.Id)]?.userName} (${entry.Code})`);
        const message = `sqs:SendMessageBatch refused ${failed.length} message(s): ${users.join(', ')}`;
        // SenderFault: the request itself is wrong, and sending it again will not help.
        throw failed.some((entry) => entry.SenderFault)
          ? new KeyRotationError(message)
          : new TransientServiceError(message);
      }
    }
  }
}

/**
 * The planning queue: one message per account to plan. A standard queue (no MessageGroupId, no
 * deduplication id): planners take accounts in any order and in parallel, and a message delivered
 * twice plans the account twice, which changes nothing (the work messages it queues are deduplicated
 * by the FIFO work queue, per run and user). Ten messages per SendMessageBatch, each a few hundred
 * bytes, well under the batch's payload limit. SendMessageBatch answers 200 with per-entry failures,
 * so each response's `Failed` is checked: any failed entry fails the send, naming the account.
 */
export class SqsPlanningQueue implements PlanningQueue {
  constructor(
    private readonly queueUrl: string,
    private readonly client: SQSClient = new SQSClient(SDK_CLIENT_CONFIG),
  ) {}

  async send(messages: readonly PlanningMessage[]): Promise<void> {
    for (let start = 0; start < messages.length; start += BATCH) {
      const batch = messages.slice(start, start + BATCH);
      const response = await call('sqs:SendMessageBatch', () =>
        this.client.send(
          new SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: batch.map((message, index) => ({
              Id: String(index),
              MessageBody: JSON.stringify(message),
            })),
          }),
        ),
      );
      const failed = response.Failed ?? [];
      if (failed.length > 0) {
        const accounts = failed.map(
          (entry) =>
            `account ${batch[Number(entry.Id)]?.accountId} (${entry.Code}${entry.Message ? `: ${entry.Message}` : ''})`,
        );
        const message = `sqs:SendMessageBatch refused ${failed.length} planning message(s): ${accounts.join(', ')}`;
        throw failed.some((entry) => entry.SenderFault)
          ? new KeyRotationError(message)
          : new TransientServiceError(message);
      }
    }
  }
}
