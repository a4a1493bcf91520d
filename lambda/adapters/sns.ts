/**
 * SNS over the AWS SDK v3: the OwnerNotifier port.
 *
 * Every notice goes to the notification topic, with the message attribute `owner` for filter
 * policies (default recipients, operators, machines). With per-owner topics (the default), each
 * owner also has a topic of their own, created on demand, with one e-mail subscription and no filter
 * policy: SNS allows 200 filter policies per topic by default, so filtered subscriptions on one topic
 * cannot reach thousands of owners, while an account may hold 100,000 topics.
 */
import {
  CreateTopicCommand,
  GetTopicAttributesCommand,
  PublishCommand,
  SetTopicAttributesCommand,
  SNSClient,
  SubscribeCommand,
  type MessageAttributeValue,
} from '@aws-sdk/client-sns';
import { ConfigError, KeyRotationError } from '../domain/errors';
import type { OwnerNotification } from '../domain/model';
import { ownerTopicName, topicArnBeside } from '../domain/naming';
import type { OwnerNotifier, OwnerSubscription, PublishOutcome, SubscriptionState } from '../ports';
import { call } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

export interface SnsNotifierOptions {
  /** The notification topic: every notice, with the `owner` attribute. */
  readonly topicArn: string;
  /**
   * Name prefix of the per-owner topics. Without it, owners are not given topics of their own: they
   * (or an operator) subscribe to the notification topic with a filter policy on `owner`.
   */
  readonly ownerTopicPrefix?: string;
  /** The customer-managed key that encrypts the per-owner topics. */
  readonly kmsKeyArn?: string;
  /** The operators' topic: notices marked `toOperators` are also published there. */
  readonly opsTopicArn?: string;
}

/** Marks a notice published to a topic that does not exist. */
class TopicNotFoundError extends KeyRotationError {}

export class SnsNotifier implements OwnerNotifier {
  constructor(
    private readonly options: SnsNotifierOptions,
    private readonly client: SNSClient = new SNSClient(SDK_CLIENT_CONFIG),
  ) {}

  async publish(
    notification: OwnerNotification,
    reachableOwners: readonly string[],
  ): Promise<PublishOutcome> {
    const undeliveredOwners: string[] = [];
    if (this.options.ownerTopicPrefix) {
      for (const owner of notification.recipients) {
        if (owner === 'default') continue;
        // An owner who has not confirmed (or never got) a subscription would receive nothing there.
        if (!reachableOwners.includes(owner)) {
          undeliveredOwners.push(owner);
          continue;
        }
        try {
          await this.send(this.ownerTopicArn(owner), notification, notification.recipients);
        } catch (error) {
          if (!(error instanceof TopicNotFoundError)) throw error;
          undeliveredOwners.push(owner);
        }
      }
    }
    // An owner without a topic is never left without the notice: the default recipients get it.
    const detour = undeliveredOwners.length > 0 && !notification.recipients.includes('default');
    const forTopic: OwnerNotification = detour
      ? {
          ...notification,
          text: `${notification.text}\n\nYou receive this as a default recipient: ${undeliveredOwners.join(', ')} cannot be reached on their own notification topic yet (not subscribed, or the subscription is not confirmed).`,
          details: { ...notification.details, undeliveredOwners: undeliveredOwners.join(' ') },
        }
      : notification;
    await this.send(
      this.options.topicArn,
      forTopic,
      detour ? [...notification.recipients, 'default'] : notification.recipients,
    );
    if (notification.toOperators && this.options.opsTopicArn) {
      await this.send(this.options.opsTopicArn, notification, notification.recipients);
    }
    return { undeliveredOwners };
  }

  async ensureSubscribed(owner: string): Promise<Pick<OwnerSubscription, 'owner' | 'topicArn'>> {
    const prefix = this.options.ownerTopicPrefix;
    if (!prefix) {
      throw new ConfigError(['owner topics are off (no owner topic prefix): owners cannot be subscribed']);
    }
    const address = owner.toLowerCase();
    // CreateTopic is idempotent: an existing topic of that name is returned as it is. Attributes are
    // set separately, so that a topic made by an earlier deployment (another key) is brought in line
    // instead of refused for differing attributes.
    const created = await call('sns:CreateTopic', () =>
      this.client.send(new CreateTopicCommand({ Name: ownerTopicName(prefix, address) })),
    );
    const topicArn = created.TopicArn;
    if (!topicArn) throw new KeyRotationError(`sns:CreateTopic returned no topic ARN for ${address}`);
    if (this.options.kmsKeyArn) {
      await this.setAttribute(topicArn, 'KmsMasterKeyId', this.options.kmsKeyArn);
    }
    await this.setAttribute(topicArn, 'Policy', JSON.stringify(ownerTopicPolicy(topicArn)));
    // The sender name of the confirmation e-mail and of every notice on this topic.
    await this.setAttribute(topicArn, 'DisplayName', 'IAM access key rotation');
    // Subscribing an address that is already subscribed (or pending confirmation) returns the same
    // subscription: no duplicate e-mail subscription is made.
    await call('sns:Subscribe', () =>
      this.client.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'email', Endpoint: address })),
    );
    return { owner: address, topicArn };
  }

  async subscriptionState(owner: string): Promise<SubscriptionState> {
    let attributes: Record<string, string>;
    try {
      const response = await call(
        'sns:GetTopicAttributes',
        () => this.client.send(new GetTopicAttributesCommand({ TopicArn: this.ownerTopicArn(owner) })),
        {
          NotFoundException: (text) => new TopicNotFoundError(text),
          NotFound: (text) => new TopicNotFoundError(text),
        },
      );
      attributes = response.Attributes ?? {};
    } catch (error) {
      if (error instanceof TopicNotFoundError) return 'none';
      throw error;
    }
    if (Number(attributes.SubscriptionsConfirmed ?? '0') > 0) return 'confirmed';
    if (Number(attributes.SubscriptionsPending ?? '0') > 0) return 'pending';
    return 'none';
  }

  private ownerTopicArn(owner: string): string {
    return topicArnBeside(this.options.topicArn, ownerTopicName(this.options.ownerTopicPrefix!, owner));
  }

  private async setAttribute(topicArn: string, name: string, value: string): Promise<void> {
    await call('sns:SetTopicAttributes', () =>
      this.client.send(
        new SetTopicAttributesCommand({ TopicArn: topicArn, AttributeName: name, AttributeValue: value }),
      ),
    );
  }

  private async send(
    topicArn: string,
    notification: OwnerNotification,
    owners: readonly string[],
  ): Promise<void> {
    const json = JSON.stringify({
      ...notification.details,
      subject: notification.subject,
      dedupeId: notification.dedupeId,
    });
    // People get text; machine endpoints get the JSON form.
    const message = {
      default: notification.text,
      email: notification.text,
      'email-json': json,
      sqs: json,
      lambda: json,
      http: json,
      https: json,
    };
    const attribute = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });
    await call(
      'sns:Publish',
      () =>
        this.client.send(
          new PublishCommand({
            TopicArn: topicArn,
            Subject: notification.subject,
            MessageStructure: 'json',
            Message: JSON.stringify(message),
            MessageAttributes: {
              event: attribute(notification.event),
              accountId: attribute(notification.accountId),
              userName: attribute(notification.userName),
              // An array, so that a filter policy {"owner": [address]} matches any of the owners.
              owner: { DataType: 'String.Array', StringValue: JSON.stringify(owners) },
            },
          }),
        ),
      {
        NotFoundException: (text) => new TopicNotFoundError(text),
        NotFound: (text) => new TopicNotFoundError(text),
      },
    );
  }
}

/** The owner account manages the topic; publishing requires TLS (as the construct's topics do). */
export function ownerTopicPolicy(topicArn: string): object {
  const [, partition, , , account] = topicArn.split(':');
  return {
    Version: '2012-10-17',
    Id: 'iam-key-rotation-owner-topic',
    Statement: [
      {
        Sid: 'OwnerAccountUsesTopic',
        Effect: 'Allow',
        Principal: { AWS: `arn:${partition}:iam::${account}:root` },
        Action: [
          'sns:Publish',
          'sns:Subscribe',
          'sns:GetTopicAttributes',
          'sns:SetTopicAttributes',
          'sns:ListSubscriptionsByTopic',
          'sns:DeleteTopic',
        ],
        Resource: topicArn,
      },
      {
        Sid: 'EnforceTls',
        Effect: 'Deny',
        Principal: '*',
        Action: 'sns:Publish',
        Resource: topicArn,
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      },
    ],
  };
}
