/** SNS over the AWS SDK v3: the OwnerNotifier port. */
import {
  paginateListSubscriptionsByTopic,
  PublishCommand,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import type { OwnerNotification } from '../domain/model';
import type { OwnerNotifier } from '../ports';
import { call } from './aws-errors';
import { SDK_CLIENT_CONFIG } from './sdk-config';

export class SnsNotifier implements OwnerNotifier {
  /** Owners known to be subscribed (or pending confirmation), for this container's life. */
  private readonly subscribed = new Set<string>();

  constructor(
    private readonly topicArn: string,
    private readonly client: SNSClient = new SNSClient(SDK_CLIENT_CONFIG),
  ) {}

  async publish(notification: OwnerNotification): Promise<void> {
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
    const attribute = (value: string) => ({ DataType: 'String', StringValue: value });
    await call('sns:Publish', () =>
      this.client.send(
        new PublishCommand({
          TopicArn: this.topicArn,
          Subject: notification.subject,
          MessageStructure: 'json',
          Message: JSON.stringify(message),
          MessageAttributes: {
            event: attribute(notification.event),
            accountId: attribute(notification.accountId),
            userName: attribute(notification.userName),
            // An array, so that a filter policy {"owner": [address]} matches any of the owners.
            owner: { DataType: 'String.Array', StringValue: JSON.stringify(notification.recipients) },
          },
        }),
      ),
    );
  }

  async ensureSubscribed(owner: string): Promise<void> {
    const address = owner.toLowerCase();
    if (this.subscribed.has(address)) return;
    const existing = await call('sns:ListSubscriptionsByTopic', async () => {
      for await (const page of paginateListSubscriptionsByTopic(
        { client: this.client },
        { TopicArn: this.topicArn },
      )) {
        for (const subscription of page.Subscriptions ?? []) {
          if (subscription.Protocol === 'email' && subscription.Endpoint?.toLowerCase() === address)
            return true;
        }
      }
      return false;
    });
    if (!existing) {
      await call('sns:Subscribe', () =>
        this.client.send(
          new SubscribeCommand({
            TopicArn: this.topicArn,
            Protocol: 'email',
            Endpoint: address,
            Attributes: {
              FilterPolicyScope: 'MessageAttributes',
              FilterPolicy: JSON.stringify({ owner: [address] }),
            },
          }),
        ),
      );
    }
    this.subscribed.add(address);
  }
}
