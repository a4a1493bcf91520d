/**
 * SNS in memory, with the parts of SNS that decide who hears of what: topics (the notification topic
 * and per-owner topics created on demand), e-mail subscriptions that deliver nothing until the owner
 * confirms them, filter policies on the `owner` attribute with SNS's default quota of 200 per topic,
 * and delivery to each subscriber.
 */
import { KeyRotationError } from '../../lambda/domain/errors';
import type { OwnerNotification } from '../../lambda/domain/model';
import { ownerTopicName } from '../../lambda/domain/naming';
import type { OwnerNotifier, OwnerSubscription, PublishOutcome, SubscriptionState } from '../../lambda/ports';
import { Faults } from './faults';

/** SNS's default quota of subscription filter policies per topic. */
export const FILTER_POLICIES_PER_TOPIC = 200;

export const NOTIFICATION_TOPIC = 'notifications';
export const OPS_TOPIC = 'ops';
export const OWNER_TOPIC_PREFIX = 'iam-key-rotation-owner-';

interface Subscription {
  readonly endpoint: string;
  /** Allowed values of the `owner` attribute; undefined = no filter (every message). */
  readonly ownerFilter?: readonly string[];
  /** An e-mail subscription delivers only once its owner clicked the confirmation link. */
  confirmed: boolean;
}

interface FakeTopic {
  readonly subscriptions: Subscription[];
  readonly messages: OwnerNotification[];
}

export interface FakeNotifierOptions {
  /** Per-owner topics (the deployed default). Off: owners only through filters on the notification topic. */
  readonly ownerTopics?: boolean;
  readonly defaultRecipients?: readonly string[];
  readonly opsRecipients?: readonly string[];
}

export class FakeNotifier implements OwnerNotifier {
  /** Every notice, as published to the notification topic. */
  readonly published: OwnerNotification[] = [];
  /** Owners subscribed (to their own topic, or with a filter on the notification topic). */
  readonly subscribed = new Set<string>();
  readonly topics = new Map<string, FakeTopic>();
  private readonly deliveries: { readonly endpoint: string; readonly message: OwnerNotification }[] = [];
  private readonly ownerTopics: boolean;

  constructor(
    private readonly faults: Faults,
    options: FakeNotifierOptions = {},
  ) {
    this.ownerTopics = options.ownerTopics ?? true;
    this.topics.set(NOTIFICATION_TOPIC, { subscriptions: [], messages: [] });
    this.topics.set(OPS_TOPIC, { subscriptions: [], messages: [] });
    // The stack's own subscriptions were confirmed after the deployment.
    for (const address of options.defaultRecipients ?? []) {
      this.subscribe(NOTIFICATION_TOPIC, { endpoint: address, ownerFilter: ['default'], confirmed: true });
    }
    for (const address of options.opsRecipients ?? []) {
      this.subscribe(NOTIFICATION_TOPIC, { endpoint: address, confirmed: true });
      this.subscribe(OPS_TOPIC, { endpoint: address, confirmed: true });
    }
  }

  publish(notification: OwnerNotification, reachableOwners: readonly string[]): Promise<PublishOutcome> {
    return this.faults.around('sns:Publish', () => {
      const undeliveredOwners: string[] = [];
      if (this.ownerTopics) {
        for (const owner of notification.recipients) {
          if (owner === 'default') continue;
          const topic = this.topics.get(ownerTopicName(OWNER_TOPIC_PREFIX, owner));
          if (topic && reachableOwners.includes(owner)) this.deliver(topic, notification);
          else undeliveredOwners.push(owner);
        }
      }
      const detour = undeliveredOwners.length > 0 && !notification.recipients.includes('default');
      const onTopic: OwnerNotification = detour
        ? { ...notification, recipients: [...notification.recipients, 'default'] }
        : notification;
      this.published.push(structuredClone(notification));
      this.deliver(this.topics.get(NOTIFICATION_TOPIC)!, onTopic);
      if (notification.toOperators) this.deliver(this.topics.get(OPS_TOPIC)!, notification);
      return { undeliveredOwners };
    });
  }

  ensureSubscribed(owner: string): Promise<Pick<OwnerSubscription, 'owner' | 'topicArn'>> {
    return this.faults.around('sns:Subscribe', () => {
      const address = owner.toLowerCase();
      if (this.ownerTopics) {
        const name = ownerTopicName(OWNER_TOPIC_PREFIX, address);
        if (!this.topics.has(name)) this.topics.set(name, { subscriptions: [], messages: [] });
        this.subscribe(name, { endpoint: address, confirmed: false });
        this.subscribed.add(address);
        return { owner: address, topicArn: `arn:aws:sns:eu-west-1:111122223333:${name}` };
      }
      this.subscribe(NOTIFICATION_TOPIC, { endpoint: address, ownerFilter: [address], confirmed: false });
      this.subscribed.add(address);
      return { owner: address, topicArn: `arn:aws:sns:eu-west-1:111122223333:${NOTIFICATION_TOPIC}` };
    });
  }

  subscriptionState(owner: string): Promise<SubscriptionState> {
    return this.faults.around('sns:GetTopicAttributes', () => {
      const topic = this.topics.get(ownerTopicName(OWNER_TOPIC_PREFIX, owner.toLowerCase()));
      if (!topic) return 'none';
      if (topic.subscriptions.some((subscription) => subscription.confirmed)) return 'confirmed';
      return topic.subscriptions.length > 0 ? 'pending' : 'none';
    });
  }

  /** The owner clicks the confirmation link of every subscription of their address. */
  confirm(address: string): void {
    for (const topic of this.topics.values()) {
      for (const subscription of topic.subscriptions) {
        if (subscription.endpoint === address) subscription.confirmed = true;
      }
    }
  }

  /** Every owner confirms. */
  confirmAll(): void {
    for (const address of this.subscribed) this.confirm(address);
  }

  /** The owner clicks "unsubscribe" (or SNS dropped a subscription never confirmed). */
  unsubscribe(address: string): void {
    for (const topic of this.topics.values()) {
      const index = topic.subscriptions.findIndex((subscription) => subscription.endpoint === address);
      if (index >= 0) topic.subscriptions.splice(index, 1);
    }
  }

  /** What one e-mail address received, over every topic, as SNS delivered it at the time. */
  inbox(address: string): OwnerNotification[] {
    return this.deliveries
      .filter((delivery) => delivery.endpoint === address)
      .map((delivery) => delivery.message);
  }

  /** SNS delivers a message to each confirmed subscription whose filter (if any) matches it. */
  private deliver(topic: FakeTopic, notification: OwnerNotification): void {
    const message = structuredClone(notification);
    topic.messages.push(message);
    for (const subscription of topic.subscriptions) {
      if (!subscription.confirmed) continue;
      const filter = subscription.ownerFilter;
      if (filter && !message.recipients.some((owner) => filter.includes(owner))) continue;
      this.deliveries.push({ endpoint: subscription.endpoint, message });
    }
  }

  /** Notices published to the ops topic. */
  get opsMessages(): readonly OwnerNotification[] {
    return this.topics.get(OPS_TOPIC)!.messages;
  }

  events(userName?: string): string[] {
    return this.published
      .filter((notification) => userName === undefined || notification.userName === userName)
      .map((notification) => notification.event);
  }

  private subscribe(topicName: string, subscription: Subscription): void {
    const topic = this.topics.get(topicName)!;
    if (topic.subscriptions.some((existing) => existing.endpoint === subscription.endpoint)) return;
    const filtered = topic.subscriptions.filter((existing) => existing.ownerFilter).length;
    if (subscription.ownerFilter && filtered >= FILTER_POLICIES_PER_TOPIC) {
      throw new KeyRotationError(
        `sns:Subscribe: FilterPolicyLimitExceededException: topic ${topicName} already has ${FILTER_POLICIES_PER_TOPIC} filter policies`,
      );
    }
    topic.subscriptions.push(subscription);
  }
}
