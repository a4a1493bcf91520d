import { WORK_MESSAGE_VERSION } from '../../../lambda/contract';
import { World } from '../../fakes/world';

function owner(name: string) {
  return { 'key-rotation:owner': `${name}@example.com` };
}

describe('planAccount', () => {
  test('detects due users from the credential report with a constant number of IAM calls', async () => {
    // Arrange: 250 users, three of which need something
    const world = new World();
    for (let i = 0; i < 250; i++) {
      world.iam.addUser(`user-${i}`, { tags: owner(`user-${i}`) });
      world.iam.addKey(`user-${i}`, { ageDays: 10 + (i % 50), lastUsedDaysAgo: 1 });
    }
    world.iam.addUser('due', { tags: owner('due') });
    world.iam.addKey('due', { ageDays: 81, lastUsedDaysAgo: 0 });
    world.iam.addUser('expiring', { tags: owner('expiring') });
    world.iam.addKey('expiring', { ageDays: 77 });
    world.iam.addUser('disabled');
    world.iam.addKey('disabled', { ageDays: 300, status: 'Inactive' });

    // Act
    const plan = await world.plan(false);

    // Assert
    expect(plan.source).toBe('credential-report');
    expect(plan.usersScanned).toBe(253);
    expect(plan.keysScanned).toBe(253);
    expect(world.faults.calls.filter((op) => op.includes('CredentialReport'))).toEqual([
      'iam:GenerateCredentialReport',
      'iam:GenerateCredentialReport',
      'iam:GetCredentialReport',
    ]);
    expect(plan.users.map((user) => user.userName).sort()).toEqual(['disabled', 'due', 'expiring']);
    expect(world.faults.count('iam:')).toBe(3 + 3 * 3); // report + (GetUser, ListAccessKeys, LastUsed) x 3
    const byUser = Object.fromEntries(plan.messages.map((message) => [message.userName, message]));
    expect(byUser.due).toEqual({
      version: WORK_MESSAGE_VERSION,
      accountId: world.accountId,
      userName: 'due',
      dryRun: false,
      plannedActions: ['rotate'],
      plannedAt: '2026-01-01T02:00:00.000Z',
    });
    expect(byUser.expiring?.plannedActions).toEqual(['warn']);
    expect(byUser.disabled?.plannedActions).toEqual(['track-inactive']);
  });

  test('counts active keys past the maximum age as overdue', async () => {
    const world = new World();
    world.iam.addUser('old');
    world.iam.addKey('old', { ageDays: 95 });
    world.iam.addUser('young');
    world.iam.addKey('young', { ageDays: 5 });
    world.iam.addUser('old-but-inactive');
    world.iam.addKey('old-but-inactive', { ageDays: 200, status: 'Inactive' });

    const plan = await world.plan(true);

    expect(plan.overdueKeys).toBe(1);
  });

  test('waits for IAM to build the report, polling with backoff', async () => {
    const world = new World();
    world.iam.reportGenerationPolls = 4;
    world.iam.addUser('due');
    world.iam.addKey('due', { ageDays: 85 });

    const plan = await world.plan(true);

    expect(plan.source).toBe('credential-report');
    expect(world.faults.count('iam:GenerateCredentialReport')).toBe(5);
    expect(world.clock.slept).toBe(1000 + 2000 + 4000 + 8000);
    expect(plan.messages.map((message) => message.userName)).toEqual(['due']);
  });

  test('falls back to listing users page by page when the report is not ready in time', async () => {
    const world = new World({ planOptions: { reportTimeoutMs: 5_000 } });
    world.iam.reportGenerationPolls = 100;
    for (let i = 0; i < 230; i++) {
      world.iam.addUser(`user-${i}`, { path: i % 2 === 0 ? '/apps/' : '/' });
      world.iam.addKey(`user-${i}`, { ageDays: i === 229 ? 85 : 3 });
    }

    const plan = await world.plan(true);

    expect(plan.source).toBe('user-listing');
    expect(world.faults.count('iam:ListUsers')).toBe(3); // 100 + 100 + 30
    expect(world.faults.count('iam:ListAccessKeys')).toBe(230 + 1); // every user, then the confirmation
    expect(plan.usersScanned).toBe(230);
    expect(plan.messages.map((message) => message.userName)).toEqual(['user-229']);
    expect(
      world.logger.lines.some((line) => line.level === 'warn' && line.message.includes('listing users')),
    ).toBe(true);
  });

  test('falls back to listing when there is no report to read', async () => {
    const world = new World();
    world.iam.reportAvailable = false;
    world.iam.addUser('due');
    world.iam.addKey('due', { ageDays: 85 });

    const plan = await world.plan(true);

    expect(plan.source).toBe('user-listing');
    expect(plan.messages.map((message) => message.userName)).toEqual(['due']);
  });

  test('IAM refusing to start a report for lack of capacity (LimitExceeded) is waited out, and the plan completes', async () => {
    const world = new World();
    world.iam.reportGenerationRefusals = 2;
    world.iam.addUser('due', { tags: owner('due') });
    world.iam.addKey('due', { ageDays: 85 });

    const plan = await world.plan(false);

    expect(plan.source).toBe('credential-report');
    // Refused, refused, started, complete.
    expect(world.faults.count('iam:GenerateCredentialReport')).toBe(4);
    expect(world.clock.slept).toBe(1000 + 2000 + 4000);
    expect(plan.messages.map((message) => message.userName)).toEqual(['due']);
  });

  test('when IAM keeps refusing to start a report, the plan lists users instead and still completes', async () => {
    const world = new World({ planOptions: { reportTimeoutMs: 10_000 } });
    world.iam.reportGenerationRefusals = 1_000;
    world.iam.addUser('due', { tags: owner('due') });
    world.iam.addKey('due', { ageDays: 85 });
    world.iam.addUser('young', { tags: owner('young') });
    world.iam.addKey('young', { ageDays: 3 });

    const plan = await world.plan(false);

    expect(plan.source).toBe('user-listing');
    expect(plan.usersScanned).toBe(2);
    expect(plan.messages.map((message) => message.userName)).toEqual(['due']);
    expect(world.clock.slept).toBeLessThanOrEqual(10_000);
    const warning = world.logger.lines.find(
      (line) => line.level === 'warn' && line.message.includes('listing users'),
    );
    expect(JSON.stringify(warning)).toContain('IAM had no capacity to generate it');
  });

  test('a throttled report call fails the run instead of reporting "no keys"', async () => {
    const world = new World();
    world.iam.addUser('due');
    world.iam.addKey('due', { ageDays: 85 });
    world.faults.inject('iam:GetCredentialReport', 'throttle');

    await expect(world.plan(false)).rejects.toThrow('Rate exceeded');
  });

  test('skips users outside includePaths or inside excludePaths without reading them', async () => {
    const world = new World({ settings: { includePaths: ['/apps/'], excludePaths: ['/apps/break-glass/'] } });
    world.iam.addUser('app', { path: '/apps/' });
    world.iam.addKey('app', { ageDays: 85 });
    world.iam.addUser('glass', { path: '/apps/break-glass/' });
    world.iam.addKey('glass', { ageDays: 85 });
    world.iam.addUser('human', { path: '/' });
    world.iam.addKey('human', { ageDays: 85 });

    const plan = await world.plan(true);

    expect(plan.usersScanned).toBe(1);
    expect(plan.messages.map((message) => message.userName)).toEqual(['app']);
    expect(world.faults.count('iam:GetUser')).toBe(1);
  });

  test('a user deleted between the report and the confirmation is skipped, not fatal', async () => {
    const world = new World();
    world.iam.addUser('gone');
    world.iam.addKey('gone', { ageDays: 85 });
    world.iam.addUser('due');
    world.iam.addKey('due', { ageDays: 85 });
    // The report is generated, then the user disappears before its live state is read.
    await world.iam.generateCredentialReport();
    await world.iam.generateCredentialReport();
    world.iam.users.delete('gone');

    const plan = await world.plan(false);

    expect(plan.skipped).toEqual([{ userName: 'gone', reason: 'user no longer exists' }]);
    expect(plan.messages.map((message) => message.userName)).toEqual(['due']);
  });

  test('exempt users are reported as skipped and get no work message', async () => {
    const world = new World();
    world.iam.addUser('vendor', { tags: { 'key-rotation:exempt': 'appliance; until=2026-12-31' } });
    world.iam.addKey('vendor', { ageDays: 300 });

    const plan = await world.plan(false);

    expect(plan.messages).toEqual([]);
    expect(plan.users[0]?.exemption).toMatchObject({ reason: 'appliance', applies: true });
    expect(world.logger.audits('rotation.skipped')[0]).toMatchObject({
      userName: 'vendor',
      reason: 'exempt: appliance (until 2026-12-31)',
    });
  });

  test('confirmAll reads every user in scope, for full reports', async () => {
    const world = new World();
    for (const name of ['a', 'b', 'c']) {
      world.iam.addUser(name);
      world.iam.addKey(name, { ageDays: 3 });
    }

    const plan = await world.plan(true, { confirmAll: true });

    expect(plan.users.map((user) => user.userName)).toEqual(['a', 'b', 'c']);
    expect(plan.messages).toEqual([]);
  });

  test('a dry run makes only read calls', async () => {
    const world = new World();
    world.iam.addUser('due');
    world.iam.addKey('due', { ageDays: 85 });
    world.iam.addUser('old-inactive');
    world.iam.addKey('old-inactive', { ageDays: 85, status: 'Inactive' });

    const plan = await world.plan(true);

    expect(plan.messages.every((message) => message.dryRun)).toBe(true);
    // Generating the report is the one call that is not a pure read: IAM requires it before reading.
    expect(world.faults.writes().filter((op) => op !== 'iam:GenerateCredentialReport')).toEqual([]);
    expect(world.ledger.items.size).toBe(0);
  });

  test('one user that cannot be read does not stop the others; it is reported as a failure', async () => {
    const world = new World();
    world.iam.addUser('first');
    world.iam.addKey('first', { ageDays: 85 });
    world.iam.addUser('second');
    world.iam.addKey('second', { ageDays: 85 });
    world.faults.inject('iam:GetUser', 'access-denied'); // the first user read fails

    const plan = await world.plan(false);

    expect(plan.failures.map((failure) => failure.userName)).toEqual(['first']);
    expect(plan.messages.map((message) => message.userName)).toEqual(['second']);
    expect(world.logger.lines.find((line) => line.level === 'error')).toMatchObject({
      message: 'user could not be planned',
      attributes: {
        userName: 'first',
        error: { name: 'AccessDeniedError', message: 'iam:GetUser: not authorized' },
      },
    });
  });

  test('a user that cannot be read but has a rotation in flight is still queued, so that it is finished', async () => {
    const world = new World();
    world.iam.addUser('alice');
    world.iam.addKey('alice', { ageDays: 85 });
    world.faults.inject('secretsmanager:Store', 'crash-after');
    await expect(world.rotate('alice')).rejects.toThrow('simulated crash');
    world.faults.restart();
    world.faults.inject('iam:GetUser', 'throttle');

    const plan = await world.plan(false);

    expect(plan.failures.map((failure) => failure.userName)).toEqual(['alice']);
    expect(plan.messages.map((message) => [message.userName, message.plannedActions])).toEqual([
      ['alice', ['resume']],
    ]);
  });
});
