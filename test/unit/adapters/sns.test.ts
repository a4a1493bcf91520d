import {
  CreateTopicCommand,
  GetTopicAttributesCommand,
  NotFoundException,
  PublishCommand,
  SetTopicAttributesCommand,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { SnsNotifier, SnsNotifierOptions } from '../../../lambda/adapters/sns';
import { ownerTopicName } from '../../../lambda/domain/naming';
import { AccessDeniedError, ThrottledError, TransientServiceError } from '../../../lambda/domain/errors';
import type { OwnerNotification } from '../../../lambda/domain/model';
import { rejectionOf, sdkError, timeoutError } from './sdk-errors';

const sns = mockClient(SNSClient);

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:iam-key-rotation-notices';

const OPS = 'arn:aws:sns:eu-west-1:123456789012:iam-key-rotation-ops';
const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1111-2222';
const PREFIX = 'iam-key-rotation-owner-';

/** Without per-owner topics (owners filter on the notification topic), unless options say otherwise. */
function notifier(options: Partial<SnsNotifierOptions> = {}): SnsNotifier {
  return new SnsNotifier(
    { topicArn: TOPIC, ...options },
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

beforeEach(() => sns.reset());
afterAll(() => sns.restore());

describe('publish', () => {
  test('sends text to people and JSON to machines, with the filterable attributes', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });

    await notifier().publish(NOTIFICATION, []);

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

    await notifier().publish({ ...NOTIFICATION, owner: 'default', recipients: ['default'] }, []);

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

    const error = await rejectionOf(() => notifier().publish(NOTIFICATION, []));

    expect(error).toBeInstanceOf(expected);
    expect((error as Error).message.startsWith('sns:Publish: ')).toBe(true);
  });
});

function ownerTopicArn(address: string): string {
  return `arn:aws:sns:eu-west-1:123456789012:${ownerTopicName(PREFIX, address)}`;
}

function publishedTo(): { topic: string; owner: string; text: string }[] {
  return sns.commandCalls(PublishCommand).map((c) => {
    const input = c.args[0].input;
    const message = JSON.parse(input.Message ?? '{}') as { email?: string };
    return {
      topic: input.TopicArn ?? '',
      owner: input.MessageAttributes?.owner?.StringValue ?? '',
      text: message.email ?? '',
    };
  });
}

describe('per-owner topics', () => {
  const withTopics = () => notifier({ ownerTopicPrefix: PREFIX, kmsKeyArn: KEY, opsTopicArn: OPS });
  const BOTH = ['alice@example.com', 'ops@example.com'];

  test('an owner not known to be reachable is not published to: the default recipients get the copy', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm' });

    const outcome = await withTopics().publish(NOTIFICATION, ['alice@example.com']);

    expect(outcome).toEqual({ undeliveredOwners: ['ops@example.com'] });
    expect(publishedTo().map((call) => call.topic)).toEqual([ownerTopicArn('alice@example.com'), TOPIC]);
    const onTopic = publishedTo().find((call) => call.topic === TOPIC)!;
    expect(JSON.parse(onTopic.owner)).toEqual(['alice@example.com', 'ops@example.com', 'default']);
    expect(onTopic.text).toContain('ops@example.com cannot be reached on their own notification topic');
  });

  test.each([
    [{ SubscriptionsConfirmed: '1', SubscriptionsPending: '0' }, 'confirmed'],
    [{ SubscriptionsConfirmed: '0', SubscriptionsPending: '1' }, 'pending'],
    [{ SubscriptionsConfirmed: '0', SubscriptionsPending: '0' }, 'none'],
  ] as const)('subscription state from the topic attributes %j is %s', async (attributes, expected) => {
    sns.on(GetTopicAttributesCommand).resolves({ Attributes: { ...attributes } });

    expect(await withTopics().subscriptionState('Alice@Example.com')).toBe(expected);
    expect(sns.commandCalls(GetTopicAttributesCommand)[0]?.args[0].input).toEqual({
      TopicArn: ownerTopicArn('alice@example.com'),
    });
  });

  test('a topic that does not exist means no subscription', async () => {
    sns
      .on(GetTopicAttributesCommand)
      .rejects(new NotFoundException({ message: 'Topic does not exist', $metadata: {} }));

    expect(await withTopics().subscriptionState('gone@example.com')).toBe('none');
  });

  test("a notice goes to each owner's own topic and to the notification topic", async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm' });

    const outcome = await withTopics().publish(NOTIFICATION, BOTH);

    expect(outcome).toEqual({ undeliveredOwners: [] });
    expect(publishedTo().map((call) => [call.topic, call.owner])).toEqual([
      [ownerTopicArn('alice@example.com'), '["alice@example.com","ops@example.com"]'],
      [ownerTopicArn('ops@example.com'), '["alice@example.com","ops@example.com"]'],
      [TOPIC, '["alice@example.com","ops@example.com"]'],
    ]);
  });

  test('an owner without a topic is named, and the default recipients get the notice instead', async () => {
    sns
      .on(PublishCommand)
      .resolves({ MessageId: 'm' })
      .on(PublishCommand, { TopicArn: ownerTopicArn('ops@example.com') })
      .rejects(new NotFoundException({ message: 'Topic does not exist', $metadata: {} }));

    const outcome = await withTopics().publish(NOTIFICATION, BOTH);

    expect(outcome).toEqual({ undeliveredOwners: ['ops@example.com'] });
    const onTopic = publishedTo().find((call) => call.topic === TOPIC)!;
    expect(JSON.parse(onTopic.owner)).toEqual(['alice@example.com', 'ops@example.com', 'default']);
    expect(onTopic.text).toContain('ops@example.com cannot be reached on their own notification topic');
  });

  test('a notice for the operators also goes to the ops topic; others do not', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm' });

    await withTopics().publish({ ...NOTIFICATION, recipients: ['default'], owner: 'default' }, []);
    await withTopics().publish(
      {
        ...NOTIFICATION,
        event: 'owner.subscription-failed',
        recipients: ['default'],
        owner: 'default',
        toOperators: true,
      },
      [],
    );

    expect(publishedTo().map((call) => call.topic)).toEqual([TOPIC, TOPIC, OPS]);
  });

  test('any other failure on an owner topic fails the publish (the outbox retries it)', async () => {
    sns
      .on(PublishCommand)
      .resolves({})
      .on(PublishCommand, { TopicArn: ownerTopicArn('alice@example.com') })
      .rejects(sdkError('Throttling', { fault: 'client' }));

    const error = await rejectionOf(() => withTopics().publish(NOTIFICATION, BOTH));

    expect(error).toBeInstanceOf(ThrottledError);
    expect(publishedTo().map((call) => call.topic)).not.toContain(TOPIC);
  });

  test("subscribing creates the owner's topic, encrypts it, requires TLS and subscribes the address", async () => {
    const arn = ownerTopicArn('team-a@example.com');
    sns.on(CreateTopicCommand).resolves({ TopicArn: arn });
    sns.on(SetTopicAttributesCommand).resolves({});
    sns.on(SubscribeCommand).resolves({ SubscriptionArn: 'pending confirmation' });

    const subscription = await withTopics().ensureSubscribed('Team-A@Example.com');

    expect(subscription).toEqual({ owner: 'team-a@example.com', topicArn: arn });
    expect(sns.commandCalls(CreateTopicCommand).map((c) => c.args[0].input)).toEqual([
      { Name: ownerTopicName(PREFIX, 'team-a@example.com') },
    ]);
    const attributes = new Map(
      sns
        .commandCalls(SetTopicAttributesCommand)
        .map((c) => [c.args[0].input.AttributeName, c.args[0].input.AttributeValue ?? ''] as const),
    );
    expect(attributes.get('KmsMasterKeyId')).toBe(KEY);
    const policy = JSON.parse(attributes.get('Policy') ?? '{}') as {
      Statement: { Effect: string; Resource: string; Condition?: unknown }[];
    };
    expect(policy.Statement.every((statement) => statement.Resource === arn)).toBe(true);
    expect(policy.Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
    expect(sns.commandCalls(SubscribeCommand).map((c) => c.args[0].input)).toEqual([
      { TopicArn: arn, Protocol: 'email', Endpoint: 'team-a@example.com' },
    ]);
    // No filter policy anywhere: the topic is the owner's alone.
    expect(JSON.stringify(sns.calls().map((c) => c.args[0].input))).not.toContain('FilterPolicy');
  });

  test('a refused Subscribe is an error (the service reports it to the default recipients)', async () => {
    sns.on(CreateTopicCommand).resolves({ TopicArn: ownerTopicArn('x@example.com') });
    sns.on(SetTopicAttributesCommand).resolves({});
    sns
      .on(SubscribeCommand)
      .rejects(sdkError('InvalidParameter', { fault: 'client', message: 'Invalid parameter: Endpoint' }));

    const error = await rejectionOf(() => withTopics().ensureSubscribed('x@example.com'));

    expect((error as Error).message).toBe('sns:Subscribe: InvalidParameter: Invalid parameter: Endpoint');
  });

  test('a topic quota reached fails the subscription with the reason', async () => {
    sns
      .on(CreateTopicCommand)
      .rejects(
        sdkError('TopicLimitExceeded', { fault: 'client', status: 403, message: 'Topic limit exceeded' }),
      );

    const error = await rejectionOf(() => withTopics().ensureSubscribed('y@example.com'));

    expect((error as Error).message).toContain('TopicLimitExceeded');
    expect(sns.commandCalls(SubscribeCommand)).toHaveLength(0);
  });

  test('without an owner topic prefix, subscribing is refused with what is missing', async () => {
    const error = await rejectionOf(() => notifier().ensureSubscribed('z@example.com'));

    expect((error as Error).message).toContain('owner topics are off');
    expect(sns.calls()).toHaveLength(0);
  });
});
