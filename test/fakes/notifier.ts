import type { OwnerNotification } from '../../lambda/domain/model';
import type { OwnerNotifier } from '../../lambda/ports';
import { Faults } from './faults';

/** SNS in memory: what was published, and who is subscribed. */
export class FakeNotifier implements OwnerNotifier {
  readonly published: OwnerNotification[] = [];
  readonly subscribed = new Set<string>();

  constructor(private readonly faults: Faults) {}

  publish(notification: OwnerNotification): Promise<void> {
    return this.faults.around('sns:Publish', () => {
      this.published.push(structuredClone(notification));
    });
  }

  ensureSubscribed(owner: string): Promise<void> {
    return this.faults.around('sns:Subscribe', () => {
      this.subscribed.add(owner);
    });
  }

  events(userName?: string): string[] {
    return this.published
      .filter((notification) => userName === undefined || notification.userName === userName)
      .map((notification) => notification.event);
  }
}
