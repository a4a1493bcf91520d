/** SQS FIFO over the AWS SDK v3: the planner's WorkQueue port. */
import { createHash } from 'node:crypto';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { WorkMessage } from '../contract';
import { KeyRotationError, TransientServiceError } from '../domain/errors';
import type { WorkQueue } from '../ports';
import { call } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

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
