import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { CreateAccessKeyCommand, IAMClient } from '@aws-sdk/client-iam';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { parseCli } from '../../../cli/args';
import { Connection, forWriting, Resources } from '../../../cli/connect';
import { SecretsManagerVault } from '../../../lambda/adapters/secrets-manager';
import { World } from '../../fakes/world';
import { keyrot, mockIamFrom, worldWiring } from './harness';

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
    expect(piped.stderr).toBe('');
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
      },
    ]);
  });

  test('--apply without the stack resources says what to pass', async () => {
    const world = account();
    mockIamFrom(world);

    const run = await keyrot('run --apply --account-id 111122223333');

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "run --apply needs the stack's resources: pass --stack NAME (the deployed stack), or --table, --topic-arn, --secret-prefix, --kms-key-arn",
    );
  });
});

describe('--apply follows the deployed policy', () => {
  const resources = {
    table: 'ledger',
    topicArn: 'arn:aws:sns:eu-west-1:111122223333:t',
    secretPrefix: 'iam-key-rotation',
    kmsKeyArn: 'arn:aws:kms:eu-west-1:111122223333:key/1',
  };
  const connection = (extra: Partial<Resources> = {}): Connection => {
    const world = account();
    return {
      accountId: world.accountId,
      clock: world.clock,
      settings: world.settings,
      resources: { ...resources, ...extra },
      iam: world.iam,
      ledger: world.ledger,
    };
  };

  test('setting flags are refused with --apply (an override could rotate an exempt user)', () => {
    expect(() =>
      forWriting(
        connection({ settingsJson: '{}' }),
        parseCli(['run', '--apply', '--exemption-tag', 'other']),
        'run',
      ),
    ).toThrow('run --apply follows the deployed policy; setting flags are for plan and report (what-if)');
  });

  test('without the stack settings or a --config file, --apply is refused', () => {
    expect(() => forWriting(connection(), parseCli(['run', '--apply']), 'run')).toThrow(
      'run --apply needs the policy the stack uses: pass --stack NAME, or --config FILE with the same settings',
    );
  });

  test('--config is refused with --apply when the stack gives the settings', () => {
    expect(() =>
      forWriting(
        connection({ settingsJson: '{}', adminRoleArn: 'none' }),
        parseCli(['run', '--apply', '--config', 'whatif.json']),
        'run',
      ),
    ).toThrow("run --apply follows the stack's settings; --config is for plan and report (what-if)");
  });

  test('an unknown admin role (a stack without that output, no flag) is refused, not dropped', () => {
    expect(() => forWriting(connection({ settingsJson: '{}' }), parseCli(['run', '--apply']), 'run')).toThrow(
      "run --apply rewrites each secret's policy: pass --admin-role-arn ARN (or none)",
    );
  });

  test('the admin role of the stack is kept in every secret policy the CLI writes', () => {
    const write = forWriting(
      connection({ settingsJson: '{}', adminRoleArn: 'arn:aws:iam::111122223333:role/secrets-admin' }),
      parseCli(['rotate', '--user', 'alice', '--apply']),
      'rotate',
    );
    const policy = (write.vault as SecretsManagerVault).resourcePolicy({
      accountId: '111122223333',
      userName: 'alice',
      name: 'iam-key-rotation/111122223333/alice',
      userArn: 'arn:aws:iam::111122223333:user/alice',
    });
    expect(JSON.stringify(policy)).toContain('arn:aws:iam::111122223333:role/secrets-admin');
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
    ['plan --grace-days soon', '--grace-days must be a whole number of days (got "soon")'],
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
    const result = spawnSync(process.execPath, ['cli/keyrot.cjs', 'plan', '--warn-days', 'x'], {
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('--warn-days must be a whole number of days (got "x")');
  });
});
