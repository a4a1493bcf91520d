/** The SQS FIFO work queue in memory: records each SendMessageBatch (at most 10 messages) as one call. */
import type { WorkMessage } from '../../lambda/contract';
import type { WorkQueue } from '../../lambda/ports';
import type { Faults } from './faults';

const BATCH = 10;

export class FakeQueue implements WorkQueue {
  /** Every batch sent, in order. */
  readonly batches: WorkMessage[][] = [];
  /** Called as each batch is sent (after it is recorded), e.g. to note how far planning had got. */
  onSend?: (batch: readonly WorkMessage[]) => void;

  constructor(private readonly faults: Faults) {}

  get messages(): WorkMessage[] {
    return this.batches.flat();
  }

  async send(messages: readonly WorkMessage[]): Promise<void> {
    // As the SQS adapter does: one SendMessageBatch per ten messages.
    for (let start = 0; start < messages.length; start += BATCH) {
      const batch = messages.slice(start, start + BATCH);
      await this.faults.around('sqs:SendMessageBatch', () => {
        this.batches.push([...batch]);
        this.onSend?.(batch);
      });
    }
  }
}
