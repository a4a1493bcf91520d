import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  CreateAccessKeyCommand,
  DeleteAccessKeyCommand,
  IAMClient,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import {
  DescribeSecretCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  CreateTopicCommand,
  SetTopicAttributesCommand,
  SNSClient,
  SubscribeCommand,
} from '@aws-sdk/client-sns';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { HELP, parseCli } from '../../../cli/args';
import { callerIsRole, connect, Connection, forWriting, Resources } from '../../../cli/connect';
import { POLICY_SIDS, SecretsManagerVault } from '../../../lambda/adapters/secrets-manager';
import { emptyLedger } from '../../../lambda/domain/model';
import { World } from '../../fakes/world';
import { ADMIN_ROLE, ADMIN_SESSION, keyrot, mockIamFrom, worldWiring } from './harness';

// The real wiring resolves a region before any call; the operator's shell would have one.
const regionBefore = process.env.AWS_REGION;
beforeAll(() => {
  process.env.AWS_REGION = 'eu-west-1';
});
afterAll(() => {
  if (regionBefore === undefined) delete process.env.AWS_REGION;
  else process.env.AWS_REGION = regionBefore;
});

const ROTATOR_ROLE = 'arn:aws:iam::111122223333:role/IamKeyRotation-Rotator';

const OWNER = (name: string) => ({ 'key-rotation:owner': `${name}@example.com` });

function account(): World {
  const world = new World({ start: '2026-03-01T09:00:00Z' });
  world.iam.addUser('alice', { tags: OWNER('alice') });
  world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 1 });
  world.iam.addUser('bob', { tags: OWNER('bob') });
  world.iam.addKey('bob', { ageDays: 10, lastUsedDaysAgo: 0 });
  world.iam.addUser('vendor', { tags: { 'key-rotation:exempt': 'appliance until=2026-12-31' } });
  world.iam.addKey('vendor', { ageDays: 200, lastUsedDaysAgo: 0 });
  return world;
}

describe('keyrot plan (real adapters, mocked SDK clients)', () => {
  // The real wiring uses the system clock: pin the date (only the date) to the fake account's.
  beforeEach(() => {
    jest.useFakeTimers({
      now: new Date('2026-03-01T09:00:00Z'),
      doNotFake: [
        'hrtime',
        'nextTick',
        'performance',
        'queueMicrotask',
        'requestAnimationFrame',
        'cancelAnimationFrame',
        'requestIdleCallback',
        'cancelIdleCallback',
        'setImmediate',
        'clearImmediate',
        'setInterval',
        'clearInterval',
        'setTimeout',
        'clearTimeout',
      ],
    });
  });
  afterEach(() => {
    jest.useRealTimers();
    mockClient(IAMClient).restore();
  });

  test('prints every key with its age, last use, owner, stage and the action due; exit 2', async () => {
    const world = account();
    const { iam } = mockIamFrom(world);

    const run = await keyrot('plan --region eu-west-1');

    expect(run.code).toBe(2);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^USER\s+KEY\s+STATUS\s+AGE\s+LAST USED\s+OWNER\s+STAGE\s+ACTION\s+REASON$/);
    const row = (user: string) => lines.find((line) => line.startsWith(`${user} `)) ?? '';
    expect(row('alice')).toMatch(
      /alice\s+AKIAFAKE\w+\s+Active\s+85d\s+2026-02-28\s+alice@example.com\s+due\s+rotate\s+key is 85 days old; rotateAfterDays is 80/,
    );
    expect(row('bob')).toMatch(
      /bob\s+AKIAFAKE\w+\s+Active\s+10d\s+2026-03-01\s+bob@example.com\s+current\s+-/,
    );
    expect(row('vendor')).toMatch(/vendor\s+.*\s+exempt\s+appliance \(until 2026-12-31\)/);
    expect(run.stdout).toContain(
      '3 users, 3 keys, 1 over 90 days; 1 user(s) with actions due (from the credential-report)',
    );
    expect(iam.commandCalls(CreateAccessKeyCommand)).toHaveLength(0);
    expect(world.faults.writes().filter((op) => op !== 'iam:GenerateCredentialReport')).toEqual([]);
  });

  test('--json prints the plan for machines; nothing due is exit 0', async () => {
    const world = new World({ start: '2026-03-01T09:00:00Z' });
    world.iam.addUser('bob', { tags: OWNER('bob') });
    world.iam.addKey('bob', { ageDays: 10 });
    mockIamFrom(world);

    const run = await keyrot('plan --json --account-id 111122223333');

    expect(run.code).toBe(0);
    const plan = JSON.parse(run.stdout) as {
      accountId: string;
      source: string;
      users: { userName: string; keys: { ageDays: number; stage: string }[]; actions: unknown[] }[];
    };
    expect(plan.accountId).toBe('111122223333');
    expect(plan.source).toBe('credential-report');
    expect(plan.users).toEqual([
      expect.objectContaining({
        userName: 'bob',
        actions: [],
        keys: [expect.objectContaining({ ageDays: 10, stage: 'current' })],
      }),
    ]);
  });

  test('--stack reads the deployed settings and ledger from the stack outputs', async () => {
    const world = new World({ start: '2026-03-01T09:00:00Z' });
    world.iam.addUser('carol', { tags: OWNER('carol') });
    world.iam.addKey('carol', { ageDays: 35 });
    mockIamFrom(world);
    const cloudFormation = mockClient(CloudFormationClient);
    cloudFormation.on(DescribeStacksCommand, { StackName: 'IamKeyRotation' }).resolves({
      Stacks: [
        {
          StackName: 'IamKeyRotation',
          CreationTime: new Date(0),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: [
            { OutputKey: 'LedgerTableName', OutputValue: 'ledger-table' },
            {
              OutputKey: 'RotationSettings',
              OutputValue: '{"rotateAfterDays":30,"graceDays":5,"maxKeyAgeDays":40}',
            },
            { OutputKey: 'SecretAdminRoleArn', OutputValue: 'none' },
          ],
        },
      ],
    });
    const dynamo = mockClient(DynamoDBDocumentClient);
    dynamo.on(QueryCommand).resolves({ Items: [] });

    const run = await keyrot('plan --stack IamKeyRotation --region eu-west-1');

    expect(run.stderr).toBe('');
    expect(run.code).toBe(2);
    expect(run.stdout).toContain('key is 35 days old; rotateAfterDays is 30');
    expect(dynamo.commandCalls(QueryCommand)[0]?.args[0].input).toMatchObject({ TableName: 'ledger-table' });
    cloudFormation.restore();
    dynamo.restore();
  });

  test('shows progress on a terminal only', async () => {
    const world = account();
    mockIamFrom(world);

    const onTerminal = await keyrot('plan --account-id 111122223333', undefined, true);
    const piped = await keyrot('plan --account-id 111122223333', undefined, false);

    expect(onTerminal.stderr).toContain('reading users 2/3');
    expect(piped.stderr).not.toContain('reading users');
  });
});

describe('keyrot report', () => {
  function reportAccount(): World {
    const world = account();
    world.iam.addUser('dave', { tags: OWNER('dave') });
    world.iam.addKey('dave', { ageDays: 120 });
    world.iam.addKey('dave', { ageDays: 100 }); // two foreign active keys
    return world;
  }

  test('CSV of the keys that matter, exit 2 when any is over age or in conflict', async () => {
    const world = reportAccount();

    const run = await keyrot('report', worldWiring(world));

    expect(run.code).toBe(2);
    const [header, ...rows] = run.stdout.trim().split('\n');
    expect(header).toBe('category,userName,accessKeyId,status,ageDays,lastUsed,owner,detail');
    expect(rows.map((row) => row.split(',').slice(0, 2).join(','))).toEqual([
      'exempt,vendor',
      'over-policy-age,vendor',
      'over-policy-age,dave',
      'conflict,dave',
      'over-policy-age,dave',
      'conflict,dave',
    ]);
    expect(rows[0]).toContain('appliance (until 2026-12-31)');
  });

  test('--format json has counts and rows; postponed and in-grace keys are listed', async () => {
    const world = new World({ start: '2026-03-01T09:00:00Z' });
    world.iam.addUser('erin', { tags: OWNER('erin') });
    const old = world.iam.addKey('erin', { ageDays: 80 });
    await world.rotate('erin'); // rotated today
    world.clock.advanceDays(8);
    world.iam.use(old); // still in use after the grace

    const run = await keyrot('report --format json', worldWiring(world));

    expect(run.code).toBe(2);
    const report = JSON.parse(run.stdout) as {
      counts: Record<string, number>;
      rows: { category: string; detail: string }[];
    };
    expect(report.counts).toMatchObject({ postponed: 1, 'in-grace': 0, 'over-policy-age': 0 });
    expect(report.rows[0]?.detail).toBe('still in use; enforced on 2026-03-11');

    world.clock.set('2026-03-03T09:00:00Z');
    const inGrace = JSON.parse((await keyrot('report --format json', worldWiring(world))).stdout) as {
      counts: Record<string, number>;
    };
    expect(inGrace.counts['in-grace']).toBe(1);
  });
});

describe('a user that cannot be read', () => {
  test('is named on stderr and makes the result incomplete (exit 1); the others are still listed', async () => {
    const world = account();
    world.faults.inject('iam:GetUser', 'throttle');

    const run = await keyrot('plan', worldWiring(world));

    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'keyrot: error: user could not be planned (user alice): ThrottledError: iam:GetUser: Rate exceeded\n',
    );
    expect(run.stdout).toMatch(/^bob\s/m);
  });
});

describe('keyrot run', () => {
  test('without --apply it is a dry run: nothing changes', async () => {
    const world = account();
    const before = world.iam.snapshot();

    const run = await keyrot('run', worldWiring(world));

    expect(run.code).toBe(2);
    expect(world.iam.snapshot()).toBe(before);
    expect(world.faults.writes().filter((op) => op !== 'iam:GenerateCredentialReport')).toEqual([]);
  });

  test('--apply rotates each user that needs it, with the same safety rules; a second run finds nothing', async () => {
    const world = account();
    world.verifier.propagationMs = 0;

    const run = await keyrot('run --apply', worldWiring(world));

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/alice\s+done\s+rotate\s+AKIAFAKE\w+\s+AKIAFAKE\w+\s+key is 85 days old/);
    expect(run.stdout).toContain('1 user(s) done, 0 failed');
    const alice = world.iam.users.get('alice')!.keys;
    expect(alice).toHaveLength(2);
    expect(world.vault.readStage(world.secretName('alice'))?.accessKeyId).toBe(alice[1]!.accessKeyId);
    expect(world.iam.users.get('vendor')!.keys).toHaveLength(1);
    expect(world.notifier.events('alice')).toEqual(['key.rotated']);

    const again = await keyrot('run --apply', worldWiring(world));
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('0 user(s) done, 0 failed');
  });

  test('--apply reports a failing user and exits 1', async () => {
    const world = account();
    world.faults.inject('iam:CreateAccessKey', 'access-denied');

    const run = await keyrot('run --apply --json', worldWiring(world));

    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as { failures: { userName: string; error: { name: string } }[] };
    expect(result.failures).toEqual([
      {
        userName: 'alice',
        error: { name: 'AccessDeniedError', message: 'iam:CreateAccessKey: not authorized' },
        // Not an unknown outcome: not retried, and nothing was created.
        attempts: 1,
        leftBehind: [],
      },
    ]);
  });

  test('--apply without the stack names everything it needs in one message', async () => {
    const world = account();
    mockIamFrom(world);

    const run = await keyrot('run --apply --account-id 111122223333');

    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'keyrot: run --apply writes what the Lambdas write, so it needs the deployed stack: pass --stack NAME, or without a stack all of ' +
        '--table NAME (the ledger table), --topic-arn ARN (the notification topic), --secret-prefix PREFIX, ' +
        '--kms-key-arn ARN (the key that encrypts the secrets), --config FILE (the settings the stack was deployed with), ' +
        "--admin-role-arn ARN or none (the stack's secretAdminRoleArn), --rotator-role-arn ARN or none (the stack's rotator role), " +
        "--secret-reader-arns ARN,ARN or none (the stack's secretReaderArns)\n" +
        'Run "keyrot run --help" for usage.\n',
    );
  });
});

describe('--apply follows the deployed policy', () => {
  const resources = {
    table: 'ledger',
    topicArn: 'arn:aws:sns:eu-west-1:111122223333:t',
    secretPrefix: 'iam-key-rotation',
    kmsKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/1',
    secretReaderArns: [],
  };
  const connection = (
    extra: Partial<Resources> = {},
    callerArn = ADMIN_SESSION('111122223333'),
  ): Connection => {
    const world = account();
    return {
      accountId: world.accountId,
      caller: { account: world.accountId, arn: callerArn },
      clock: world.clock,
      settings: world.settings,
      resources: { ...resources, ...extra },
      iam: world.iam,
      ledger: world.ledger,
    };
  };

  const roles = { adminRoleArn: ADMIN_ROLE('111122223333'), rotatorRoleArn: ROTATOR_ROLE };
  const refusal = (resources: Partial<Resources>, argv: string[]) => {
    try {
      forWriting(connection(resources), parseCli(argv), 'run');
    } catch (error) {
      return (error as Error).message;
    }
    return 'not refused';
  };

  test('setting flags are refused with --apply (an override could rotate an exempt user); the hint fits the source', () => {
    const overStack = refusal({ settingsJson: '{}', ...roles }, [
      'run',
      '--apply',
      '--exemption-tag',
      'other',
    ]);
    const overFile = refusal({ ...roles }, [
      'run',
      '--apply',
      '--config',
      'f.json',
      '--exemption-tag',
      'other',
    ]);

    expect(overStack).toBe(
      "run --apply follows the deployed policy; setting flags are for plan and report (what-if). To change the policy, change the stack's settings and redeploy",
    );
    expect(overStack).not.toContain('--config'); // --config over a stack's settings is refused too
    expect(overFile).toContain('Put the settings the stack was deployed with in the --config FILE');
  });

  test('without the stack settings or a --config file, --apply is refused', () => {
    expect(refusal({ ...roles }, ['run', '--apply'])).toContain(
      '--config FILE (the settings the stack was deployed with)',
    );
  });

  test('--config is refused with --apply when the stack gives the settings', () => {
    expect(refusal({ settingsJson: '{}', ...roles }, ['run', '--apply', '--config', 'whatif.json'])).toBe(
      "run --apply follows the stack's settings; leave --config out (it is for what-if plans and reports)",
    );
  });

  test('unknown roles (a stack without those outputs, no flags) are refused, not dropped', () => {
    const message = refusal({ settingsJson: '{}' }, ['run', '--apply', '--stack', 'Old']);

    expect(message).toBe(
      'run --apply needs what stack Old does not say (deployed by an earlier version?): redeploy the stack, or pass ' +
        "--admin-role-arn ARN or none (the stack's secretAdminRoleArn), --rotator-role-arn ARN or none (the stack's rotator role)",
    );
  });

  test('the admin role and the rotator are kept in every secret policy the CLI writes', () => {
    const write = forWriting(
      connection({ settingsJson: '{}', ...roles }),
      parseCli(['rotate', '--user', 'alice', '--apply']),
      'rotate',
    );
    const policy = (write.vault as SecretsManagerVault).resourcePolicy({
      accountId: '111122223333',
      userName: 'alice',
      name: 'iam-key-rotation/111122223333/alice',
      userArn: 'arn:aws:iam::111122223333:user/alice',
    });
    const deny = policy.Statement.find((statement) => statement.Sid === POLICY_SIDS.denyWriting);
    expect(deny?.Condition).toEqual({
      ArnNotEquals: { 'aws:PrincipalArn': [ADMIN_ROLE('111122223333'), ROTATOR_ROLE] },
    });
  });
});

describe("the stack's readers (secretReaderArns) are kept in the policies the CLI writes", () => {
  const READER = 'arn:aws:iam::111122223333:role/apps/billing';
  const ALICE = {
    accountId: '111122223333',
    userName: 'alice',
    name: 'iam-key-rotation/111122223333/alice',
    userArn: 'arn:aws:iam::111122223333:user/alice',
  };
  afterEach(() => mockClient(IAMClient).restore());

  async function writeConnection(argv: string, outputs: Record<string, string> = {}) {
    mockIamFrom(account(), ADMIN_SESSION('111122223333'));
    const stack = mockDeployedStack(outputs);
    try {
      const options = parseCli(argv.split(' '));
      return forWriting(await connect(options), options, 'run');
    } finally {
      stack.restore();
    }
  }

  test('read from the stack output: named in the Allow and the read Deny, never the write Deny', async () => {
    const write = await writeConnection('run --apply --stack IamKeyRotation --region eu-west-1', {
      SecretReaderArns: JSON.stringify([READER]),
    });

    const policy = (write.vault as SecretsManagerVault).resourcePolicy(ALICE);
    const statement = (sid: string) => policy.Statement.find((candidate) => candidate.Sid === sid);
    expect(statement(POLICY_SIDS.allowReaders)?.Principal).toEqual({
      AWS: [ALICE.userArn, ADMIN_ROLE('111122223333'), READER],
    });
    expect(statement(POLICY_SIDS.denyReading)?.Condition).toEqual({
      ArnNotEquals: { 'aws:PrincipalArn': [ALICE.userArn, ADMIN_ROLE('111122223333'), READER, ROTATOR_ROLE] },
    });
    expect(JSON.stringify(statement(POLICY_SIDS.denyWriting))).not.toContain(READER);
  });

  test('a stack deployed before readers existed has none', async () => {
    const write = await writeConnection('run --apply --stack IamKeyRotation --region eu-west-1');

    const policy = (write.vault as SecretsManagerVault).resourcePolicy(ALICE);
    expect(policy.Statement.find((st) => st.Sid === POLICY_SIDS.allowReaders)?.Principal).toEqual({
      AWS: [ALICE.userArn, ADMIN_ROLE('111122223333')],
    });
  });

  test('--secret-reader-arns that differs from the stack is refused', async () => {
    const refused = writeConnection(
      'run --apply --stack IamKeyRotation --region eu-west-1 --secret-reader-arns none',
      { SecretReaderArns: JSON.stringify([READER]) },
    );

    await expect(refused).rejects.toThrow(
      `--secret-reader-arns none differs from the stack's (${READER}); leave it out to keep the stack's`,
    );
  });

  test.each([
    ['a group', 'arn:aws:iam::111122223333:group/readers'],
    ['a wildcard list item', `${READER},*`],
  ])('--secret-reader-arns with %s is refused by name', (_name, value) => {
    expect(() => parseCli(['run', '--secret-reader-arns', value])).toThrow(
      '--secret-reader-arns must be IAM role or user ARNs separated by commas',
    );
  });

  test('--secret-reader-arns gives them without a stack', () => {
    const options = parseCli([
      'run',
      '--apply',
      '--secret-reader-arns',
      `${READER},arn:aws:iam::111122223333:user/ci`,
    ]);

    expect(options.secretReaderArns).toEqual([READER, 'arn:aws:iam::111122223333:user/ci']);
    expect(parseCli(['run', '--secret-reader-arns', 'none']).secretReaderArns).toEqual([]);
  });
});

describe('keyrot rotate', () => {
  test('without --apply shows what would happen and changes nothing (exit 2)', async () => {
    const world = account();
    const before = world.iam.snapshot();

    const run = await keyrot('rotate --user bob', worldWiring(world));

    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(
      /bob\s+planned\s+rotate\s+AKIAFAKE\w+\s+-\s+rotation requested by an operator \(keyrot rotate\) \(key is 10 days old\)/,
    );
    expect(run.stdout).toContain('dry run: nothing was changed; add --apply to rotate');
    expect(world.iam.snapshot()).toBe(before);
  });

  test('--apply rotates a young (leaked) key now; the old key keeps its grace', async () => {
    const world = account();
    world.verifier.propagationMs = 0;
    const old = world.iam.users.get('bob')!.keys[0]!;

    const run = await keyrot('rotate --user bob --apply', worldWiring(world));

    expect(run.code).toBe(0);
    expect(world.iam.users.get('bob')!.keys).toHaveLength(2);
    expect(world.iam.findKey(old.accessKeyId)?.status).toBe('Active');
  });

  // Found by the integration tier (cli.itest.ts): a refused rotation exited 0, as if the leaked key
  // had been replaced.
  test.each([
    ['a secret under our name that we did not create', 'it will not be overwritten', undefined],
    [
      "Secrets Manager's own rotation on our secret",
      'has Secrets Manager rotation turned on',
      async (world: World) => {
        // Our secret, with a key in it; the old key deleted by hand; then someone turns rotation on.
        const old = world.iam.users.get('bob')!.keys[0]!.accessKeyId;
        await keyrot('rotate --user bob --apply', worldWiring(world));
        await world.iam.deleteAccessKey('bob', old);
        world.vault.enableRotation(world.secretName('bob'));
      },
    ],
  ])('--apply with %s: not rotated, says why (exit 1)', async (_case, why, arrange) => {
    const world = account();
    world.verifier.propagationMs = 0;
    if (arrange) {
      await arrange(world);
    } else {
      world.vault.addForeignSecret(world.secretName('bob'));
    }
    const keysBefore = world.iam.snapshot();

    const run = await keyrot('rotate --user bob --apply', worldWiring(world));

    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^keyrot: bob was not rotated: .*${why}`));
    expect(world.iam.snapshot()).toBe(keysBefore);
  });

  test.each([
    ['vendor', 'the user is exempt (appliance)'],
    ['nobody', 'user nobody does not exist'],
  ])('refuses %s and says why (exit 1)', async (user, why) => {
    const world = account();
    const before = world.iam.snapshot();

    const run = await keyrot(`rotate --user ${user} --apply`, worldWiring(world));

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(why);
    expect(world.iam.snapshot()).toBe(before);
  });
});

describe('flags and configuration', () => {
  test.each([
    ['plan --grace-days soon', '--grace-days must be a whole number of days from 0 to 3650 (got "soon")'],
    [
      'plan --rotate-after-days 85 --grace-days 10',
      'rotateAfterDays + graceDays (95) exceeds maxKeyAgeDays (90)',
    ],
    ['plan --include-path apps', 'includePaths entry "apps" is not an IAM path'],
    ['launch', 'unknown command "launch"; commands are plan, run, rotate, report'],
    ['plan --apply', 'keyrot: plan is read-only; --apply is for run and rotate'],
    ['rotate', 'keyrot: rotate needs --user NAME\nRun "keyrot rotate --help" for usage.'],
    ['plan --format csv', '--format is for the report command; use --json'],
    ['report --format xml', '--format must be csv or json (got "xml")'],
    ['plan --account-id 12', '--account-id must be 12 digits (got "12")'],
    ['plan --colour', 'keyrot: unknown option --colour\nRun "keyrot plan --help" for usage.'],
  ])('keyrot %s -> exit 1 with what to change', async (argv, message) => {
    const run = await keyrot(argv, worldWiring(account()));

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(message);
    expect(run.stdout).toBe('');
  });

  test('settings come from --config, and flags override it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyrot-'));
    const file = join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify({ rotateAfterDays: 9, warnDays: 2, maxKeyAgeDays: 20 }));
    const world = account();

    const fromFile = await keyrot(`plan --config ${file}`, worldWiring(world));
    const overridden = await keyrot(`plan --config ${file} --rotate-after-days 11`, worldWiring(world));

    expect(fromFile.stdout).toContain('key is 10 days old; rotateAfterDays is 9');
    expect(overridden.stdout).toMatch(/bob\s+.*expiring\s+warn\s+key is 10 days old; it will be rotated on/);
  });

  test('a config file that is not a settings object is refused with its name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyrot-'));
    const file = join(dir, 'policy.json');
    writeFileSync(file, '{"rotateAfterDays": 80, "graceDayz": 7}');

    const run = await keyrot(`plan --config ${file}`, worldWiring(account()));

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('graceDayz is not a setting');
  });
});

describe('the keyrot command', () => {
  test.each(['', 'plan', 'run', 'rotate', 'report'])(
    'keyrot %s --help prints its usage and exits 0',
    (command) => {
      const out = execFileSync(
        process.execPath,
        ['cli/keyrot.cjs', ...(command ? [command] : []), '--help'],
        {
          encoding: 'utf8',
        },
      );
      expect(out).toContain(command ? `keyrot ${command}` : 'Usage: keyrot <command> [options]');
      expect(out).toContain(
        'Exit codes: 0 nothing due / all done, 2 findings or actions due, 1 failure or bad usage.',
      );
    },
  );

  test('a usage error exits 1 from a real process', () => {
    const result = spawnSync(process.execPath, ['cli/keyrot.cjs', 'plan', '--grace-days', '-1'], {
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    // Ours, not Node's parser's ("argument is ambiguous ... use '--grace-days=-XYZ'").
    expect(result.stderr).toBe(
      'keyrot: --grace-days must be a whole number of days from 0 to 3650 (got "-1"); e.g. --grace-days 7\n' +
        'Run "keyrot plan --help" for usage.\n',
    );
  });
});

/** The deployed stack's outputs as CloudFormation returns them, and every write-side client mocked. */
function mockDeployedStack(extra: Record<string, string> = {}) {
  const outputs: Record<string, string> = {
    LedgerTableName: 'ledger-table',
    NotificationTopicArn: 'arn:aws:sns:eu-west-1:111122223333:notices',
    SecretPrefix: 'iam-key-rotation',
    EncryptionKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/1',
    RotationSettings: '{}',
    SecretAdminRoleArn: ADMIN_ROLE('111122223333'),
    RotatorRoleArn: ROTATOR_ROLE,
    ...extra,
  };
  const cloudFormation = mockClient(CloudFormationClient);
  cloudFormation.on(DescribeStacksCommand).resolves({
    Stacks: [
      {
        StackName: 'IamKeyRotation',
        CreationTime: new Date(0),
        StackStatus: 'CREATE_COMPLETE',
        Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
      },
    ],
  });
  const dynamo = mockClient(DynamoDBDocumentClient);
  dynamo.on(QueryCommand).resolves({ Items: [] });
  dynamo.on(GetCommand).resolves({});
  const secrets = mockClient(SecretsManagerClient);
  const restore = () => {
    cloudFormation.restore();
    dynamo.restore();
    secrets.restore();
  };
  return { cloudFormation, dynamo, secrets, restore };
}

/** No IAM call that changes something was made. */
function expectNoIamWrites(iam: ReturnType<typeof mockIamFrom>['iam']) {
  expect(iam.commandCalls(CreateAccessKeyCommand)).toHaveLength(0);
  expect(iam.commandCalls(UpdateAccessKeyCommand)).toHaveLength(0);
  expect(iam.commandCalls(DeleteAccessKeyCommand)).toHaveLength(0);
}

describe("the account is the credentials' account", () => {
  afterEach(() => mockClient(IAMClient).restore());

  test('a different --account-id is refused before anything is read or written, naming both accounts', async () => {
    const world = account();
    const { iam, sts } = mockIamFrom(world);
    const stack = mockDeployedStack();

    const run = await keyrot('run --apply --stack IamKeyRotation --account-id 999999999999');

    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'keyrot: --account-id 999999999999 is not the account of your credentials: they are ' +
        'arn:aws:iam::111122223333:user/operator in account 111122223333. keyrot works on the account its credentials ' +
        'belong to: use credentials of account 999999999999 (e.g. --profile NAME of a role there), or leave ' +
        '--account-id out to work on 111122223333. Nothing was changed\n',
    );
    expect(sts.calls()).toHaveLength(1); // GetCallerIdentity, and nothing after it
    expect(iam.calls()).toHaveLength(0);
    expect(stack.cloudFormation.calls()).toHaveLength(0);
    expect(stack.dynamo.calls()).toHaveLength(0);
    expect(stack.secrets.calls()).toHaveLength(0);
    expect(world.iam.users.get('alice')!.keys).toHaveLength(1);
    stack.restore();
  });

  test('read-only commands refuse it too (they would read the wrong ledger records)', async () => {
    mockIamFrom(account());

    const run = await keyrot('plan --account-id 999999999999');

    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('--account-id 999999999999 is not the account of your credentials');
  });

  test('the account of the credentials, given, is accepted', async () => {
    mockIamFrom(account());

    const run = await keyrot('plan --account-id 111122223333 --json');

    expect(run.code).toBe(2);
    expect((JSON.parse(run.stdout) as { accountId: string }).accountId).toBe('111122223333');
  });

  test('a verification error names both accounts, not two identical ARNs', async () => {
    const world = account();
    world.verifier.propagationMs = 0;
    // What the check above prevents: a connection that works on an account the keys are not in.
    const wiring = worldWiring(world, undefined, '999999999999');

    const run = await keyrot('rotate --user bob --apply', wiring);

    expect(run.code).toBe(1);
    // After what the failed rotation leaves behind (the stored key, not verified: see repair.test.ts).
    expect(run.stderr).toContain(
      'keyrot: failed: new key AKIAFAKE000000000004 signs as arn:aws:iam::111122223333:user/bob in account 111122223333, ' +
        'expected arn:aws:iam::111122223333:user/bob in account 999999999999\n',
    );
  });
});

describe('--apply runs as the admin role (each secret policy denies everyone else its value)', () => {
  afterEach(() => mockClient(IAMClient).restore());

  test('other credentials are refused up front, saying which role to use; nothing is written', async () => {
    const world = account();
    const { iam } = mockIamFrom(world); // an IAM user, operator
    const stack = mockDeployedStack();

    const run = await keyrot('rotate --user alice --apply --stack IamKeyRotation');

    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `keyrot: rotate --apply must run as the admin role ${ADMIN_ROLE('111122223333')}: each secret's policy lets only ` +
        'that role and the rotator write the secret; you are arn:aws:iam::111122223333:user/operator. ' +
        'Run keyrot with credentials of that role (e.g. --profile NAME of a profile whose role_arn is that role). Nothing was changed\n',
    );
    expectNoIamWrites(iam);
    expect(stack.dynamo.commandCalls(UpdateCommand)).toHaveLength(0);
    expect(stack.dynamo.commandCalls(PutCommand)).toHaveLength(0);
    expect(stack.secrets.calls()).toHaveLength(0);
    stack.restore();
  });

  test('a session of the admin role passes, although its ARN has neither the role ARN nor its path', async () => {
    const world = account();
    const { iam } = mockIamFrom(world, ADMIN_SESSION('111122223333'));
    const stack = mockDeployedStack();
    // No secret yet, and the owner's topic is made: the run goes on to its first write.
    stack.secrets
      .on(DescribeSecretCommand)
      .rejects(new ResourceNotFoundException({ message: 'not found', $metadata: {} }));
    const sns = mockClient(SNSClient);
    sns.on(CreateTopicCommand).resolves({ TopicArn: 'arn:aws:sns:eu-west-1:111122223333:owner-alice' });
    sns.on(SetTopicAttributesCommand).resolves({});
    sns.on(SubscribeCommand).resolves({ SubscriptionArn: 'pending confirmation' });
    // Stops the run at its first write, after the checks: the lock, taken with the intent.
    stack.dynamo.on(PutCommand).resolves({}); // the owner's subscription
    stack.dynamo
      .on(PutCommand, { Item: { pk: '111122223333', sk: 'alice' } })
      .rejects(new Error('the lock was reached'));

    const run = await keyrot('rotate --user alice --apply --stack IamKeyRotation');

    sns.restore();
    expect(run.stderr).toBe('keyrot: failed: dynamodb:PutItem: Error: the lock was reached\n');
    const userWrites = stack.dynamo
      .commandCalls(PutCommand)
      .filter((call) => call.args[0].input.Item?.sk === 'alice');
    expect(userWrites).toHaveLength(1);
    expect(userWrites[0]?.args[0].input).toMatchObject({
      TableName: 'ledger-table',
      Item: { pk: '111122223333', sk: 'alice', lock: {}, inFlight: { phase: 'intent' } },
    });
    expectNoIamWrites(iam);
    stack.restore();
  });

  test.each([
    ['arn:aws:sts::111122223333:assumed-role/secrets-admin/alice', true],
    ['arn:aws:iam::111122223333:role/ops/secrets-admin', true],
    ['arn:aws:sts::111122223333:assumed-role/IamKeyRotation-Rotator/1f2e', false],
    ['arn:aws:sts::444455556666:assumed-role/secrets-admin/alice', false],
    ['arn:aws:iam::111122223333:user/secrets-admin', false],
    ['arn:aws:sts::111122223333:federated-user/secrets-admin', false],
    ['arn:aws-cn:sts::111122223333:assumed-role/secrets-admin/alice', false],
  ])('%s is the admin role: %s', (callerArn, expected) => {
    expect(callerIsRole(callerArn, ADMIN_ROLE('111122223333'))).toBe(expected);
  });

  test('without an admin role the message says how to get one', async () => {
    const world = account();
    mockIamFrom(world);
    const stack = mockDeployedStack({ SecretAdminRoleArn: 'none' });

    const run = await keyrot('run --apply --stack IamKeyRotation');

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "run --apply must run as a role that each secret's policy names, and there is no admin role: set secretAdminRoleArn on the stack to a role you can assume, redeploy, and run keyrot as that role",
    );
    stack.restore();
  });
});

describe('plan and report without the ledger', () => {
  afterEach(() => mockClient(IAMClient).restore());

  test.each(['plan', 'report', 'run', 'rotate --user alice'])(
    "%s warns that the service's own rotated pairs will look like conflicts",
    async (command) => {
      mockIamFrom(account());

      const run = await keyrot(command);

      expect(run.stderr).toContain('keyrot: warning: no ledger (pass --stack NAME, or --table NAME)');
      expect(run.stderr).toContain('show as "conflict" (two active keys it did not create)');
      expect(run.stderr).toContain('grace, deactivation and deletion dates are unknown');
    },
  );

  test('with the ledger there is no warning', async () => {
    const run = await keyrot('report', worldWiring(account()));

    expect(run.stderr).toBe('');
  });
});

describe('text output says why', () => {
  test('a tag finding is printed with its reason', async () => {
    const world = account();
    world.iam.addUser('carol', { tags: { 'key-rotation:owner': 'carol at example' } });
    world.iam.addKey('carol', { ageDays: 5 });

    const run = await keyrot('plan', worldWiring(world));

    expect(run.stderr).toBe(
      'keyrot: warning: user tags need attention (user carol): owner: tag key-rotation:owner is not a list of ' +
        'e-mail addresses ("carol at example"); notices go to the default recipients\n',
    );
  });
});

describe('report --json', () => {
  test('is report --format json', async () => {
    const world = account();

    const run = await keyrot('report --json', worldWiring(world));
    const same = await keyrot('report --format json', worldWiring(world));

    expect(run.code).toBe(0); // the only key over age is exempt
    expect(JSON.parse(run.stdout)).toMatchObject({ accountId: '111122223333', counts: { exempt: 1 } });
    const withoutTime = (stdout: string) => ({ ...(JSON.parse(stdout) as object), generatedAt: undefined });
    expect(withoutTime(run.stdout)).toEqual(withoutTime(same.stdout)); // the fake clock moves on between runs
  });

  test('with --format csv is refused as a contradiction', async () => {
    const run = await keyrot('report --json --format csv', worldWiring(account()));

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--json contradicts --format csv; pass one of them');
  });
});

describe('numeric flags get our message: the flag, its range, an example', () => {
  test.each([
    ['--rotate-after-days', 0, 80],
    ['--warn-days', 0, 4],
    ['--grace-days', 0, 7],
    ['--max-key-age-days', 0, 90],
    ['--delete-after-days', 0, 14],
    ['--reap-unused-days', 1, 45],
  ])('%s', async (flag, min, example) => {
    for (const value of ['-1', String(min - 1), '3651', '1.5', '1e3']) {
      const run = await keyrot(`plan ${flag} ${value}`, worldWiring(account()));
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(
        `keyrot: ${flag} must be a whole number of days from ${min} to 3650 (got "${value}"); e.g. ${flag} ${example}\n`,
      );
    }
    const edge = await keyrot(`plan ${flag}=${min}`, worldWiring(account()));
    expect(edge.stderr).not.toContain('must be a whole number');
  });

  test.each([
    ['plan --grace-days', '--grace-days needs a value; e.g. --grace-days 7'],
    [
      'plan --grace-days --json',
      '--grace-days needs a value (it is followed by --json); e.g. --grace-days 7',
    ],
    ['plan --account-id -1', '--account-id must be 12 digits (got "-1")'],
    ['plan --json=yes', '--json takes no value; write it alone'],
  ])('keyrot %s', async (argv, message) => {
    const run = await keyrot(argv, worldWiring(account()));

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`keyrot: ${message}\n`);
  });
});

describe('no region', () => {
  test('is said before any call: pass --region or set AWS_REGION', async () => {
    const { sts, iam } = mockIamFrom(account());
    const saved = { ...process.env };
    delete process.env.AWS_REGION;
    process.env.AWS_DEFAULT_REGION = 'eu-west-1';
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    process.env.AWS_CONFIG_FILE = join(tmpdir(), 'keyrot-no-such-config');
    process.env.AWS_SHARED_CREDENTIALS_FILE = join(tmpdir(), 'keyrot-no-such-credentials');
    try {
      const run = await keyrot('plan');

      expect(run.code).toBe(1);
      expect(run.stderr).toBe(
        'keyrot: no AWS region: pass --region REGION (e.g. --region eu-west-1) or set AWS_REGION ' +
          '(AWS_DEFAULT_REGION is set, but the AWS SDK for JavaScript reads AWS_REGION), or set region in your AWS profile\n',
      );
      expect(sts.calls()).toHaveLength(0);
      expect(iam.calls()).toHaveLength(0);
    } finally {
      process.env = saved;
      mockClient(IAMClient).restore();
    }
  });

  test('from a real process: exit 1 and the message, no call attempted', () => {
    const home = mkdtempSync(join(tmpdir(), 'keyrot-home-'));
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, AWS_EC2_METADATA_DISABLED: 'true' };
    // Any call would fail against this endpoint with a different message.
    env.AWS_ENDPOINT_URL = 'http://127.0.0.1:9';
    env.AWS_ACCESS_KEY_ID = 'AKIAEXAMPLE';
    env.AWS_SECRET_ACCESS_KEY = 'example';

    const result = spawnSync(process.execPath, ['cli/keyrot.cjs', 'plan'], { encoding: 'utf8', env });

    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      'keyrot: no AWS region: pass --region REGION (e.g. --region eu-west-1) or set AWS_REGION, or set region in your AWS profile\n',
    );
  });
});

describe('rotate --user for a user that does not exist', () => {
  test('writes nothing: no ledger record, no key, no secret', async () => {
    const world = account();
    const ledgerBefore = [...world.ledger.items.keys()];

    const run = await keyrot('rotate --user nobody --apply', worldWiring(world));

    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'keyrot: user nobody does not exist in account 111122223333; nothing was changed\n',
    );
    expect(world.ledger.peek('111122223333', 'nobody')).toBeUndefined();
    expect([...world.ledger.items.keys()]).toEqual(ledgerBefore);
    expect(world.faults.writes()).toEqual([]);
  });
});

describe('failures say what to do', () => {
  test('no credentials: how to give some', async () => {
    const world = account();
    const { sts } = mockIamFrom(world);
    const noCredentials = new Error('Could not load credentials from any providers');
    noCredentials.name = 'CredentialsProviderError';
    sts.on(GetCallerIdentityCommand).rejects(noCredentials);

    const run = await keyrot('plan');

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('keyrot: no AWS credentials: pass --profile NAME (or set AWS_PROFILE)');
  });

  test('a stack that is not there: check the name, region and profile', async () => {
    const world = account();
    mockIamFrom(world);
    const cloudFormation = mockClient(CloudFormationClient);
    const missing = new Error('Stack with id Nope does not exist');
    missing.name = 'ValidationError';
    cloudFormation.on(DescribeStacksCommand).rejects(missing);

    const run = await keyrot('plan --stack Nope');

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('keyrot: no such stack here: check --stack');
    cloudFormation.restore();
  });
});

describe('--concurrency: users worked on at once', () => {
  /** Ten users whose keys are due, added out of name order (the report lists them as added). */
  const DUE = [
    'user-07',
    'user-02',
    'user-10',
    'user-05',
    'user-01',
    'user-09',
    'user-04',
    'user-08',
    'user-03',
    'user-06',
  ];

  function dueAccount(): World {
    const world = new World({ start: '2026-03-01T09:00:00Z' });
    world.verifier.propagationMs = 0;
    for (const name of DUE) {
      world.iam.addUser(name, { tags: OWNER(name) });
      world.iam.addKey(name, { ageDays: 85, lastUsedDaysAgo: 1 });
    }
    return world;
  }

  /**
   * A gate around the fake IAM's CreateAccessKey: each call waits there until the event loop turns
   * (so that every rotation that can start reaches it first), and the calls waiting are let through
   * last in, first out, so that users finish in another order than they started. Counts the calls in
   * flight at once.
   */
  function gateCreateAccessKey(world: World) {
    const gate = { inFlight: 0, max: 0, entered: [] as string[], finished: [] as string[] };
    const waiting: (() => void)[] = [];
    const release = () => {
      waiting.pop()?.();
      if (waiting.length > 0) setImmediate(release);
    };
    const create = world.iam.createAccessKey.bind(world.iam);
    world.iam.createAccessKey = async (userName: string) => {
      gate.inFlight++;
      gate.max = Math.max(gate.max, gate.inFlight);
      gate.entered.push(userName);
      if (waiting.length === 0) setImmediate(release);
      await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        return await create(userName);
      } finally {
        gate.inFlight--;
        gate.finished.push(userName);
      }
    };
    return gate;
  }

  /** The users of the outcome table's rows, in the order printed. */
  const rowUsers = (stdout: string) =>
    stdout
      .split('\n')
      .slice(1)
      .map((line) => /^(user-\d\d)\s+done\s+rotate\s/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined);

  test('run --apply --concurrency 3: every user rotated, never more than 3 at once, listed by name', async () => {
    const world = dueAccount();
    const gate = gateCreateAccessKey(world);

    const run = await keyrot('run --apply --concurrency 3', worldWiring(world));

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(gate.max).toBe(3);
    expect(gate.entered).toHaveLength(10);
    // They finished in another order than their names'; the table is by name all the same.
    expect(gate.finished).not.toEqual([...DUE].sort());
    expect(rowUsers(run.stdout)).toEqual([...DUE].sort());
    expect(run.stdout).toContain('10 user(s) done, 0 failed');
    for (const name of DUE) {
      expect(world.iam.users.get(name)!.keys).toHaveLength(2);
      expect(world.vault.readStage(world.secretName(name))?.accessKeyId).toBe(
        world.iam.users.get(name)!.keys[1]!.accessKeyId,
      );
    }
  });

  test('the default is 8 at once; --concurrency 1 is one at a time', async () => {
    const byDefault = dueAccount();
    const defaultGate = gateCreateAccessKey(byDefault);
    const serial = dueAccount();
    const serialGate = gateCreateAccessKey(serial);

    const defaultRun = await keyrot('run --apply', worldWiring(byDefault));
    const serialRun = await keyrot('run --apply --concurrency 1', worldWiring(serial));

    expect([defaultRun.code, serialRun.code]).toEqual([0, 0]);
    expect(defaultGate.max).toBe(8);
    expect(serialGate.max).toBe(1);
    expect(serialGate.finished).toEqual(serialGate.entered);
    expect(rowUsers(serialRun.stdout)).toEqual(rowUsers(defaultRun.stdout));
  });

  test('--json lists outcomes by user name too', async () => {
    const world = dueAccount();
    gateCreateAccessKey(world);

    const run = await keyrot('run --apply --json --concurrency 4', worldWiring(world));

    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { outcomes: { userName: string; status: string }[] };
    expect(result.outcomes.map((outcome) => outcome.userName)).toEqual([...DUE].sort());
    expect(result.outcomes.every((outcome) => outcome.status === 'done')).toBe(true);
  });

  test('a user locked by another run is reported as failed; the others are rotated (exit 1)', async () => {
    const world = dueAccount();
    gateCreateAccessKey(world);
    // The schedule's rotator holds user-05's lock for a while yet.
    const accountId = world.accountId;
    world.ledger.items.set(
      `${accountId}#user-05`,
      JSON.stringify({
        ...emptyLedger(accountId, 'user-05'),
        version: 1,
        lock: { holder: 'rotator/request-1', until: '2026-03-01T09:10:00.000Z' },
      }),
    );
    const lockedKey = { ...world.iam.users.get('user-05')!.keys[0]! };

    const run = await keyrot('run --apply --concurrency 3', worldWiring(world));

    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^FAILED user-05: LockHeldError: .*rotator\/request-1/m);
    expect(run.stdout).toContain('9 user(s) done, 1 failed');
    expect(rowUsers(run.stdout)).toEqual([...DUE].sort().filter((name) => name !== 'user-05'));
    expect(world.iam.users.get('user-05')!.keys).toEqual([lockedKey]);
  });

  test('progress counts the users finished, on a terminal', async () => {
    const world = dueAccount();
    gateCreateAccessKey(world);

    const run = await keyrot('run --apply --concurrency 3', worldWiring(world), true);

    expect(run.code).toBe(0);
    expect(run.stderr).toContain('\rrotating users 0/10');
    expect(run.stderr).toContain('\rrotating users 10/10');
    expect(run.stderr.endsWith('\r\x1b[K')).toBe(true);
  });

  test.each(['0', '65', '-1', '1.5', 'many', '8x'])(
    '--concurrency %s is refused, naming the flag and its range',
    async (value) => {
      const world = dueAccount();
      const before = world.iam.snapshot();

      const run = await keyrot(`run --apply --concurrency ${value}`, worldWiring(world));

      expect(run.code).toBe(1);
      expect(run.stderr).toBe(
        `keyrot: --concurrency must be a whole number of users from 1 to 64 (got "${value}"); e.g. --concurrency 8\n` +
          'Run "keyrot run --help" for usage.\n',
      );
      expect(world.iam.snapshot()).toBe(before);
      expect(world.faults.calls).toEqual([]);
    },
  );

  test('--concurrency without a value, and with rotate, is refused', async () => {
    const missing = await keyrot('plan --concurrency', worldWiring(dueAccount()));
    const rotate = await keyrot('rotate --user user-01 --apply --concurrency 2', worldWiring(dueAccount()));

    expect(missing.stderr).toContain('keyrot: --concurrency needs a value; e.g. --concurrency 8\n');
    expect(rotate.code).toBe(1);
    expect(rotate.stderr).toContain(
      'keyrot: --concurrency is for plan, run and report; rotate works on one user\n',
    );
  });

  test('plan --concurrency 2 reads every user, at most 2 at once; by default 8 at once', async () => {
    const world = dueAccount();
    const gate = { inFlight: 0, max: 0, read: [] as string[] };
    const getUser = world.iam.getUser.bind(world.iam);
    world.iam.getUser = async (userName: string) => {
      gate.inFlight++;
      gate.max = Math.max(gate.max, gate.inFlight);
      gate.read.push(userName);
      // Every read that can start does so before this one goes on.
      await new Promise<void>((resolve) => setImmediate(resolve));
      try {
        return await getUser(userName);
      } finally {
        gate.inFlight--;
      }
    };

    const run = await keyrot('plan --concurrency 2', worldWiring(world));
    const twoAtOnce = { max: gate.max, read: [...gate.read].sort() };
    Object.assign(gate, { max: 0, read: [] });
    const byDefault = await keyrot('plan', worldWiring(world));

    expect(run.code).toBe(2);
    expect(twoAtOnce).toEqual({ max: 2, read: [...DUE].sort() });
    expect(gate.max).toBe(8);
    expect(byDefault.stdout).toBe(run.stdout);
  });

  test('plan, run and report document it; the edges 1 and 64 are accepted', () => {
    for (const command of ['plan', 'run', 'report'] as const) {
      expect(HELP[command]).toMatch(
        /--concurrency N: users read (and rotated )?at once, 1 to 64 \(default 8\)/,
      );
    }
    expect(parseCli(['plan']).concurrency).toBe(8);
    expect(parseCli(['plan', '--concurrency', '1']).concurrency).toBe(1);
    expect(parseCli(['run', '--concurrency=64']).concurrency).toBe(64);
  });
});
