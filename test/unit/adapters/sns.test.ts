import {
  ListSubscriptionsByTopicCommand,
  ListSubscriptionsByTopicCommandOutput,
  PublishCommand,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { SnsNotifier } from '../../../lambda/adapters/sns';
import { AccessDeniedError, ThrottledError, TransientServiceError } from '../../../lambda/domain/errors';
import type { OwnerNotification } from '../../../lambda/domain/model';
import { rejectionOf, sdkError, timeoutError } from './sdk-errors';

const sns = mockClient(SNSClient);

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:iam-key-rotation-notices';

function notifier(): SnsNotifier {
  return new SnsNotifier(
    TOPIC,
    new SNSClient({
      region: 'eu-west-1',
      maxAttempts: 1,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    }),
  );
}

const NOTIFICATION: OwnerNotification = {
  event: 'key.rotated',
  accountId: '123456789012',
  userName: 'alice',
  owner: 'alice@example.com',
  recipients: ['alice@example.com', 'ops@example.com'],
  subject: 'Access key of alice rotated',
  text: 'The access key AKIAOLDKEY000000001 of alice was replaced by AKIANEWKEY000000001.\nRead it from the secret.',
  details: { oldKeyId: 'AKIAOLDKEY000000001', newKeyId: 'AKIANEWKEY000000001', dryRun: false, ageDays: 90 },
  dedupeId: 'key.rotated/123456789012/alice/AKIAOLDKEY000000001',
};

function email(endpoint: string) {
  return {
    SubscriptionArn: `${TOPIC}:${endpoint}`,
    Owner: '123456789012',
    Protocol: 'email',
    Endpoint: endpoint,
    TopicArn: TOPIC,
  };
}

/** Pages of ListSubscriptionsByTopic by request token; records each request when it is sent. */
function subscriptionPages(pages: Record<string, Partial<ListSubscriptionsByTopicCommandOutput>>) {
  const requests: { TopicArn?: string; NextToken?: string }[] = [];
  sns.on(ListSubscriptionsByTopicCommand).callsFake((input: { TopicArn?: string; NextToken?: string }) => {
    requests.push({ ...input });
    return pages[input.NextToken ?? 'first'];
  });
  return requests;
}

beforeEach(() => sns.reset());
afterAll(() => sns.restore());

describe('publish', () => {
  test('sends text to people and JSON to machines, with the filterable attributes', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });

    await notifier().publish(NOTIFICATION);

    const inputs = sns.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(inputs).toHaveLength(1);
    const input = inputs[0]!;
    expect(input).toEqual({
      TopicArn: TOPIC,
      Subject: 'Access key of alice rotated',
      MessageStructure: 'json',
      Message: expect.any(String) as string,
      MessageAttributes: {
        event: { DataType: 'String', StringValue: 'key.rotated' },
        accountId: { DataType: 'String', StringValue: '123456789012' },
        userName: { DataType: 'String', StringValue: 'alice' },
        owner: { DataType: 'String.Array', StringValue: '["alice@example.com","ops@example.com"]' },
      },
    });
    const message = JSON.parse(input.Message!) as Record<string, string>;
    expect(message.default).toBe(NOTIFICATION.text);
    expect(message.email).toBe(NOTIFICATION.text);
    const machineForm = {
      oldKeyId: 'AKIAOLDKEY000000001',
      newKeyId: 'AKIANEWKEY000000001',
      dryRun: false,
      ageDays: 90,
      subject: 'Access key of alice rotated',
      dedupeId: 'key.rotated/123456789012/alice/AKIAOLDKEY000000001',
    };
    for (const protocol of ['sqs', 'lambda', 'https', 'http', 'email-json']) {
      expect([protocol, JSON.parse(message[protocol]!)]).toEqual([protocol, machineForm]);
    }
  });

  test('a user without an owner goes to the default recipients', async () => {
    sns.on(PublishCommand).resolves({});

    await notifier().publish({ ...NOTIFICATION, owner: 'default', recipients: ['default'] });

    const [input] = sns.commandCalls(PublishCommand).map((c) => c.args[0].input);
    expect(input?.MessageAttributes?.owner).toEqual({ DataType: 'String.Array', StringValue: '["default"]' });
  });

  test.each([
    ['Throttled', () => sdkError('Throttling', { fault: 'client' }), ThrottledError],
    [
      'AuthorizationError',
      () => sdkError('AuthorizationError', { fault: 'client', status: 403 }),
      AccessDeniedError,
    ],
    ['KMSAccessDenied', () => sdkError('KMSAccessDeniedException', { fault: 'client' }), AccessDeniedError],
    ['TimeoutError', timeoutError, TransientServiceError],
    [
      'InternalError',
      () => sdkError('InternalError', { fault: 'server', status: 500 }),
      TransientServiceError,
    ],
  ] as const)('%s fails the publish with its engine error', async (_name, make, expected) => {
    sns.on(PublishCommand).rejects(make());

    const error = await rejectionOf(() => notifier().publish(NOTIFICATION));

    expect(error).toBeInstanceOf(expected);
    expect((error as Error).message.startsWith('sns:Publish: ')).toBe(true);
  });
});

describe('ensureSubscribed', () => {
  test('an owner on no page is subscribed with a filter on their address', async () => {
    const requests = subscriptionPages({
      first: { Subscriptions: [email('bob@example.com')], NextToken: 't1' },
      t1: { Subscriptions: [email('carol@example.com')], NextToken: 't2' },
      t2: { Subscriptions: [email('dave@example.com')] },
    });
    sns.on(SubscribeCommand).resolves({ SubscriptionArn: 'pending confirmation' });

    await notifier().ensureSubscribed('Alice@Example.com');

    expect(requests).toEqual([
      { TopicArn: TOPIC, NextToken: undefined },
      { TopicArn: TOPIC, NextToken: 't1' },
      { TopicArn: TOPIC, NextToken: 't2' },
    ]);
    const subscribes = sns.commandCalls(SubscribeCommand).map((c) => c.args[0].input);
    expect(subscribes).toEqual([
      {
        TopicArn: TOPIC,
        Protocol: 'email',
        Endpoint: 'alice@example.com',
        Attributes: {
          FilterPolicyScope: 'MessageAttributes',
          FilterPolicy: expect.any(String) as string,
        },
      },
    ]);
    expect(JSON.parse(subscribes[0]!.Attributes!.FilterPolicy!)).toEqual({ owner: ['alice@example.com'] });
  });

  test('an owner found on a later page (any case) is not subscribed again', async () => {
    subscriptionPages({
      first: { Subscriptions: [email('bob@example.com')], NextToken: 't1' },
      t1: { Subscriptions: [email('ALICE@example.com')], NextToken: 't2' },
      t2: { Subscriptions: [] },
    });
    sns.on(SubscribeCommand).resolves({});

    await notifier().ensureSubscribed('alice@example.com');

    expect(sns.commandCalls(SubscribeCommand)).toHaveLength(0);
  });

  test('a subscription of the address over another protocol does not count', async () => {
    subscriptionPages({
      first: { Subscriptions: [{ ...email('alice@example.com'), Protocol: 'email-json' }] },
    });
    sns.on(SubscribeCommand).resolves({});

    await notifier().ensureSubscribed('alice@example.com');

    expect(sns.commandCalls(SubscribeCommand)).toHaveLength(1);
  });

  test('a second call for the same owner makes no call at all', async () => {
    subscriptionPages({ first: { Subscriptions: [] } });
    sns.on(SubscribeCommand).resolves({});
    const once = notifier();

    await once.ensureSubscribed('alice@example.com');
    await once.ensureSubscribed('ALICE@example.com');

    expect(sns.commandCalls(SubscribeCommand)).toHaveLength(1);
    expect(sns.commandCalls(ListSubscriptionsByTopicCommand)).toHaveLength(1);
  });

  test('throttling while listing fails the call, subscribes no one, and is retried next time', async () => {
    sns
      .on(ListSubscriptionsByTopicCommand)
      .rejectsOnce(sdkError('Throttling', { fault: 'client' }))
      .resolves({ Subscriptions: [] });
    sns.on(SubscribeCommand).resolves({});
    const once = notifier();

    await expect(once.ensureSubscribed('alice@example.com')).rejects.toThrow(ThrottledError);
    expect(sns.commandCalls(SubscribeCommand)).toHaveLength(0);

    await once.ensureSubscribed('alice@example.com');
    expect(sns.commandCalls(SubscribeCommand)).toHaveLength(1);
  });

  test('a failed Subscribe is an error and the owner is not remembered as subscribed', async () => {
    subscriptionPages({ first: { Subscriptions: [] } });
    sns
      .on(SubscribeCommand)
      .rejectsOnce(sdkError('AuthorizationError', { fault: 'client', status: 403 }))
      .resolves({});
    const once = notifier();

    await expect(once.ensureSubscribed('alice@example.com')).rejects.toThrow(AccessDeniedError);
    await once.ensureSubscribed('alice@example.com');

    expect(sns.commandCalls(SubscribeCommand)).toHaveLength(2);
  });
});
