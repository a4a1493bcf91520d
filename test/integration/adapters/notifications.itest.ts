/**
 * SnsNotifier (production code) against the emulator's SNS, observed through SQS queues subscribed
 * to the topics (protocol sqs: the JSON form of each notice, inside SNS's envelope).
 */
import { IAMClient, CreateUserCommand } from '@aws-sdk/client-iam';
import {
  CreateTopicCommand,
  GetTopicAttributesCommand,
  ListSubscriptionsByTopicCommand,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { IamAdapter } from '../../../lambda/adapters/iam';
import { ownerTopicPolicy, SnsNotifier } from '../../../lambda/adapters/sns';
import type { OwnerNotification } from '../../../lambda/domain/model';
import {
  ownerTopicName,
  ownerTopicPrefixFor,
  secretNameFor,
  topicArnBeside,
} from '../../../lambda/domain/naming';
import { renderNotice } from '../../../lambda/domain/notices';
import { ACCOUNT, createKmsKey } from './fixtures';

const PREFIX = 'iam-key-rotation';
const OWNER_TOPIC_PREFIX = ownerTopicPrefixFor(PREFIX);
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

const sns = new SNSClient({});
const sqs = new SQSClient({});
let kmsKeyArn: string;
let topicArn: string;
let opsTopicArn: string;

/** SNS's envelope around a notice delivered to an SQS subscriber (raw delivery off). */
interface Envelope {
  readonly Type: string;
  readonly MessageId: string;
  readonly TopicArn: string;
  readonly Subject?: string;
  readonly Message: string;
  readonly MessageAttributes?: Record<string, { readonly Type: string; readonly Value: string }>;
}

async function createTopic(name: string, displayName: string): Promise<string> {
  const created = await sns.send(
    new CreateTopicCommand({
      Name: name,
      Attributes: { DisplayName: displayName, KmsMasterKeyId: kmsKeyArn },
    }),
  );
  return created.TopicArn!;
}

/** A queue subscribed to the topic (with a filter policy on the message attributes, if given). */
async function subscribedQueue(name: string, topic: string, filterPolicy?: object): Promise<string> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const queueArn = Attributes!.QueueArn!;
  // AWS delivers only with this grant; moto delivers without it (it does not enforce policies).
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl,
      Attributes: {
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'sns.amazonaws.com' },
              Action: 'sqs:SendMessage',
              Resource: queueArn,
              Condition: { ArnEquals: { 'aws:SourceArn': topic } },
            },
          ],
        }),
      },
    }),
  );
  await sns.send(
    new SubscribeCommand({
      TopicArn: topic,
      Protocol: 'sqs',
      Endpoint: queueArn,
      ReturnSubscriptionArn: true,
      ...(filterPolicy ? { Attributes: { FilterPolicy: JSON.stringify(filterPolicy) } } : {}),
    }),
  );
  return QueueUrl!;
}

/** Everything in the queue now (SNS has delivered by the time Publish returns, in moto). */
async function drain(queueUrl: string): Promise<Envelope[]> {
  const envelopes: Envelope[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (Messages.length === 0) return envelopes;
    envelopes.push(...Messages.map((message) => JSON.parse(message.Body!) as Envelope));
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((message, index) => ({
          Id: String(index),
          ReceiptHandle: message.ReceiptHandle,
        })),
      }),
    );
  }
}

function rotatedNotice(userName: string, recipients: readonly string[], newKeyId = 'AKIANEWKEY0000000001') {
  return renderNotice(
    {
      accountId: ACCOUNT,
      userName,
      owner: recipients[0]!,
      recipients,
      secretName: secretNameFor(PREFIX, ACCOUNT, userName),
    },
    {
      event: 'key.rotated',
      oldKeyId: 'AKIAOLDKEY0000000001',
      newKeyId,
      deactivateFrom: '2026-03-08',
      enforceOn: '2026-03-31',
    },
    `key.rotated:${ACCOUNT}/${userName}:${newKeyId}`,
  );
}

const ownerTopicArn = (owner: string) => topicArnBeside(topicArn, ownerTopicName(OWNER_TOPIC_PREFIX, owner));

beforeAll(async () => {
  kmsKeyArn = await createKmsKey('iam-key-rotation topics');
  topicArn = await createTopic('IamKeyRotation-NotificationTopic', 'IAM access key rotation');
  opsTopicArn = await createTopic('IamKeyRotation-OpsTopic', 'IAM access key rotation alarms');
});

afterAll(() => {
  sns.destroy();
  sqs.destroy();
});

describe('the notification topic', () => {
  let everything: string;
  let aliceOnly: string;
  let bobOnly: string;
  let defaults: string;
  let operators: string;
  const notifier = () => new SnsNotifier({ topicArn, opsTopicArn });

  beforeAll(async () => {
    everything = await subscribedQueue('all-notices', topicArn);
    aliceOnly = await subscribedQueue('alice-notices', topicArn, { owner: [ALICE] });
    bobOnly = await subscribedQueue('bob-notices', topicArn, { owner: [BOB] });
    defaults = await subscribedQueue('default-notices', topicArn, { owner: ['default'] });
    operators = await subscribedQueue('ops-notices', opsTopicArn);
  });

  afterEach(async () => {
    for (const queue of [everything, aliceOnly, bobOnly, defaults, operators]) await drain(queue);
  });

  test('an SQS subscriber gets the JSON form and the message attributes, and no secret', async () => {
    // A real key, so that the check for its secret means something.
    const iam = new IAMClient({});
    await iam.send(new CreateUserCommand({ UserName: 'app-1' }));
    iam.destroy();
    const key = await new IamAdapter().createAccessKey('app-1');
    const notice = rotatedNotice('app-1', [ALICE], key.accessKeyId);

    await expect(notifier().publish(notice, [])).resolves.toEqual({ undeliveredOwners: [] });

    const [envelope, ...more] = await drain(everything);
    expect(more).toEqual([]);
    expect(envelope).toMatchObject({ Type: 'Notification', TopicArn: topicArn, Subject: notice.subject });
    expect(JSON.parse(envelope!.Message)).toEqual({
      ...notice.details,
      subject: notice.subject,
      dedupeId: notice.dedupeId,
    });
    expect(JSON.parse(envelope!.Message)).toMatchObject({
      newKeyId: key.accessKeyId,
      secretName: `iam-key-rotation/${ACCOUNT}/app-1`,
    });
    expect(envelope!.MessageAttributes).toEqual({
      event: { Type: 'String', Value: 'key.rotated' },
      accountId: { Type: 'String', Value: ACCOUNT },
      userName: { Type: 'String', Value: 'app-1' },
      owner: { Type: 'String.Array', Value: JSON.stringify([ALICE]) },
    });
    const body = JSON.stringify(envelope);
    // Asserted as a boolean, so that a failure does not print the secret either.
    expect(body.includes(key.secretAccessKey)).toBe(false);
    expect(body).not.toContain('SecretAccessKey');
  });

  test('a filter policy on owner selects: only the owner’s queue gets the notice', async () => {
    await notifier().publish(rotatedNotice('app-2', [ALICE]), []);

    expect(await drain(aliceOnly)).toHaveLength(1);
    expect(await drain(bobOnly)).toEqual([]);
    expect(await drain(defaults)).toEqual([]);
    expect(await drain(everything)).toHaveLength(1);
  });

  test('a notice for two owners reaches both filters, once each; one without an owner goes to default', async () => {
    await notifier().publish(rotatedNotice('shared', [ALICE, BOB]), []);
    await notifier().publish(rotatedNotice('ownerless', ['default']), []);

    const userNames = (envelopes: Envelope[]) =>
      envelopes.map((envelope) => envelope.MessageAttributes?.userName?.Value);
    expect(userNames(await drain(aliceOnly))).toEqual(['shared']);
    expect(userNames(await drain(bobOnly))).toEqual(['shared']);
    expect(userNames(await drain(defaults))).toEqual(['ownerless']);
  });

  test('a notice for operators also goes to the ops topic', async () => {
    const notice: OwnerNotification = { ...rotatedNotice('needs-a-person', [ALICE]), toOperators: true };

    await notifier().publish(notice, []);

    const [forOperators] = await drain(operators);
    expect(forOperators).toMatchObject({ TopicArn: opsTopicArn, Subject: notice.subject });
    expect(await drain(everything)).toHaveLength(1);
  });

  test('the longest user name still gives a subject SNS accepts (at most 100 characters)', async () => {
    const userName = 'u'.repeat(64);
    const notice = rotatedNotice(userName, [ALICE]);

    await notifier().publish(notice, []);

    const [envelope] = await drain(aliceOnly);
    expect(envelope?.Subject?.length).toBeLessThanOrEqual(100);
    expect(envelope?.MessageAttributes?.userName?.Value).toBe(userName);
  });
});

describe('per-owner topics', () => {
  const notifier = () =>
    new SnsNotifier({ topicArn, ownerTopicPrefix: OWNER_TOPIC_PREFIX, kmsKeyArn, opsTopicArn });

  test('ensureSubscribed creates the owner’s topic with its key, policy and name, and one e-mail subscription', async () => {
    const result = await notifier().ensureSubscribed('Carol@Example.com');

    expect(result).toEqual({ owner: 'carol@example.com', topicArn: ownerTopicArn('carol@example.com') });
    const { Attributes = {} } = await sns.send(new GetTopicAttributesCommand({ TopicArn: result.topicArn }));
    expect(Attributes.KmsMasterKeyId).toBe(kmsKeyArn);
    expect(Attributes.DisplayName).toBe('IAM access key rotation');
    expect(JSON.parse(Attributes.Policy!)).toEqual(ownerTopicPolicy(result.topicArn));
    const subscriptions = async () =>
      (await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: result.topicArn }))).Subscriptions ??
      [];
    expect((await subscriptions()).map((s) => [s.Protocol, s.Endpoint])).toEqual([
      ['email', 'carol@example.com'],
    ]);

    // Again (another run, another container): the same topic, still one subscription.
    await expect(notifier().ensureSubscribed('carol@example.com')).resolves.toEqual(result);
    expect(await subscriptions()).toHaveLength(1);
  });

  test('subscriptionState: none without a topic; an unconfirmed e-mail subscription is never confirmed', async () => {
    await expect(notifier().subscriptionState('nobody@example.com')).resolves.toBe('none');
    await notifier().ensureSubscribed('dave@example.com');

    const state = await notifier().subscriptionState('dave@example.com');

    // AWS counts the unconfirmed subscription in SubscriptionsPending ('pending'); moto counts no
    // e-mail subscription, pending or confirmed, so it says 'none'. Either way, not 'confirmed'.
    expect(state).not.toBe('confirmed');
    expect(['pending', 'none']).toContain(state);
  });

  test('a reachable owner gets the notice on their own topic; the notification topic gets it as usual', async () => {
    const { topicArn: erinTopic } = await notifier().ensureSubscribed('erin@example.com');
    const erinsInbox = await subscribedQueue('erin-own-topic', erinTopic);
    const everything = await subscribedQueue('all-notices-2', topicArn);
    const notice = rotatedNotice('app-3', ['erin@example.com']);

    await expect(notifier().publish(notice, ['erin@example.com'])).resolves.toEqual({
      undeliveredOwners: [],
    });

    const [own] = await drain(erinsInbox);
    expect(own).toMatchObject({ TopicArn: erinTopic, Subject: notice.subject });
    expect(JSON.parse(own!.Message)).toMatchObject({ newKeyId: 'AKIANEWKEY0000000001' });
    const [shared] = await drain(everything);
    expect(shared?.MessageAttributes?.owner?.Value).toBe(JSON.stringify(['erin@example.com']));
  });

  test('an owner not reachable on a topic: the default recipients get the notice, saying for whom', async () => {
    const defaults = await subscribedQueue('default-notices-2', topicArn, { owner: ['default'] });
    const notice = rotatedNotice('app-4', ['frank@example.com', 'grace@example.com']);

    // frank never subscribed; grace is taken for reachable but has no topic (SNS answers NotFound).
    const outcome = await notifier().publish(notice, ['grace@example.com']);

    expect(outcome).toEqual({ undeliveredOwners: ['frank@example.com', 'grace@example.com'] });
    const [detour] = await drain(defaults);
    expect(detour?.MessageAttributes?.owner?.Value).toBe(
      JSON.stringify(['frank@example.com', 'grace@example.com', 'default']),
    );
    expect(JSON.parse(detour!.Message)).toMatchObject({
      undeliveredOwners: 'frank@example.com grace@example.com',
    });
  });
});
