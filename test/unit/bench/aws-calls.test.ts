/**
 * The bench's translation of port calls into AWS requests (bench/aws-calls.ts) is what the real
 * adapters send: each adapter is driven with mocked SDK clients through the cases the bench charges,
 * and the commands the clients received must be the translation, in order.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  CreateAccessKeyCommand,
  DeleteAccessKeyCommand,
  GenerateCredentialReportCommand,
  GetAccessKeyLastUsedCommand,
  GetCredentialReportCommand,
  GetUserCommand,
  IAMClient,
  LimitExceededException,
  ListAccessKeysCommand,
  ListUsersCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetResourcePolicyCommand,
  GetSecretValueCommand,
  PutResourcePolicyCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import {
  CreateTopicCommand,
  GetTopicAttributesCommand,
  NotFoundException,
  PublishCommand,
  SetTopicAttributesCommand,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { AwsStub, mockClient } from 'aws-sdk-client-mock';
import {
  DYNAMODB,
  IAM,
  LAMBDA,
  NotifierSetup,
  queryPages,
  screeningItemBytes,
  SECRETS_MANAGER,
  SNS,
  SQS,
  STS,
} from '../../../bench/aws-calls';
import { DynamoLedger } from '../../../lambda/adapters/dynamodb-ledger';
import { IamAdapter } from '../../../lambda/adapters/iam';
import { LambdaContinuation } from '../../../lambda/adapters/lambda-invoke';
import { POLICY_SIDS, SecretsManagerVault } from '../../../lambda/adapters/secrets-manager';
import { SnsNotifier } from '../../../lambda/adapters/sns';
import { SqsWorkQueue } from '../../../lambda/adapters/sqs-queue';
import { StsVerifier } from '../../../lambda/adapters/sts';
import { WORK_MESSAGE_VERSION, WorkMessage } from '../../../lambda/contract';
import { emptyLedger, NewAccessKey, OwnerNotification } from '../../../lambda/domain/model';
import { PLACEHOLDER_VERSION, SECRET_TAGS, secretVersionToken } from '../../../lambda/domain/naming';
import type { SecretDescription, SecretRef } from '../../../lambda/ports';

const ACCOUNT = '111122223333';
const REGION = {
  region: 'eu-west-1',
  credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  maxAttempts: 1,
};

/** `service:Operation` of each command a mocked client received, in order. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function received(service: string, stub: AwsStub<any, any, any>): string[] {
  return stub.calls().map((call) => {
    const name = (call.args[0] as object).constructor.name.replace(/Command$/, '');
    return `${service}:${DOCUMENT_COMMANDS[name] ?? name}`;
  });
}

/** The document client's commands, by the DynamoDB operation each sends. */
const DOCUMENT_COMMANDS: Record<string, string> = {
  Get: 'GetItem',
  Put: 'PutItem',
  Update: 'UpdateItem',
  Query: 'Query',
};

/** Runs `run`, ignoring a rejection (the requests sent are what is checked). */
async function settled(run: () => Promise<unknown>): Promise<void> {
  await run().catch(() => undefined);
}

describe('IAM (IamAdapter)', () => {
  const iam = mockClient(IAMClient);
  const adapter = () => new IamAdapter(new IAMClient(REGION), new IAMClient(REGION));
  beforeEach(() => iam.reset());
  afterAll(() => iam.restore());

  /** ListUsers answering `total` users, 100 a page as IAM does by default. */
  function users(total: number) {
    iam.on(ListUsersCommand).callsFake((input: { Marker?: string; MaxItems?: number }) => {
      const start = Number(input.Marker ?? 0);
      const size = input.MaxItems ?? 100;
      const end = Math.min(total, start + size);
      return {
        Users: Array.from({ length: end - start }, (_, index) => ({
          UserName: `user-${start + index}`,
          Arn: `arn:aws:iam::${ACCOUNT}:user/user-${start + index}`,
          Path: '/',
          UserId: 'AIDA',
          CreateDate: new Date(0),
        })),
        IsTruncated: end < total,
        ...(end < total ? { Marker: String(end) } : {}),
      };
    });
  }

  test.each([0, 1, 100, 101, 250])(
    'listUsers over %i users: one ListUsers per page of 100',
    async (total) => {
      users(total);

      const listed = await adapter().listUsers();

      expect(listed).toHaveLength(total);
      expect(received('iam', iam)).toEqual(IAM.listUsers(total));
    },
  );

  test('the report, a user, its keys and their last use: one request each', async () => {
    iam.on(GenerateCredentialReportCommand).resolves({ State: 'COMPLETE' });
    iam
      .on(GetCredentialReportCommand)
      .resolves({ Content: new TextEncoder().encode('user\n'), GeneratedTime: new Date() });
    iam.on(GetUserCommand).resolves({
      User: { UserName: 'alice', Arn: 'arn', Path: '/', UserId: 'AIDA', CreateDate: new Date(0) },
    });
    iam.on(ListAccessKeysCommand).resolves({
      AccessKeyMetadata: [
        { AccessKeyId: 'AKIA1', Status: 'Active', CreateDate: new Date(0) },
        { AccessKeyId: 'AKIA2', Status: 'Inactive', CreateDate: new Date(0) },
      ],
      IsTruncated: false,
    });
    iam
      .on(GetAccessKeyLastUsedCommand)
      .resolves({ AccessKeyLastUsed: { LastUsedDate: new Date(0), Region: 'x', ServiceName: 'x' } });
    const iamAdapter = adapter();

    await iamAdapter.generateCredentialReport();
    await iamAdapter.getCredentialReport();
    await iamAdapter.getUser('alice');
    const keys = await iamAdapter.listAccessKeys('alice');
    await iamAdapter.getAccessKeyLastUsed('AKIA1');

    expect(received('iam', iam)).toEqual([
      ...IAM.generateCredentialReport(),
      ...IAM.getCredentialReport(),
      ...IAM.getUser(),
      ...IAM.listAccessKeys(keys.length),
      ...IAM.getAccessKeyLastUsed(),
    ]);
  });

  test('create (also refused: a single attempt), update and delete a key: one request each', async () => {
    iam
      .on(CreateAccessKeyCommand)
      .resolvesOnce({
        AccessKey: {
          UserName: 'alice',
          AccessKeyId: 'AKIA3',
          SecretAccessKey: 's',
          Status: 'Active',
          CreateDate: new Date(),
        },
      })
      .rejects(
        new LimitExceededException({
          message: 'Cannot exceed quota for AccessKeysPerUser: 2',
          $metadata: {},
        }),
      );
    iam.on(UpdateAccessKeyCommand).resolves({});
    iam.on(DeleteAccessKeyCommand).resolves({});
    const iamAdapter = new IamAdapter(
      new IAMClient({ ...REGION, maxAttempts: 3 }),
      new IAMClient({ ...REGION, maxAttempts: 1 }),
    );

    await iamAdapter.createAccessKey('alice');
    await settled(() => iamAdapter.createAccessKey('alice'));
    await iamAdapter.updateAccessKey('alice', 'AKIA1', 'Inactive');
    await iamAdapter.deleteAccessKey('alice', 'AKIA1');

    expect(received('iam', iam)).toEqual([
      ...IAM.createAccessKey(),
      ...IAM.createAccessKey(),
      ...IAM.updateAccessKey(),
      ...IAM.deleteAccessKey(),
    ]);
  });
});

describe('STS (StsVerifier)', () => {
  const sts = mockClient(STSClient);
  afterAll(() => sts.restore());

  test('one GetCallerIdentity per attempt, accepted or not yet valid', async () => {
    sts
      .on(GetCallerIdentityCommand)
      .rejectsOnce(Object.assign(new Error('invalid'), { name: 'InvalidClientTokenId' }))
      .resolves({ Arn: 'arn', Account: ACCOUNT });
    const verifier = new StsVerifier({ region: 'eu-west-1' });

    await settled(() => verifier.callerIdentity({ accessKeyId: 'AKIA3', secretAccessKey: 's' }));
    await verifier.callerIdentity({ accessKeyId: 'AKIA3', secretAccessKey: 's' });

    expect(received('sts', sts)).toEqual([...STS.callerIdentity(), ...STS.callerIdentity()]);
  });
});

describe('Secrets Manager (SecretsManagerVault)', () => {
  const secrets = mockClient(SecretsManagerClient);
  beforeEach(() => secrets.reset());
  afterAll(() => secrets.restore());

  const REF: SecretRef = {
    accountId: ACCOUNT,
    userName: 'alice',
    name: `iam-key-rotation/${ACCOUNT}/alice`,
    userArn: `arn:aws:iam::${ACCOUNT}:user/alice`,
  };
  const KEY: NewAccessKey = {
    userName: 'alice',
    accessKeyId: 'AKIA3',
    secretAccessKey: 's',
    createDate: new Date(0),
  };
  const TOKEN = secretVersionToken(KEY.accessKeyId);
  const OURS: { Key: string; Value: string }[] = [
    { Key: SECRET_TAGS.managed, Value: 'true' },
    { Key: SECRET_TAGS.user, Value: `${ACCOUNT}/alice` },
  ];
  const vault = () =>
    new SecretsManagerVault(
      {
        kmsKeyArn: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1`,
        serviceRoleArn: `arn:aws:iam::${ACCOUNT}:role/iam-key-rotation-rotator`,
      },
      new SecretsManagerClient(REGION),
    );
  const notFound = () => new ResourceNotFoundException({ message: 'not found', $metadata: {} });
  /** Our secret as the rotation's own DescribeSecret saw it: the placeholder current. */
  const DESCRIBED: SecretDescription = {
    managedByUs: true,
    pendingDeletion: false,
    rotationEnabled: false,
    versions: [],
    currentVersionId: PLACEHOLDER_VERSION.token,
  };

  function existing(stages: Record<string, string[]>, tags = OURS, extra: object = {}) {
    secrets
      .on(DescribeSecretCommand)
      .resolves({ Name: REF.name, Tags: tags, VersionIdsToStages: stages, ...extra });
  }

  /** The policy the adapter writes, as GetResourcePolicy returns it; `changed`: one reader fewer. */
  function policy(adapter: SecretsManagerVault, state: 'ours' | 'changed' | 'none') {
    if (state === 'none') return secrets.on(GetResourcePolicyCommand).resolves({});
    const document = adapter.resourcePolicy(REF);
    const statements =
      state === 'ours'
        ? document.Statement
        : document.Statement.map((statement) =>
            statement.Sid === POLICY_SIDS.allowReaders ? { ...statement, Principal: { AWS: [] } } : statement,
          );
    return secrets
      .on(GetResourcePolicyCommand)
      .resolves({ ResourcePolicy: JSON.stringify({ ...document, Statement: statements }) });
  }

  function writes() {
    secrets.on(CreateSecretCommand).resolves({});
    secrets.on(PutResourcePolicyCommand).resolves({});
    secrets.on(PutSecretValueCommand).resolves({});
  }

  test('describe: one DescribeSecret', async () => {
    existing({});

    await vault().describe(REF);

    expect(received('secretsmanager', secrets)).toEqual(SECRETS_MANAGER.describe());
  });

  test.each([
    ['the store describes it itself', undefined],
    ['the rotation found none (absent)', 'absent' as const],
  ])('store into a new secret, %s: create (with a placeholder), policy, value', async (_case, known) => {
    secrets.on(DescribeSecretCommand).rejects(notFound());
    writes();

    await vault().store(REF, KEY, known);

    expect(received('secretsmanager', secrets)).toEqual(
      SECRETS_MANAGER.store({ known, existed: false, policyChanged: true }),
    );
  });

  test('store told `absent` of a secret created since: CreateSecret refused, then described', async () => {
    const adapter = vault();
    existing({ [PLACEHOLDER_VERSION.token]: ['AWSCURRENT'] });
    secrets
      .on(CreateSecretCommand)
      .rejects(new ResourceExistsException({ message: 'exists', $metadata: {} }));
    secrets.on(PutSecretValueCommand).resolves({});
    policy(adapter, 'ours');

    await adapter.store(REF, KEY, 'absent');

    expect(received('secretsmanager', secrets)).toEqual(
      SECRETS_MANAGER.store({ known: 'absent', existed: true, policyChanged: false }),
    );
  });

  test.each([
    ['the store describes it; policy ours', undefined, 'ours' as const, false],
    ['the store describes it; policy to change', undefined, 'changed' as const, true],
    ['the rotation described it; policy ours', 'description' as const, 'ours' as const, false],
    ['the rotation described it; policy to change', 'description' as const, 'changed' as const, true],
  ])('store into our secret, %s', async (_case, known, state, changed) => {
    const adapter = vault();
    existing({ [PLACEHOLDER_VERSION.token]: ['AWSCURRENT'] });
    policy(adapter, state);
    writes();

    await adapter.store(REF, KEY, known === 'description' ? DESCRIBED : undefined);

    expect(received('secretsmanager', secrets)).toEqual(
      SECRETS_MANAGER.store({ known, existed: true, policyChanged: changed }),
    );
  });

  test('store given a description, into a secret whose policy is not ours any more: described again', async () => {
    const adapter = vault();
    existing({ [PLACEHOLDER_VERSION.token]: ['AWSCURRENT'] });
    policy(adapter, 'none');
    writes();

    await adapter.store(REF, KEY, DESCRIBED);

    expect(received('secretsmanager', secrets)).toEqual(
      SECRETS_MANAGER.store({
        known: 'description',
        existed: true,
        policyChanged: true,
        policyNotOurs: true,
      }),
    );
  });

  test.each([
    ['a secret that is not ours', [{ Key: 'team', Value: 'other' }], {}],
    ["a secret that Secrets Manager's own rotation turns", OURS, { RotationEnabled: true }],
  ])('store refused for %s (described by the store): the DescribeSecret only', async (_case, tags, extra) => {
    existing({}, tags, extra);

    await settled(() => vault().store(REF, KEY));

    expect(received('secretsmanager', secrets)).toEqual(
      SECRETS_MANAGER.store({ existed: true, refused: true, policyChanged: false }),
    );
  });

  test('store refused on the rotation’s own description: no request', async () => {
    await settled(() => vault().store(REF, KEY, { ...DESCRIBED, managedByUs: false }));

    expect(received('secretsmanager', secrets)).toEqual(
      SECRETS_MANAGER.store({ known: 'description', existed: true, refused: true, policyChanged: false }),
    );
    expect(received('secretsmanager', secrets)).toEqual([]);
  });

  test.each([
    ['pending, not current', { [PLACEHOLDER_VERSION.token]: ['AWSCURRENT'], [TOKEN]: ['AWSPENDING'] }],
    ['current and still pending', { [TOKEN]: ['AWSCURRENT', 'AWSPENDING'] }],
    ['current already', { [TOKEN]: ['AWSCURRENT'], [secretVersionToken('AKIA1')]: ['AWSPREVIOUS'] }],
    ['not there', { [PLACEHOLDER_VERSION.token]: ['AWSCURRENT'] }],
  ])('promote a version %s, described by the promote', async (_case, stages: Record<string, string[]>) => {
    existing(stages);
    secrets.on(UpdateSecretVersionStageCommand).resolves({});

    await settled(() => vault().promote(REF, KEY.accessKeyId));

    const stagesOfKey = stages[TOKEN];
    expect(received('secretsmanager', secrets)).toEqual(
      SECRETS_MANAGER.promote({
        hasVersion: stagesOfKey !== undefined,
        current: stagesOfKey?.includes('AWSCURRENT') ?? false,
        pending: stagesOfKey?.includes('AWSPENDING') ?? false,
      }),
    );
  });

  test('promote the secret as the store left it: no DescribeSecret, the two label moves', async () => {
    const adapter = vault();
    secrets.on(DescribeSecretCommand).rejects(notFound());
    writes();
    secrets.on(UpdateSecretVersionStageCommand).resolves({});
    const { secret } = await adapter.store(REF, KEY, 'absent');
    secrets.resetHistory();

    await adapter.promote(REF, KEY.accessKeyId, secret);

    expect(received('secretsmanager', secrets)).toEqual(
      SECRETS_MANAGER.promote({ described: true, hasVersion: true, current: false, pending: true }),
    );
  });

  test('read a key: one GetSecretValue', async () => {
    secrets.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({ AccessKeyId: KEY.accessKeyId, SecretAccessKey: 's' }),
    });

    await vault().read(REF, KEY.accessKeyId);

    expect(received('secretsmanager', secrets)).toEqual(SECRETS_MANAGER.read());
  });

  test.each([
    ['already ours', true, false],
    ['to change', true, true],
    ['of a secret that is gone', false, false],
  ])('settlePolicy with a policy %s', async (_case, exists, changed) => {
    const adapter = vault();
    if (!exists) secrets.on(GetResourcePolicyCommand).rejects(notFound());
    else policy(adapter, changed ? 'changed' : 'ours');
    secrets.on(PutResourcePolicyCommand).resolves({});

    await settled(() => adapter.settlePolicy(REF));

    expect(received('secretsmanager', secrets)).toEqual(
      SECRETS_MANAGER.settlePolicy({ exists, policyChanged: changed }),
    );
  });
});

describe('Lambda (LambdaContinuation)', () => {
  const lambda = mockClient(LambdaClient);
  afterAll(() => lambda.restore());

  test('the planner continues a run: one Invoke (Event)', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });

    await new LambdaContinuation(new LambdaClient(REGION)).continueRun('planner', {
      dryRun: false,
      startAfter: 'user-02000',
      plannedAt: '2026-01-01T02:00:00.000Z',
    });

    expect(received('lambda', lambda)).toEqual(LAMBDA.continueRun());
  });
});

describe('SNS (SnsNotifier)', () => {
  const sns = mockClient(SNSClient);
  beforeEach(() => sns.reset());
  afterAll(() => sns.restore());

  const TOPIC = `arn:aws:sns:eu-west-1:${ACCOUNT}:notices`;
  const DEPLOYED: NotifierSetup = { ownerTopics: true, opsTopic: true, kmsKey: true };
  const notifier = (setup: NotifierSetup) =>
    new SnsNotifier(
      {
        topicArn: TOPIC,
        ...(setup.ownerTopics ? { ownerTopicPrefix: 'iam-key-rotation-owner-' } : {}),
        ...(setup.kmsKey ? { kmsKeyArn: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/1` } : {}),
        ...(setup.opsTopic ? { opsTopicArn: `arn:aws:sns:eu-west-1:${ACCOUNT}:ops` } : {}),
      },
      new SNSClient(REGION),
    );
  const notice = (recipients: string[], toOperators = false): OwnerNotification => ({
    event: 'key.rotated',
    accountId: ACCOUNT,
    userName: 'alice',
    owner: recipients[0]!,
    recipients,
    subject: 'subject',
    text: 'text',
    details: {},
    dedupeId: 'd',
    ...(toOperators ? { toOperators } : {}),
  });

  test.each([
    ['an owner reachable on their topic', DEPLOYED, ['alice@example.com'], ['alice@example.com'], false],
    ['an owner not reachable yet', DEPLOYED, ['alice@example.com'], [], false],
    [
      'two owners, one reachable, for operators too',
      DEPLOYED,
      ['alice@example.com', 'bob@example.com'],
      ['bob@example.com'],
      true,
    ],
    ['the default recipients', DEPLOYED, ['default'], [], false],
    [
      'without owner topics or an ops topic',
      { ownerTopics: false, opsTopic: false, kmsKey: false },
      ['alice@example.com'],
      ['alice@example.com'],
      true,
    ],
  ])('publish to %s', async (_case, setup, recipients, reachable, toOperators) => {
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const message = notice(recipients, toOperators);

    await notifier(setup).publish(message, reachable);

    expect(received('sns', sns)).toEqual(SNS.publish(setup, message, reachable));
  });

  test("publish to a reachable owner whose topic is gone still sends that owner's Publish", async () => {
    sns
      .on(PublishCommand)
      .rejectsOnce(new NotFoundException({ message: 'Topic does not exist', $metadata: {} }))
      .resolves({ MessageId: 'm' });
    const message = notice(['alice@example.com']);

    const outcome = await notifier(DEPLOYED).publish(message, ['alice@example.com']);

    expect(outcome.undeliveredOwners).toEqual(['alice@example.com']);
    expect(received('sns', sns)).toEqual(SNS.publish(DEPLOYED, message, ['alice@example.com']));
  });

  test.each([
    ['with a KMS key', DEPLOYED],
    ['without', { ...DEPLOYED, kmsKey: false }],
  ])('ensureSubscribed %s: CreateTopic, its attributes, Subscribe', async (_case, setup) => {
    sns.on(CreateTopicCommand).resolves({ TopicArn: `${TOPIC}-owner` });
    sns.on(SetTopicAttributesCommand).resolves({});
    sns.on(SubscribeCommand).resolves({ SubscriptionArn: 'pending confirmation' });

    await notifier(setup).ensureSubscribed('alice@example.com');

    expect(received('sns', sns)).toEqual(SNS.ensureSubscribed(setup));
  });

  test('subscriptionState: one GetTopicAttributes', async () => {
    sns.on(GetTopicAttributesCommand).resolves({ Attributes: { SubscriptionsConfirmed: '1' } });

    await notifier(DEPLOYED).subscriptionState('alice@example.com');

    expect(received('sns', sns)).toEqual(SNS.subscriptionState());
  });
});

describe('DynamoDB (DynamoLedger)', () => {
  const documents = mockClient(DynamoDBDocumentClient);
  beforeEach(() => documents.reset());
  afterAll(() => documents.restore());

  const ledger = () => new DynamoLedger('ledger', undefined);
  const conditionFailed = () =>
    new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

  test('load: one GetItem', async () => {
    documents.on(GetCommand).resolves({ Item: { pk: ACCOUNT, sk: 'alice', version: 1 } });

    await ledger().load(ACCOUNT, 'alice');

    expect(received('dynamodb', documents)).toEqual(DYNAMODB.load());
  });

  test.each([1, 3])('loadAccount over %i page(s): one Query per page', async (pageCount) => {
    for (let page = 0; page < pageCount; page++) {
      const last = page === pageCount - 1;
      documents
        .on(
          QueryCommand,
          page === 0
            ? { ExclusiveStartKey: undefined }
            : { ExclusiveStartKey: { pk: ACCOUNT, sk: `u${page}` } },
        )
        .resolves({
          Items: [{ pk: ACCOUNT, sk: `user-${page}`, version: 1 }],
          ...(last ? {} : { LastEvaluatedKey: { pk: ACCOUNT, sk: `u${page + 1}` } }),
        });
    }

    const records = await ledger().loadAccount(ACCOUNT);

    expect(records).toHaveLength(pageCount);
    expect(received('dynamodb', documents)).toEqual(DYNAMODB.loadAccount(pageCount));
  });

  test.each([1, 3])(
    'screenAccount over %i page(s) of the screening index: one Query per page, an empty page too',
    async (pageCount) => {
      for (let page = 0; page < pageCount; page++) {
        const last = page === pageCount - 1;
        documents
          .on(
            QueryCommand,
            page === 0
              ? { IndexName: 'screening', ExclusiveStartKey: undefined }
              : { IndexName: 'screening', ExclusiveStartKey: { pk: ACCOUNT, sk: `u${page}` } },
          )
          .resolves({
            // The middle page comes back empty, and is not the last.
            Items: page === 1 && !last ? [] : [{ pk: ACCOUNT, sk: `user-${page}` }],
            ...(last ? {} : { LastEvaluatedKey: { pk: ACCOUNT, sk: `u${page + 1}` } }),
          });
      }

      const records = await ledger().screenAccount(ACCOUNT);

      expect(records).toHaveLength(pageCount === 1 ? 1 : pageCount - 1);
      expect(received('dynamodb', documents)).toEqual(DYNAMODB.screenAccount(pageCount));
    },
  );

  test("screeningItemBytes: the keys and the screening fields as JSON, plus DynamoDB's 100 bytes, however long the history", () => {
    const record = {
      ...emptyLedger(ACCOUNT, 'alice'),
      version: 40,
      review: { keys: '2025-10-01T00:00:00Z:A', due: '2026-01-06T00:00:00.000Z' },
      inactiveSince: { AKIAOLDKEY000000001: '2025-12-30T02:00:00.000Z' },
    };
    const indexItem = {
      pk: ACCOUNT,
      sk: 'alice',
      review: record.review,
      inactiveSince: record.inactiveSince,
      outbox: [],
    };
    const withHistory = {
      ...record,
      history: Array.from({ length: 100 }, (_, index) => ({
        at: `2025-01-01T00:00:${index}Z`,
        event: 'key.rotated',
      })),
    };

    expect(screeningItemBytes(record)).toBe(Buffer.byteLength(JSON.stringify(indexItem)) + 100);
    expect(screeningItemBytes(withHistory)).toBe(screeningItemBytes(record));
  });

  test('queryPages: a page per MB read, at least one', () => {
    expect([0, 1, 1024 * 1024, 1024 * 1024 + 1, 5 * 1024 * 1024].map(queryPages)).toEqual([1, 1, 1, 2, 5]);
  });

  test('save, with the lock taken, released or neither, or refused: one conditional PutItem', async () => {
    documents.on(PutCommand).resolvesOnce({}).resolvesOnce({}).resolvesOnce({}).rejects(conditionFailed());
    const record = { ...emptyLedger(ACCOUNT, 'alice'), version: 1 };

    await ledger().save(record, { lock: { holder: 'run-1', until: new Date() } });
    await ledger().save({ ...record, lock: { holder: 'run-1', until: 'x' } }, { release: 'run-1' });
    await ledger().save(record);
    await settled(() => ledger().save(record, { lock: { holder: 'run-2', until: new Date() } }));

    expect(received('dynamodb', documents)).toEqual([
      ...DYNAMODB.save(),
      ...DYNAMODB.save(),
      ...DYNAMODB.save(),
      ...DYNAMODB.save(),
    ]);
  });

  test('releaseLock, held or not: one conditional UpdateItem', async () => {
    documents.on(UpdateCommand).resolvesOnce({}).rejects(conditionFailed());

    await ledger().releaseLock(ACCOUNT, 'alice', 'run-1');
    await ledger().releaseLock(ACCOUNT, 'alice', 'run-1');

    expect(received('dynamodb', documents)).toEqual([...DYNAMODB.releaseLock(), ...DYNAMODB.releaseLock()]);
  });

  test('owner subscriptions: a GetItem unless this container read or wrote it; PutItem to record one', async () => {
    documents
      .on(GetCommand, { Key: { pk: '#owner-subscriptions', sk: 'alice@example.com' } })
      .resolves({ Item: { topicArn: 'arn:topic', subscribedAt: '2026-01-01T00:00:00.000Z' } });
    documents.on(GetCommand, { Key: { pk: '#owner-subscriptions', sk: 'bob@example.com' } }).resolves({});
    documents.on(PutCommand).resolves({});
    const adapter = ledger();
    const expected: string[] = [];

    await adapter.findOwnerSubscription('alice@example.com'); // read: remembered
    expected.push(...DYNAMODB.findOwnerSubscription(false));
    await adapter.findOwnerSubscription('Alice@Example.com');
    expected.push(...DYNAMODB.findOwnerSubscription(true));
    await adapter.findOwnerSubscription('bob@example.com'); // none: not remembered
    expected.push(...DYNAMODB.findOwnerSubscription(false));
    await adapter.findOwnerSubscription('bob@example.com');
    expected.push(...DYNAMODB.findOwnerSubscription(false));
    await adapter.recordOwnerSubscription({
      owner: 'bob@example.com',
      topicArn: 'arn:topic',
      subscribedAt: '2026-01-02T00:00:00.000Z',
    });
    expected.push(...DYNAMODB.recordOwnerSubscription());
    await adapter.findOwnerSubscription('bob@example.com'); // written: remembered
    expected.push(...DYNAMODB.findOwnerSubscription(true));

    expect(received('dynamodb', documents)).toEqual(expected);
  });
});

describe('SQS (SqsWorkQueue)', () => {
  const sqs = mockClient(SQSClient);
  beforeEach(() => sqs.reset());
  afterAll(() => sqs.restore());

  const message = (index: number): WorkMessage => ({
    version: WORK_MESSAGE_VERSION,
    accountId: ACCOUNT,
    userName: `user-${index}`,
    dryRun: false,
    plannedActions: ['rotate'],
    plannedAt: '2026-01-01T02:00:00.000Z',
  });

  test.each([0, 1, 10, 11, 25])('send %i messages: one SendMessageBatch per 10', async (count) => {
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });

    await new SqsWorkQueue(
      'https://sqs.eu-west-1.amazonaws.com/111122223333/work.fifo',
      new SQSClient(REGION),
    ).send(Array.from({ length: count }, (_, index) => message(index)));

    expect(received('sqs', sqs)).toEqual(SQS.send(count));
  });
});
