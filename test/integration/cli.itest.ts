/**
 * The operator CLI as an operator runs it: `node cli/keyrot.cjs ...` in a process of its own, against
 * the emulator, with exit codes, stdout and stderr checked, and the outcome read back from the
 * emulator (keys, secrets, ledger items, notices).
 *
 * The tests are one story and run in order, each from the state the one before left: day 0 (young
 * keys), a compliance report on day 95, an operator's rotation of a leaked key on day 0, then the
 * whole pipeline on day 32, twice. Days are moved in the spawned process only (shift-clock.cjs); the
 * emulator keeps its own clock, so every key, seeded or created by the CLI, carries the emulator's
 * "now". A key the CLI creates on day 32 therefore looks 32 days old to later runs: the settings give
 * a grace (50 days) longer than any day a run is shifted to after a rotation, so that this never
 * changes a decision (see README.md, "Ages and time").
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
  ListAccessKeysCommand,
} from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetResourcePolicyCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { OWNER_PARTITION } from '../../lambda/adapters/dynamodb-ledger';
import { PLACEHOLDER_VERSION, secretVersionToken } from '../../lambda/domain/naming';
import { daysBetween, MS_PER_DAY } from '../../lambda/domain/time';
import { deployedTemplate, PROJECT_ROOT, resourceOf } from './deployed';
import { awsEnvironment, emulatorUrl, issuedSecretMatches } from './emulator';
import { FlakyNetwork } from './flaky-network';

const ACCOUNT = '123456789012'; // moto's default account
const TABLE = 'keyrot-ledger';
const SECRET_PREFIX = 'iam-key-rotation';
const OWNER_TAG = 'key-rotation:owner';
const EXEMPT_TAG = 'key-rotation:exempt';
const CLI = join(PROJECT_ROOT, 'cli', 'keyrot.cjs');
const SHIFT_CLOCK = join(__dirname, 'shift-clock.cjs');

/**
 * The deployed settings (the template's RotationSettings output) with a shorter rotation and a longer
 * grace: rotateAfterDays + graceDays still within maxKeyAgeDays (90), and a grace longer than the
 * 32 days a run is shifted to after rotating (see the file comment).
 */
function settings(): Record<string, unknown> {
  const output = deployedTemplate().Outputs?.RotationSettings?.Value;
  if (typeof output !== 'string') throw new Error('the template has no literal RotationSettings output');
  return {
    ...(JSON.parse(output) as Record<string, unknown>),
    rotateAfterDays: 30,
    warnDays: 5,
    graceDays: 50,
  };
}

const iam = new IAMClient({});
const secrets = new SecretsManagerClient({});
const sqs = new SQSClient({});
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}));

interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The process's (shifted) clock when it started and when it ended: ages fall between. */
  readonly shiftedFrom: Date;
  readonly shiftedTo: Date;
}

/**
 * Runs `keyrot` as an operator would, `days` days from now, with the given credentials. Relies on a
 * moto gap: it checks no signing time, so a process whose clock is days ahead is answered at once. AWS
 * rejects a request signed about 15 minutes or more off its clock (the SDK then corrects its offset
 * and retries); that path is not exercised here (README, "Where moto differs").
 */
function keyrot(
  args: readonly string[],
  options: { days?: number; credentials?: Credentials; endpoint?: string } = {},
): Promise<CliResult> {
  const days = options.days ?? 0;
  const credentials = options.credentials;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    // Nothing from the machine's own AWS configuration.
    AWS_CONFIG_FILE: join(home, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
    ...awsEnvironment(),
    ...(options.endpoint ? { AWS_ENDPOINT_URL: options.endpoint } : {}),
    ...(credentials
      ? {
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
          AWS_SESSION_TOKEN: credentials.sessionToken ?? '',
        }
      : {}),
    NODE_OPTIONS: `--require ${JSON.stringify(SHIFT_CLOCK)}`,
    KEYROT_TEST_SHIFT_DAYS: String(days),
  };
  const shifted = () => new Date(Date.now() + days * MS_PER_DAY);
  const shiftedFrom = shifted();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: PROJECT_ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, shiftedFrom, shiftedTo: shifted() }));
  });
}

/** A user's seeded keys oldest first, as the policy orders them (creation time, then id). */
function byAge(userName: string): string[] {
  return [...seeded[userName]!].sort(
    (a, b) => createDates.get(a)!.getTime() - createDates.get(b)!.getTime() || a.localeCompare(b),
  );
}

/** The ages (days) a key created at `createDate` had during a run: one, or two across midnight UTC. */
function agesDuring(run: CliResult, createDate: Date): string {
  const ages = new Set([daysBetween(createDate, run.shiftedFrom), daysBetween(createDate, run.shiftedTo)]);
  return `(?:${[...ages].join('|')})`;
}

// ---------------------------------------------------------------------------------------------------
// The account and the resources of a deployment without the stack (README, "Without the stack")

let home: string;
let settingsFile: string;
let kmsKeyArn: string;
let topicArn: string;
let noticesQueueUrl: string;
let adminRoleArn: string;
let admin: Credentials;
/** Key ids by user, as seeded. */
const seeded: Record<string, string[]> = {};
const createDates = new Map<string, Date>();

async function createUser(userName: string, tags: Record<string, string>, keys: number): Promise<void> {
  await iam.send(
    new CreateUserCommand({
      UserName: userName,
      Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    }),
  );
  seeded[userName] = [];
  for (let index = 0; index < keys; index++) {
    const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: userName }));
    seeded[userName].push(AccessKey!.AccessKeyId!);
    createDates.set(AccessKey!.AccessKeyId!, AccessKey!.CreateDate!);
  }
}

/** The ledger table with the construct's key schema and billing, encrypted with our key. */
async function createLedgerTable(): Promise<void> {
  const [, table] = resourceOf(deployedTemplate(), 'AWS::DynamoDB::Table', 'KeyRotationLedger');
  const properties = table.Properties as {
    KeySchema: { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[];
    AttributeDefinitions: { AttributeName: string; AttributeType: 'S' | 'N' | 'B' }[];
    BillingMode: 'PAY_PER_REQUEST';
    SSESpecification: { SSEEnabled: boolean; SSEType: 'KMS' };
  };
  await new DynamoDBClient({}).send(
    new CreateTableCommand({
      TableName: TABLE,
      KeySchema: properties.KeySchema,
      AttributeDefinitions: properties.AttributeDefinitions,
      BillingMode: properties.BillingMode,
      SSESpecification: {
        Enabled: properties.SSESpecification.SSEEnabled,
        SSEType: properties.SSESpecification.SSEType,
        KMSMasterKeyId: kmsKeyArn,
      },
    }),
  );
}

/**
 * A queue subscribed to the notification topic: every notice the CLI publishes lands there. Relies on
 * a moto gap: it delivers SNS to SQS without a queue policy; AWS delivers only if the queue's policy
 * grants sqs:SendMessage to sns.amazonaws.com for this topic (README, "Where moto differs").
 */
async function tapNotices(): Promise<void> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'notices-tap' }));
  noticesQueueUrl = QueueUrl!;
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: noticesQueueUrl, AttributeNames: ['QueueArn'] }),
  );
  await new SNSClient({}).send(
    new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: Attributes!.QueueArn! }),
  );
}

interface Notice {
  readonly event: string;
  readonly userName: string;
  readonly owners: string[];
  /** The machine form (the `sqs` entry of the JSON message structure). */
  readonly message: string;
}

/** The notices published since the last call (each is read once). */
async function newNotices(): Promise<Notice[]> {
  const notices: Notice[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: noticesQueueUrl, MaxNumberOfMessages: 10 }),
    );
    if (Messages.length === 0) return notices;
    for (const message of Messages) {
      const envelope = JSON.parse(message.Body!) as {
        Message: string;
        MessageAttributes: Record<string, { Value: string }>;
      };
      notices.push({
        event: envelope.MessageAttributes.event!.Value,
        userName: envelope.MessageAttributes.userName!.Value,
        owners: JSON.parse(envelope.MessageAttributes.owner!.Value) as string[],
        message: envelope.Message,
      });
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: noticesQueueUrl, ReceiptHandle: message.ReceiptHandle! }),
      );
    }
  }
}

/**
 * The admin role (with a path, as in the README) and a session of it, as `--profile key-admin` gives.
 * moto's AssumeRole checks neither the role nor its trust policy, and no permission the role lacks is
 * refused, so this proves the CLI runs as the role's session, not that the role could do it on AWS
 * (README, "Where moto differs").
 */
async function adminSession(): Promise<void> {
  const { Role } = await iam.send(
    new CreateRoleCommand({
      RoleName: 'keyrot-admin',
      Path: '/ops/',
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' },
        ],
      }),
    }),
  );
  adminRoleArn = Role!.Arn!;
  const { Credentials } = await new STSClient({}).send(
    new AssumeRoleCommand({ RoleArn: adminRoleArn, RoleSessionName: 'operator' }),
  );
  admin = {
    accessKeyId: Credentials!.AccessKeyId!,
    secretAccessKey: Credentials!.SecretAccessKey!,
    sessionToken: Credentials!.SessionToken!,
  };
}

function readFlags(): string[] {
  return ['--table', TABLE, '--config', settingsFile];
}

function applyFlags(): string[] {
  return [
    ...readFlags(),
    '--topic-arn',
    topicArn,
    '--secret-prefix',
    SECRET_PREFIX,
    '--kms-key-arn',
    kmsKeyArn,
    '--admin-role-arn',
    adminRoleArn,
    '--rotator-role-arn',
    'none',
    '--secret-reader-arns',
    'none',
  ];
}

// ---------------------------------------------------------------------------------------------------
// Reading the outcome back

type LedgerItem = Record<string, unknown> & { pk: string; sk: string };

async function ledgerItems(): Promise<LedgerItem[]> {
  const { Items = [] } = await documents.send(new ScanCommand({ TableName: TABLE, ConsistentRead: true }));
  return (Items as LedgerItem[]).sort((a, b) => `${a.pk}/${a.sk}`.localeCompare(`${b.pk}/${b.sk}`));
}

async function ledgerRecord(userName: string): Promise<Record<string, unknown> | undefined> {
  const { Item } = await documents.send(
    new GetCommand({ TableName: TABLE, Key: { pk: ACCOUNT, sk: userName }, ConsistentRead: true }),
  );
  return Item;
}

async function keysOf(userName: string): Promise<{ id: string; status: string }[]> {
  const { AccessKeyMetadata = [] } = await iam.send(new ListAccessKeysCommand({ UserName: userName }));
  return AccessKeyMetadata.map((key) => ({ id: key.AccessKeyId!, status: key.Status! })).sort((a, b) =>
    a.id.localeCompare(b.id),
  );
}

async function allKeys(): Promise<Record<string, { id: string; status: string }[]>> {
  const users = Object.keys(seeded).sort();
  return Object.fromEntries(
    await Promise.all(users.map(async (user) => [user, await keysOf(user)] as const)),
  );
}

async function secretNames(): Promise<string[]> {
  const { SecretList = [] } = await secrets.send(new ListSecretsCommand({}));
  return SecretList.map((secret) => secret.Name!).sort();
}

async function secretStages(userName: string): Promise<Record<string, string[]>> {
  const { VersionIdsToStages = {} } = await secrets.send(
    new DescribeSecretCommand({ SecretId: `${SECRET_PREFIX}/${ACCOUNT}/${userName}` }),
  );
  return VersionIdsToStages;
}

/**
 * What the secret holds as AWSCURRENT, as its owner reads it; the secret itself is only compared,
 * never printed. The stage is named although AWS returns AWSCURRENT without one: moto differs, it
 * answers a read without VersionStage with the version last written as current (by CreateSecret, or
 * PutSecretValue without stages) and does not follow UpdateSecretVersionStage (README, "Where moto
 * differs").
 */
async function currentSecret(userName: string) {
  const { SecretString } = await secrets.send(
    new GetSecretValueCommand({
      SecretId: `${SECRET_PREFIX}/${ACCOUNT}/${userName}`,
      VersionStage: 'AWSCURRENT',
    }),
  );
  return JSON.parse(SecretString!) as { AccessKeyId: string; SecretAccessKey: string; UserName: string };
}

/**
 * Who STS says the stored key is. On moto this proves the key id only: its STS checks no signature,
 * so any secret signs as the key's user. issuedSecretMatches checks the secret itself.
 */
async function identityOf(credentials: { AccessKeyId: string; SecretAccessKey: string }): Promise<string> {
  const sts = new STSClient({
    credentials: { accessKeyId: credentials.AccessKeyId, secretAccessKey: credentials.SecretAccessKey },
  });
  const { Arn } = await sts.send(new GetCallerIdentityCommand({}));
  return Arn!;
}

/** Everything a run leaves in the emulator, but the ledger's version counters and locks. */
async function snapshot(): Promise<string> {
  const stages = Object.fromEntries(
    await Promise.all(
      (await secretNames()).map(
        async (name) =>
          [
            name,
            (await secrets.send(new DescribeSecretCommand({ SecretId: name }))).VersionIdsToStages,
          ] as const,
      ),
    ),
  );
  const ledger = (await ledgerItems()).map((item) => {
    const rest: Record<string, unknown> = { ...item };
    delete rest.version;
    delete rest.lock;
    return rest;
  });
  return JSON.stringify({ keys: await allKeys(), stages, ledger }, null, 1);
}

/** Rows of the report's CSV by column name (the values here hold no commas or quotes). */
function csvRows(text: string): Record<string, string>[] {
  const [header, ...lines] = text.trim().split('\n');
  const columns = header!.split(',');
  return lines.map((line) =>
    Object.fromEntries(line.split(',').map((cell, index) => [columns[index]!, cell])),
  );
}

// ---------------------------------------------------------------------------------------------------

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'keyrot-cli-itest-'));
  settingsFile = join(home, 'settings.json');
  writeFileSync(settingsFile, JSON.stringify(settings()));
  ({ KeyMetadata: { Arn: kmsKeyArn = '' } = {} } = await new KMSClient({}).send(
    new CreateKeyCommand({ Description: 'keyrot secrets and topics' }),
  ));
  await createLedgerTable();
  ({ TopicArn: topicArn = '' } = await new SNSClient({}).send(
    new CreateTopicCommand({ Name: 'keyrot-notices', Attributes: { KmsMasterKeyId: kmsKeyArn } }),
  ));
  await tapNotices();
  await adminSession();
  await createUser('deploy-bot', { [OWNER_TAG]: 'ci-team@example.com' }, 1);
  await createUser('vendor-sftp', { [EXEMPT_TAG]: 'vendor appliance until=2099-12-31' }, 1);
  await createUser('leaked-ci', { [OWNER_TAG]: 'sec@example.com' }, 1);
});

afterAll(() => {
  rmSync(home, { recursive: true, force: true });
});

describe('keyrot, spawned against the emulator', () => {
  test('plan on day 0: every key, current, nothing due (exit 0); nothing is written', async () => {
    const run = await keyrot(['plan', ...readFlags()]);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^USER\s+KEY\s+STATUS\s+AGE\s+LAST USED\s+OWNER\s+STAGE\s+ACTION\s+REASON$/);
    const [deployKey] = seeded['deploy-bot']!;
    const [vendorKey] = seeded['vendor-sftp']!;
    const [leakedKey] = seeded['leaked-ci']!;
    // 0, or 1 if midnight UTC passed since the keys were made.
    const age = (keyId: string) => agesDuring(run, createDates.get(keyId)!);
    expect(run.stdout).toMatch(
      new RegExp(
        `^deploy-bot +${deployKey} +Active +${age(deployKey!)}d +never +ci-team@example.com +current +-$`,
        'm',
      ),
    );
    expect(run.stdout).toMatch(
      new RegExp(
        `^vendor-sftp +${vendorKey} +Active +${age(vendorKey!)}d +never +default +current +exempt +vendor appliance \\(until 2099-12-31\\)$`,
        'm',
      ),
    );
    expect(run.stdout).toMatch(
      new RegExp(
        `^leaked-ci +${leakedKey} +Active +${age(leakedKey!)}d +never +sec@example.com +current +-$`,
        'm',
      ),
    );
    expect(run.stdout).toContain(
      `account ${ACCOUNT}: 3 users, 3 keys, 0 over 90 days; 0 user(s) with actions due (from the credential-report)`,
    );
    expect(await ledgerItems()).toEqual([]);
    expect(await secretNames()).toEqual([]);
  });

  test('report --format csv on day 95: keys over age, the exempt one, a conflict (exit 2); read-only', async () => {
    await createUser('two-keys', { [OWNER_TAG]: 'data@example.com' }, 2);
    const keysBefore = await allKeys();

    const run = await keyrot(['report', '--format', 'csv', ...readFlags()], { days: 95 });

    expect(run.stderr).toBe('');
    expect(run.code).toBe(2);
    expect(run.stdout.split('\n')[0]).toBe(
      'category,userName,accessKeyId,status,ageDays,lastUsed,owner,detail',
    );
    const rows = csvRows(run.stdout);
    const summary = rows.map((row) => `${row.category} ${row.userName} ${row.accessKeyId}`).sort();
    const [first, second] = seeded['two-keys']!;
    expect(summary).toEqual(
      [
        `over-policy-age deploy-bot ${seeded['deploy-bot']![0]}`,
        `over-policy-age leaked-ci ${seeded['leaked-ci']![0]}`,
        `exempt vendor-sftp ${seeded['vendor-sftp']![0]}`,
        `over-policy-age vendor-sftp ${seeded['vendor-sftp']![0]}`,
        `conflict two-keys ${first}`,
        `over-policy-age two-keys ${first}`,
        `conflict two-keys ${second}`,
        `over-policy-age two-keys ${second}`,
      ].sort(),
    );
    const deploy = rows.find((row) => row.userName === 'deploy-bot')!;
    expect(deploy).toMatchObject({ status: 'Active', lastUsed: 'never', owner: 'ci-team@example.com' });
    expect(deploy.ageDays).toMatch(new RegExp(`^${agesDuring(run, createDates.get(deploy.accessKeyId!)!)}$`));
    expect(deploy.detail).toBe('older than maxKeyAgeDays 90');
    expect(rows.find((row) => row.category === 'exempt')!.detail).toBe('vendor appliance (until 2099-12-31)');
    expect(await allKeys()).toEqual(keysBefore);
    expect(await ledgerItems()).toEqual([]);
    expect(await secretNames()).toEqual([]);
  });

  test('--apply without the resources, or as anyone but the admin role, is refused (exit 1); nothing is written', async () => {
    const bare = await keyrot(['run', '--apply']);
    const notAdmin = await keyrot(['rotate', '--user', 'leaked-ci', '--apply', ...applyFlags()]);

    expect(bare.code).toBe(1);
    for (const flag of [
      '--table NAME',
      '--topic-arn ARN',
      '--secret-prefix PREFIX',
      '--kms-key-arn ARN',
      '--config FILE',
      '--admin-role-arn ARN',
      '--rotator-role-arn ARN',
      '--secret-reader-arns ARN,ARN',
    ]) {
      expect(bare.stderr).toContain(flag);
    }
    expect(notAdmin.code).toBe(1);
    expect(notAdmin.stderr).toContain(`rotate --apply must run as the admin role ${adminRoleArn}`);
    expect(notAdmin.stderr).toContain('Nothing was changed');
    expect(bare.stdout + notAdmin.stdout).toBe('');
    expect(await keysOf('leaked-ci')).toEqual([{ id: seeded['leaked-ci']![0]!, status: 'Active' }]);
    expect(await ledgerItems()).toEqual([]);
    expect(await secretNames()).toEqual([]);
  });

  test('rotate --user NAME --apply for a name that is not a user: exit 1, no ledger record is made', async () => {
    const run = await keyrot(['rotate', '--user', 'ghost', '--apply', ...applyFlags()], {
      credentials: admin,
    });

    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`keyrot: user ghost does not exist in account ${ACCOUNT}; nothing was changed\n`);
    expect(await ledgerItems()).toEqual([]);
  });

  test('rotate --user NAME without --apply shows the rotation and changes nothing (exit 2)', async () => {
    const [oldKey] = seeded['leaked-ci']!;

    const run = await keyrot(['rotate', '--user', 'leaked-ci', ...readFlags()]);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(
      new RegExp(
        `^leaked-ci +planned +rotate +${oldKey} +- +rotation requested by an operator \\(keyrot rotate\\) \\(key is ${agesDuring(run, createDates.get(oldKey!)!)} days old\\)$`,
        'm',
      ),
    );
    expect(run.stdout).toContain('dry run: nothing was changed; add --apply to rotate');
    expect(await keysOf('leaked-ci')).toEqual([{ id: oldKey!, status: 'Active' }]);
    expect(await ledgerItems()).toEqual([]);
  });

  test('rotate --user NAME --apply as the admin role: the new key is stored, verified, promoted and announced (exit 0)', async () => {
    const [oldKey] = seeded['leaked-ci']!;

    const run = await keyrot(['rotate', '--user', 'leaked-ci', '--apply', ...applyFlags()], {
      credentials: admin,
    });

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const row = new RegExp(
      `^leaked-ci +done +rotate +${oldKey} +(AKIA[A-Z0-9]+) +rotation requested by an operator \\(keyrot rotate\\) \\(key is ${agesDuring(run, createDates.get(oldKey!)!)} days old\\)$`,
      'm',
    ).exec(run.stdout);
    expect(row).not.toBeNull();
    const newKey = row![1]!;
    // IAM: both keys active; the old one stays for the grace.
    expect(await keysOf('leaked-ci')).toEqual(
      [
        { id: oldKey!, status: 'Active' },
        { id: newKey, status: 'Active' },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
    // Secrets Manager: created with the placeholder, the verified key promoted over it.
    expect(await secretNames()).toEqual([`${SECRET_PREFIX}/${ACCOUNT}/leaked-ci`]);
    expect(await secretStages('leaked-ci')).toEqual({
      [PLACEHOLDER_VERSION.token]: ['AWSPREVIOUS'],
      [secretVersionToken(newKey)]: ['AWSCURRENT'],
    });
    const described = await secrets.send(
      new DescribeSecretCommand({ SecretId: `${SECRET_PREFIX}/${ACCOUNT}/leaked-ci` }),
    );
    expect(described.KmsKeyId).toBe(kmsKeyArn);
    expect(described.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'iam-key-rotation:managed', Value: 'true' },
        { Key: 'iam-key-rotation:user', Value: `${ACCOUNT}/leaked-ci` },
      ]),
    );
    const stored = await currentSecret('leaked-ci');
    // Compared without the secret, so that a failure never prints it.
    expect({ AccessKeyId: stored.AccessKeyId, UserName: stored.UserName }).toEqual({
      AccessKeyId: newKey,
      UserName: 'leaked-ci',
    });
    expect(await identityOf(stored)).toBe(`arn:aws:iam::${ACCOUNT}:user/leaked-ci`);
    expect(await issuedSecretMatches(newKey, stored.SecretAccessKey)).toBe(true);
    expect(await issuedSecretMatches(newKey, 'A'.repeat(40))).toBe(false); // the check can fail
    // I4: the secret went into the vault and nowhere else.
    expect(run.stdout + run.stderr).not.toContain(stored.SecretAccessKey);
    const { ResourcePolicy } = await secrets.send(
      new GetResourcePolicyCommand({ SecretId: `${SECRET_PREFIX}/${ACCOUNT}/leaked-ci` }),
    );
    const policy = JSON.parse(ResourcePolicy!) as {
      Statement: { Sid: string; Principal?: { AWS?: string[] } }[];
    };
    expect(
      policy.Statement.find((statement) => statement.Sid === 'KeyOwnerReadsOwnKey')?.Principal?.AWS,
    ).toEqual([`arn:aws:iam::${ACCOUNT}:user/leaked-ci`, adminRoleArn]);
    // The ledger: the pair is the service's, nothing left in flight or locked.
    const record = await ledgerRecord('leaked-ci');
    expect(record).toMatchObject({ rotations: [{ oldKeyId: oldKey, newKeyId: newKey }], outbox: [] });
    expect(record).not.toHaveProperty('lock');
    expect(record).not.toHaveProperty('inFlight');
    expect((record!.history as { action: string }[]).map((entry) => entry.action)).toEqual([
      'rotation.started',
      'rotation.stored',
      'key.rotated',
    ]);
    // The owner was subscribed (to a topic of their own), and the notice names the new key, not its secret.
    expect(
      (
        await documents.send(
          new GetCommand({ TableName: TABLE, Key: { pk: OWNER_PARTITION, sk: 'sec@example.com' } }),
        )
      ).Item,
    ).toMatchObject({ topicArn: expect.stringContaining(':iam-key-rotation-owner-') as unknown });
    const notices = await newNotices();
    expect(notices.map(({ event, userName }) => `${event} ${userName}`)).toEqual(['key.rotated leaked-ci']);
    expect(notices[0]!.owners).toContain('sec@example.com');
    expect(JSON.parse(notices[0]!.message)).toMatchObject({ newKeyId: newKey, oldKeyId: oldKey });
    expect(notices[0]!.message).not.toContain(stored.SecretAccessKey);
  });

  test('plan --json on day 32: the due key and the conflict (exit 2); the rotated pair is in its grace', async () => {
    const before = await snapshot();

    const run = await keyrot(['plan', '--json', ...readFlags()], { days: 32 });

    expect(run.stderr).toBe('');
    expect(run.code).toBe(2);
    const plan = JSON.parse(run.stdout) as {
      accountId: string;
      dryRun: boolean;
      users: {
        userName: string;
        actions: { kind: string; keyId?: string; keyIds?: string[]; reason: string }[];
        keys: { accessKeyId: string; stage: string }[];
        exemption?: { applies: boolean };
      }[];
      messages: { userName: string; dryRun: boolean }[];
    };
    expect(plan).toMatchObject({ accountId: ACCOUNT, dryRun: true });
    const user = (name: string) => plan.users.find((entry) => entry.userName === name)!;
    const [deployKey] = seeded['deploy-bot']!;
    expect(user('deploy-bot').actions).toEqual([
      {
        kind: 'rotate',
        keyId: deployKey,
        reason: expect.stringMatching(
          new RegExp(
            `^key is ${agesDuring(run, createDates.get(deployKey!)!)} days old; rotateAfterDays is 30$`,
          ),
        ) as unknown,
      },
    ]);
    expect(user('two-keys').actions).toEqual([
      expect.objectContaining({ kind: 'conflict', keyIds: byAge('two-keys') }),
    ]);
    expect(user('vendor-sftp')).toMatchObject({ actions: [], exemption: { applies: true } });
    // The ledger tells the service's own pair from a conflict.
    expect(user('leaked-ci').actions).toEqual([]);
    expect(user('leaked-ci').keys.find((key) => key.accessKeyId === seeded['leaked-ci']![0])?.stage).toBe(
      'in-grace',
    );
    expect(plan.messages.map((message) => message.userName).sort()).toEqual(['deploy-bot', 'two-keys']);
    expect(await snapshot()).toBe(before);
    expect(await newNotices()).toEqual([]);
  });

  test('run --apply on day 32 as the admin role: rotates exactly the due user, reports the conflict (exit 0)', async () => {
    const before = await allKeys();
    const [deployKey] = seeded['deploy-bot']!;

    const run = await keyrot(['run', '--apply', ...applyFlags()], { days: 32, credentials: admin });

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const row = new RegExp(
      `^deploy-bot +done +rotate +${deployKey} +(AKIA[A-Z0-9]+) +key is ${agesDuring(run, createDates.get(deployKey!)!)} days old; rotateAfterDays is 30$`,
      'm',
    ).exec(run.stdout);
    expect(row).not.toBeNull();
    const newKey = row![1]!;
    expect(run.stdout).toMatch(
      new RegExp(`^two-keys +done +conflict +${byAge('two-keys').join(' ')} +- +two active keys`, 'm'),
    );
    expect(run.stdout).toContain('\n2 user(s) done, 0 failed\n');
    const after = await allKeys();
    expect(after['deploy-bot']).toEqual(
      [
        { id: deployKey!, status: 'Active' },
        { id: newKey, status: 'Active' },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
    // Nobody else's keys changed.
    expect({ ...after, 'deploy-bot': [] }).toEqual({ ...before, 'deploy-bot': [] });
    expect(await secretNames()).toEqual([
      `${SECRET_PREFIX}/${ACCOUNT}/deploy-bot`,
      `${SECRET_PREFIX}/${ACCOUNT}/leaked-ci`,
    ]);
    expect(await secretStages('deploy-bot')).toEqual({
      [PLACEHOLDER_VERSION.token]: ['AWSPREVIOUS'],
      [secretVersionToken(newKey)]: ['AWSCURRENT'],
    });
    const stored = await currentSecret('deploy-bot');
    // Compared without the secret, so that a failure never prints it.
    expect({ AccessKeyId: stored.AccessKeyId, UserName: stored.UserName }).toEqual({
      AccessKeyId: newKey,
      UserName: 'deploy-bot',
    });
    expect(await identityOf(stored)).toBe(`arn:aws:iam::${ACCOUNT}:user/deploy-bot`);
    expect(await issuedSecretMatches(newKey, stored.SecretAccessKey)).toBe(true);
    expect(await ledgerRecord('deploy-bot')).toMatchObject({
      rotations: [{ oldKeyId: deployKey, newKeyId: newKey }],
      outbox: [],
    });
    const notices = await newNotices();
    expect(notices.map(({ event, userName }) => `${event} ${userName}`).sort()).toEqual([
      'key.rotated deploy-bot',
      'keys.conflict two-keys',
    ]);
    expect(notices.map((notice) => notice.message).join('\n')).not.toContain(stored.SecretAccessKey);
    expect(run.stdout).not.toContain(stored.SecretAccessKey);
  });

  test('a second run --apply the same day changes nothing (exit 0); the report shows the grace (exit 2)', async () => {
    const before = await snapshot();

    const again = await keyrot(['run', '--apply', ...applyFlags()], { days: 32, credentials: admin });
    const report = await keyrot(['report', '--format', 'csv', ...readFlags()], { days: 32 });

    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    // The conflict is still due (report only), and it is not announced again.
    expect(again.stdout).toMatch(/^two-keys +done +conflict /m);
    expect(again.stdout).not.toMatch(/^(deploy-bot|leaked-ci|vendor-sftp) /m);
    expect(again.stdout).toContain('\n1 user(s) done, 0 failed\n');
    expect(await snapshot()).toBe(before);
    expect(await newNotices()).toEqual([]);

    expect(report.stderr).toBe('');
    expect(report.code).toBe(2);
    expect(
      csvRows(report.stdout)
        .map((row) => `${row.category} ${row.userName} ${row.accessKeyId}`)
        .sort(),
    ).toEqual(
      [
        `in-grace deploy-bot ${seeded['deploy-bot']![0]}`,
        `in-grace leaked-ci ${seeded['leaked-ci']![0]}`,
        `exempt vendor-sftp ${seeded['vendor-sftp']![0]}`,
        `conflict two-keys ${seeded['two-keys']![0]}`,
        `conflict two-keys ${seeded['two-keys']![1]}`,
      ].sort(),
    );
  });

  test('rotate --user NAME --apply where a secret under our name is not ours: not rotated, exit 1, the secret untouched', async () => {
    await createUser('shared-svc', { [OWNER_TAG]: 'platform@example.com' }, 1);
    const name = `${SECRET_PREFIX}/${ACCOUNT}/shared-svc`;
    await secrets.send(
      new CreateSecretCommand({ Name: name, SecretString: JSON.stringify({ note: 'kept by another team' }) }),
    );
    const before = JSON.stringify(
      (await secrets.send(new DescribeSecretCommand({ SecretId: name }))).VersionIdsToStages,
    );

    const run = await keyrot(['rotate', '--user', 'shared-svc', '--apply', ...applyFlags()], {
      credentials: admin,
    });

    const why = `a secret named ${name} exists that this service did not create; it will not be overwritten`;
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`^shared-svc +done +refused +- +- +${why}$`, 'm'));
    expect(run.stderr).toBe(`keyrot: shared-svc was not rotated: ${why}; its key is unchanged\n`);
    expect(await keysOf('shared-svc')).toEqual([{ id: seeded['shared-svc']![0]!, status: 'Active' }]);
    expect(
      JSON.stringify((await secrets.send(new DescribeSecretCommand({ SecretId: name }))).VersionIdsToStages),
    ).toBe(before);
    expect((await newNotices()).map(({ event, userName }) => `${event} ${userName}`)).toEqual([
      'secret.conflict shared-svc',
    ]);
  });
});

/**
 * Connections lost on the wire (issue 12): the CLI talks to moto through a network that drops chosen
 * calls, after they took effect or before, as a timeout or a reset connection does. One invocation
 * must leave the account as a finished run would, or say exactly what it left behind.
 */
describe('keyrot --apply over a network that loses connections', () => {
  let network: FlakyNetwork;

  beforeAll(async () => {
    network = await FlakyNetwork.start(emulatorUrl());
  });

  afterEach(() => network.heal());

  afterAll(async () => {
    await network.stop();
  });

  /** The user's secret holds `keyId` as AWSCURRENT, its secret the one IAM issued. */
  async function expectCurrent(userName: string, keyId: string): Promise<void> {
    const stored = await currentSecret(userName);
    expect({ AccessKeyId: stored.AccessKeyId, UserName: stored.UserName }).toEqual({
      AccessKeyId: keyId,
      UserName: userName,
    });
    expect(await issuedSecretMatches(keyId, stored.SecretAccessKey)).toBe(true);
  }

  test("CreateAccessKey's answer lost: the unstored key is deleted and the rotation done again in the same invocation (exit 0)", async () => {
    await createUser('flaky-bot', { [OWNER_TAG]: 'ci-team@example.com' }, 1);
    const [oldKey] = seeded['flaky-bot']!;
    network.fail('CreateAccessKey', 'after');

    const run = await keyrot(['rotate', '--user', 'flaky-bot', '--apply', ...applyFlags()], {
      credentials: admin,
      endpoint: network.url,
    });

    expect(network.dropped).toEqual(['CreateAccessKey:after']);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/flaky-bot.*repaired on attempt 2/);
    const keys = await keysOf('flaky-bot');
    expect(keys).toHaveLength(2); // the old key and one new key: the orphan is gone
    expect(keys.every((key) => key.status === 'Active')).toBe(true);
    const newKey = keys.find((key) => key.id !== oldKey)!.id;
    await expectCurrent('flaky-bot', newKey);
    const record = await ledgerRecord('flaky-bot');
    expect(record).toMatchObject({ rotations: [{ oldKeyId: oldKey, newKeyId: newKey }], outbox: [] });
    expect(record).not.toHaveProperty('inFlight');
    expect(record).not.toHaveProperty('lock');
    expect((record!.history as { action: string }[]).map((entry) => entry.action)).toContain(
      'rotation.recovered',
    );
    expect((await newNotices()).map(({ event, userName }) => `${event} ${userName}`)).toEqual([
      'key.rotated flaky-bot',
    ]);
  });

  test("the secret's creation loses its answer once: the SDK's retry with the same ClientRequestToken is a no-op, the rotation finishes, nothing to repair (exit 0)", async () => {
    await createUser('flaky-store', { [OWNER_TAG]: 'ci-team@example.com' }, 1);
    const [oldKey] = seeded['flaky-store']!;
    network.fail('CreateSecret', 'after');

    const run = await keyrot(['rotate', '--user', 'flaky-store', '--apply', ...applyFlags()], {
      credentials: admin,
      endpoint: network.url,
    });

    expect(network.dropped).toEqual(['CreateSecret:after']);
    expect(network.calls.filter((call) => call === 'CreateSecret')).toHaveLength(2);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const keys = await keysOf('flaky-store');
    expect(keys).toHaveLength(2);
    const newKey = keys.find((key) => key.id !== oldKey)!.id;
    await expectCurrent('flaky-store', newKey);
    expect((await newNotices()).map(({ event, userName }) => `${event} ${userName}`)).toEqual([
      'key.rotated flaky-store',
    ]);
  });

  test("the secret's creation loses every answer: the key it cannot vouch for is deleted, and the same invocation rotates again (exit 0)", async () => {
    await createUser('lossy-store', { [OWNER_TAG]: 'ci-team@example.com' }, 1);
    const [oldKey] = seeded['lossy-store']!;
    network.fail('CreateSecret', 'after', 4); // the first attempt and the SDK's three retries

    const run = await keyrot(['rotate', '--user', 'lossy-store', '--apply', ...applyFlags()], {
      credentials: admin,
      endpoint: network.url,
    });

    expect(network.dropped).toEqual(Array(4).fill('CreateSecret:after'));
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/lossy-store.*repaired on attempt 2/);
    expect(network.calls.filter((call) => call === 'CreateAccessKey')).toHaveLength(2);
    const keys = await keysOf('lossy-store');
    expect(keys).toHaveLength(2); // the old key and the second new key: the first was deleted
    const newKey = keys.find((key) => key.id !== oldKey)!.id;
    await expectCurrent('lossy-store', newKey);
    const record = await ledgerRecord('lossy-store');
    expect(record).toMatchObject({ rotations: [{ oldKeyId: oldKey, newKeyId: newKey }], outbox: [] });
    expect(record).not.toHaveProperty('inFlight');
    expect((await newNotices()).map(({ event, userName }) => `${event} ${userName}`)).toEqual([
      'key.rotated lossy-store',
    ]);
  });

  test('a key that cannot be deleted is named with the command that deletes it (exit 1); the next run deletes it and rotates', async () => {
    await createUser('stuck-bot', { [OWNER_TAG]: 'ci-team@example.com' }, 1);
    const [oldKey] = seeded['stuck-bot']!;
    network.fail('CreateAccessKey', 'after');
    network.fail('DeleteAccessKey', 'before', Number.POSITIVE_INFINITY);

    const run = await keyrot(['rotate', '--user', 'stuck-bot', '--apply', '--json', ...applyFlags()], {
      credentials: admin,
      endpoint: network.url,
    });

    expect(run.code).toBe(1);
    const keys = await keysOf('stuck-bot');
    expect(keys).toHaveLength(2);
    const orphan = keys.find((key) => key.id !== oldKey)!.id;
    expect(run.stderr).toContain(`aws iam delete-access-key --user-name stuck-bot --access-key-id ${orphan}`);
    const output = JSON.parse(run.stdout) as {
      failures: { userName: string; attempts: number; leftBehind: { kind: string; keyId?: string }[] }[];
    };
    expect(output.failures).toMatchObject([
      { userName: 'stuck-bot', attempts: 4, leftBehind: [{ kind: 'unstored-key', keyId: orphan }] },
    ]);
    // The old key is untouched, and the intent in the ledger covers the orphan for the next run.
    expect(keys.find((key) => key.id === oldKey)?.status).toBe('Active');
    expect(await ledgerRecord('stuck-bot')).toMatchObject({
      inFlight: { phase: 'intent', oldKeyId: oldKey },
    });
    expect(await newNotices()).toEqual([]);

    network.heal();
    const next = await keyrot(['rotate', '--user', 'stuck-bot', '--apply', ...applyFlags()], {
      credentials: admin,
    });

    expect(next.code).toBe(0);
    const after = await keysOf('stuck-bot');
    expect(after.map((key) => key.id)).not.toContain(orphan);
    expect(after).toHaveLength(2);
    await expectCurrent('stuck-bot', after.find((key) => key.id !== oldKey)!.id);
  });
});
