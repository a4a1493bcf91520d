import { WORK_MESSAGE_VERSION } from '../../../lambda/contract';
import { AccessDeniedError, NoSuchUserError } from '../../../lambda/domain/errors';
import { emptyLedger, type UserLedger, type UserSnapshot } from '../../../lambda/domain/model';
import { nextReview } from '../../../lambda/domain/review';
import {
  CHECKPOINT_MARGIN_MS,
  planAccount,
  type PlanAccountDeps,
  type PlanAccountRequest,
} from '../../../lambda/services/plan-account';
import { MS_PER_DAY } from '../../../lambda/domain/time';
import { FakeQueue } from '../../fakes/queue';
import { World } from '../../fakes/world';

function owner(name: string) {
  return { 'key-rotation:owner': `${name}@example.com` };
}

/** planAccount over the world's fakes, with a request and deps of the test's own. */
function planWith(world: World, request: Partial<PlanAccountRequest>, deps: Partial<PlanAccountDeps> = {}) {
  return planAccount(
    { accountId: world.accountId, dryRun: false, ...request },
    {
      iam: world.iam,
      ledger: world.ledger,
      clock: world.clock,
      logger: world.logger,
      settings: world.settings,
      ...deps,
    },
  );
}

/** Live state of a fake user, as the rotator would read it. */
function snapshot(world: World, userName: string): UserSnapshot {
  const user = world.iam.users.get(userName)!;
  return {
    userName,
    arn: user.arn,
    path: user.path,
    tags: user.tags,
    keys: user.keys.map(({ accessKeyId, status, createDate, lastUsedDate }) => ({
      accessKeyId,
      status,
      createDate,
      ...(lastUsedDate ? { lastUsedDate } : {}),
    })),
  };
}

/** Records in the ledger what the rotator leaves after handling the user now: its memory and a review. */
async function recordReview(world: World, userName: string, memory: Partial<UserLedger> = {}): Promise<void> {
  const stored = world.ledger.peek(world.accountId, userName);
  const record: UserLedger = { ...(stored ?? emptyLedger(world.accountId, userName)), ...memory };
  const review = nextReview({
    user: snapshot(world, userName),
    ledger: record,
    now: world.clock.now(),
    settings: world.settings,
  });
  await world.ledger.save({ ...record, review });
}

/** 250 users with young keys, and three that need something. */
function populated(): World {
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
  return world;
}

describe('planAccount', () => {
  test('a scheduled run decides from the credential report and the ledger alone: no user is read live', async () => {
    // Arrange: 250 users, three of which need something
    const world = populated();

    // Act
    const plan = await world.plan(false);

    // Assert
    expect(plan.source).toBe('credential-report');
    expect(plan.mode).toBe('screened');
    expect(plan.usersScanned).toBe(253);
    expect(plan.keysScanned).toBe(253);
    expect(world.faults.calls).toEqual([
      'dynamodb:Query',
      'iam:GenerateCredentialReport',
      'iam:GenerateCredentialReport',
      'iam:GetCredentialReport',
    ]);
    expect(plan.users).toEqual([]); // nobody was read: the rotator reads each queued user itself
    const byUser = Object.fromEntries(plan.messages.map((message) => [message.userName, message]));
    expect(Object.keys(byUser).sort()).toEqual(['disabled', 'due', 'expiring']);
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
    expect(world.logger.audits('user.planned').map((entry) => [entry.userName, entry.planned])).toEqual([
      ['disabled', 'track-inactive'],
      ['due', 'rotate'],
      ['expiring', 'warn'],
    ]);
  });

  test('a dry run screens the same way, then confirms the screened users live', async () => {
    const world = populated();

    const plan = await world.plan(true);

    expect(plan.mode).toBe('confirmed');
    expect(plan.users.map((user) => user.userName)).toEqual(['due', 'expiring', 'disabled']); // report order
    expect(world.faults.count('iam:')).toBe(3 + 3 * 3); // report + (GetUser, ListAccessKeys, LastUsed) x 3
    expect(plan.messages.map((message) => [message.userName, message.plannedActions])).toEqual([
      ['disabled', ['track-inactive']],
      ['due', ['rotate']],
      ['expiring', ['warn']],
    ]);
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

  test("the fallback listing reads several users' keys at once (options.concurrency), in the listing's order", async () => {
    const world = new World();
    world.iam.reportAvailable = false;
    const names = Array.from({ length: 20 }, (_, i) => `user-${String(i).padStart(2, '0')}`);
    for (const name of names) {
      world.iam.addUser(name, { tags: owner(name) });
      world.iam.addKey(name, { ageDays: name === 'user-03' ? 85 : 3 });
    }
    // Later users answer sooner: the reads finish in the reverse of the listing's order.
    let inFlight = 0;
    let most = 0;
    const iam = new Proxy(world.iam, {
      get(target, property, receiver) {
        if (property !== 'listAccessKeys') return Reflect.get(target, property, receiver) as unknown;
        return async (userName: string) => {
          inFlight++;
          most = Math.max(most, inFlight);
          for (let tick = 0; tick < 40 - Number(userName.slice(-2)); tick++) {
            await new Promise((resolve) => setImmediate(resolve));
          }
          inFlight--;
          return target.listAccessKeys(userName);
        };
      },
    });

    const plan = await planWith(
      world,
      { dryRun: true },
      { iam, options: { concurrency: 4, confirmAll: true } },
    );

    expect(plan.source).toBe('user-listing');
    expect(most).toBe(4);
    expect(plan.usersScanned).toBe(20);
    expect(plan.keysScanned).toBe(20);
    // Confirmed users come back in the order of the rows, which is the listing's.
    expect(plan.users.map((user) => user.userName)).toEqual(names);
    expect(plan.messages.map((message) => message.userName)).toEqual(['user-03']);
  });

  test('a user whose keys cannot be listed fails the listing with its error; no user after it is started', async () => {
    const world = new World();
    world.iam.reportAvailable = false;
    const names = Array.from({ length: 12 }, (_, i) => `user-${String(i).padStart(2, '0')}`);
    for (const name of names) {
      world.iam.addUser(name);
      world.iam.addKey(name, { ageDays: 3 });
    }
    // user-01 is deleted after the listing (skipped, as before); user-02 is refused.
    const started: string[] = [];
    const iam = new Proxy(world.iam, {
      get(target, property, receiver) {
        if (property !== 'listAccessKeys') return Reflect.get(target, property, receiver) as unknown;
        return async (userName: string) => {
          started.push(userName);
          await new Promise((resolve) => setImmediate(resolve));
          if (userName === 'user-01') throw new NoSuchUserError(`user ${userName} does not exist`);
          if (userName === 'user-02') throw new AccessDeniedError('iam:ListAccessKeys: not authorized');
          return target.listAccessKeys(userName);
        };
      },
    });

    const error = await planWith(world, { dryRun: false }, { iam, options: { concurrency: 3 } }).catch(
      (caught: unknown) => caught,
    );

    expect(error).toBeInstanceOf(AccessDeniedError);
    expect((error as Error).message).toBe('iam:ListAccessKeys: not authorized');
    // Started in the listing's order, and at most the two beside it after the refused user: the
    // listing stops at the failure instead of reading the remaining users.
    expect(started).toEqual(names.slice(0, started.length));
    expect(started.length).toBeLessThanOrEqual(5);
  });

  test('a user deleted during the listing is left out; the others are read', async () => {
    const world = new World();
    world.iam.reportAvailable = false;
    for (const name of ['alice', 'bob', 'carol']) {
      world.iam.addUser(name);
      world.iam.addKey(name, { ageDays: name === 'carol' ? 85 : 3 });
    }
    const iam = new Proxy(world.iam, {
      get(target, property, receiver) {
        if (property !== 'listAccessKeys') return Reflect.get(target, property, receiver) as unknown;
        return (userName: string) =>
          userName === 'bob'
            ? Promise.reject(new NoSuchUserError('user bob does not exist'))
            : target.listAccessKeys(userName);
      },
    });

    const plan = await planWith(world, { dryRun: false }, { iam });

    expect(plan.source).toBe('user-listing');
    expect(plan.usersScanned).toBe(2);
    expect(plan.messages.map((message) => message.userName)).toEqual(['carol']);
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

    const dry = await world.plan(true);
    const scheduled = await world.plan(false);

    expect(dry.skipped).toEqual([{ userName: 'gone', reason: 'user no longer exists' }]);
    expect(dry.messages.map((message) => message.userName)).toEqual(['due']);
    // The scheduled run reads nobody: the rotator finds the user gone and does nothing.
    expect(scheduled.messages.map((message) => message.userName)).toEqual(['due', 'gone']);
  });

  test('exempt users are reported as skipped and get no work message when confirmed live', async () => {
    const world = new World();
    world.iam.addUser('vendor', { tags: { 'key-rotation:exempt': 'appliance; until=2026-12-31' } });
    world.iam.addKey('vendor', { ageDays: 300 });

    const plan = await world.plan(true);

    expect(plan.messages).toEqual([]);
    expect(plan.users[0]?.exemption).toMatchObject({ reason: 'appliance', applies: true });
    expect(world.logger.audits('rotation.skipped')[0]).toMatchObject({
      userName: 'vendor',
      reason: 'exempt: appliance (until 2026-12-31)',
    });
  });

  test('the report cannot show tags: a scheduled run queues an exempt user until the rotator has recorded a review', async () => {
    const world = new World();
    world.iam.addUser('vendor', { tags: { 'key-rotation:exempt': 'appliance; until=2026-12-31' } });
    world.iam.addKey('vendor', { ageDays: 300 });

    const first = await world.plan(false);
    // What the rotator leaves behind when it finds the user exempt: a review, due within 30 days.
    await recordReview(world, 'vendor');
    world.clock.advanceDays(1);
    const next = await world.plan(false);

    expect(first.messages.map((message) => message.userName)).toEqual(['vendor']);
    expect(next.messages).toEqual([]);
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

    const plan = await world.plan(true, { concurrency: 1 });

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

  test('a user with a rotation in flight is queued to finish it: by a scheduled run without reading it, by a dry run even when it cannot be read', async () => {
    const world = new World();
    world.iam.addUser('alice');
    world.iam.addKey('alice', { ageDays: 85 });
    await world.ledger.save({
      ...emptyLedger(world.accountId, 'alice'),
      inFlight: {
        oldKeyId: world.iam.users.get('alice')!.keys[0]!.accessKeyId,
        keysBefore: [],
        phase: 'intent',
        startedAt: world.clock.now().toISOString(),
        reason: 'due',
      },
    });
    world.faults.inject('iam:GetUser', 'throttle');

    const scheduled = await world.plan(false);
    const dry = await world.plan(true);

    expect(scheduled.failures).toEqual([]);
    expect(scheduled.messages.map((message) => [message.userName, message.plannedActions])).toEqual([
      ['alice', ['resume']],
    ]);
    expect(dry.failures.map((failure) => failure.userName)).toEqual(['alice']);
    expect(dry.messages.map((message) => [message.userName, message.plannedActions])).toEqual([
      ['alice', ['resume']],
    ]);
  });

  test('a rotation in flight for a user the report no longer lists is still queued', async () => {
    const world = new World();
    await world.ledger.save({
      ...emptyLedger(world.accountId, 'ghost'),
      outbox: [],
      inFlight: {
        oldKeyId: 'AKIAGONE000000000001',
        keysBefore: [],
        phase: 'stored',
        startedAt: world.clock.now().toISOString(),
        reason: 'due',
      },
    });

    const plan = await world.plan(false);

    expect(plan.messages.map((message) => [message.userName, message.plannedActions])).toEqual([
      ['ghost', ['resume']],
    ]);
  });
});

describe('planAccount: cost follows the work due', () => {
  /**
   * 250 users as the rotator leaves them, each with a review: half in the grace period of a rotation
   * made two days ago (old key still in use), half with a new key and an old one deactivated three
   * days ago, waiting for deletion.
   */
  async function graceAndDeletion(): Promise<World> {
    const world = new World();
    const iso = (daysAgo: number) =>
      new Date(world.clock.now().getTime() - daysAgo * MS_PER_DAY).toISOString();
    for (let i = 0; i < 250; i++) {
      const name = `user-${String(i).padStart(3, '0')}`;
      world.iam.addUser(name, { tags: owner(name) });
      if (i % 2 === 0) {
        const old = world.iam.addKey(name, { ageDays: 82, lastUsedDaysAgo: 0 });
        const replacement = world.iam.addKey(name, { ageDays: 2, lastUsedDaysAgo: 0 });
        await recordReview(world, name, {
          rotations: [{ oldKeyId: old.accessKeyId, newKeyId: replacement.accessKeyId, rotatedAt: iso(2) }],
          warnedKeys: { [old.accessKeyId]: iso(6) },
        });
      } else {
        const old = world.iam.addKey(name, { ageDays: 93, status: 'Inactive', lastUsedDaysAgo: 3 });
        const replacement = world.iam.addKey(name, { ageDays: 10, lastUsedDaysAgo: 0 });
        await recordReview(world, name, {
          rotations: [{ oldKeyId: old.accessKeyId, newKeyId: replacement.accessKeyId, rotatedAt: iso(10) }],
          inactiveSince: { [old.accessKeyId]: iso(3) },
        });
      }
    }
    return world;
  }

  /** The calls one scheduled planning run makes, messages sent to a queue (counted too). */
  async function scheduledRun(world: World, queue = new FakeQueue(world.faults)) {
    const before = world.faults.calls.length;
    const plan = await planWith(world, {}, { queue });
    return { plan, calls: world.faults.calls.slice(before), queue };
  }

  test('250 users in a grace period or waiting for deletion, nothing due: the ledger query and the report only', async () => {
    const world = await graceAndDeletion();

    const days = [];
    for (let day = 0; day < 5; day++) {
      if (day > 0) world.clock.advanceDays(1);
      days.push(await scheduledRun(world));
    }

    for (const { plan, calls } of days) {
      expect(calls).toEqual([
        'dynamodb:Query',
        'iam:GenerateCredentialReport',
        'iam:GenerateCredentialReport',
        'iam:GetCredentialReport',
      ]);
      expect(calls.length).toBeLessThanOrEqual(5);
      expect(plan.messages).toEqual([]);
    }
    // Without the reviews, every user in a grace period would be screened in every day.
    const forgetful = await graceAndDeletion();
    for (const name of forgetful.iam.users.keys()) {
      const record = forgetful.ledger.peek(forgetful.accountId, name)!;
      await forgetful.ledger.save({ ...record, review: undefined });
    }
    expect((await scheduledRun(forgetful)).plan.messages).toHaveLength(125);
  });

  test("the review's due day queues the user: the grace ends five days after the review", async () => {
    const world = await graceAndDeletion();

    world.clock.advanceDays(4);
    const before = await scheduledRun(world);
    world.clock.advanceDays(1);
    const due = await scheduledRun(world);

    expect(before.plan.messages).toEqual([]);
    const inGrace = [...world.iam.users.keys()].filter((_, i) => i % 2 === 0);
    expect(due.plan.messages.map((message) => message.userName)).toEqual(inGrace);
    expect(new Set(due.plan.messages.map((message) => message.plannedActions.join(',')))).toEqual(
      new Set(['review']),
    );
    // Sent as SendMessageBatch calls of ten: 125 users, 13 calls.
    expect(due.calls.filter((op) => op === 'sqs:SendMessageBatch')).toHaveLength(13);
    expect(due.queue.messages).toEqual(due.plan.messages);
  });

  test('keys changed by hand since the review are looked at again, even when the report alone suggests nothing', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: owner('alice') });
    world.iam.addKey('alice', { ageDays: 10, lastUsedDaysAgo: 0 });
    await recordReview(world, 'alice');
    world.clock.advanceDays(1);
    const quiet = await scheduledRun(world);
    // Somebody deletes the key by hand and creates another one.
    world.iam.users.get('alice')!.keys.splice(0, 1);
    world.iam.addKey('alice', { ageDays: 0 });
    world.clock.advanceDays(1);

    const changed = await scheduledRun(world);

    expect(quiet.plan.messages).toEqual([]);
    expect(changed.plan.messages.map((message) => [message.userName, message.plannedActions])).toEqual([
      ['alice', ['review']],
    ]);
  });

  test('an old key deactivated by hand during the grace is queued to start its deletion clock', async () => {
    const world = await graceAndDeletion();
    world.iam.users.get('user-000')!.keys[0]!.status = 'Inactive';
    world.clock.advanceDays(1);

    const { plan } = await scheduledRun(world);

    expect(plan.messages.map((message) => [message.userName, message.plannedActions])).toEqual([
      ['user-000', ['track-inactive']],
    ]);
  });

  test('a second run the same day reads the reused morning report: the users rotated since are not queued again', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: owner('alice') });
    world.iam.addKey('alice', { ageDays: 85, lastUsedDaysAgo: 0 });
    const morning = await world.plan(false);
    world.clock.advance(60_000); // the queue hands the message to the rotator a little later
    expect((await world.rotate(morning.messages[0]!.userName)).status).toBe('done');
    expect(world.iam.users.get('alice')!.keys).toHaveLength(2);
    world.clock.advance(60 * 60_000); // IAM hands out the same report for four hours

    const again = await world.plan(false);
    // A report generated after the rotation shows the new key, and the review still matches it.
    world.clock.advance(4 * 60 * 60_000);
    const fresh = await world.plan(false);
    // A key created by hand after that shows in the next fresh report.
    world.iam.users.get('alice')!.keys.splice(1, 1);
    world.iam.addKey('alice', { ageDays: 0 });
    world.clock.advance(4 * 60 * 60_000);
    const changed = await world.plan(false);

    expect(again.messages).toEqual([]);
    expect(fresh.messages).toEqual([]);
    expect(changed.messages.map((message) => message.userName)).toEqual(['alice']);
  });

  test('a review with an unreadable due day never skips the user', async () => {
    const world = new World();
    world.iam.addUser('alice', { tags: owner('alice') });
    world.iam.addKey('alice', { ageDays: 30 });
    world.iam.addKey('alice', { ageDays: 1 });
    await recordReview(world, 'alice');
    const record = world.ledger.peek(world.accountId, 'alice')!;
    await world.ledger.save({ ...record, review: { keys: record.review!.keys, due: 'soon' } });

    const { plan } = await scheduledRun(world);

    expect(plan.messages.map((message) => message.userName)).toEqual(['alice']);
  });

  test("a scheduled run reads the ledger's screening index; a dry run and confirmAll read the whole records", async () => {
    const world = await graceAndDeletion();
    const screen = jest.spyOn(world.ledger, 'screenAccount');
    const load = jest.spyOn(world.ledger, 'loadAccount');

    const scheduled = await scheduledRun(world);
    const readsOfScheduled = [screen.mock.calls.length, load.mock.calls.length];
    await world.plan(true);
    await world.plan(false, { confirmAll: true });

    expect(readsOfScheduled).toEqual([1, 0]);
    expect([screen.mock.calls.length, load.mock.calls.length]).toEqual([1, 2]);
    expect(scheduled.calls.filter((op) => op.startsWith('dynamodb:'))).toEqual(['dynamodb:Query']);
    expect(scheduled.plan.messages).toEqual([]);
  });

  /**
   * The screening index is eventually consistent: for moments after a write it may still show the
   * record as it was. The views below are records as they were before the rotator's last write.
   */
  test.each([
    [
      'before its first review was written',
      (record: UserLedger) => ({ ...record, review: undefined }),
      'review',
    ],
    [
      'with the previous review, whose day had come',
      (record: UserLedger) => ({ ...record, review: { ...record.review!, due: '2025-12-31T00:00:00.000Z' } }),
      'review',
    ],
    [
      'with the previous review, of the keys before the rotation',
      (record: UserLedger) => ({ ...record, review: { ...record.review!, keys: 'the keys before' } }),
      'review',
    ],
    [
      'before its deletion clock was started (and the review written with it)',
      (record: UserLedger) => ({
        ...record,
        inactiveSince: {},
        // (the old key active then: the keys differ from the report's)
        review: { ...record.review!, keys: 'the keys before the deactivation' },
      }),
      'track-inactive',
    ],
  ])(
    'an index that lags the last write, showing a record %s, queues the user rather than skip it',
    async (_, asBefore, planned) => {
      const world = await graceAndDeletion();
      const name = planned === 'track-inactive' ? 'user-001' : 'user-000';
      const lagging = Object.assign(Object.create(world.ledger) as typeof world.ledger, {
        screenAccount: async (accountId: string) =>
          (await world.ledger.screenAccount(accountId)).map((record) =>
            record.userName === name ? asBefore(record) : record,
          ),
      });
      world.clock.advanceDays(1);

      const plan = await planWith(world, {}, { ledger: lagging });

      expect(plan.messages.map((message) => [message.userName, message.plannedActions])).toEqual([
        [name, [planned]],
      ]);
    },
  );
});

describe('planAccount: sends as it goes, and never times out silently', () => {
  function dueUsers(count: number): World {
    const world = new World();
    for (let i = 0; i < count; i++) {
      // Added in reverse, so that name order is not insertion order.
      const name = `due-${String(count - 1 - i).padStart(3, '0')}`;
      world.iam.addUser(name, { tags: owner(name) });
      world.iam.addKey(name, { ageDays: 85, lastUsedDaysAgo: 0 });
    }
    return world;
  }

  /** A clock of the invocation: plenty of time for `users` time checks, then less than the margin. */
  function runningOut(users: number) {
    let checks = 0;
    return {
      timeLeftMs: () => (++checks <= users ? 10 * 60_000 : CHECKPOINT_MARGIN_MS - 1),
      checks: () => checks,
    };
  }

  test.each([
    { mode: 'scheduled', dryRun: false },
    { mode: 'dry run', dryRun: true },
  ])('$mode: messages go out in batches of at most ten while planning goes on', async ({ dryRun }) => {
    const world = dueUsers(25);
    const queue = new FakeQueue(world.faults);
    const time = runningOut(1_000);
    const progress: { checks: number; reads: number }[] = [];
    queue.onSend = () => progress.push({ checks: time.checks(), reads: world.faults.count('iam:GetUser') });

    const plan = await planWith(world, { dryRun }, { queue, timeLeftMs: time.timeLeftMs });

    expect(queue.batches.map((batch) => batch.length)).toEqual([10, 10, 5]);
    expect(queue.messages).toEqual(plan.messages);
    // The first batch left while users were still being planned, not all at the end.
    const last = progress[progress.length - 1]!;
    expect(progress[0]!.checks).toBeLessThan(last.checks);
    if (dryRun) expect(progress[0]!.reads).toBeLessThan(last.reads);
    expect(plan.continueAfter).toBeUndefined();
  });

  test.each([
    { mode: 'scheduled', dryRun: false },
    { mode: 'dry run, eight users read at once', dryRun: true },
  ])(
    '$mode: running out of time, the run stops, sends what it found and says where to continue; the next call queues the rest',
    async ({ dryRun }) => {
      const world = dueUsers(47);
      const queue = new FakeQueue(world.faults);

      const first = await planWith(world, { dryRun }, { queue, timeLeftMs: runningOut(20).timeLeftMs });
      world.clock.advance(60_000); // the continuation starts a little later
      const second = await planWith(
        world,
        { dryRun, startAfter: first.continueAfter, plannedAt: first.plannedAt },
        { queue, timeLeftMs: runningOut(1_000).timeLeftMs },
      );

      const names = [...world.iam.users.keys()].sort();
      const firstNames = first.messages.map((message) => message.userName);
      expect(firstNames.length).toBeGreaterThanOrEqual(20);
      expect(firstNames.length).toBeLessThan(47);
      expect(first.continueAfter).toBe(firstNames[firstNames.length - 1]);
      expect(firstNames).toEqual(names.slice(0, firstNames.length)); // in name order, none skipped
      expect(second.continueAfter).toBeUndefined();
      // Every user queued once, none missed, all sent.
      const queued = queue.messages.map((message) => message.userName);
      expect([...queued].sort()).toEqual(names);
      // The continuation writes the first run's time, so that FIFO deduplication ids stay the same.
      expect(new Set(queue.messages.map((message) => message.plannedAt))).toEqual(new Set([first.plannedAt]));
      expect(
        world.logger.lines.find((line) => line.message.includes('planning stopped'))?.attributes,
      ).toMatchObject({ continueAfter: first.continueAfter, handled: firstNames.length });
    },
  );

  test('a run always handles at least one user, so that a chain of continuations always moves on', async () => {
    const world = dueUsers(3);

    const plan = await planWith(world, {}, { timeLeftMs: () => 0 });

    expect(plan.messages.map((message) => message.userName)).toEqual(['due-000']);
    expect(plan.continueAfter).toBe('due-000');
  });

  test('a dry run reads at most `concurrency` users at once', async () => {
    const world = dueUsers(30);
    let reading = 0;
    let most = 0;
    const getUser = world.iam.getUser.bind(world.iam);
    world.iam.getUser = async (userName: string) => {
      reading++;
      most = Math.max(most, reading);
      await new Promise((resolve) => setTimeout(resolve, 1));
      try {
        return await getUser(userName);
      } finally {
        reading--;
      }
    };

    const plan = await planWith(world, { dryRun: true }, { options: { concurrency: 4 } });

    expect(plan.users).toHaveLength(30);
    expect(most).toBe(4);
    // Listed as the report lists them, whatever order the reads finished in.
    expect(plan.users.map((user) => user.userName)).toEqual([...world.iam.users.keys()]);
  });
});
