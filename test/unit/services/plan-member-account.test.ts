import {
  PLANNING_MESSAGE_VERSION,
  type PlanningMessage,
  WORK_MESSAGE_VERSION,
} from '../../../lambda/contract';
import {
  AccessDeniedError,
  KeyRotationError,
  MemberAccountUnavailableError,
  MemberRoleAccessDeniedError,
  MemberSessionUnavailableError,
  ThrottledError,
  TransientServiceError,
} from '../../../lambda/domain/errors';
import { ACCOUNT_NOTICE_USER } from '../../../lambda/domain/notices';
import { resolveSettings } from '../../../lambda/domain/settings';
import type { AccountAccess, AccountPorts } from '../../../lambda/ports';
import { emptyLedger } from '../../../lambda/domain/model';
import {
  isRetryableAccountError,
  type MemberAccountOutcome,
  planMemberAccount,
  type PlanMemberAccountDeps,
  redeliver,
} from '../../../lambda/services/plan-member-account';
import type { AccountPlan } from '../../../lambda/services/plan-account';
import { FakeClock } from '../../fakes/clock';
import { Faults } from '../../fakes/faults';
import { FakeIam } from '../../fakes/iam';
import { FakeLedger } from '../../fakes/ledger';
import { CapturingLogger } from '../../fakes/logger';
import { FakeNotifier } from '../../fakes/notifier';
import { FakeQueue } from '../../fakes/queue';
import { FakeVault } from '../../fakes/vault';

const GOOD = '111111111111';
const DENIED = '222222222222';
const RUN = '2026-01-01T02:00:00.000Z';
const NEXT_RUN = '2026-01-02T02:00:00.000Z';
const ROLE = (account: string) => `arn:aws:iam::${account}:role/iam-key-rotation-member`;
/** A string that must never appear in any output (I4): the session the access would hold. */
const SESSION_SECRET = 'member-session-secret-do-not-print';

/** AccountAccess in memory: each account its own IAM, or an error thrown at open. */
class TestAccess implements AccountAccess {
  readonly opened: { accountId: string; runId: string }[] = [];
  readonly failures = new Map<string, Error>();
  readonly iams = new Map<string, FakeIam>();

  constructor(private readonly clock: FakeClock) {}

  iam(accountId: string): FakeIam {
    let iam = this.iams.get(accountId);
    if (!iam) {
      iam = new FakeIam(this.clock, new Faults(), accountId);
      this.iams.set(accountId, iam);
    }
    return iam;
  }

  open(accountId: string, runId: string): Promise<AccountPorts> {
    this.opened.push({ accountId, runId });
    const failure = this.failures.get(accountId);
    if (failure !== undefined) return Promise.reject(failure);
    return Promise.resolve({
      accountId,
      iam: this.iam(accountId),
      vault: new FakeVault(this.clock, new Faults()),
    });
  }
}

function setUp() {
  const clock = new FakeClock('2026-01-01T02:00:00Z');
  const faults = new Faults();
  const access = new TestAccess(clock);
  const ledger = new FakeLedger(faults);
  const queue = new FakeQueue(faults);
  const notifier = new FakeNotifier(faults, { opsRecipients: ['ops@example.com'] });
  const logger = new CapturingLogger();
  const settings = resolveSettings({});
  const deps = (overrides: Partial<PlanMemberAccountDeps> = {}): PlanMemberAccountDeps => ({
    access,
    ledger,
    queue,
    notifier,
    clock,
    logger,
    settings,
    ...overrides,
  });
  // One user due for rotation (a key 85 days old) in the good account.
  access.iam(GOOD).addUser('alice');
  access.iam(GOOD).addKey('alice', { ageDays: 85 });
  access.iam(GOOD).addUser('bob');
  access.iam(GOOD).addKey('bob', { ageDays: 3 });
  return { clock, faults, access, ledger, queue, notifier, logger, deps };
}

function message(accountId: string, overrides: Partial<PlanningMessage> = {}): PlanningMessage {
  return { version: PLANNING_MESSAGE_VERSION, accountId, dryRun: false, plannedAt: RUN, ...overrides };
}

function denied(accountId: string): MemberRoleAccessDeniedError {
  return new MemberRoleAccessDeniedError(
    `sts:AssumeRole ${ROLE(accountId)} (account ${accountId}): not authorized`,
    accountId,
    ROLE(accountId),
  );
}

function throttled(accountId: string): MemberSessionUnavailableError {
  return new MemberSessionUnavailableError(
    `sts:AssumeRole ${ROLE(accountId)}: Rate exceeded`,
    accountId,
    ROLE(accountId),
  );
}

describe('planMemberAccount: an account that can be planned', () => {
  test('opens the account for the run, queues its work messages and records the run as planned', async () => {
    // Arrange
    const { access, ledger, queue, logger, clock, deps } = setUp();

    // Act
    const outcome = await planMemberAccount(message(GOOD), deps());

    // Assert
    expect(access.opened).toEqual([{ accountId: GOOD, runId: RUN }]);
    expect(outcome.status).toBe('planned');
    expect(queue.messages.map((sent) => [sent.accountId, sent.userName, sent.plannedAt])).toEqual([
      [GOOD, 'alice', RUN],
    ]);
    expect(ledger.peekAccountRun(GOOD)).toEqual({
      accountId: GOOD,
      runId: RUN,
      dryRun: false,
      status: 'planned',
      at: clock.now().toISOString(), // when the outcome was recorded (the report took a poll)
      queued: 1,
      consecutiveFailures: 0,
      lastPlannedAt: RUN,
    });
    expect(logger.audits('account.planned')).toEqual([
      expect.objectContaining({ accountId: GOOD, runId: RUN, queued: 1, outcome: 'planned' }),
    ]);
  });

  test('works in the account the message names: its IAM is read, no other', async () => {
    // Arrange
    const { access, deps } = setUp();
    const other = access.iam('333333333333');

    // Act
    const outcome = await planMemberAccount(message(GOOD), deps());

    // Assert
    expect(outcome.status === 'planned' && outcome.plan.accountId).toBe(GOOD);
    expect(access.iam(GOOD).faults.count('iam:')).toBeGreaterThan(0);
    expect(other.faults.count()).toBe(0);
  });

  test('a continuation plans the users after startAfter, with the run time of the message', async () => {
    // Arrange
    const { access, queue, clock, deps } = setUp();
    access.iam(GOOD).addUser('carol');
    access.iam(GOOD).addKey('carol', { ageDays: 85 });
    clock.advance(10 * 60_000); // the continuation runs later than the run's start

    // Act
    await planMemberAccount(message(GOOD, { startAfter: 'alice' }), deps());

    // Assert
    expect(queue.messages.map((sent) => [sent.userName, sent.plannedAt])).toEqual([['carol', RUN]]);
  });

  test('after failed runs, a planned run resets the count of failures in a row', async () => {
    // Arrange
    const { ledger, deps } = setUp();
    await ledger.recordAccountRun({
      accountId: GOOD,
      runId: '2025-12-31T02:00:00.000Z',
      dryRun: false,
      status: 'failed',
      at: '2025-12-31T02:00:01.000Z',
      consecutiveFailures: 4,
      retryable: false,
      error: { name: 'MemberRoleAccessDeniedError', message: 'denied' },
    });

    // Act
    await planMemberAccount(message(GOOD), deps());

    // Assert
    expect(ledger.peekAccountRun(GOOD)).toMatchObject({ status: 'planned', consecutiveFailures: 0 });
    expect(ledger.peekAccountRun(GOOD)?.error).toBeUndefined();
  });

  test('a user that cannot be read stays a user failure in the plan, not an account failure', async () => {
    // Arrange
    const { access, ledger, notifier, deps } = setUp();
    access.iam(GOOD).faults.inject('iam:GetUser', 'access-denied', 100);

    // Act
    const outcome = await planMemberAccount(message(GOOD, { dryRun: true }), deps());

    // Assert
    expect(outcome.status).toBe('planned');
    expect(outcome.status === 'planned' && outcome.plan.failures.map((failure) => failure.userName)).toEqual([
      'alice',
    ]);
    expect(ledger.peekAccountRun(GOOD)).toBeUndefined(); // dry run
    expect(notifier.published).toEqual([]);
  });
});

describe('planMemberAccount: an account that cannot be planned', () => {
  test('a role that cannot be assumed is recorded, audited and told to the operators, and does not throw', async () => {
    // Arrange
    const { access, ledger, notifier, logger, deps } = setUp();
    access.failures.set(DENIED, denied(DENIED));

    // Act
    const outcome = await planMemberAccount(message(DENIED), deps());

    // Assert
    expect(outcome).toMatchObject({
      status: 'failed',
      accountId: DENIED,
      retryable: false,
      consecutiveFailures: 1,
      notified: true,
    });
    expect(ledger.peekAccountRun(DENIED)).toEqual({
      accountId: DENIED,
      runId: RUN,
      dryRun: false,
      status: 'failed',
      at: '2026-01-01T02:00:00.000Z',
      error: {
        name: 'MemberRoleAccessDeniedError',
        message: `sts:AssumeRole ${ROLE(DENIED)} (account ${DENIED}): not authorized`,
      },
      retryable: false,
      consecutiveFailures: 1,
    });
    expect(logger.audits('account.failed')).toEqual([
      expect.objectContaining({
        accountId: DENIED,
        runId: RUN,
        outcome: 'failure',
        roleArn: ROLE(DENIED),
        reason: expect.stringContaining('MemberRoleAccessDeniedError: sts:AssumeRole') as unknown,
      }),
    ]);
    expect(notifier.opsMessages).toHaveLength(1);
    expect(notifier.opsMessages[0]).toMatchObject({
      event: 'account.unreachable',
      accountId: DENIED,
      userName: ACCOUNT_NOTICE_USER,
      owner: 'default',
      toOperators: true,
      dedupeId: `account.unreachable/${DENIED}/${RUN}`,
    });
    expect(notifier.opsMessages[0]?.text).toContain(ROLE(DENIED));
  });

  test('an error of the planning itself (access denied on the credential report) is an account failure', async () => {
    // Arrange
    const { access, ledger, notifier, deps } = setUp();
    access.iam(GOOD).faults.inject('iam:GenerateCredentialReport', 'access-denied');

    // Act
    const outcome = await planMemberAccount(message(GOOD), deps());

    // Assert
    expect(outcome).toMatchObject({ status: 'failed', retryable: false, notified: true });
    expect(outcome.status === 'failed' && outcome.error).toBeInstanceOf(AccessDeniedError);
    expect(ledger.peekAccountRun(GOOD)).toMatchObject({
      status: 'failed',
      error: { name: 'AccessDeniedError' },
    });
    expect(notifier.opsMessages.map((notice) => notice.details.roleArn)).toEqual([null]);
  });

  test.each([
    ['the central ledger refuses its screening query', 'dynamodb:Query'],
    ['the work queue refuses a send', 'sqs:SendMessageBatch'],
  ])(
    "a failure of the central service (%s) is not the account's: it propagates, nothing is recorded or told",
    async (_name, op) => {
      // Arrange: the account is fine; the service's own store or queue fails.
      const { faults, ledger, notifier, deps } = setUp();
      faults.inject(op, 'access-denied');

      // Act
      const planning = planMemberAccount(message(GOOD), deps());

      // Assert
      await expect(planning).rejects.toBeInstanceOf(AccessDeniedError);
      expect(ledger.peekAccountRun(GOOD)).toBeUndefined();
      expect(notifier.opsMessages).toEqual([]);
    },
  );

  test('a bug is not an account failure either: it propagates', async () => {
    // Arrange
    const { ledger, deps } = setUp();
    const logger = {
      ...deps().logger,
      info: () => {
        throw new TypeError('a bug in logging');
      },
    };

    // Act
    const planning = planMemberAccount(message(GOOD), deps({ logger }));

    // Assert
    await expect(planning).rejects.toBeInstanceOf(TypeError);
    expect(ledger.peekAccountRun(GOOD)).toBeUndefined();
  });

  test('one account failing leaves the next one planned', async () => {
    // Arrange
    const { access, ledger, queue, deps } = setUp();
    access.failures.set(DENIED, denied(DENIED));

    // Act
    const outcomes = [
      await planMemberAccount(message(DENIED), deps()),
      await planMemberAccount(message(GOOD), deps()),
    ];

    // Assert
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['failed', 'planned']);
    expect(queue.messages.map((sent) => sent.accountId)).toEqual([GOOD]);
    expect([ledger.peekAccountRun(DENIED)?.status, ledger.peekAccountRun(GOOD)?.status]).toEqual([
      'failed',
      'planned',
    ]);
  });

  test('failures in a row are counted per run; a redelivery of the same run is not one more', async () => {
    // Arrange
    const { access, ledger, notifier, deps } = setUp();
    access.failures.set(DENIED, denied(DENIED));
    await ledger.recordAccountRun({
      accountId: DENIED,
      runId: '2025-12-31T02:00:00.000Z',
      dryRun: false,
      status: 'planned',
      at: '2025-12-31T02:00:05.000Z',
      queued: 0,
      consecutiveFailures: 0,
      lastPlannedAt: '2025-12-31T02:00:00.000Z',
    });

    // Act
    const first = await planMemberAccount(message(DENIED), deps());
    const again = await planMemberAccount(message(DENIED), deps());
    const nextRun = await planMemberAccount(message(DENIED, { plannedAt: NEXT_RUN }), deps());

    // Assert
    expect(
      [first, again, nextRun].map((outcome) => outcome.status === 'failed' && outcome.consecutiveFailures),
    ).toEqual([1, 1, 2]);
    expect(ledger.peekAccountRun(DENIED)).toMatchObject({
      runId: NEXT_RUN,
      consecutiveFailures: 2,
      lastPlannedAt: '2025-12-31T02:00:00.000Z',
    });
    expect(notifier.opsMessages.map((notice) => notice.dedupeId)).toEqual([
      `account.unreachable/${DENIED}/${RUN}`,
      `account.unreachable/${DENIED}/${RUN}`,
      `account.unreachable/${DENIED}/${NEXT_RUN}`,
    ]);
    expect(notifier.opsMessages[2]?.text).toContain('2 runs in a row');
  });

  test.each([
    ['not the last delivery', false, false],
    ['the last delivery', true, true],
    ['an attempt not said to be the last or not (the default)', true, undefined],
  ])(
    'a retryable failure (STS throttled) on %s: recorded; notified: %s',
    async (_when, notified, lastAttempt) => {
      // Arrange
      const { access, ledger, notifier, deps } = setUp();
      access.failures.set(DENIED, throttled(DENIED));

      // Act
      const outcome = await planMemberAccount(
        message(DENIED),
        deps(lastAttempt === undefined ? {} : { lastAttempt }),
      );

      // Assert
      expect(outcome).toMatchObject({ status: 'failed', retryable: true, notified });
      expect(ledger.peekAccountRun(DENIED)).toMatchObject({ status: 'failed', retryable: true });
      expect(notifier.opsMessages).toHaveLength(notified ? 1 : 0);
    },
  );

  test('a non-retryable failure is notified even when SQS will deliver again', async () => {
    // Arrange
    const { access, notifier, deps } = setUp();
    access.failures.set(DENIED, denied(DENIED));

    // Act
    const outcome = await planMemberAccount(message(DENIED), deps({ lastAttempt: false }));

    // Assert
    expect(outcome).toMatchObject({ notified: true });
    expect(notifier.opsMessages).toHaveLength(1);
  });

  test('without a notifier the failure is recorded and nothing is published', async () => {
    // Arrange
    const { access, ledger, faults, deps } = setUp();
    access.failures.set(DENIED, denied(DENIED));

    // Act
    const outcome = await planMemberAccount(message(DENIED), deps({ notifier: undefined }));

    // Assert
    expect(outcome).toMatchObject({ status: 'failed', notified: false });
    expect(ledger.peekAccountRun(DENIED)?.status).toBe('failed');
    expect(faults.count('sns:')).toBe(0);
  });

  test('a dry run writes nothing and publishes nothing, for a failed account or a planned one (I6)', async () => {
    // Arrange
    const { access, faults, queue, logger, deps } = setUp();
    access.failures.set(DENIED, denied(DENIED));

    // Act
    const failed = await planMemberAccount(message(DENIED, { dryRun: true }), deps());
    const planned = await planMemberAccount(message(GOOD, { dryRun: true }), deps());

    // Assert
    expect(failed).toMatchObject({ status: 'failed', notified: false });
    expect(planned.status).toBe('planned');
    expect(faults.writes()).toEqual([]);
    expect(faults.count('sns:')).toBe(0);
    expect(queue.messages.every((sent) => sent.dryRun)).toBe(true);
    expect(logger.audits('account.failed')).toEqual([expect.objectContaining({ dryRun: true })]);
  });

  test('a failed publish of the notice propagates (SQS delivers again), after the failure is recorded', async () => {
    // Arrange
    const { access, ledger, faults, deps } = setUp();
    access.failures.set(DENIED, denied(DENIED));
    faults.inject('sns:Publish', 'throttle');

    // Act
    const error = await planMemberAccount(message(DENIED), deps()).catch((caught: unknown) => caught);

    // Assert
    expect(error).toBeInstanceOf(ThrottledError);
    expect(ledger.peekAccountRun(DENIED)?.status).toBe('failed');
  });

  test('no output carries secret material held by the failed call (I4)', async () => {
    // Arrange: the secret is in what the failed call holds (the SDK error it wraps, its message and
    // its raw response), where a careless log line or record would find it. Our own messages carry
    // ids and ARNs only.
    const { access, ledger, notifier, logger, deps } = setUp();
    const sdkError = Object.assign(new Error(`AccessDenied for session ${SESSION_SECRET}`), {
      $response: { body: `<Credentials><SecretAccessKey>${SESSION_SECRET}</SecretAccessKey></Credentials>` },
    });
    const failure = new MemberRoleAccessDeniedError(
      `sts:AssumeRole ${ROLE(DENIED)} (account ${DENIED}): not authorized`,
      DENIED,
      ROLE(DENIED),
      { cause: sdkError },
    );
    access.failures.set(DENIED, failure);

    // Act
    await planMemberAccount(message(DENIED), deps());

    // Assert: every output, errors rendered as a structured logger does (name, message, cause chain,
    // own fields), so that a raw error logged or recorded anywhere would show the secret.
    const withCauses = (_key: string, value: unknown): unknown =>
      value instanceof Error
        ? { ...value, name: value.name, message: value.message, cause: value.cause }
        : value;
    const outputs = [
      ...logger.lines.map((line) => JSON.stringify(line, withCauses)),
      JSON.stringify(ledger.peekAccountRun(DENIED), withCauses),
      ...notifier.published.map((notice) => JSON.stringify(notice, withCauses)),
    ];
    expect(outputs.length).toBeGreaterThan(2);
    expect(outputs.join('\n')).toContain(DENIED);
    for (const output of outputs) expect(output).not.toContain(SESSION_SECRET);
    // The check itself finds the secret where it is.
    expect(JSON.stringify({ error: failure }, withCauses)).toContain(SESSION_SECRET);
  });
});

describe('isRetryableAccountError', () => {
  test.each<[string, boolean, unknown]>([
    ['MemberSessionUnavailableError', true, throttled(DENIED)],
    ['ThrottledError', true, new ThrottledError('Rate exceeded')],
    ['TransientServiceError', true, new TransientServiceError('timed out')],
    ['MemberRoleAccessDeniedError', false, denied(DENIED)],
    [
      'MemberAccountUnavailableError',
      false,
      new MemberAccountUnavailableError('region', DENIED, ROLE(DENIED)),
    ],
    ['AccessDeniedError', false, new AccessDeniedError('denied')],
    ['KeyRotationError', false, new KeyRotationError('bad')],
    ['a plain Error', false, new Error('bug')],
  ])('%s: retryable %s', (_name, retryable, error) => {
    expect(isRetryableAccountError(error)).toBe(retryable);
  });
});

describe('planMemberAccount: a finish-only message (an account no longer covered)', () => {
  /** A record of the account's user with a rotation in flight, or notices not yet delivered. */
  async function unfinished(ledger: FakeLedger, userName: string, what: 'in-flight' | 'outbox') {
    await ledger.save({
      ...emptyLedger(DENIED, userName),
      ...(what === 'in-flight'
        ? {
            inFlight: {
              oldKeyId: 'AKIAOLD',
              keysBefore: ['AKIAOLD'],
              phase: 'intent' as const,
              startedAt: RUN,
              reason: 'due',
            },
          }
        : { outbox: [{ event: 'key.rotated' } as never] }),
    });
  }

  async function recordedBefore(
    ledger: FakeLedger,
    status: 'planned' | 'failed' | 'finishing',
    consecutiveFailures: number,
  ) {
    await ledger.recordAccountRun({
      accountId: DENIED,
      runId: '2025-12-31T02:00:00.000Z',
      dryRun: false,
      status,
      at: '2025-12-31T02:00:05.000Z',
      consecutiveFailures,
      lastPlannedAt: '2025-12-30T02:00:00.000Z',
    });
  }

  test('opens the account once for the run, queues finish-only work for each user with unfinished work, and records finishing', async () => {
    // Arrange: two users with unfinished work, one with none.
    const { access, ledger, queue, faults, logger, notifier, deps } = setUp();
    await unfinished(ledger, 'carol', 'outbox');
    await unfinished(ledger, 'alice', 'in-flight');
    await ledger.save({ ...emptyLedger(DENIED, 'bob') });
    await recordedBefore(ledger, 'planned', 0);
    const queriesBefore = faults.count('dynamodb:Query');

    // Act
    const outcome = await planMemberAccount(message(DENIED, { finishOnly: true }), deps());

    // Assert
    expect(access.opened).toEqual([{ accountId: DENIED, runId: RUN }]);
    expect(outcome).toMatchObject({ status: 'finishing', accountId: DENIED, left: false });
    expect(queue.messages).toEqual(
      ['alice', 'carol'].map((userName) => ({
        version: WORK_MESSAGE_VERSION,
        accountId: DENIED,
        userName,
        dryRun: false,
        plannedActions: ['resume'],
        plannedAt: RUN,
        finishOnly: true,
      })),
    );
    expect(faults.count('dynamodb:Query') - queriesBefore).toBe(1);
    expect(ledger.peekAccountRun(DENIED)).toEqual({
      accountId: DENIED,
      runId: RUN,
      dryRun: false,
      status: 'finishing',
      at: RUN,
      queued: 2,
      consecutiveFailures: 0,
      lastPlannedAt: '2025-12-30T02:00:00.000Z',
      unfinishedUsers: ['alice', 'carol'],
    });
    expect(logger.audits('account.planned')).toEqual([
      expect.objectContaining({
        accountId: DENIED,
        finishOnly: true,
        accountStatus: 'finishing',
        users: ['alice', 'carol'],
      }),
    ]);
    expect(notifier.published).toEqual([]);
  });

  test('an account that cannot be opened is an account failure naming the unfinished users; nothing is queued', async () => {
    // Arrange: the member role is gone; an earlier run failed twice in a row already.
    const { access, ledger, queue, logger, notifier, deps } = setUp();
    access.failures.set(DENIED, denied(DENIED));
    await unfinished(ledger, 'alice', 'in-flight');
    await unfinished(ledger, 'carol', 'outbox');
    await recordedBefore(ledger, 'failed', 2);

    // Act
    const outcome = await planMemberAccount(message(DENIED, { finishOnly: true }), deps());

    // Assert
    expect(access.opened).toEqual([{ accountId: DENIED, runId: RUN }]);
    expect(outcome).toMatchObject({
      status: 'failed',
      accountId: DENIED,
      retryable: false,
      consecutiveFailures: 3,
      notified: true,
    });
    expect(redeliver(outcome, 1)).toBe(false);
    expect(queue.messages).toEqual([]);
    expect(ledger.peekAccountRun(DENIED)).toEqual({
      accountId: DENIED,
      runId: RUN,
      dryRun: false,
      status: 'failed',
      at: RUN,
      error: {
        name: 'MemberRoleAccessDeniedError',
        message: `sts:AssumeRole ${ROLE(DENIED)} (account ${DENIED}): not authorized`,
      },
      retryable: false,
      consecutiveFailures: 3,
      lastPlannedAt: '2025-12-30T02:00:00.000Z',
      unfinishedUsers: ['alice', 'carol'],
    });
    expect(logger.audits('account.failed')).toEqual([
      expect.objectContaining({ accountId: DENIED, finishOnly: true, users: ['alice', 'carol'] }),
    ]);
    expect(logger.audits('account.planned')).toEqual([]);
    expect(notifier.opsMessages).toHaveLength(1);
    const notice = notifier.opsMessages[0]!;
    expect(notice).toMatchObject({
      event: 'account.unreachable',
      accountId: DENIED,
      toOperators: true,
      dedupeId: `account.unreachable/${DENIED}/${RUN}`,
      details: expect.objectContaining({ unfinishedUsers: 'alice carol', consecutiveFailures: 3 }) as unknown,
    });
    expect(notice.text).toContain('unfinished for these users: alice carol');
    expect(notice.text).toContain(ROLE(DENIED));
  });

  test('a retryable failure to open is not told before the last delivery, and SQS delivers again', async () => {
    // Arrange
    const { access, ledger, notifier, deps } = setUp();
    access.failures.set(DENIED, throttled(DENIED));
    await unfinished(ledger, 'alice', 'in-flight');

    // Act
    const outcome = await planMemberAccount(
      message(DENIED, { finishOnly: true }),
      deps({ lastAttempt: false }),
    );

    // Assert
    expect(outcome).toMatchObject({ status: 'failed', retryable: true, notified: false });
    expect(redeliver(outcome, 1)).toBe(true);
    expect(notifier.published).toEqual([]);
    expect(ledger.peekAccountRun(DENIED)).toMatchObject({ status: 'failed', unfinishedUsers: ['alice'] });
  });

  test('a finishing record carries the failures before it while users are unfinished; left resets them', async () => {
    // Arrange: two failed runs, then the role is back.
    const { access, ledger, deps } = setUp();
    await unfinished(ledger, 'alice', 'in-flight');
    await recordedBefore(ledger, 'failed', 2);

    // Act / Assert: opened, queued, recorded finishing with the count carried (not reset, not increased).
    await planMemberAccount(message(DENIED, { finishOnly: true }), deps());
    expect(ledger.peekAccountRun(DENIED)).toMatchObject({ status: 'finishing', consecutiveFailures: 2 });

    // The work is still unfinished the next day: still carried.
    await planMemberAccount(message(DENIED, { finishOnly: true, plannedAt: NEXT_RUN }), deps());
    expect(ledger.peekAccountRun(DENIED)).toMatchObject({
      runId: NEXT_RUN,
      status: 'finishing',
      consecutiveFailures: 2,
    });

    // The role is gone again on the day after: the count goes on from there.
    access.failures.set(DENIED, denied(DENIED));
    const third = '2026-01-03T02:00:00.000Z';
    const failed = await planMemberAccount(message(DENIED, { finishOnly: true, plannedAt: third }), deps());
    expect(failed).toMatchObject({ status: 'failed', consecutiveFailures: 3 });

    // The work is finished (the rotator did it): left, without opening the account, count reset.
    await ledger.save({ ...emptyLedger(DENIED, 'alice'), version: ledger.peek(DENIED, 'alice')!.version });
    const openedBefore = access.opened.length;
    const fourth = '2026-01-04T02:00:00.000Z';
    await planMemberAccount(message(DENIED, { finishOnly: true, plannedAt: fourth }), deps());
    expect(access.opened.length).toBe(openedBefore);
    expect(ledger.peekAccountRun(DENIED)).toMatchObject({ status: 'left', consecutiveFailures: 0 });
    expect(ledger.peekAccountRun(DENIED)).not.toHaveProperty('unfinishedUsers');
  });

  test('a finishing record after a planned run counts no failure', async () => {
    // Arrange
    const { ledger, deps } = setUp();
    await unfinished(ledger, 'alice', 'in-flight');
    await recordedBefore(ledger, 'planned', 0);

    // Act
    await planMemberAccount(message(DENIED, { finishOnly: true }), deps());

    // Assert
    expect(ledger.peekAccountRun(DENIED)).toMatchObject({ status: 'finishing', consecutiveFailures: 0 });
  });

  test('nothing unfinished: nothing opened or queued, the account recorded left (even with its role gone)', async () => {
    // Arrange
    const { access, ledger, queue, deps } = setUp();
    access.failures.set(GOOD, denied(GOOD));
    await ledger.save({ ...emptyLedger(GOOD, 'alice') });

    // Act
    const outcome = await planMemberAccount(message(GOOD, { finishOnly: true }), deps());

    // Assert
    expect(outcome).toEqual({ status: 'finishing', accountId: GOOD, messages: [], left: true });
    expect(access.opened).toEqual([]);
    expect(queue.messages).toEqual([]);
    expect(ledger.peekAccountRun(GOOD)).toMatchObject({ status: 'left', queued: 0, consecutiveFailures: 0 });
  });

  test('a dry run opens the account, queues dry messages and records nothing (I6)', async () => {
    // Arrange
    const { access, ledger, queue, faults, deps } = setUp();
    await unfinished(ledger, 'alice', 'in-flight');
    const writesBefore = faults.writes().length;

    // Act
    const outcome = await planMemberAccount(message(DENIED, { finishOnly: true, dryRun: true }), deps());

    // Assert
    expect(access.opened).toEqual([{ accountId: DENIED, runId: RUN }]);
    expect(outcome).toMatchObject({ status: 'finishing', left: false });
    expect(queue.messages.map((sent) => [sent.userName, sent.dryRun, sent.finishOnly])).toEqual([
      ['alice', true, true],
    ]);
    expect(faults.writes().slice(writesBefore)).toEqual([]);
    expect(ledger.peekAccountRun(DENIED)).toBeUndefined();
  });

  test('a dry run that cannot open the account records, queues and publishes nothing (I6)', async () => {
    // Arrange
    const { access, ledger, queue, notifier, faults, deps } = setUp();
    access.failures.set(DENIED, denied(DENIED));
    await unfinished(ledger, 'alice', 'in-flight');
    const writesBefore = faults.writes().length;

    // Act
    const outcome = await planMemberAccount(message(DENIED, { finishOnly: true, dryRun: true }), deps());

    // Assert
    expect(outcome).toMatchObject({ status: 'failed', notified: false });
    expect(queue.messages).toEqual([]);
    expect(notifier.published).toEqual([]);
    expect(faults.writes().slice(writesBefore)).toEqual([]);
    expect(ledger.peekAccountRun(DENIED)).toBeUndefined();
  });

  test("a ledger that cannot be read is the service's failure: it propagates, nothing is recorded", async () => {
    // Arrange
    const { ledger, faults, deps } = setUp();
    faults.inject('dynamodb:Query', 'throttle');

    // Act
    const planning = planMemberAccount(message(DENIED, { finishOnly: true }), deps());

    // Assert
    await expect(planning).rejects.toBeInstanceOf(ThrottledError);
    expect(ledger.peekAccountRun(DENIED)).toBeUndefined();
  });
});

describe('redeliver: whether SQS delivers a planning message again', () => {
  const failed = (retryable: boolean): MemberAccountOutcome => ({
    status: 'failed',
    accountId: DENIED,
    error: new Error('x'),
    retryable,
    consecutiveFailures: 1,
    notified: false,
  });
  const planned = (failures: number, continueAfter?: string): MemberAccountOutcome => ({
    status: 'planned',
    accountId: GOOD,
    plan: {
      failures: Array.from({ length: failures }, () => ({ userName: 'alice', error: new Error('x') })),
      ...(continueAfter !== undefined ? { continueAfter } : {}),
    } as unknown as AccountPlan,
  });

  test.each<[string, MemberAccountOutcome, number, boolean]>([
    ['a retryable failure, first delivery', failed(true), 1, true],
    ['a retryable failure, second delivery', failed(true), 2, true],
    ['a retryable failure, last delivery: consumed (the next run tries again)', failed(true), 3, false],
    ['a retryable failure past the last delivery', failed(true), 4, false],
    ['a failure not worth retrying', failed(false), 1, false],
    ['planned', planned(0), 1, false],
    ['planned with users not read', planned(1), 3, true],
    ['planned with users not read, continuing', planned(1, 'alice'), 1, false],
    ['finishing', { status: 'finishing', accountId: GOOD, messages: [], left: true }, 1, false],
  ])('%s (receive %i): %s', (_name, outcome, receiveCount, expected) => {
    expect(redeliver(outcome, receiveCount)).toBe(expected);
  });
});
